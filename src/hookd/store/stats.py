"""What the console's overview counts, without scanning the delivery log.

Attempts are counted per minute as their outcomes are recorded: in memory, and written every
second or so in a small transaction of their own (a statement in each recorded batch cost the
worker a tenth more CPU on SQLite, bench/drain.py). The queue's depth and its oldest due
delivery come from the index the claim uses; a webhook's health from its latest deliveries.
"""

from __future__ import annotations

import asyncio
import bisect
import logging
import random
import weakref
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Connection, func, select, text

from hookd.domain.states import CLAIMABLE, DeliveryState
from hookd.store.database import Database
from hookd.store.schema import (
    CLAIMABLE_STATES,
    LATENCY_BOUNDS_MS,
    LATENCY_COLUMNS,
    attempts,
    deliveries,
    delivery_stats,
)

log = logging.getLogger("hookd.stats")

# Counts wait at most this long (seconds) in memory before they are written; a process that
# stops loses at most this much of them (they only feed the overview's charts).
WRITE_EVERY = 1.0
SHARDS = 8
# Minutes kept; older rows are deleted by the writers, at most once a minute per process.
KEEP_MINUTES = 8 * 24 * 60

_COUNTERS = ("attempts", "answered_2xx", "exhausted", *LATENCY_COLUMNS)
_ADD = text(
    f"INSERT INTO delivery_stats (minute, shard, {', '.join(_COUNTERS)}) "
    f"VALUES (:minute, :shard, {', '.join(f':{name}' for name in _COUNTERS)}) "
    "ON CONFLICT (minute, shard) DO UPDATE SET "
    + ", ".join(f"{name} = delivery_stats.{name} + excluded.{name}" for name in _COUNTERS)
)
_PRUNE = text("DELETE FROM delivery_stats WHERE minute < :before")


class _Pruning:
    """When this process last deleted old minutes."""

    done_before = 0


@dataclass(slots=True)
class Tally:
    """Attempts counted in one minute."""

    attempts: int = 0
    succeeded: int = 0
    exhausted: int = 0
    latency: list[int] = field(default_factory=lambda: [0] * len(LATENCY_COLUMNS))

    def attempt(self, duration_ms: float, ok: bool) -> None:
        self.attempts += 1
        self.succeeded += ok
        self.latency[bisect.bisect_left(LATENCY_BOUNDS_MS, duration_ms)] += 1

    def merge(self, other: Tally) -> None:
        self.attempts += other.attempts
        self.succeeded += other.succeeded
        self.exhausted += other.exhausted
        self.latency = [a + b for a, b in zip(self.latency, other.latency, strict=True)]


class _Unwritten:
    """A store's counts of this process not written yet, by minute, and the task that will."""

    def __init__(self) -> None:
        self.by_minute: dict[int, Tally] = {}
        self.writer: asyncio.Task[None] | None = None


_UNWRITTEN: weakref.WeakKeyDictionary[Database, _Unwritten] = weakref.WeakKeyDictionary()


