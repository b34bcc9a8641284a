"""The delivery log: deliveries with their attempts, and re-queueing one by hand."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import ColumnElement, Connection, func, insert, literal, or_, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from hookd.domain.event_types import WILDCARD_SUFFIX, is_wildcard
from hookd.domain.states import WAITING, DeliveryState
from hookd.store import stats
from hookd.store.database import Database
from hookd.store.schema import attempts, deliveries, events, webhooks


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
            webhook_id = (
                await conn.execute(
                    update(deliveries)
                    .where(deliveries.c.id == delivery_id)
                    .values(
                        state=DeliveryState.PENDING.value,
                        due_at=now,
                        updated_at=now,
                        retry_requested=False,
                    )
                    .returning(deliveries.c.webhook_id)
                )
            ).scalar()
            if webhook_id is None:
                return None
            await _lower_fifo_from(conn, webhook_id, delivery_id)
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
        .where(_of_topics(topics), events.c.created_at >= since, ~taken)
        .order_by(events.c.seq)
    )
    return await _queue(
        db,
        insert(deliveries).from_select(
            ["event_seq", "webhook_id", "state", "due_at", "created_at", "updated_at"], missing
        ),
    )


def _of_topics(topics: Sequence[str]) -> ColumnElement[bool]:
    """Events whose type is one of `topics` or under one of its wildcards (`log.*`)."""
    prefixes = [topic[: -len(WILDCARD_SUFFIX)] + "." for topic in topics if is_wildcard(topic)]
    return or_(
        events.c.type.in_([topic for topic in topics if not is_wildcard(topic)]),
        *(events.c.type.startswith(prefix, autoescape=True) for prefix in prefixes),
    )


async def recover(db: Database, webhook_id: int, since: float, now: float) -> int:
    """Send every failed delivery of the webhook created since `since` again (one more attempt
    each, like a retry by hand). Returns how many were queued."""
    failed = (
        deliveries.c.webhook_id == webhook_id,
        deliveries.c.state == DeliveryState.FAILED.value,
        deliveries.c.created_at >= since,
    )

    async def lower_fifo_from(conn: AsyncConnection) -> None:
        first = (await conn.execute(select(func.min(deliveries.c.id)).where(*failed))).scalar()
        if first is not None:
            await _lower_fifo_from(conn, webhook_id, first)

    return await _queue(
        db,
        update(deliveries)
        .where(*failed)
        .values(state=DeliveryState.PENDING.value, due_at=now, updated_at=now),
        before=lower_fifo_from,
    )


async def _lower_fifo_from(conn: AsyncConnection, webhook_id: int, delivery_id: int) -> None:
    """A delivery claimable again: a fifo claim on SQLite must look for its head from there."""
    await conn.execute(
        update(webhooks)
        .where(webhooks.c.id == webhook_id, webhooks.c.fifo_from > delivery_id)
        .values(fifo_from=delivery_id)
    )


async def _queue(
    db: Database,
    statement: Any,
    before: Callable[[AsyncConnection], Awaitable[None]] | None = None,
) -> int:
    async with db.transaction() as conn:
        if before is not None:
            await before(conn)
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
    if db.is_sqlite:
        await db.run(lambda conn: _record_synchronous_sqlite(conn, called, now), durable=False)
    else:
        await _record_synchronous_postgres(db, called, now)
    stats.count_calls(db, (delivery for event in called for delivery in event.sent), now)


_SQLITE_LAST_SEQ = "SELECT COALESCE(max(seq), 0) FROM events"
_SQLITE_INSERT_EVENT = (
    "INSERT INTO events (seq, id, idempotency_key, type, body, deliveries, created_at) "
    "VALUES (?, ?, NULL, ?, ?, ?, ?)"
)
_SQLITE_INSERT_DELIVERY = (
    "INSERT INTO deliveries (event_seq, webhook_id, state, attempts, due_at, created_at, "
    "updated_at, last_status_code, last_error) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)"
)
_SQLITE_INSERT_ATTEMPT = (
    "INSERT INTO attempts (delivery_id, number, started_at, duration_ms, status_code, "
    "response_body, error) VALUES (?, ?, ?, ?, ?, ?, ?)"
)


def _record_synchronous_sqlite(conn: Connection, called: Sequence[CalledEvent], now: float) -> None:
    """SQLite, on the store's own thread (`Database.run`): the same rows."""
    seq = int(conn.exec_driver_sql(_SQLITE_LAST_SEQ).scalar_one())
    tries: list[tuple[Any, ...]] = []
    for event in called:
        seq += 1
        conn.exec_driver_sql(
            _SQLITE_INSERT_EVENT,
            (seq, event.id, event.type, event.body, len(event.sent), event.created_at),
        )
        for delivery in event.sent:
            last = delivery.attempts[-1]
            delivery_id = conn.exec_driver_sql(
                _SQLITE_INSERT_DELIVERY,
                (seq, delivery.webhook_id, delivery.state, len(delivery.attempts), now,
                 event.created_at, now, last.status_code, last.error),
            ).lastrowid  # fmt: skip
            tries.extend(
                (delivery_id, attempt.number, attempt.started_at, attempt.duration_ms,
                 attempt.status_code, attempt.response_body, attempt.error)
                for attempt in delivery.attempts
            )  # fmt: skip
    conn.exec_driver_sql(_SQLITE_INSERT_ATTEMPT, tries)


