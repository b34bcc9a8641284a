"""Publishing: store events and fan them out to deliveries, in one transaction."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass

import orjson
from sqlalchemy import select, text, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from hookd.domain.event_types import candidate_topics
from hookd.domain.states import DeliveryState, WebhookStatus
from hookd.store.database import NOTIFY_CHANNEL, Database
from hookd.store.schema import events, webhook_topics, webhooks

IDEMPOTENCY_WINDOW = 24 * 3600.0

Subscriber = tuple[int, tuple[str, ...]]  # webhook id, the categories it is restricted to
EventRow = tuple[str, str | None, str, bytes, int]  # id, idempotency key, topic, body, deliveries

# Publishing writes many rows at once, set-based. PostgreSQL gets one statement for the events,
# their deliveries and the workers' wake-up, over `unnest()` of arrays: every round trip waits
# for a pass of a busy event loop (docs/performance.md). SQLite gets the driver's `executemany`,
# which loops in C.
_PENDING = f"'{DeliveryState.PENDING.value}'"
_PG_INSERT = text(f"""
WITH input AS MATERIALIZED (
    SELECT nextval(pg_get_serial_sequence('events', 'seq')) AS seq, u.*
    FROM unnest(CAST(:id AS text[]), CAST(:key AS text[]), CAST(:type AS text[]),
                CAST(:body AS bytea[]), CAST(:deliveries AS int[]))
         WITH ORDINALITY AS u(id, idempotency_key, type, body, deliveries, n)
), stored AS (
    INSERT INTO events (seq, id, idempotency_key, type, body, deliveries, created_at)
    SELECT seq, id, idempotency_key, type, body, deliveries, :now FROM input
), queued AS (
    INSERT INTO deliveries (event_seq, webhook_id, state, due_at, created_at, updated_at)
    SELECT input.seq, d.webhook_id, {_PENDING}, :now, :now, :now
    FROM unnest(CAST(:event_n AS bigint[]), CAST(:webhook_id AS bigint[]))
         WITH ORDINALITY AS d(n, webhook_id, position)
    JOIN input ON input.n = d.n
    ORDER BY d.position
)
SELECT CASE WHEN cardinality(CAST(:webhook_id AS bigint[])) > 0
            THEN pg_notify(:channel, '') END