def _tally(db: Database, now: float) -> Tally:
    """The tally of this minute, with a write of it scheduled."""
    unwritten = _UNWRITTEN.get(db)
    if unwritten is None:
        unwritten = _UNWRITTEN[db] = _Unwritten()
    if unwritten.writer is None:
        unwritten.writer = asyncio.get_running_loop().create_task(_write_soon(db, unwritten))
    minute = int(now // 60)
    tally = unwritten.by_minute.get(minute)
    if tally is None:
        tally = unwritten.by_minute[minute] = Tally()
    return tally


def count_outcomes(db: Database, outcomes: Iterable[Any], now: float) -> None:
    """Count a batch of the worker's outcomes (`store.queue.Outcome`)."""
    tally = _tally(db, now)
    for outcome in outcomes:
        if outcome.attempt is not None:
            tally.attempt(outcome.duration_ms, outcome.state == DeliveryState.SUCCEEDED)
        if outcome.state == DeliveryState.FAILED:
            tally.exhausted += 1


def _ok(status_code: int | None, error: str | None) -> bool:
    return error is None and status_code is not None and 200 <= status_code < 300


def count_calls(db: Database, sent: Iterable[Any], now: float) -> None:
    """Count synchronous calls (`store.deliveries.SentNow`) as they are logged."""
    tally = _tally(db, now)
    for delivery in sent:
        for attempt in delivery.attempts:
            tally.attempt(attempt.duration_ms, _ok(attempt.status_code, attempt.error))
        if delivery.state == DeliveryState.FAILED:
            tally.exhausted += 1


async def _write_soon(db: Database, unwritten: _Unwritten) -> None:
    await asyncio.sleep(WRITE_EVERY)
    unwritten.writer = None
    await write(db)


async def write(db: Database) -> None:
    """Write this process's counts of `db` now (a stopping process; tests)."""
    unwritten = _UNWRITTEN.get(db)
    if unwritten is None or not unwritten.by_minute:
        return
    by_minute, unwritten.by_minute = unwritten.by_minute, {}
    try:
        # One round trip of the event loop (`Database.run`): on SQLite, a transaction that took
        # one per statement would hold back every publish that long.
        await db.run(lambda conn: _add_minutes(conn, by_minute), durable=False)
    except Exception:
        log.warning("writing delivery counters failed; trying again shortly", exc_info=True)
        for minute, tally in by_minute.items():
            _tally(db, minute * 60.0).merge(tally)


def _add_minutes(conn: Connection, by_minute: dict[int, Tally]) -> None:
    for minute, tally in sorted(by_minute.items()):
        add(conn, tally, minute * 60.0)


def add(conn: Connection, tally: Tally, now: float) -> None:
    """Add `tally` to the counts of the minute of `now`, inside a write transaction."""
    if not tally.attempts and not tally.exhausted:
        return
    minute = int(now // 60)
    values = dict(zip(LATENCY_COLUMNS, tally.latency, strict=True))
    conn.execute(
        _ADD,
        {
            "minute": minute,
            "shard": random.randrange(SHARDS),
            "attempts": tally.attempts,
            "answered_2xx": tally.succeeded,
            "exhausted": tally.exhausted,
            **values,
        },
    )
    if minute - KEEP_MINUTES > _Pruning.done_before:
        _Pruning.done_before = minute - KEEP_MINUTES
        conn.execute(_PRUNE, {"before": _Pruning.done_before})


# --- reading ----------------------------------------------------------------------------------


@dataclass(slots=True)
class Minutes:
    """Counters summed over a span of minutes."""

    start: int  # the first minute (Unix time // 60)
    width: int  # how many minutes
    attempts: int = 0
    succeeded: int = 0
    exhausted: int = 0
    latency: list[int] = field(default_factory=lambda: [0] * len(LATENCY_COLUMNS))

    def add(self, other: Minutes) -> None:
        self.attempts += other.attempts
        self.succeeded += other.succeeded
        self.exhausted += other.exhausted
        self.latency = [a + b for a, b in zip(self.latency, other.latency, strict=True)]

    @property
    def success_rate(self) -> float | None:
        return self.succeeded / self.attempts if self.attempts else None

    def latency_quantile(self, q: float) -> float | None:
        """The q-quantile of attempt latency in ms, interpolated within its bucket."""
        return histogram_quantile(self.latency, q)


def histogram_quantile(counts: Sequence[int], q: float) -> float | None:
    total = sum(counts)
    if not total:
        return None
    rank = q * total
    seen = 0
    for index, count in enumerate(counts):
        if count and seen + count >= rank:
            low = LATENCY_BOUNDS_MS[index - 1] if index else 0
            if index == len(LATENCY_BOUNDS_MS):  # past the last bound: say the last bound
                return float(LATENCY_BOUNDS_MS[-1])
            high = LATENCY_BOUNDS_MS[index]
            return low + (high - low) * (rank - seen) / count
        seen += count
    return float(LATENCY_BOUNDS_MS[-1])


async def minutes(db: Database, first: int, last: int, width: int) -> list[Minutes]:
    """Counters from minute `first` to `last` (inclusive), in spans of `width` minutes."""
    columns = [func.sum(delivery_stats.c[name]) for name in _COUNTERS]
    async with db.read() as conn:
        rows = await conn.execute(
            select(delivery_stats.c.minute, *columns)
            .where(delivery_stats.c.minute >= first, delivery_stats.c.minute <= last)
            .group_by(delivery_stats.c.minute)
        )
        spans = [Minutes(start, width) for start in range(first, last + 1, width)]
        for minute, attempts_, succeeded, exhausted, *latency in rows:
            span = spans[(minute - first) // width]
            span.add(
                Minutes(
                    minute,
                    1,
                    int(attempts_),
                    int(succeeded),
                    int(exhausted),
                    [int(count) for count in latency],
                )
            )
    return spans


@dataclass(slots=True)
class QueueDepth:
    """Deliveries waiting or in flight, by state."""

    by_state: dict[DeliveryState, int]
    # False when there are more than were counted: `by_state` then covers the ones due first.
    complete: bool

    @property
    def total(self) -> int:
        return sum(self.by_state.values())


_QUEUED = text(f"""
SELECT state, count(*) FROM (
    SELECT state FROM deliveries WHERE state IN {CLAIMABLE_STATES} ORDER BY due_at LIMIT :cap
) AS due GROUP BY state
""")


_MORE_QUEUED = text(
    f"SELECT 1 FROM deliveries WHERE state IN {CLAIMABLE_STATES} ORDER BY due_at "
    "LIMIT 1 OFFSET :cap"
)


async def queue_depth(db: Database, cap: int) -> QueueDepth:
    """The queue by state, reading at most `cap` deliveries of the claim's index (in the order
    they come due): exact up to `cap`; beyond, the first `cap`."""
    async with db.read() as conn:
        rows = (await conn.execute(_QUEUED, {"cap": cap})).all()
        counted = {DeliveryState(state): int(count) for state, count in rows}
        complete = (
            sum(counted.values()) < cap
            or (await conn.execute(_MORE_QUEUED, {"cap": cap})).first() is None
        )
    return QueueDepth({state: counted.get(state, 0) for state in CLAIMABLE}, complete)


async def oldest_due(db: Database, now: float) -> float | None:
    """When the delivery that has waited longest for an attempt became due (None: none)."""
    async with db.read() as conn:
        return (
            await conn.execute(
                text(
                    f"SELECT min(due_at) FROM deliveries WHERE state IN {CLAIMABLE_STATES} "
                    "AND due_at <= :now"
                ),
                {"now": now},
            )
        ).scalar_one()


_SAMPLED_DEPTH = text(f"""
SELECT state, count(*) FROM (
    SELECT state FROM deliveries WHERE state IN {CLAIMABLE_STATES} LIMIT :cap
) AS queued GROUP BY state
""")
# Each webhook's earliest due_at is one seek of the claim's index; a min() over the whole
# queue would read all of it.
_SAMPLED_OLDEST = text(f"""
SELECT min((SELECT min(d.due_at) FROM deliveries AS d
            WHERE d.webhook_id = w.id AND d.state IN {CLAIMABLE_STATES}))
FROM webhooks AS w
""")


@dataclass(slots=True)
class QueueSample:
    # Up to `cap` deliveries in all, in no particular order: at the cap, the queue is longer.
    by_state: dict[DeliveryState, int]
    # When the delivery that comes (or came) due first does; None: the queue is empty.
    first_due: float | None


async def sample_queue(db: Database, cap: int) -> QueueSample:
    """The queue for the metrics, from two cheap reads: its depth by state, counted up to `cap`
    (no sort), and its earliest due time (a seek per webhook)."""
    async with db.read() as conn:
        rows = (await conn.execute(_SAMPLED_DEPTH, {"cap": cap})).all()
        first_due = (await conn.execute(_SAMPLED_OLDEST)).scalar_one()
    counted = {DeliveryState(state): int(count) for state, count in rows}
    return QueueSample({state: counted.get(state, 0) for state in CLAIMABLE}, first_due)


# --- a webhook's health ---------------------------------------------------------------------


@dataclass(slots=True)
class Health:
    """How a webhook's latest deliveries went."""

    finished: int = 0
    succeeded: int = 0
    latency: list[int] = field(default_factory=lambda: [0] * len(LATENCY_COLUMNS))
    last_error: str | None = None
    last_error_at: float | None = None

    @property
    def success_rate(self) -> float | None:
        return self.succeeded / self.finished if self.finished else None

    @property
    def p95_ms(self) -> float | None:
        return histogram_quantile(self.latency, 0.95)


_FINISHED = (DeliveryState.SUCCEEDED.value, DeliveryState.FAILED.value)


async def webhook_health(db: Database, webhook_ids: Sequence[int], last: int) -> dict[int, Health]:
    """Each webhook's health over its `last` deliveries (finished ones count for the rate,
    every attempt of them for the latency; the newest failure gives the last error)."""
    if not webhook_ids:
        return {}
    health = {webhook_id: Health() for webhook_id in webhook_ids}
    latest = [
        select(
            deliveries.c.id,
            deliveries.c.webhook_id,
            deliveries.c.state,
            deliveries.c.updated_at,
            deliveries.c.last_status_code,
            deliveries.c.last_error,
        )
        .where(deliveries.c.webhook_id == webhook_id)
        .order_by(deliveries.c.id.desc())
        .limit(last)
        .subquery()
        for webhook_id in webhook_ids
    ]
    async with db.read() as conn:
        rows: list[Any] = []
        # One statement per few webhooks: each branch walks (webhook_id, id) backwards.
        for start in range(0, len(latest), 20):
            branches = [select(sub) for sub in latest[start : start + 20]]
            union = branches[0].union_all(*branches[1:]) if len(branches) > 1 else branches[0]
            rows.extend((await conn.execute(union)).all())
        delivery_ids = {row.id: row.webhook_id for row in rows}
        for row in sorted(rows, key=lambda row: row.id):
            found = health[row.webhook_id]
            if row.state in _FINISHED:
                found.finished += 1
                found.succeeded += row.state == DeliveryState.SUCCEEDED
            if row.last_error is not None or (
                row.last_status_code is not None and not 200 <= row.last_status_code < 300
            ):
                found.last_error = row.last_error or f"HTTP {row.last_status_code}"
                found.last_error_at = row.updated_at
        ids = list(delivery_ids)
        for start in range(0, len(ids), 1000):
            durations = await conn.execute(
                select(attempts.c.delivery_id, attempts.c.duration_ms).where(
                    attempts.c.delivery_id.in_(ids[start : start + 1000])
                )
            )
            for delivery_id, duration_ms in durations:
                latency = health[delivery_ids[delivery_id]].latency
                latency[bisect.bisect_left(LATENCY_BOUNDS_MS, duration_ms)] += 1
    return health
