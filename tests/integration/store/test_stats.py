"""The overview's numbers: attempts counted per minute as outcomes are recorded (by the worker
and for synchronous calls), the queue's depth, its oldest due delivery, a webhook's health."""

from __future__ import annotations

import asyncio

import pytest
from sqlalchemy import Connection, select, update

from hookd.domain.states import DeliveryState
from hookd.domain.webhook import WebhookFields
from hookd.store import stats, webhooks
from hookd.store.database import Database
from hookd.store.deliveries import AttemptRecord, CalledEvent, SentNow, record_synchronous
from hookd.store.events import NewEvent, publish
from hookd.store.queue import Outcome, claim_due, record_outcomes
from hookd.store.schema import LATENCY_COLUMNS, deliveries, delivery_stats

NOW = 1_800_000_000.0  # a whole minute: NOW // 60 * 60 == NOW
MINUTE = int(NOW // 60)
LEASE = 60.0


async def queued(db: Database, count: int) -> int:
    hook = await webhooks.create_webhook(db, "device", WebhookFields("http://x/", ("t",)))
    await publish(db, [NewEvent(f"e{n}", "t", b"{}") for n in range(count)], NOW - 10)
    return hook.id


def outcome(delivery_id: int, hook: int, state: DeliveryState, ms: float | None) -> Outcome:
    return Outcome(
        delivery_id,
        hook,
        state,
        NOW + 60,
        None if ms is None else 1,
        NOW,
        ms or 0.0,
        200 if state == DeliveryState.SUCCEEDED else 500,
        None,
        None,
        lease=NOW + LEASE,  # what claim_due(…, NOW, LEASE) set
    )


async def test_recorded_outcomes_are_counted_in_their_minute(db: Database) -> None:
    hook = await queued(db, 5)
    claimed = await claim_due(db, 10, NOW, LEASE)
    assert len(claimed) == 5
    await record_outcomes(
        db,
        [
            outcome(claimed[0].id, hook, DeliveryState.SUCCEEDED, 3.0),
            outcome(claimed[1].id, hook, DeliveryState.SUCCEEDED, 40.0),
            outcome(claimed[2].id, hook, DeliveryState.RETRYING, 900.0),
            outcome(claimed[3].id, hook, DeliveryState.FAILED, 50_000.0),
            outcome(claimed[4].id, hook, DeliveryState.FAILED, None),  # not sent: disabled
        ],
        NOW + 5,
        disable_after=3600,
    )
    assert await stats.minutes(db, MINUTE, MINUTE, 1) == [stats.Minutes(MINUTE, 1)]
    await stats.write(db)  # what the writer task does a second later
    [counted] = await stats.minutes(db, MINUTE, MINUTE, 1)
    assert (counted.attempts, counted.succeeded, counted.exhausted) == (4, 2, 2)
    by_bucket = dict(zip(LATENCY_COLUMNS, counted.latency, strict=True))
    assert by_bucket["ms_5"] == 1 and by_bucket["ms_50"] == 1 and by_bucket["ms_1000"] == 1
    assert by_bucket["ms_more"] == 1 and sum(counted.latency) == 4
    assert counted.success_rate == 0.5


async def test_counts_are_written_by_the_process_a_moment_later(
    db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(stats, "WRITE_EVERY", 0.05)
    hook = await queued(db, 40)
    claimed = await claim_due(db, 40, NOW, LEASE)
    for start in range(0, 40, 2):
        await record_outcomes(
            db,
            [outcome(c.id, hook, DeliveryState.SUCCEEDED, 7.0) for c in claimed[start : start + 2]],
            NOW + 1,
            disable_after=3600,
        )
        await asyncio.sleep(0.01 if start % 8 else 0.06)  # some batches written alone
    await asyncio.sleep(0.2)
    async with db.read() as conn:
        rows = (await conn.execute(select(delivery_stats.c.shard, delivery_stats.c.attempts))).all()
    assert 1 < len(rows) <= stats.SHARDS  # written several times, spread over shards…
    [counted] = await stats.minutes(db, MINUTE, MINUTE, 1)
    assert counted.attempts == 40 == counted.succeeded  # …and summed when read


async def test_synchronous_calls_are_counted_too(db: Database) -> None:
    def tried(status: int | None, error: str | None = None) -> AttemptRecord:
        return AttemptRecord(1, NOW, 12.0, status, None, error)

    await record_synchronous(
        db,
        [
            CalledEvent(
                "e1",
                "repo/ev",
                b"{}",
                NOW,
                [
                    SentNow(1, DeliveryState.SUCCEEDED, [tried(200)]),
                    SentNow(2, DeliveryState.FAILED, [tried(503), tried(None, "timed out")]),
                ],
            )
        ],
        NOW + 2,
    )
    await stats.write(db)
    [counted] = await stats.minutes(db, MINUTE, MINUTE, 1)
    assert (counted.attempts, counted.succeeded, counted.exhausted) == (3, 1, 1)


async def test_minutes_in_spans(db: Database) -> None:
    tally = stats.Tally()
    tally.attempt(10.0, ok=True)
    for minute in (MINUTE - 5, MINUTE - 4, MINUTE):
        await db.run(lambda conn, at=minute * 60.0: stats.add(conn, tally, at))
    spans = await stats.minutes(db, MINUTE - 5, MINUTE, 3)
    assert [(s.start, s.width, s.attempts) for s in spans] == [
        (MINUTE - 5, 3, 2),
        (MINUTE - 2, 3, 1),
    ]
    assert [s.attempts for s in await stats.minutes(db, MINUTE - 3, MINUTE - 1, 1)] == [0, 0, 0]


async def test_old_minutes_are_deleted_by_the_writers(
    db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(stats._Pruning, "done_before", 0)
    tally = stats.Tally()
    tally.attempt(1.0, ok=True)

    def add_both(conn: Connection) -> None:
        stats.add(conn, tally, (MINUTE - stats.KEEP_MINUTES - 10) * 60.0)
        stats.add(conn, tally, NOW)

    await db.run(add_both)
    assert [s.attempts for s in await stats.minutes(db, MINUTE, MINUTE, 1)] == [1]
    old = MINUTE - stats.KEEP_MINUTES - 10
    assert [s.attempts for s in await stats.minutes(db, old, old, 1)] == [0]


async def test_queue_depth_by_state_reads_at_most_the_cap(db: Database) -> None:
    await queued(db, 12)
    async with db.transaction() as conn:
        await conn.execute(
            update(deliveries)
            .where(deliveries.c.id <= 3)
            .values(state=DeliveryState.RETRYING.value, due_at=NOW - 300)
        )
        await conn.execute(
            update(deliveries)
            .where(deliveries.c.id == 4)
            .values(state=DeliveryState.SUCCEEDED.value)
        )
    exact = await stats.queue_depth(db, cap=20)
    assert exact.complete and exact.total == 11
    assert exact.by_state == {
        DeliveryState.PENDING: 8,
        DeliveryState.RETRYING: 3,
        DeliveryState.DELIVERING: 0,
    }
    assert (await stats.queue_depth(db, cap=11)).complete  # exactly the cap
    # Past the cap: the ones due first are counted (the retrying ones came due earlier).
    capped = await stats.queue_depth(db, cap=5)
    assert not capped.complete and capped.total == 5
    assert capped.by_state[DeliveryState.RETRYING] == 3
    assert capped.by_state[DeliveryState.PENDING] == 2
    assert await stats.oldest_due(db, NOW) == NOW - 300
    assert await stats.oldest_due(db, NOW - 1000) is None


async def test_a_webhooks_health_from_its_latest_deliveries(db: Database) -> None:
    hook = await queued(db, 6)
    other = await webhooks.create_webhook(db, "device", WebhookFields("http://y/", ("u",)))
    claimed = sorted(await claim_due(db, 10, NOW, LEASE), key=lambda c: c.id)
    states = [DeliveryState.SUCCEEDED] * 4 + [DeliveryState.FAILED, DeliveryState.RETRYING]
    await record_outcomes(
        db,
        [
            outcome(c.id, hook, state, 30.0 if n < 5 else 2500.0)
            for n, (c, state) in enumerate(zip(claimed, states, strict=True))
        ],
        NOW + 1,
        disable_after=3600,
    )
    await stats.write(db)
    health = await stats.webhook_health(db, [hook, other.id], last=50)
    assert health[hook].finished == 5 and health[hook].succeeded == 4
    assert health[hook].success_rate == 0.8
    assert health[hook].last_error == "HTTP 500"
    assert health[hook].p95_ms is not None and 2000 <= health[hook].p95_ms <= 5000
    assert health[other.id].finished == 0 and health[other.id].success_rate is None
    only_last_two = await stats.webhook_health(db, [hook], last=2)
    assert only_last_two[hook].finished == 1  # the newest two: failed and retrying
