"""The queue on both stores: ids are never reused, only a claim's holder records its outcome,
a retry by hand waits for the attempt in flight, and claims are shared among webhooks."""

from __future__ import annotations

from sqlalchemy import text

from hookd.domain.webhook import WebhookFields
from hookd.store import webhooks
from hookd.store.database import Database
from hookd.store.deliveries import list_deliveries, requeue
from hookd.store.events import NewEvent, publish
from hookd.store.queue import Claimed, Outcome, Sharing, claim_due, record_outcomes

NOW = 1_800_000_000.0
TOPIC = "log.door_was_opened"


async def new_webhook(db: Database, name: str) -> int:
    fields = WebhookFields(url=f"http://127.0.0.1:9/{name}", topics=(TOPIC,), secret="s" * 16)
    return (await webhooks.create_webhook(db, "device", fields)).id


async def publish_events(db: Database, *ids: str, now: float = NOW) -> None:
    await publish(db, [NewEvent(event_id, TOPIC, b"{}") for event_id in ids], now)


def outcome(claimed: Claimed, state: str, status: int = 200, error: str | None = None) -> Outcome:
    return Outcome(
        claimed.id, claimed.webhook_id, state, NOW + 60, claimed.attempt, NOW, 2.0, status,
        "body", error, claimed.lease,
    )  # fmt: skip


async def delivery_states(db: Database) -> dict[int, tuple[str, int]]:
    async with db.read() as conn:
        rows = await conn.execute(text("SELECT id, state, attempts FROM deliveries"))
        return {row.id: (row.state, row.attempts) for row in rows}


async def attempt_count(db: Database) -> int:
    async with db.read() as conn:
        return int((await conn.execute(text("SELECT count(*) FROM attempts"))).scalar_one())


async def test_a_delivery_id_is_never_handed_out_again(db: Database) -> None:
    """A webhook deleted while its attempt is in flight: the late outcome must not land on
    another webhook's new delivery."""
    hanging = await new_webhook(db, "hanging")
    await publish_events(db, "h1")
    [in_flight] = await claim_due(db, 10, NOW, lease=30)
    await webhooks.delete_webhook(db, hanging)

    other = await new_webhook(db, "other")
    await publish_events(db, "g1")
    async with db.read() as conn:
        [fresh_id] = (await conn.execute(text("SELECT id FROM deliveries"))).scalars().all()
    assert fresh_id != in_flight.id

    await record_outcomes(db, [outcome(in_flight, "failed", 0, "timed out")], NOW + 5, 3600)
    found, _ = await list_deliveries(db, other, state=None, limit=10, offset=0)
    assert [(d.state, d.attempts, d.attempt_log) for d in found] == [("pending", 0, [])]
    assert await attempt_count(db) == 0


async def test_attempt_ids_are_never_handed_out_again(db: Database) -> None:
    hook = await new_webhook(db, "a")
    await publish_events(db, "a1")
    [claimed] = await claim_due(db, 10, NOW, lease=30)
    await record_outcomes(db, [outcome(claimed, "succeeded")], NOW, 3600)
    async with db.transaction() as conn:
        first = (await conn.execute(text("SELECT max(id) FROM attempts"))).scalar_one()
        await conn.execute(text("DELETE FROM attempts"))
    await publish_events(db, "a2")
    [claimed] = await claim_due(db, 10, NOW, lease=30)
    await record_outcomes(db, [outcome(claimed, "succeeded")], NOW, 3600)
    async with db.read() as conn:
        second = (await conn.execute(text("SELECT max(id) FROM attempts"))).scalar_one()
    assert second > first
    assert hook


async def test_only_the_lease_holder_records_an_outcome(db: Database) -> None:
    """A worker frozen past its lease wakes and reports a timeout: another worker has since
    taken the delivery and recorded its success, which must stand."""
    await new_webhook(db, "a")
    await publish_events(db, "e1")
    [frozen] = await claim_due(db, 10, NOW, lease=30)
    [taken_over] = await claim_due(db, 10, NOW + 31, lease=30)
    assert taken_over.id == frozen.id

    await record_outcomes(db, [outcome(taken_over, "succeeded")], NOW + 32, 3600)
    late = await record_outcomes(
        db, [outcome(frozen, "retrying", 0, "timed out after 5000 ms")], NOW + 40, 3600
    )
    assert late.stale == 1
    assert await delivery_states(db) == {frozen.id: ("succeeded", 1)}
    assert await attempt_count(db) == 1


