"""hookd's own events at the store, on both stores: written with the outcome that makes the
transition, once however many workers record at the same time, and nothing at all (not one
statement) for a batch that changes no webhook."""

from __future__ import annotations

import asyncio
from typing import Any

import orjson
from sqlalchemy import event, select

from hookd.domain.states import DeliveryState
from hookd.domain.webhook import WebhookFields
from hookd.store import webhooks
from hookd.store.database import Database
from hookd.store.events import NewEvent, publish
from hookd.store.queue import Claimed, Outcome, claim_due, record_outcomes
from hookd.store.schema import deliveries, events

NOW = 1_800_000_000.0
TOPIC = "log.door_was_opened"


async def setup(db: Database, count: int, *watching: str) -> int:
    """A webhook watching `watching` (if any), one producer webhook, `count` events for it."""
    if watching:
        await webhooks.create_webhook(
            db, "device", WebhookFields(url="http://127.0.0.1:9/ops", topics=watching)
        )
    hook = await webhooks.create_webhook(
        db, "device", WebhookFields(url="http://127.0.0.1:9/hook", topics=(TOPIC,))
    )
    await publish(db, [NewEvent(f"e{n}", TOPIC, b"{}") for n in range(count)], NOW)
    return hook.id


def failed(claimed: Claimed, *, gone: bool = False, state: str = "failed") -> Outcome:
    return Outcome(
        claimed.id, claimed.webhook_id, DeliveryState(state), NOW, claimed.attempt, NOW, 3.0,
        410 if gone else 500, "", None, claimed.lease, gone=gone,
    )  # fmt: skip


async def operational(db: Database) -> list[dict[str, Any]]:
    async with db.read() as conn:
        rows = await conn.execute(
            select(events.c.body, events.c.deliveries)
            .where(events.c.type.like("hookd.%"))
            .order_by(events.c.seq)
        )
        return [{**orjson.loads(row.body), "deliveries": row.deliveries} for row in rows]


async def test_two_workers_disabling_one_webhook_announce_it_once(db: Database) -> None:
    hook = await setup(db, 2, "hookd.webhook.disabled")
    other = Database(db.url)
    try:
        first = await claim_due(db, 1, NOW, lease=30)
        second = await claim_due(other, 1, NOW, lease=30)
        assert len(first) == len(second) == 1
        recorded = await asyncio.gather(
            record_outcomes(db, [failed(first[0], gone=True)], NOW + 1, 3600),
            record_outcomes(other, [failed(second[0], gone=True)], NOW + 1, 3600),
        )
    finally:
        await other.close()
    assert sorted(len(r.disabled) for r in recorded) == [0, 1]
    [announced] = await operational(db)
    assert announced["type"] == "hookd.webhook.disabled"
    assert announced["data"]["webhook"]["uid"] == hook
    assert announced["data"]["cause"] == "gone"
    assert announced["deliveries"] == 1


async def test_an_outcome_recorded_twice_announces_once(db: Database) -> None:
    await setup(db, 1, "hookd.delivery.exhausted")
    [claimed] = await claim_due(db, 1, NOW, lease=30)
    first = await record_outcomes(db, [failed(claimed)], NOW + 1, 3600)
    again = await record_outcomes(db, [failed(claimed)], NOW + 2, 3600)  # a stale writer
    assert (first.announced, again.announced, again.stale) == (1, 0, 1)
    [announced] = await operational(db)
    assert announced["data"]["delivery_id"] == claimed.id
    assert announced["data"]["event_id"] == "e0"
    assert announced["data"]["last_status_code"] == 500


async def test_a_retry_asked_for_meanwhile_is_not_exhausted(db: Database) -> None:
    await setup(db, 1, "hookd.delivery.exhausted")
    [claimed] = await claim_due(db, 1, NOW, lease=30)
    async with db.transaction() as conn:
        await conn.execute(deliveries.update().values(retry_requested=True))
    recorded = await record_outcomes(db, [failed(claimed)], NOW + 1, 3600)
    assert recorded.announced == 0
    assert await operational(db) == []


async def test_an_announcement_nobody_subscribes_to_is_not_stored(db: Database) -> None:
    await setup(db, 1)
    [claimed] = await claim_due(db, 1, NOW, lease=30)
    recorded = await record_outcomes(db, [failed(claimed, gone=True)], NOW + 1, 3600)
    assert recorded.disabled and recorded.announced == 0
    assert await operational(db) == []


async def test_a_batch_that_changes_no_webhook_costs_no_statement(db: Database) -> None:
    await setup(db, 4, "hookd.delivery.exhausted", "hookd.webhook.disabled")
    claimed = await claim_due(db, 4, NOW, lease=30)
    statements: list[str] = []

    def seen(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        statements.append(statement)

    for engine in db.sync_engines:  # the recording's, whichever it is on this store
        event.listen(engine, "before_cursor_execute", seen)
    try:
        outcomes = [failed(c, state="retrying") for c in claimed[:2]]
        outcomes += [failed(c, state="succeeded") for c in claimed[2:]]
        recorded = await record_outcomes(db, outcomes, NOW + 1, 3600)
    finally:
        for engine in db.sync_engines:
            event.remove(engine, "before_cursor_execute", seen)
    assert recorded.announced == 0
    assert [s for s in statements if "UPDATE deliveries" in s], statements  # seen at all
    assert not [s for s in statements if "events" in s], statements
