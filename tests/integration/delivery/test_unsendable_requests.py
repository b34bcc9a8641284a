"""A request that cannot be built or sent is a failed attempt with its reason, never a delivery
left `delivering` for ever; and what passes URL validation is what the sender can send."""

from __future__ import annotations

from typing import Any

import pytest

from hookd.dialects.device.fields import NAME
from hookd.domain.webhook import WebhookFields
from hookd.store import webhooks as store
from hookd.store.database import Database
from support import Api

EVENT = "log.door_was_opened"

# Each was accepted by URL validation once, and then made the delivery client raise before it
# made a request (so no attempt was ever recorded).
UNSENDABLE = [
    pytest.param("http://a\\b/", id="backslash-in-host"),
    pytest.param("http://[1.2.3.4]/", id="bracketed-ipv4"),
    pytest.param("http://xn--/", id="empty-punycode-label"),
    pytest.param("http://" + "é" * 70 + ".example/", id="over-long-non-ascii-label"),
]


async def stored_webhook(db: Database, url: str, headers: str = "{}") -> int:
    """A webhook written to the store as an older hookd may have written it (no validation)."""
    fields = WebhookFields(url=url, topics=(EVENT,), headers=headers, max_retries=1)
    return (await store.create_webhook(db, NAME, fields)).id


@pytest.mark.parametrize("url", UNSENDABLE)
async def test_such_urls_are_refused_when_a_webhook_is_written(api: Api, url: str) -> None:
    body = {"url": url, "event_types": [EVENT]}
    response = await api.client.post("/api/v1/webhooks", json=body, headers=api.admin)
    assert response.status_code == 400, response.text
    assert response.json()["error"].startswith("url: ")


@pytest.mark.parametrize("url", UNSENDABLE)
async def test_a_stored_unsendable_url_fails_its_attempts_and_the_delivery(
    api: Api, db: Database, url: str
) -> None:
    uid = await stored_webhook(db, url)
    await api.publish({"type": EVENT})

    [delivery] = await api.wait_for_deliveries(uid, 1, states=("failed",))

    assert delivery["status"] == "failed"
    assert delivery["attempt_count"] == 2  # the first attempt and its one retry
    assert all(attempt["error"] for attempt in delivery["attempts"])


async def test_a_stored_unreadable_headers_field_fails_the_attempt(
    api: Api, db: Database, unused_port: int
) -> None:
    uid = await stored_webhook(db, f"http://127.0.0.1:{unused_port}/", headers="not json")
    await api.publish({"type": EVENT})

    [delivery] = await api.wait_for_deliveries(uid, 1, states=("failed",))

    assert "could not be made" in delivery["attempts"][0]["error"]


@pytest.mark.parametrize("url", UNSENDABLE)
async def test_a_test_send_to_an_unsendable_url_reports_it(
    api: Api, db: Database, url: str
) -> None:
    uid = await stored_webhook(db, url)
    response = await api.client.post(f"/api/v1/webhooks/{uid}/test", headers=api.admin)
    assert response.status_code == 200, response.text
    result: dict[str, Any] = response.json()
    assert result["status_code"] is None
    assert result["error"]
