"""Webhooks through the store functions, on each backend: every field round-trips, topics keep
their order, each dialect sees its own, deleting cascades."""

from __future__ import annotations

import dataclasses
import time
from typing import Any

import pytest
from sqlalchemy import func, select, update

from hookd.domain.states import WebhookStatus
from hookd.domain.webhook import Webhook, WebhookFields
from hookd.store import webhooks as store
from hookd.store.database import Database
from hookd.store.events import NewEvent, publish
from hookd.store.schema import deliveries, webhook_topics
from hookd.store.schema import webhooks as webhooks_table

DIALECT = "some-dialect"

DEVICE = WebhookFields(
    url="https://127.0.0.1:9/" + "u" * 1980,
    topics=("log.tamper_event", "log.door_was_opened", "log.bond_lift_request"),
    secret="whsec_" + "A" * 122,
    status=WebhookStatus.DISABLED,
    timeout_ms=30000,
    headers='{"X-Tenant": "acme", "X-Tab": "a\\tb"}',
    description="\u00e9\u4e2d\U0001f600 " * 250,
    max_retries=0,
)
WRITABLE = [field.name for field in dataclasses.fields(WebhookFields)]


def writable(webhook: Webhook | WebhookFields) -> dict[str, Any]:
    return {name: getattr(webhook, name) for name in WRITABLE}


async def count(db: Database, table: Any, **where: Any) -> int:
    query = select(func.count()).select_from(table)
    for column, value in where.items():
        query = query.where(table.c[column] == value)
    async with db.read() as conn:
        return int((await conn.execute(query)).scalar_one())


async def test_device_webhook_round_trips(db: Database) -> None:
    before = int(time.time())
    created = await store.create_webhook(db, DIALECT, DEVICE)
    assert created.id >= 1
    assert created.public_id is None
    assert writable(created) == writable(DEVICE)
    assert before <= created.created_at == created.updated_at <= time.time()
    found = await store.get_webhook(db, created.id, DIALECT)
    assert found == created


async def test_every_core_field_round_trips(db: Database) -> None:
    fields = dataclasses.replace(
        DEVICE, bearer_token="key-\u00e9", categories=("contracts", "invoices"), secret=None
    )
    created = await store.create_webhook(db, DIALECT, fields, public_id="p-1")
    assert (created.dialect, created.public_id) == (DIALECT, "p-1")
    assert writable(created) == writable(fields)
    assert await store.get_webhook(db, created.id, DIALECT) == created


@pytest.mark.parametrize(
    "topics",
    [
        ("log.z", "log.a", "log.m"),
        ("b", "a"),
        tuple(f"log.t{n}" for n in reversed(range(41))),
        ("only",),
    ],
)
async def test_topic_order_is_kept(db: Database, topics: tuple[str, ...]) -> None:
    created = await store.create_webhook(db, DIALECT, dataclasses.replace(DEVICE, topics=topics))
    assert (await store.get_webhook(db, created.id, DIALECT)).topics == topics  # type: ignore[union-attr]
    (listed,), _ = await store.list_webhooks(db, DIALECT, limit=10, offset=0)
    assert listed.topics == topics


async def test_replace_writes_every_field_and_reorders_topics(db: Database) -> None:
    created = await store.create_webhook(db, DIALECT, DEVICE)
    async with db.transaction() as conn:
        await conn.execute(
            update(webhooks_table)
            .where(webhooks_table.c.id == created.id)
            .values(created_at=1000, updated_at=1000)
        )
    replacement = WebhookFields(
        url="http://127.0.0.1:9/new",
        topics=("log.bond_lift_request", "log.incoming_call"),
        secret="n" * 16,
        status=WebhookStatus.ACTIVE,
        timeout_ms=1000,
        headers="{}",
        description="",
        max_retries=5,
    )
    replaced = await store.replace_webhook(db, created.id, replacement)
    assert replaced is not None
    assert writable(replaced) == writable(replacement)
    assert replaced.created_at == 1000
    assert replaced.updated_at >= int(time.time()) - 1
    assert await store.get_webhook(db, created.id, DIALECT) == replaced
    assert await count(db, webhook_topics, webhook_id=created.id) == 2


async def test_replace_unknown_webhook(db: Database) -> None:
    assert await store.replace_webhook(db, 424242, DEVICE) is None
    assert await count(db, webhooks_table) == 0
    assert await count(db, webhook_topics) == 0


@pytest.mark.parametrize(
    ("status", "kept"), [(WebhookStatus.ACTIVE, False), (WebhookStatus.DISABLED, True)]
)
async def test_replace_clears_the_disabled_reason_only_when_active(
    db: Database, status: WebhookStatus, kept: bool
) -> None:
    created = await store.create_webhook(db, DIALECT, DEVICE)
    async with db.transaction() as conn:
        await conn.execute(
            update(webhooks_table)
            .where(webhooks_table.c.id == created.id)
            .values(disabled_reason="failing for 24 h")
        )
    replaced = await store.replace_webhook(
        db, created.id, dataclasses.replace(DEVICE, status=status)
    )
    assert replaced is not None
    assert replaced.disabled_reason == ("failing for 24 h" if kept else None)


async def test_list_pages_and_counts_a_dialects_own(db: Database) -> None:
    own = [
        await store.create_webhook(
            db, DIALECT, dataclasses.replace(DEVICE, description=f"#{n}", topics=(f"log.t{n % 2}",))
        )
        for n in range(5)
    ]
    other = await store.create_webhook(
        db, "other", WebhookFields(url="http://127.0.0.1:9/", topics=("log.t0",)), public_id="p"
    )
    everything, total = await store.list_webhooks(db, DIALECT, limit=100, offset=0)
    assert (everything, total) == (own, 5)
    page, total = await store.list_webhooks(db, DIALECT, limit=2, offset=1)
    assert (page, total) == (own[1:3], 5)
    beyond, total = await store.list_webhooks(db, DIALECT, limit=2, offset=10)
    assert (beyond, total) == ([], 5)
    assert await store.list_webhooks(db, "other", limit=100, offset=0) == ([other], 1)
    assert await store.get_webhook(db, other.id, DIALECT) is None
    assert await store.get_webhook(db, own[0].id, "other") is None


async def test_delete_cascades_topics_and_deliveries(db: Database) -> None:
    active = dataclasses.replace(DEVICE, status=WebhookStatus.ACTIVE)
    doomed = await store.create_webhook(db, DIALECT, active)
    kept = await store.create_webhook(db, DIALECT, active)
    published = await publish(db, [NewEvent("evt_1", "log.door_was_opened", b"{}")], time.time())
    assert published[0].deliveries == 2
    assert await count(db, webhook_topics, webhook_id=doomed.id) == len(DEVICE.topics)

    assert await store.delete_webhook(db, doomed.id) is True

    assert await store.get_webhook(db, doomed.id, DIALECT) is None
    assert await count(db, webhook_topics, webhook_id=doomed.id) == 0
    assert await count(db, deliveries, webhook_id=doomed.id) == 0
    assert await count(db, webhook_topics, webhook_id=kept.id) == len(DEVICE.topics)
    assert await count(db, deliveries, webhook_id=kept.id) == 1
    assert await store.get_webhook(db, kept.id, DIALECT) == kept
    assert await store.delete_webhook(db, doomed.id) is False


async def test_get_unknown_webhook(db: Database) -> None:
    assert await store.get_webhook(db, 1, DIALECT) is None
    assert await store.get_webhook(db, 2**62, DIALECT) is None
