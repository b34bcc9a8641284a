"""API keys: their form, their digest, and what a key's scope lets it publish."""

from __future__ import annotations

import hashlib

from hookd.domain.api_keys import allows, displayed, is_api_key, key_digest, new_api_key


def test_a_key_is_long_random_recognisable_and_stored_as_its_sha256() -> None:
    key, digest = new_api_key()
    other, _ = new_api_key()
    assert key.startswith("hk_") and is_api_key(key)
    assert len(key) >= 40 and key != other
    assert digest == hashlib.sha256(key.encode()).hexdigest() == key_digest(key)
    assert key not in digest
    assert displayed(key) == key[:11]
    assert not is_api_key("a-login-token")


def test_a_scope_allows_its_types_and_those_under_its_wildcards() -> None:
    assert allows(None, "anything.at_all")
    assert allows(("order.created",), "order.created")
    assert not allows(("order.created",), "order.deleted")
    assert allows(("order.*",), "order.deleted")
    assert not allows(("order.*",), "orders.deleted")
    assert allows(("log.door_was_opened", "order.*"), "log.door_was_opened")
