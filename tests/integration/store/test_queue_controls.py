"""Each webhook's controls at the claim, on both stores: rate limits, fifo order, probes."""

from __future__ import annotations

import pytest

from hookd.domain.states import Ordering
from hookd.domain.webhook import WebhookFields
from hookd.store import deliveries, webhooks
from hookd.store.database import Database
from hookd.store.events import NewEvent, publish
from hookd.store.queue import Claimed, Outcome, claim_due, record_outcomes
from support import queue_in_transaction

NOW = 1_800_000_000.0
TOPIC = "log.door_was_opened"


async def new_webhook(db: Database, **controls: object) -> int:
    fields = WebhookFields(url="http://127.0.0.1:9/", topics=(TOPIC,), **controls)  # type: ignore[arg-type]
    return (await webhooks.create_webhook(db, "device", fields)).id


async def publish_events(db: Database, count: int, now: float = NOW, prefix: str = "e") -> None:
    await publish(db, [NewEvent(f"{prefix}{n:03d}", TOPIC, b"{}") for n in range(count)], now)


def failed_attempt(claimed: Claimed, due_at: float) -> Outcome:
    return Outcome(
        claimed.id, claimed.webhook_id, "retrying", due_at, claimed.attempt, NOW, 1.0, 500, "",
        None, claimed.lease, probe=claimed.probe,
    )  # fmt: skip


async def test_a_rate_limit_is_spent_only_by_what_was_claimed(db: Database) -> None:
    await new_webhook(db, rate_limit=10)  # bursts of 5
    await publish_events(db, 1, prefix="a")
    assert len(await claim_due(db, 100, NOW, lease=30)) == 1
    await publish_events(db, 10, prefix="b")
    assert len(await claim_due(db, 100, NOW, lease=30)) == 4  # what is left of the burst
    assert await claim_due(db, 100, NOW, lease=30) == []
    assert len(await claim_due(db, 100, NOW + 0.3, lease=30)) == 3  # 10/s refills


async def test_fifo_claims_one_at_a_time_in_publish_order(db: Database) -> None:
    await new_webhook(db, ordering=Ordering.FIFO)
    await publish_events(db, 3)
    [first] = await claim_due(db, 100, NOW, lease=30)
    assert first.event_id == "e000"
    assert await claim_due(db, 100, NOW + 1, lease=30) == []  # the head is in flight

    await record_outcomes(db, [failed_attempt(first, NOW + 10)], NOW + 2, 3600)
    assert await claim_due(db, 100, NOW + 3, lease=30) == []  # its retry comes first
    [again] = await claim_due(db, 100, NOW + 11, lease=30)
    assert (again.event_id, again.attempt) == ("e000", 2)


def finished_attempt(claimed: Claimed, state: str) -> Outcome:
    return Outcome(
        claimed.id, claimed.webhook_id, state, NOW, claimed.attempt, NOW, 1.0,
        200 if state == "succeeded" else 500, "", None, claimed.lease,
    )  # fmt: skip


async def drain_one_by_one(db: Database, now: float) -> list[str]:
    """Claim and finish a fifo webhook's deliveries one at a time; their events in order."""
    order: list[str] = []
    for _ in range(10):
        claimed = await claim_due(db, 100, now, lease=30)
        if not claimed:
            break
        [one] = claimed
        order.append(one.event_id)
        await record_outcomes(db, [finished_attempt(one, "succeeded")], now, 3600)
    return order


async def test_fifo_sends_a_delivery_queued_again_before_the_later_ones(db: Database) -> None:
    # The head is looked for from the lowest id still claimable (on SQLite, a bound kept on the
    # webhook): a delivery made claimable again by hand lowers it.
    hook = await new_webhook(db, ordering=Ordering.FIFO)
    await publish_events(db, 4)
    [first] = await claim_due(db, 100, NOW, lease=30)
    await record_outcomes(db, [finished_attempt(first, "succeeded")], NOW, 3600)
    [second] = await claim_due(db, 100, NOW, lease=30)
    await record_outcomes(db, [finished_attempt(second, "failed")], NOW, 3600)
    assert [c.event_id for c in await claim_due(db, 100, NOW, lease=30)] == ["e002"]

    await deliveries.requeue(db, first.id, NOW)  # while e002 is in flight
    assert await deliveries.recover(db, hook, since=0, now=NOW) == 1  # e001
    later = NOW + 60  # e002's lease has run out unrecorded: it is due again too
    assert await drain_one_by_one(db, later) == ["e000", "e001", "e002", "e003"]


@pytest.mark.parametrize(
    ("due", "expected"),
    [(-1.0, ["late", "e001", "e002"]), (5.0, ["e001", "e002", "late"])],
)
async def test_fifo_takes_a_delivery_whose_lower_id_is_committed_after_a_higher_one(
    db: Database, due: float, expected: list[str]
) -> None:
    # On PostgreSQL a publish takes its ids before it commits: the one that commits last may hold
    # the lowest id, below the head a claim already took. Its delivery goes once the deliveries
    # due before it have gone, never left behind.
    if db.is_sqlite:
        pytest.skip("SQLite commits in id order")
    hook = await new_webhook(db, ordering=Ordering.FIFO)
    async with db.transaction() as late:
        await queue_in_transaction(late, hook, "late", TOPIC, NOW + due, NOW)
        await publish_events(db, 3)
        [first] = await claim_due(db, 100, NOW, lease=30)
        await record_outcomes(db, [finished_attempt(first, "succeeded")], NOW, 3600)
    order = await drain_one_by_one(db, NOW + 10)
    assert first.event_id == "e000"
    assert order == expected


async def test_a_suspended_webhook_gets_one_probe_at_the_schedule_pace(db: Database) -> None:
    await new_webhook(db)
    await publish_events(db, 4)
    claimed = await claim_due(db, 100, NOW, lease=30)
    recorded = await record_outcomes(
        db,
        [failed_attempt(c, NOW + 1) for c in claimed],
        NOW,
        3600,
        suspend_after=3,
        probe_delay=lambda n: 5.0 * n,
    )
    assert len(recorded.suspended) == 1
    assert await claim_due(db, 100, NOW + 4, lease=30) == []  # the retries wait, unspent
    [probe] = await claim_due(db, 100, NOW + 5, lease=30)  # the first probe, 5 s later
    assert await claim_due(db, 100, NOW + 6, lease=30) == []  # one at a time
    await record_outcomes(
        db, [failed_attempt(probe, NOW + 6)], NOW + 6, 3600, suspend_after=3,
        probe_delay=lambda n: 5.0 * n,
    )  # fmt: skip
    assert await claim_due(db, 100, NOW + 15, lease=30) == []
    assert len(await claim_due(db, 100, NOW + 16, lease=30)) == 1  # the second, 10 s later