""")
_SQLITE_INSERT_EVENTS = (
    "INSERT INTO events (seq, id, idempotency_key, type, body, deliveries, created_at) "
    "VALUES (?, ?, ?, ?, ?, ?, ?)"
)
_SQLITE_INSERT_DELIVERIES = (
    "INSERT INTO deliveries (event_seq, webhook_id, state, due_at, created_at, updated_at) "
    f"VALUES (?, ?, {_PENDING}, ?, ?, ?)"
)


@dataclass(slots=True)
class NewEvent:
    id: str
    topic: str
    body: bytes
    idempotency_key: str | None = None
    category: str | None = None
    # Restrict the fan-out to these webhooks (None: every active subscriber of the topic).
    only_webhooks: frozenset[int] | None = None


@dataclass(slots=True, frozen=True)
class Published:
    id: str
    deliveries: int


# How often a publish is tried again when another one stored one of its idempotency keys first.
_KEY_RACE_TRIES = 5


async def publish(db: Database, new_events: list[NewEvent], now: float) -> list[Published]:
    """Store `new_events` and one pending delivery per matching active webhook.

    An event whose idempotency key was published within the last 24 h is not stored again:
    the first result is returned for it instead, also when the first publish is still being
    committed by another request (on PostgreSQL the unique key makes the later one wait for
    it, fail, and try again, then finding the key).
    """
    for attempt in range(1, _KEY_RACE_TRIES + 1):
        try:
            return await _publish_once(db, new_events, now)
        except IntegrityError as exc:
            if attempt == _KEY_RACE_TRIES or not _is_key_race(exc):
                raise
    raise AssertionError("unreachable")


def _is_key_race(exc: IntegrityError) -> bool:
    return "idempotency_key" in str(exc.orig)


async def _publish_once(db: Database, new_events: list[NewEvent], now: float) -> list[Published]:
    results: list[Published | None] = [None] * len(new_events)
    queued = 0
    async with db.transaction() as conn:
        known = await _recent_keys(conn, new_events, now)
        first_with_key: dict[str, int] = {}
        fresh: list[tuple[int, NewEvent]] = []
        for index, event in enumerate(new_events):
            key = event.idempotency_key
            if key is None:
                fresh.append((index, event))
            elif key in known:
                results[index] = known[key]
            elif key not in first_with_key:
                first_with_key[key] = index
                fresh.append((index, event))

        fanned_out = await store_in(db, conn, [event for _, event in fresh], now)
        for (index, event), count in zip(fresh, fanned_out, strict=True):
            results[index] = Published(event.id, count)
            queued += count
    if queued:
        db.wake()
    for index, event in enumerate(new_events):
        if results[index] is None and event.idempotency_key is not None:
            results[index] = results[first_with_key[event.idempotency_key]]
    return [result for result in results if result is not None]


async def store_in(
    db: Database,
    conn: AsyncConnection,
    new_events: list[NewEvent],
    now: float,
    *,
    unless_unsubscribed: bool = False,
) -> list[int]:
    """Within the caller's transaction: store `new_events` (their idempotency keys already
    checked) and one pending delivery per matching active webhook; returns the deliveries of
    each. With `unless_unsubscribed`, an event no webhook receives is not stored. On PostgreSQL
    the workers are woken at commit; on SQLite the caller wakes them."""
    if not new_events:
        return []
    subscribers = await _subscribers(conn, {event.topic for event in new_events})
    targets = [_targets(event, subscribers[event.topic]) for event in new_events]
    stored = [
        (event, hooks) for event, hooks in zip(new_events, targets, strict=True)
        if hooks or not unless_unsubscribed
    ]  # fmt: skip
    if stored:
        await _insert(db, conn, stored, now)
    return [len(hooks) for hooks in targets]


async def _insert(
    db: Database, conn: AsyncConnection, stored: list[tuple[NewEvent, list[int]]], now: float
) -> None:
    rows = [
        (event.id, event.idempotency_key, event.topic, event.body, len(hooks))
        for event, hooks in stored
    ]
    insert = _insert_sqlite if db.is_sqlite else _insert_postgres
    await insert(conn, rows, [hooks for _, hooks in stored], now)


async def _recent_keys(
    conn: AsyncConnection, new_events: list[NewEvent], now: float
) -> dict[str, Published]:
    """What was published within the idempotency window under the keys of `new_events`."""
    keys = {event.idempotency_key for event in new_events if event.idempotency_key}
    if not keys:
        return {}
    rows = (
        await conn.execute(
            select(
                events.c.idempotency_key, events.c.id, events.c.deliveries, events.c.created_at
            ).where(events.c.idempotency_key.in_(keys))
        )
    ).all()
    cutoff = now - IDEMPOTENCY_WINDOW
    expired = [row.idempotency_key for row in rows if row.created_at < cutoff]
    if expired:  # released, so that the key can be used again
        await conn.execute(
            update(events).where(events.c.idempotency_key.in_(expired)).values(idempotency_key=None)
        )
    return {
        row.idempotency_key: Published(row.id, row.deliveries)
        for row in rows
        if row.created_at >= cutoff
    }


async def _subscribers(conn: AsyncConnection, topics: set[str]) -> dict[str, list[Subscriber]]:
    """Active webhooks per topic, with their category restrictions, in creation order: those
    subscribed to the topic itself or to a wildcard over it (`log.*` for `log.x`), each once."""
    found: dict[str, list[Subscriber]] = defaultdict(list)
    if not topics:
        return found
    candidates = {topic: candidate_topics(topic) for topic in topics}
    rows = await conn.execute(
        select(webhook_topics.c.topic, webhooks.c.id, webhooks.c.categories)
        .join(webhooks, webhooks.c.id == webhook_topics.c.webhook_id)
        .where(
            webhook_topics.c.topic.in_({entry for each in candidates.values() for entry in each}),
            webhooks.c.status == WebhookStatus.ACTIVE.value,
        )
        .order_by(webhooks.c.id)
    )
    by_entry: dict[str, list[Subscriber]] = defaultdict(list)
    for entry, webhook_id, categories in rows:
        by_entry[entry].append((webhook_id, tuple(orjson.loads(categories)) if categories else ()))
    for topic, entries in candidates.items():
        matched = [subscriber for entry in entries for subscriber in by_entry.get(entry, ())]
        if matched:
            # A webhook listing both `log.*` and `log.x` gets one delivery.
            found[topic] = sorted(dict(matched).items()) if len(entries) > 1 else matched
    return found


def _targets(event: NewEvent, subscribers: list[Subscriber]) -> list[int]:
    return [
        webhook_id
        for webhook_id, categories in subscribers
        if (event.only_webhooks is None or webhook_id in event.only_webhooks)
        and (not categories or event.category in categories)
    ]


async def _insert_sqlite(
    conn: AsyncConnection, rows: list[EventRow], targets: list[list[int]], now: float
) -> int:
    """Insert the events and one `pending` delivery per target; returns the deliveries."""
    # The transaction holds SQLite's write lock, so nobody else can take these numbers.
    last = (await conn.exec_driver_sql("SELECT COALESCE(max(seq), 0) FROM events")).scalar_one()
    seqs = range(int(last) + 1, int(last) + 1 + len(rows))
    await conn.exec_driver_sql(
        _SQLITE_INSERT_EVENTS, [(seq, *row, now) for seq, row in zip(seqs, rows, strict=True)]
    )
    pairs = [
        (seq, hook, now, now, now)
        for seq, hooks in zip(seqs, targets, strict=True)
        for hook in hooks
    ]
    if pairs:
        await conn.exec_driver_sql(_SQLITE_INSERT_DELIVERIES, pairs)
    return len(pairs)


async def _insert_postgres(
    conn: AsyncConnection, rows: list[EventRow], targets: list[list[int]], now: float
) -> int:
    """The same in one statement, which also wakes the workers when it queued deliveries."""
    event_n = [n for n, hooks in enumerate(targets, start=1) for _ in hooks]
    await conn.execute(
        _PG_INSERT,
        {
            "id": [row[0] for row in rows],
            "key": [row[1] for row in rows],
            "type": [row[2] for row in rows],
            "body": [row[3] for row in rows],
            "deliveries": [row[4] for row in rows],
            "event_n": event_n,
            "webhook_id": [hook for hooks in targets for hook in hooks],
            "channel": NOTIFY_CHANNEL,
            "now": now,
        },
    )
    return len(event_n)
