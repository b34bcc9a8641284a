"""The delivery log: deliveries with their attempts, and re-queueing one by hand."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import func, insert, literal, select, update

from hookd.domain.states import WAITING, DeliveryState
from hookd.store.database import Database
from hookd.store.schema import attempts, deliveries, events


@dataclass(slots=True)
class AttemptRecord:
    """One attempt as the delivery log keeps it."""

    number: int
    started_at: float
    duration_ms: float
    status_code: int | None
    response_body: str | None
    error: str | None


@dataclass(slots=True)
class Delivery:
    id: int
    webhook_id: int
    event_id: str
    event_type: str
    state: DeliveryState
    attempts: int
    next_attempt_at: float | None
    created_at: float
    updated_at: float
    last_status_code: int | None
    last_error: str | None
    attempt_log: list[AttemptRecord] = field(default_factory=list)


_COLUMNS = (
    deliveries.c.id,
    deliveries.c.webhook_id,
    events.c.id.label("event_id"),
    events.c.type.label("event_type"),
    deliveries.c.state,
    deliveries.c.attempts,
    deliveries.c.due_at,
    deliveries.c.created_at,
    deliveries.c.updated_at,
    deliveries.c.last_status_code,
    deliveries.c.last_error,
)


def _delivery(row: Any) -> Delivery:
    return Delivery(
        id=row.id,
        webhook_id=row.webhook_id,
        event_id=row.event_id,
        event_type=row.event_type,
        state=DeliveryState(row.state),
        attempts=row.attempts,
        next_attempt_at=row.due_at if row.state in WAITING else None,
        created_at=row.created_at,
        updated_at=row.updated_at,
        last_status_code=row.last_status_code,
        last_error=row.last_error,
    )


async def list_deliveries(
    db: Database, webhook_id: int, *, state: DeliveryState | None, limit: int, offset: int
) -> tuple[list[Delivery], int]:
    """A webhook's deliveries, newest first, each with its attempts; and how many in all."""
    where = [deliveries.c.webhook_id == webhook_id]
    if state is not None:
        where.append(deliveries.c.state == state.value)
    async with db.read() as conn:
        total = (
            await conn.execute(select(func.count()).select_from(deliveries).where(*where))
        ).scalar_one()
        rows = await conn.execute(
            select(*_COLUMNS)
            .join(events, events.c.seq == deliveries.c.event_seq)
            .where(*where)
            .order_by(deliveries.c.id.desc())
            .limit(limit)
            .offset(offset)
        )
        found = [_delivery(row) for row in rows]
        by_id = {delivery.id: delivery for delivery in found}
        if by_id:
            log: dict[int, list[AttemptRecord]] = defaultdict(list)
            attempt_rows = await conn.execute(
                select(attempts)
                .where(attempts.c.delivery_id.in_(by_id))
                .order_by(attempts.c.delivery_id, attempts.c.number, attempts.c.id)
            )
            for row in attempt_rows:
                log[row.delivery_id].append(
                    AttemptRecord(
                        row.number,
                        row.started_at,
                        row.duration_ms,
                        row.status_code,
                        row.response_body,
                        row.error,
                    )
                )
            for delivery_id, attempt_list in log.items():
                by_id[delivery_id].attempt_log = attempt_list
    return found, total


async def requeue(db: Database, delivery_id: int, now: float) -> Delivery | None:
    """Make a delivery due now, whatever its state; a finished one gets one more attempt.

    A delivery in flight (its lease still running) is not re-queued under its attempt: the
    retry is noted, and the delivery is due again as soon as that attempt is recorded.
    """
    async with db.transaction() as conn:
        in_flight = await conn.execute(
            update(deliveries)
            .where(
                deliveries.c.id == delivery_id,
                deliveries.c.state == DeliveryState.DELIVERING.value,
                deliveries.c.due_at > now,
            )
            .values(retry_requested=True)
        )
        if not in_flight.rowcount:
            result = await conn.execute(
                update(deliveries)
                .where(deliveries.c.id == delivery_id)
                .values(
                    state=DeliveryState.PENDING.value,
                    due_at=now,
                    updated_at=now,
                    retry_requested=False,
                )
            )
            if not result.rowcount:
                return None
            await db.notify_workers(conn)
        row = (
            await conn.execute(
                select(*_COLUMNS)
                .join(events, events.c.seq == deliveries.c.event_seq)
                .where(deliveries.c.id == delivery_id)
            )
        ).one()
    db.wake()
    return _delivery(row)


