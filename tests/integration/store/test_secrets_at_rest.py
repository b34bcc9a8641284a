"""HOOKD_SECRET_KEY: secrets are sealed in the store, open in the API, and sign deliveries."""

from __future__ import annotations

import hashlib
import hmac
from typing import Any

import pytest
from sqlalchemy import select

from hookd.config import load_settings
from hookd.startup import StartupError, prepare_store
from hookd.store.database import Database
from hookd.store.schema import webhooks
from support import Receiver

SECRET = "0123456789abcdef-secret"


async def stored_secret(url: str) -> str:
    db = Database(url, pool_size=1)
    try:
        async with db.read() as conn:
            return (await conn.execute(select(webhooks.c.secret))).scalar_one()
    finally:
        await db.close()


async def test_secrets_are_encrypted_at_rest_and_still_sign(
    make_settings: Any, api_factory: Any, receiver: Receiver
) -> None:
    api = await api_factory(make_settings(secret_key="correct horse battery staple"))
    hook = await api.create_webhook(url=receiver.url(), secret=SECRET)

    raw = await stored_secret(api.settings.database_url)
    assert raw.startswith("enc:v1:")
    assert SECRET not in raw
    assert hook["secret"] == SECRET
    fetched = await api.client.get(f"/api/v1/webhooks/{hook['uid']}", headers=api.admin)
    assert fetched.json()["secret"] == SECRET

    await api.publish({"type": "log.door_was_opened"})
    await receiver.wait_for(1)
    request = receiver.requests[0]
    expected = hmac.new(SECRET.encode(), request.body, hashlib.sha256).hexdigest()
    assert request.headers["X-Hookd-Signature-256"] == f"sha256={expected}"


async def test_without_a_key_secrets_are_stored_as_given(api: Any, receiver: Receiver) -> None:
    await api.create_webhook(url=receiver.url(), secret=SECRET)
    assert await stored_secret(api.settings.database_url) == SECRET


@pytest.mark.parametrize("key", [None, "another key"])
async def test_start_refuses_a_store_whose_secrets_it_cannot_open(
    make_settings: Any, api_factory: Any, receiver: Receiver, key: str | None
) -> None:
    api = await api_factory(make_settings(secret_key="the right key"))
    await api.create_webhook(url=receiver.url(), secret=SECRET)

    settings = load_settings(database_url=api.settings.database_url, secret_key=key)
    with pytest.raises(StartupError, match=r"^HOOKD_SECRET_KEY: "):
        await prepare_store(settings, first_start=True)