async def _record_synchronous_postgres(
    db: Database, called: Sequence[CalledEvent], now: float
) -> None:
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


# --- the console's delivery log ---------------------------------------------------------------

# A page of the log reads at most this many deliveries (by id) below its cursor: however rare
# what a filter looks for, a page costs the same; past the window the reader asks for more.
SEARCH_WINDOW = 100_000
# Deliveries are numbered in the order they are written, and mostly in the order they were
# created; a time range is looked up as a range of ids widened by this much (seconds).
TIME_SLACK = 5.0


@dataclass(slots=True, frozen=True)
class LogFilter:
    webhook_id: int | None = None
    state: DeliveryState | None = None
    event_type: str | None = None  # the event's type as stored (a dialect's topic)
    event_id: str | None = None
    created_from: float | None = None
    created_until: float | None = None


@dataclass(slots=True)
class LogPage:
    """A page of the log, newest first."""

    items: list[Delivery]
    # Cursors: `before` for the next (older) page, `after` for the previous (newer) one.
    older: int | None
    newer: int | None
    # Set when the window ran out before the page filled: deliveries from this id down are
    # not searched yet (the next page goes on from here).
    searched_down_to: int | None = None


async def _first_id_from(conn: AsyncConnection, created_at: float, low: int, high: int) -> int:
    """The first id in [low, high] of a delivery created at or after `created_at`, found by
    bisection (one indexed lookup a step); `high + 1` when there is none."""
    answer = high + 1
    while low <= high:
        middle = (low + high) // 2
        row = (
            await conn.execute(
                select(deliveries.c.id, deliveries.c.created_at)
                .where(deliveries.c.id >= middle, deliveries.c.id <= high)
                .order_by(deliveries.c.id)
                .limit(1)
            )
        ).first()
        if row is None:
            high = middle - 1
        elif row.created_at >= created_at:
            answer, high = row.id, middle - 1
        else:
            low = row.id + 1
    return answer


async def _window_edge(
    conn: AsyncConnection, where: LogFilter, edge: int, *, downwards: bool
) -> int | None:
    """The id SEARCH_WINDOW deliveries from `edge` (down or up) among the webhook's own, or
    among all; None when fewer are left."""
    query = select(deliveries.c.id)
    if where.webhook_id is not None:
        query = query.where(deliveries.c.webhook_id == where.webhook_id)
    if downwards:
        query = query.where(deliveries.c.id <= edge).order_by(deliveries.c.id.desc())
    else:
        query = query.where(deliveries.c.id >= edge).order_by(deliveries.c.id)
    found = (await conn.execute(query.limit(1).offset(SEARCH_WINDOW - 1))).scalar_one_or_none()
    return None if found is None else int(found)


