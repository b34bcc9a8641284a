"""Publishing: store events and fan them out to deliveries, in one transaction."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import orjson
from sqlalchemy import Connection, select, text, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from hookd.domain.event_types import candidate_topics
from hookd.domain.states import DeliveryState, WebhookStatus
from hookd.store.database import NOTIFY_CHANNEL, Database
from hookd.store.schema import events, webhook_topics, webhooks

IDEMPOTENCY_WINDOW = 24 * 3600.0

Subscriber = tuple[int, tuple[str, ...]]  # webhook id, the categories it is restricted to
EventRow = tuple[str, str | None, str, bytes, int]  # id, idempotency key, topic, body, deliveries
# Runs one statement and returns its rows; runs one statement for each of many rows.
Execute = Callable[[str, Sequence[Any]], list[tuple[Any, ...]]]
ExecuteMany = Callable[[str, list[tuple[Any, ...]]], None]

# Publishing writes many rows at once, set-based, in few round trips: every round trip waits
# for a pass of a busy event loop (docs/performance.md). PostgreSQL gets one statement for the
# events, their deliveries and the workers' wake-up, over `unnest()` of arrays. SQLite gets one
# function run on the driver's thread (`write_sqlite`), with `executemany`, which loops in C;
# `hookd.publish` runs the same function on a producer's own sqlite3 connection.
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
# Keys older than the idempotency window are released, so that they can be used again.
_SQLITE_RELEASE_KEYS = (
    "UPDATE events SET idempotency_key = NULL WHERE idempotency_key IN ({}) AND created_at < ?"
)
_SQLITE_RECENT_KEYS = (
    "SELECT idempotency_key, id, deliveries FROM events WHERE idempotency_key IN ({})"
)
_SQLITE_SUBSCRIBERS = (
    "SELECT webhook_topics.topic, webhooks.id, webhooks.categories FROM webhook_topics"
    " JOIN webhooks ON webhooks.id = webhook_topics.webhook_id"
    " WHERE webhook_topics.topic IN ({}) AND webhooks.status = ?{} ORDER BY webhooks.id"
)
_SQLITE_LAST_SEQ = "SELECT COALESCE(max(seq), 0) FROM events"


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
    if db.is_sqlite:

        def write(conn: Connection) -> list[Published]:
            return write_sqlite(*_calls(conn), new_events, now)

        results = stored = await db.run(write)
    else:
        async with db.transaction() as conn:
            known = await _recent_keys(conn, new_events, now)
            fresh = _fresh(new_events, known)
            counts = await conn.run_sync(lambda sync_conn: store_in(sync_conn, fresh, now))
        stored = [Published(event.id, count) for event, count in zip(fresh, counts, strict=True)]
        results = _results(new_events, known, fresh, stored)
    if any(published.deliveries for published in stored):
        db.wake()
    return results


def _fresh(new_events: list[NewEvent], known: dict[str, Published]) -> list[NewEvent]:
    """The events to store: those without an idempotency key, and the first with each key
    not used within the window."""
    seen = set(known)
    fresh = []
    for event in new_events:
        key = event.idempotency_key
        if key is not None:
            if key in seen:
                continue
            seen.add(key)
        fresh.append(event)
    return fresh


def _results(
    new_events: list[NewEvent],
    known: dict[str, Published],
    fresh: list[NewEvent],
    stored: list[Published],
) -> list[Published]:
    """Each event's result: its own when it was stored, else that of its key's first use."""
    by_key = dict(known)
    own: dict[int, Published] = {}
    for event, published in zip(fresh, stored, strict=True):
        own[id(event)] = published
        if event.idempotency_key is not None:
            by_key[event.idempotency_key] = published
    return [own.get(id(event)) or by_key[event.idempotency_key or ""] for event in new_events]


def _calls(conn: Connection) -> tuple[Execute, ExecuteMany]:
    """`write_sqlite`'s two calls through a (synchronous) SQLAlchemy connection."""

    def execute(statement: str, parameters: Sequence[Any]) -> list[tuple[Any, ...]]:
        result = conn.exec_driver_sql(statement, tuple(parameters))
        return [tuple(row) for row in result] if result.returns_rows else []

    def execute_many(statement: str, rows: list[tuple[Any, ...]]) -> None:
        conn.exec_driver_sql(statement, rows)

    return execute, execute_many