async def replay(
    db: Database, webhook_id: int, topics: Sequence[str], since: float, now: float
) -> int:
    """Queue a delivery to the webhook of every stored event of `topics` published since
    `since` that it has not received successfully and that is not already on its way to it.
    Returns how many were queued; running it again queues nothing new."""
    taken = (
        select(deliveries.c.id)
        .where(
            deliveries.c.event_seq == events.c.seq,
            deliveries.c.webhook_id == webhook_id,
            deliveries.c.state != DeliveryState.FAILED.value,
        )
        .exists()
    )
    missing = (
        select(
            events.c.seq,
            literal(webhook_id),
            literal(DeliveryState.PENDING.value),
            literal(now),
            literal(now),
            literal(now),
        )
        .where(events.c.type.in_(topics), events.c.created_at >= since, ~taken)
        .order_by(events.c.seq)
    )
    return await _queue(
        db,
        insert(deliveries).from_select(
            ["event_seq", "webhook_id", "state", "due_at", "created_at", "updated_at"], missing
        ),
    )


async def recover(db: Database, webhook_id: int, since: float, now: float) -> int:
    """Send every failed delivery of the webhook created since `since` again (one more attempt
    each, like a retry by hand). Returns how many were queued."""
    return await _queue(
        db,
        update(deliveries)
        .where(
            deliveries.c.webhook_id == webhook_id,
            deliveries.c.state == DeliveryState.FAILED.value,
            deliveries.c.created_at >= since,
        )
        .values(state=DeliveryState.PENDING.value, due_at=now, updated_at=now),
    )


async def _queue(db: Database, statement: Any) -> int:
    async with db.transaction() as conn:
        queued = int((await conn.execute(statement)).rowcount or 0)
        if queued:
            await db.notify_workers(conn)
    if queued:
        db.wake()
    return queued


@dataclass(slots=True)
class SentNow:
    """A delivery made synchronously (a validation call): its final state and tries."""

    webhook_id: int
    state: DeliveryState  # succeeded | failed
    attempts: list[AttemptRecord]


@dataclass(slots=True)
class CalledEvent:
    """An event whose deliveries were made synchronously, and those deliveries."""

    id: str
    type: str
    body: bytes
    created_at: float
    sent: list[SentNow]


async def record_synchronous(db: Database, called: Sequence[CalledEvent], now: float) -> None:
    """Log synchronous calls like queued deliveries, all in one transaction: an `events` row per
    event, a finished `deliveries` row per webhook called and an `attempts` row per try."""
    called = [event for event in called if event.sent]
    if not called:
        return
    async with db.transaction(durable=False) as conn:
        sequence_numbers = (
            (
                await conn.execute(
                    insert(events).returning(events.c.seq, sort_by_parameter_order=True),
                    [
                        {
                            "id": event.id,
                            "idempotency_key": None,
                            "type": event.type,
                            "body": event.body,
                            "deliveries": len(event.sent),
                            "created_at": event.created_at,
                        }
                        for event in called
                    ],
                )
            )
            .scalars()
            .all()
        )
        sent = [
            (seq, event.created_at, delivery)
            for seq, event in zip(sequence_numbers, called, strict=True)
            for delivery in event.sent
        ]
        delivery_ids = (
            (
                await conn.execute(
                    insert(deliveries).returning(deliveries.c.id, sort_by_parameter_order=True),
                    [
                        {
                            "event_seq": seq,
                            "webhook_id": delivery.webhook_id,
                            "state": delivery.state,
                            "attempts": len(delivery.attempts),
                            "due_at": now,
                            "created_at": created_at,
                            "updated_at": now,
                            "last_status_code": delivery.attempts[-1].status_code,
                            "last_error": delivery.attempts[-1].error,
                        }
                        for seq, created_at, delivery in sent
                    ],
                )
            )
            .scalars()
            .all()
        )
        await conn.execute(
            insert(attempts),
            [
                {
                    "delivery_id": delivery_id,
                    "number": attempt.number,
                    "started_at": attempt.started_at,
                    "duration_ms": attempt.duration_ms,
                    "status_code": attempt.status_code,
                    "response_body": attempt.response_body,
                    "error": attempt.error,
                }
                for delivery_id, (_, _, delivery) in zip(delivery_ids, sent, strict=True)
                for attempt in delivery.attempts
            ],
        )
