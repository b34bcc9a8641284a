"""HOOKD_SECRET_KEY: secrets are sealed in the store, open in the API, and sign deliveries."""

from __future__ import annotations

import base64
import hashlib
import hmac
from typing import Any

import pytest
from cryptography.fernet import Fernet
from sqlalchemy import select, update

from hookd.config import load_settings
from hookd.domain.webhook import WebhookFields
from hookd.startup import StartupError, prepare_store
from hookd.store import keyring
from hookd.store import webhooks as store
from hookd.store.database import Database
from hookd.store.schema import webhooks
from hookd.store.secret_box import SecretBox, SecretKeyError
from support import Receiver, migrated_store_url

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
    assert raw.startswith("enc:v2:")
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


# --- the key derivation, and rows sealed the old way ---------------------------------------------

OLD_KEY = "a weak passphrase"


def sealed_the_old_way(value: str, key: str = OLD_KEY) -> str:
    """As hookd sealed before the key derivation: Fernet keyed with SHA-256 of the setting."""
    fernet = Fernet(base64.urlsafe_b64encode(hashlib.sha256(key.encode()).digest()))
    return "enc:v1:" + fernet.encrypt(value.encode()).decode()


async def write_webhooks(url: str, secrets: list[str | None], bearer: str | None = None) -> None:
    """Webhooks written straight to the store, their secrets as given."""
    db = Database(url, pool_size=1)
    try:
        for secret in secrets:
            created = await store.create_webhook(
                db, "device", WebhookFields(url="http://127.0.0.1:9/", topics=("log.x",))
            )
            async with db.transaction() as conn:
                await conn.execute(
                    update(webhooks)
                    .where(webhooks.c.id == created.id)
                    .values(secret=secret, bearer_token=bearer)
                )
    finally:
        await db.close()


async def stored_secrets(url: str) -> list[tuple[str | None, str | None]]:
    db = Database(url, pool_size=1)
    try:
        async with db.read() as conn:
            rows = await conn.execute(
                select(webhooks.c.secret, webhooks.c.bearer_token).order_by(webhooks.c.id)
            )
            return [(row.secret, row.bearer_token) for row in rows]
    finally:
        await db.close()


async def test_start_reseals_old_seals_and_clear_rows_with_the_derived_key(
    database_url: str, make_settings: Any, api_factory: Any
) -> None:
    await write_webhooks(
        database_url,
        [sealed_the_old_way("old-sealed-secret-1"), "stored-in-clear-2", None],
        bearer=sealed_the_old_way("old-bearer"),
    )
    settings = make_settings(secret_key=OLD_KEY)

    await prepare_store(settings, first_start=True)

    stored = await stored_secrets(database_url)
    assert [secret is None or secret.startswith("enc:v2:") for secret, _ in stored] == [True] * 3
    assert all(bearer and bearer.startswith("enc:v2:") for _, bearer in stored)
    assert stored[2][0] is None
    assert "stored-in-clear-2" not in str(stored)
    api = await api_factory(settings)
    listed = await api.client.get("/api/v1/webhooks", headers=api.admin)
    assert [item["secret"] for item in listed.json()["items"]] == [
        "old-sealed-secret-1",
        "stored-in-clear-2",
        None,
    ]


async def test_start_checks_every_sealed_row_not_only_one(
    database_url: str, make_settings: Any
) -> None:
    await write_webhooks(
        database_url,
        [sealed_the_old_way("right-key-1"), sealed_the_old_way("other-key-2", key="another key")],
    )
    with pytest.raises(StartupError, match=r"^HOOKD_SECRET_KEY: it does not open"):
        await prepare_store(make_settings(secret_key=OLD_KEY), first_start=True)


async def test_the_derived_key_is_salted_per_store(tmp_path: Any) -> None:
    stores: list[tuple[Database, str]] = []
    try:
        for name in ("one", "two"):
            (tmp_path / name).mkdir()
            db = Database(
                await migrated_store_url("sqlite", tmp_path / name), pool_size=1, secret_key=OLD_KEY
            )
            await keyring.unlock(db)
            sealed = db.secrets.seal("the same secret")
            assert sealed is not None and sealed.startswith("enc:v2:")
            assert db.secrets.open(sealed) == "the same secret"
            stores.append((db, sealed))
        (_, sealed_one), (two, _) = stores
        with pytest.raises(SecretKeyError):  # another store's salt: another key
            two.secrets.open(sealed_one)
        with pytest.raises(SecretKeyError):  # not the old scheme's key either
            SecretBox(OLD_KEY).open("enc:v1:" + sealed_one[len("enc:v2:") :])
    finally:
        for db, _ in stores:
            await db.close()