async def search_log(
    db: Database,
    where: LogFilter,
    *,
    limit: int,
    before: int | None = None,
    after: int | None = None,
) -> LogPage:
    """A page of the delivery log, newest first: the `limit` newest matches below `before`,
    or (for paging back towards the newest) the `limit` oldest above `after`.

    A page reads deliveries through the log's indexes (all of them, a webhook's, an event's,
    those of a time range found by bisection); a filter on state or event type is checked on
    the rows, at most SEARCH_WINDOW of them a page.
    """
    conditions: list[Any] = []
    async with db.read() as conn:
        # Two subqueries: SQLite reads min() or max() alone from the index, not both at once.
        low, high = (
            await conn.execute(
                select(
                    select(func.min(deliveries.c.id)).scalar_subquery(),
                    select(func.max(deliveries.c.id)).scalar_subquery(),
                )
            )
        ).one()
        if low is None:
            return LogPage([], None, None)
        if where.created_from is not None:
            low = await _first_id_from(conn, where.created_from - TIME_SLACK, low, high)
            conditions.append(deliveries.c.created_at >= where.created_from)
        if where.created_until is not None:
            high = await _first_id_from(conn, where.created_until + TIME_SLACK, low, high) - 1
            conditions.append(deliveries.c.created_at < where.created_until)
        if where.webhook_id is not None:
            conditions.append(deliveries.c.webhook_id == where.webhook_id)
        if where.state is not None:
            conditions.append(deliveries.c.state == where.state.value)
        if where.event_type is not None:
            conditions.append(events.c.type == where.event_type)
        if where.event_id is not None:
            seqs = select(events.c.seq).where(events.c.id == where.event_id).scalar_subquery()
            conditions.append(deliveries.c.event_seq.in_(seqs))
        windowed = where.event_id is None and (
            where.state is not None or where.event_type is not None
        )
        if after is not None:
            first = max(after + 1, low)
            edge = await _window_edge(conn, where, first, downwards=False) if windowed else None
            last = high if edge is None else min(high, edge)
            order = deliveries.c.id.asc()
        else:
            last = high if before is None else min(high, before - 1)
            edge = await _window_edge(conn, where, last, downwards=True) if windowed else None
            first = low if edge is None else max(low, edge)
            order = deliveries.c.id.desc()
        rows = (
            await conn.execute(
                select(*_COLUMNS)
                .join(events, events.c.seq == deliveries.c.event_seq)
                .where(*conditions, deliveries.c.id >= first, deliveries.c.id <= last)
                .order_by(order)
                .limit(limit + 1)
            )
        ).all()
    found = [_delivery(row) for row in rows[:limit]]
    full = len(rows) > limit
    if after is not None:
        found.reverse()
        newer = found[0].id if full else (last if last < high else None)
        return LogPage(found, found[-1].id if found else first, newer)
    newer = None if before is None or not found else found[0].id
    if full:
        return LogPage(found, found[-1].id, newer)
    if first > low:  # the window ended before the page filled
        return LogPage(found, first, newer, searched_down_to=first)
    return LogPage(found, None, newer)


@dataclass(slots=True)
class DeliveryDetail:
    delivery: Delivery
    event_body: bytes
    event_created_at: float


async def delivery_detail(db: Database, delivery_id: int) -> DeliveryDetail | None:
    """One delivery with its attempts and its event's body."""
    async with db.read() as conn:
        row = (
            await conn.execute(
                select(*_COLUMNS, events.c.body, events.c.created_at.label("event_created_at"))
                .join(events, events.c.seq == deliveries.c.event_seq)
                .where(deliveries.c.id == delivery_id)
            )
        ).first()
        if row is None:
            return None
        delivery = _delivery(row)
        attempt_rows = await conn.execute(
            select(attempts)
            .where(attempts.c.delivery_id == delivery_id)
            .order_by(attempts.c.number, attempts.c.id)
        )
        delivery.attempt_log = [
            AttemptRecord(
                a.number, a.started_at, a.duration_ms, a.status_code, a.response_body, a.error
            )
            for a in attempt_rows
        ]
    return DeliveryDetail(delivery, bytes(row.body), row.event_created_at)