async def test_a_lost_lease_writes_nothing_even_before_the_other_worker_records(
    db: Database,
) -> None:
    await new_webhook(db, "a")
    await publish_events(db, "e1")
    [frozen] = await claim_due(db, 10, NOW, lease=30)
    [taken_over] = await claim_due(db, 10, NOW + 31, lease=30)
    await record_outcomes(db, [outcome(frozen, "failed", 500)], NOW + 40, 3600)
    assert await delivery_states(db) == {frozen.id: ("delivering", 0)}
    await record_outcomes(db, [outcome(taken_over, "succeeded")], NOW + 41, 3600)
    assert await delivery_states(db) == {frozen.id: ("succeeded", 1)}


async def test_a_batch_with_one_lost_lease_records_the_others(db: Database) -> None:
    await new_webhook(db, "a")
    await publish_events(db, "e1")
    [lost] = await claim_due(db, 10, NOW, lease=30)
    await publish_events(db, "e2", now=NOW + 20)
    [kept] = await claim_due(db, 10, NOW + 20, lease=30)
    [taken_over] = await claim_due(db, 10, NOW + 31, lease=30)  # e1's lease ran out
    assert taken_over.id == lost.id

    late = await record_outcomes(
        db, [outcome(lost, "succeeded"), outcome(kept, "succeeded")], NOW + 40, 3600
    )
    assert late.stale == 1
    assert await delivery_states(db) == {lost.id: ("delivering", 0), kept.id: ("succeeded", 1)}
    assert await attempt_count(db) == 1


async def test_a_retry_of_a_delivery_in_flight_waits_for_its_attempt(db: Database) -> None:
    await new_webhook(db, "a")
    await publish_events(db, "e1")
    [in_flight] = await claim_due(db, 10, NOW, lease=30)

    asked = await requeue(db, in_flight.id, NOW + 1)
    assert asked is not None and asked.state == "delivering"
    assert await claim_due(db, 10, NOW + 2, lease=30) == []  # not sent twice at once

    await record_outcomes(db, [outcome(in_flight, "succeeded")], NOW + 3, 3600)
    assert await delivery_states(db) == {in_flight.id: ("pending", 1)}
    [again] = await claim_due(db, 10, NOW + 4, lease=30)
    assert (again.id, again.attempt) == (in_flight.id, 2)


async def test_a_retry_of_a_delivery_whose_lease_ran_out_requeues_it(db: Database) -> None:
    await new_webhook(db, "a")
    await publish_events(db, "e1")
    [abandoned] = await claim_due(db, 10, NOW, lease=30)
    asked = await requeue(db, abandoned.id, NOW + 31)
    assert asked is not None and asked.state == "pending"


async def test_a_claim_takes_a_share_from_every_webhook_with_due_deliveries(
    db: Database,
) -> None:
    """A deep backlog of one webhook does not keep another's deliveries waiting."""
    fields = WebhookFields(url="http://127.0.0.1:9/backlog", topics=("log.tamper_event",))
    backlog = (await webhooks.create_webhook(db, "device", fields)).id
    await publish(db, [NewEvent(f"b{n}", "log.tamper_event", b"{}") for n in range(300)], NOW - 60)
    healthy = await new_webhook(db, "healthy")
    await publish_events(db, "h1", "h2", "h3")

    claimed = await claim_due(db, 20, NOW, lease=30, sharing=Sharing(slots=20))
    by_webhook = {hook: [c for c in claimed if c.webhook_id == hook] for hook in (backlog, healthy)}
    assert len(by_webhook[healthy]) == 3
    assert len(by_webhook[backlog]) == 10  # its share: half the slots
