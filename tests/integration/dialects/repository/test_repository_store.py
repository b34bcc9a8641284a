"""The repository dialect's webhooks in the store, on each backend: the core webhook and its
binding round-trip together, and go together."""

from __future__ import annotations

import uuid

from sqlalchemy import func, select

from hookd.dialects.repository import store
from hookd.dialects.repository.model import NAME, Binding
from hookd.domain.webhook import WebhookFields
from hookd.store import webhooks as core
from hookd.store.database import Database
from hookd.store.schema import repository_webhooks


async def bindings(db: Database) -> int:
    async with db.read() as conn:
        query = select(func.count()).select_from(repository_webhooks)
        return int((await conn.execute(query)).scalar_one())


async def test_a_webhook_and_its_binding_round_trip(db: Database) -> None:
    repository, _ = await store.put_repository(db, "docs", "Docs", "http://127.0.0.1:9", None)
    fields = WebhookFields(
        url="http://127.0.0.1:9/relative",
        topics=("docs/document.created",),
        timeout_ms=300,
        bearer_token="key-\u00e9",
        categories=("contracts", "invoices"),
    )
    binding = Binding(repository.id, "/relative", "STATUS_AND_BODY")
    public_id = str(uuid.uuid4())
    created = await store.create_webhook(db, fields, binding, public_id)
    assert created.webhook.dialect == NAME
    assert created.binding == binding
    found = await store.get_webhook(db, public_id)
    assert found == created
    assert await store.get_webhook(db, str(uuid.uuid4())) is None
    assert await store.event_webhooks(db, "docs", "document.created") == [created]
    assert await store.event_webhooks(db, "docs", "document.deleted") == []
    assert await store.count_event_webhooks(db, "docs", "document.created") == 1

    replaced = await store.replace_webhook(
        db, created.webhook.id, fields, Binding(repository.id, "/other", "NONE")
    )
    assert replaced is not None
    assert await store.get_webhook(db, public_id) == replaced
    assert replaced.binding.uri == "/other"

    assert await bindings(db) == 1
    assert await core.delete_webhook(db, created.webhook.id)
    assert await bindings(db) == 0
    assert await store.get_webhook(db, public_id) is None


async def test_a_device_webhook_is_no_repository_webhook(db: Database) -> None:
    device = await core.create_webhook(
        db, "device", WebhookFields(url="http://127.0.0.1:9/", topics=("docs/document.created",))
    )
    assert device.dialect == "device"
    assert await store.event_webhooks(db, "docs", "document.created") == []
