from __future__ import annotations

import pytest

from hookd.domain.operational import WebhookRef, is_operational, shown_url


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("https://user:pw@example.test/hook?token=x#frag", "https://example.test/hook"),
        ("http://127.0.0.1:8080/a/b", "http://127.0.0.1:8080/a/b"),
        ("http://[::1]:9/h?k=v", "http://[::1]:9/h"),
        ("https://token@example.test", "https://example.test"),
        # What the parser refuses (stored before validation used the sender's parser) still
        # shows nothing of its credentials.
        ("http://user:pw@[1.2.3.4]/h/i?token=x", "http://…/h/i"),
        ("http://[1.2.3.4", "http://…/"),
    ],
)
def test_a_url_is_shown_without_credentials(url: str, shown: str) -> None:
    assert shown_url(url) == shown


def test_a_webhook_is_named_by_uid_and_public_id() -> None:
    assert WebhookRef(3, "repository", "http://a:b@h/x", "w-1").data() == {
        "uid": 3,
        "dialect": "repository",
        "id": "w-1",
        "url": "http://h/x",
    }


def test_only_hookd_types_are_operational() -> None:
    assert is_operational("hookd.webhook.disabled")
    assert not is_operational("log.door_was_opened")
    assert not is_operational("hookdx.thing")
