"""The delivery queue on both stores: claims, leases, concurrent claimers, outcomes."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from sqlalchemy import event, text

from hookd.domain.webhook import WebhookFields
from hookd.store import webhooks
from hookd.store.database import Database
from hookd.store.deliveries import list_deliveries
from hookd.store.events import NewEvent, publish
from hookd.store.queue import (
    _CLAIM_POSTGRES,
    _PG_FINISH,
    _QUEUED_POSTGRES,
    Claimed,
    Outcome,
    claim,
    claim_due,
    record_outcomes,
)
from hookd.store.retention import prune_finished
from support import queue_in_transaction

NOW = 1_800_000_000.0
TOPIC = "log.door_was_opened"


async def queue_deliveries(db: Database, count: int, hooks: int = 1) -> list[int]:
    ids = []
    for index in range(hooks):
        hook = await webhooks.create_webhook(
            db,
            "device",
            WebhookFields(url=f"http://127.0.0.1:9/{index}", topics=(TOPIC,), secret="s" * 16),
        )
        ids.append(hook.id)
    events = [NewEvent(f"e{n}", TOPIC, b'{"n": %d}' % n) for n in range(count)]
    published = await publish(db, events, NOW)
    assert sum(p.deliveries for p in published) == count * hooks
    return ids


def outcome(claimed: Claimed, state: str, attempt: int = 1) -> Outcome:
    return Outcome(
        claimed.id, claimed.webhook_id, state, NOW + 60, attempt, NOW, 3.0, 500, "no", "x",
        claimed.lease,
    )  # fmt: skip


async def test_claims_carry_what_the_send_needs(db: Database) -> None:
    [hook_id] = await queue_deliveries(db, 3)
    claimed = await claim_due(db, 10, NOW, lease=30)
    assert sorted(c.event_id for c in claimed) == ["e0", "e1", "e2"]
    first = claimed[0]
    assert first.attempt == 1
    assert first.webhook_id == hook_id
    assert first.url == "http://127.0.0.1:9/0"
    assert first.secret == "s" * 16
    assert first.body.startswith(b'{"n": ')
    assert first.webhook_active


async def test_a_claim_is_held_until_its_lease_runs_out(db: Database) -> None:
    await queue_deliveries(db, 2)
    assert len(await claim_due(db, 10, NOW, lease=30)) == 2
    assert await claim_due(db, 10, NOW + 29, lease=30) == []
    again = await claim_due(db, 10, NOW + 31, lease=30)
    assert len(again) == 2
    assert all(c.attempt == 1 for c in again)


async def test_claims_respect_the_limit_and_the_due_time(db: Database) -> None:
    await queue_deliveries(db, 5)
    assert await claim_due(db, 10, NOW - 1, lease=30) == []
    assert len(await claim_due(db, 3, NOW, lease=30)) == 3
    assert len(await claim_due(db, 3, NOW, lease=30)) == 2


async def test_a_claim_short_because_some_webhooks_ran_dry_says_more_is_due(
    db: Database,
) -> None:
    # The claim's limit is spread over the webhooks with due deliveries: one with little left
    # returns less than its part, so the claim comes back short while another has more. The
    # worker must claim again at once, not wait for its poll interval.
    await queue_deliveries(db, 2, hooks=1)  # a webhook with 2 due
    await queue_deliveries_for_another_topic(db, 100)  # one with 100 due
    first = await claim(db, 10, NOW, lease=30)
    assert len(first.deliveries) == 7  # 2 + 5
    assert first.more_due
    second = await claim(db, 200, NOW, lease=30)
    assert len(second.deliveries) == 95
    assert not second.more_due  # everything due came back: nothing is left


async def queue_deliveries_for_another_topic(db: Database, count: int) -> None:
    other = "log.door_was_closed"
    await webhooks.create_webhook(
        db, "device", WebhookFields(url="http://127.0.0.1:9/x", topics=(other,), secret="s" * 16)
    )
    await publish(db, [NewEvent(f"o{n}", other, b"{}") for n in range(count)], NOW)


async def test_concurrent_claimers_never_share_a_delivery(db: Database) -> None:
    await queue_deliveries(db, 100, hooks=4)
    others = [Database(db.url) for _ in range(3)]
    try:
        rounds = await asyncio.gather(
            *(claim_due(claimer, 30, NOW, lease=30) for claimer in [db, *others] for _ in range(5))
        )
    finally:
        for other in others:
            await other.close()
    ids = [c.id for batch in rounds for c in batch]
    assert len(ids) == len(set(ids)) == 400


async def test_a_delivery_committed_after_a_claim_and_due_before_it_goes_next(
    db: Database,
) -> None:
    # On PostgreSQL a claim walks each webhook's deliveries from the earliest due time it found
    # (store/queue.py, `_PG_TAKES`). A publish that commits after that, with an earlier due
    # time, must be taken by the next claim, not skipped.
    if db.is_sqlite:
        pytest.skip("SQLite has one writer: a publish cannot commit in the middle of a claim")
    [hook_id] = await queue_deliveries(db, 3)
    async with db.transaction() as late:
        await queue_in_transaction(late, hook_id, "late", TOPIC, NOW - 5, NOW)
        [first] = await claim_due(db, 1, NOW, lease=30)
    rest = await claim_due(db, 10, NOW, lease=30)
    assert "late" in {c.event_id for c in rest}
    assert sorted(c.event_id for c in [first, *rest]) == ["e0", "e1", "e2", "late"]


async def test_postgres_plans_a_claim_as_index_walks_that_start_at_the_earliest_due(
    db: Database,
) -> None:
    # The listing has no parameters: its plan is made once, often while the table is empty, and
    # kept. A sequential scan chosen then would read the whole table at every claim. The takes
    # start at each webhook's earliest due time, past the entries of deliveries claimed before.
    if db.is_sqlite:
        pytest.skip("the plans are PostgreSQL's")
    takes = {"hook": [1], "n": [10], "fifo": [False], "fifo_from": [0], "first_due": [NOW]}
    async with db.transaction() as conn:
        listing = (await conn.execute(text(f"EXPLAIN {_QUEUED_POSTGRES.text}"))).scalars().all()
        planned = await conn.execute(
            text(f"EXPLAIN {_CLAIM_POSTGRES.text}"), {**takes, "now": NOW, "lease_until": NOW}
        )
        claiming = planned.scalars().all()
    assert not [line for line in listing if "Seq Scan on deliveries" in line], listing
    assert [line for line in claiming if "Index Cond" in line and "first_due" in line], claiming


async def test_postgres_finds_a_batchs_deliveries_by_id_not_through_the_claim_index(
    db: Database,
) -> None:
    # Statistics older than the queue make the claim's partial index look nearly empty: a fence
    # on the state alone sent the recording through it, reading the whole queue at every batch.
    if db.is_sqlite:
        pytest.skip("the plans are PostgreSQL's")
    n = 200
    batch = {
        "id": list(range(1, n + 1)), "state": ["succeeded"] * n, "attempts": [1] * n,
        "due_at": [NOW] * n, "status_code": [200] * n, "error": [None] * n,
        "lease": [NOW] * n, "held": ["delivering"] * n, "now": NOW,
    }  # fmt: skip
    async with db.transaction() as conn:
        planned = await conn.execute(text(f"EXPLAIN {_PG_FINISH.text}"), batch)
        plan = planned.scalars().all()
    assert not [line for line in plan if "ix_deliveries_due" in line], plan


async def test_sqlite_records_a_batch_on_the_stores_thread_not_statement_by_statement(
    db: Database,
) -> None:
    # Through the pool each statement of a recording waits for a pass of the busy event loop,
    # and holds every other writer back meanwhile; on the store's thread a batch costs one pass.
    if not db.is_sqlite:
        pytest.skip("PostgreSQL runs no writes on a thread of hookd's")
    [hook_id] = await queue_deliveries(db, 2)
    done, failing = sorted(await claim_due(db, 10, NOW, lease=30), key=lambda c: c.event_id)
    pooled: list[str] = []

    def seen(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        pooled.append(statement)

    event.listen(db.engine.sync_engine, "before_cursor_execute", seen)
    try:
        await record_outcomes(
            db, [outcome(done, "succeeded"), outcome(failing, "retrying")], NOW, 3600
        )
    finally:
        event.remove(db.engine.sync_engine, "before_cursor_execute", seen)
    assert pooled == []
    found, _ = await list_deliveries(db, hook_id, state=None, limit=10, offset=0)
    assert {d.event_id: d.state for d in found} == {"e0": "succeeded", "e1": "retrying"}


async def test_outcomes_move_states_and_log_attempts(db: Database) -> None:
    [hook_id] = await queue_deliveries(db, 3)
    a, b, c = sorted(await claim_due(db, 10, NOW, lease=30), key=lambda c: c.event_id)
    await record_outcomes(
        db,
        [outcome(a, "succeeded"), outcome(b, "retrying"),
         outcome(c, "failed")],
        NOW,
        disable_after=3600,
    )  # fmt: skip
    found, total = await list_deliveries(db, hook_id, state=None, limit=10, offset=0)
    states = {d.event_id: d.state for d in found}
    assert total == 3
    assert states == {"e0": "succeeded", "e1": "retrying", "e2": "failed"}
    assert all(len(d.attempt_log) == 1 and d.attempts == 1 for d in found)
    # The retrying one is due again at its due time, not before.
    assert await claim_due(db, 10, NOW + 59, lease=30) == []
    [retry] = await claim_due(db, 10, NOW + 61, lease=30)
    assert (retry.event_id, retry.attempt) == ("e1", 2)


async def test_a_webhook_failing_long_enough_is_disabled(db: Database) -> None:
    [hook_id] = await queue_deliveries(db, 2)
    first, second = await claim_due(db, 10, NOW, lease=30)
    assert (await record_outcomes(db, [outcome(first, "failed")], NOW, 100)).disabled == []
    recorded = await record_outcomes(db, [outcome(second, "failed")], NOW + 100, 100)
    assert recorded.disabled == [hook_id]
    hook = await webhooks.get_webhook(db, hook_id, "device")
    assert hook is not None
    assert hook.status == "disabled"
    assert hook.disabled_reason


async def test_a_success_resets_the_failing_clock(db: Database) -> None:
    await queue_deliveries(db, 3)
    one, two, three = await claim_due(db, 10, NOW, lease=30)
    await record_outcomes(db, [outcome(one, "failed")], NOW, 100)
    await record_outcomes(db, [outcome(two, "succeeded")], NOW + 50, 100)
    assert (await record_outcomes(db, [outcome(three, "failed")], NOW + 120, 100)).disabled == []


async def test_pruning_deletes_only_old_finished_events(db: Database) -> None:
    [hook_id] = await queue_deliveries(db, 3)
    done, retrying = await claim_due(db, 2, NOW, lease=30)  # the third stays pending
    await record_outcomes(
        db, [outcome(done, "succeeded"), outcome(retrying, "retrying")],
        NOW, 3600,
    )  # fmt: skip
    assert await prune_finished(db, cutoff=NOW) == 0  # nothing is older than the cutoff
    assert await prune_finished(db, cutoff=NOW + 1) == 1  # only the succeeded one
    found, total = await list_deliveries(db, hook_id, state=None, limit=10, offset=0)
    assert total == 2
    assert {d.state for d in found} == {"retrying", "pending"}


async def test_a_publish_queues_its_deliveries_in_event_then_webhook_order(db: Database) -> None:
    hooks = await queue_deliveries(db, 3, hooks=2)
    async with db.read() as conn:
        rows = (
            await conn.execute(
                text(
                    "SELECT e.id, d.webhook_id FROM deliveries d"
                    " JOIN events e ON e.seq = d.event_seq ORDER BY d.id"
                )
            )
        ).all()
    assert [tuple(row) for row in rows] == [(f"e{n}", hook) for n in range(3) for hook in hooks]