def write_sqlite(
    execute: Execute,
    execute_many: ExecuteMany,
    new_events: list[NewEvent],
    now: float,
    *,
    dialect: str | None = None,
    unless_unsubscribed: bool = False,
) -> list[Published]:
    """SQLite, inside a write transaction: what `publish` does, through synchronous calls.
    With `dialect`, only that dialect's webhooks receive the events; with
    `unless_unsubscribed`, an event no webhook receives is not stored."""
    keys = sorted({event.idempotency_key for event in new_events if event.idempotency_key})
    known: dict[str, Published] = {}
    if keys:
        marks = _marks(len(keys))
        execute(_SQLITE_RELEASE_KEYS.format(marks), [*keys, now - IDEMPOTENCY_WINDOW])
        known = {
            key: Published(event_id, deliveries)
            for key, event_id, deliveries in execute(_SQLITE_RECENT_KEYS.format(marks), keys)
        }
    fresh = _fresh(new_events, known)
    if not fresh:
        return _results(new_events, known, fresh, [])
    candidates = {topic: candidate_topics(topic) for topic in {event.topic for event in fresh}}
    entries = sorted({entry for each in candidates.values() for entry in each})
    rows = execute(
        _SQLITE_SUBSCRIBERS.format(
            _marks(len(entries)), "" if dialect is None else " AND webhooks.dialect = ?"
        ),
        [*entries, WebhookStatus.ACTIVE.value, *([] if dialect is None else [dialect])],
    )
    subscribers = _matched(candidates, rows)
    targets = [_targets(event, subscribers.get(event.topic, [])) for event in fresh]
    stored = [
        (event, hooks) for event, hooks in zip(fresh, targets, strict=True)
        if hooks or not unless_unsubscribed
    ]  # fmt: skip
    if stored:
        last = int(execute(_SQLITE_LAST_SEQ, [])[0][0])
        seqs = range(last + 1, last + 1 + len(stored))
        execute_many(
            _SQLITE_INSERT_EVENTS,
            [
                (seq, event.id, event.idempotency_key, event.topic, event.body, len(hooks), now)
                for seq, (event, hooks) in zip(seqs, stored, strict=True)
            ],
        )
        pairs = [
            (seq, hook, now, now, now)
            for seq, (_, hooks) in zip(seqs, stored, strict=True)
            for hook in hooks
        ]
        if pairs:
            execute_many(_SQLITE_INSERT_DELIVERIES, pairs)
    published = [
        Published(event.id, len(hooks)) for event, hooks in zip(fresh, targets, strict=True)
    ]
    return _results(new_events, known, fresh, published)


def _marks(count: int) -> str:
    return ", ".join("?" * count)


def store_in(
    conn: Connection,
    new_events: list[NewEvent],
    now: float,
    *,
    unless_unsubscribed: bool = False,
) -> list[int]:
    """Within the caller's transaction (synchronous: `Database.run`, or `run_sync`): store
    `new_events` (their idempotency keys already checked) and one pending delivery per matching
    active webhook; returns the deliveries of each. With `unless_unsubscribed`, an event no
    webhook receives is not stored. On PostgreSQL the workers are woken at commit; on SQLite
    the caller wakes them."""
    if not new_events:
        return []
    if conn.dialect.name == "sqlite":
        stored_sqlite = write_sqlite(
            *_calls(conn), new_events, now, unless_unsubscribed=unless_unsubscribed
        )
        return [published.deliveries for published in stored_sqlite]
    subscribers = _subscribers(conn, {event.topic for event in new_events})
    targets = [_targets(event, subscribers[event.topic]) for event in new_events]
    stored = [
        (event, hooks) for event, hooks in zip(new_events, targets, strict=True)
        if hooks or not unless_unsubscribed
    ]  # fmt: skip
    if stored:
        rows = [
            (event.id, event.idempotency_key, event.topic, event.body, len(hooks))
            for event, hooks in stored
        ]
        _insert_postgres(conn, rows, [hooks for _, hooks in stored], now)
    return [len(hooks) for hooks in targets]


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


def _subscribers(conn: Connection, topics: set[str]) -> dict[str, list[Subscriber]]:
    """Active webhooks per topic, with their category restrictions, in creation order: those
    subscribed to the topic itself or to a wildcard over it (`log.*` for `log.x`), each once."""
    if not topics:
        return defaultdict(list)
    candidates = {topic: candidate_topics(topic) for topic in topics}
    rows = conn.execute(
        select(webhook_topics.c.topic, webhooks.c.id, webhooks.c.categories)
        .join(webhooks, webhooks.c.id == webhook_topics.c.webhook_id)
        .where(
            webhook_topics.c.topic.in_({entry for each in candidates.values() for entry in each}),
            webhooks.c.status == WebhookStatus.ACTIVE.value,
        )
        .order_by(webhooks.c.id)
    )
    return _matched(candidates, [tuple(row) for row in rows])


def _matched(
    candidates: dict[str, tuple[str, ...]], rows: Sequence[tuple[Any, ...]]
) -> dict[str, list[Subscriber]]:
    """Per topic, the webhooks of `rows` (topic entry, webhook id, categories; in webhook
    order) subscribed to one of its candidate entries, each once."""
    found: dict[str, list[Subscriber]] = defaultdict(list)
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


def _insert_postgres(
    conn: Connection, rows: list[EventRow], targets: list[list[int]], now: float
) -> int:
    """The same in one statement, which also wakes the workers when it queued deliveries."""
    event_n = [n for n, hooks in enumerate(targets, start=1) for _ in hooks]
    conn.execute(
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
