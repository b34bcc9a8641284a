"""Publishing through a producer's own connection, inside the producer's transaction.

PostgreSQL: one call of the `publish_many()` function that migration 0009 installs (the rules
live there). SQLite: the same rows written here through a synchronous DB-API connection to
hookd's database file; workers find them when they next poll.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from hookd.domain.event_types import candidate_topics
from hookd.domain.states import DeliveryState, WebhookStatus
from hookd.store.events import IDEMPOTENCY_WINDOW, NewEvent

# Runs one statement and returns its rows; runs one statement for each of many rows.
Execute = Callable[[str, Sequence[Any]], list[tuple[Any, ...]]]
ExecuteMany = Callable[[str, list[tuple[Any, ...]]], None]


def publish_many_call(schema: str, placeholder: str) -> str:
    """The statement that publishes a JSON array of events, with the driver's placeholder
    (`:items`, `%s`, `$1`) for it."""
    return f'SELECT "{schema}".publish_many(CAST(CAST({placeholder} AS text) AS jsonb))'


def _marks(count: int) -> str:
    return ", ".join("?" * count)


# Also the first statement, whatever it finds: a write, so that SQLite's write lock is held
# (and, with Python's sqlite3 default, the transaction begun) before anything is read.
_SQLITE_RELEASE_KEYS = (
    "UPDATE events SET idempotency_key = NULL WHERE idempotency_key IN ({}) AND created_at < ?"
)
# A write that changes nothing, so that the write lock is held before the catalogue is read.
_SQLITE_TAKE_WRITE_LOCK = "UPDATE event_types SET name = name WHERE 0"
_SQLITE_ADDED_TYPES = "SELECT name FROM event_types WHERE name IN ({})"
_SQLITE_RECENT_KEYS = "SELECT idempotency_key FROM events WHERE idempotency_key IN ({})"
_SQLITE_SUBSCRIBERS = (
    "SELECT DISTINCT webhooks.id FROM webhook_topics"
    " JOIN webhooks ON webhooks.id = webhook_topics.webhook_id"
    " WHERE webhook_topics.topic IN ({}) AND webhooks.status = ? AND webhooks.dialect = ?"
    " AND webhooks.categories IS NULL ORDER BY webhooks.id"
)
_SQLITE_LAST_SEQ = "SELECT COALESCE(max(seq), 0) FROM events"
_SQLITE_INSERT_EVENT = (
    "INSERT INTO events (seq, id, idempotency_key, type, body, deliveries, created_at) "
    "VALUES (?, ?, ?, ?, ?, ?, ?)"
)
_SQLITE_INSERT_DELIVERY = (
    "INSERT INTO deliveries (event_seq, webhook_id, state, due_at, created_at, updated_at) "
    f"VALUES (?, ?, '{DeliveryState.PENDING.value}', ?, ?, ?)"
)


def added_types(execute: Execute, names: Sequence[str]) -> set[str]:
    """Those of `names` an administrator added to the catalogue (the first statement of a
    publish: it takes SQLite's write lock before it reads)."""
    execute(_SQLITE_TAKE_WRITE_LOCK, [])
    if not names:
        return set()
    return {row[0] for row in execute(_SQLITE_ADDED_TYPES.format(_marks(len(names))), names)}


def publish_sqlite(
    execute: Execute,
    execute_many: ExecuteMany,
    new_events: list[NewEvent],
    now: float,
    *,
    dialect: str,
) -> None:
    """Store `new_events` (their topic is their type) and one pending delivery per active
    webhook of `dialect` subscribed to it; an event whose idempotency key was used within
    24 h, or earlier in `new_events`, is not stored again."""
    keys = [event.idempotency_key for event in new_events if event.idempotency_key]
    execute(
        _SQLITE_RELEASE_KEYS.format(_marks(len(keys)) or "NULL"), [*keys, now - IDEMPOTENCY_WINDOW]
    )
    seen: set[str] = set()
    if keys:
        found = execute(_SQLITE_RECENT_KEYS.format(_marks(len(keys))), keys)
        seen.update(row[0] for row in found)
    fresh = []
    for event in new_events:
        if event.idempotency_key is not None:
            if event.idempotency_key in seen:
                continue
            seen.add(event.idempotency_key)
        fresh.append(event)
    if not fresh:
        return
    subscribers: dict[str, list[int]] = {}
    for topic in {event.topic for event in fresh}:
        candidates = candidate_topics(topic)
        rows = execute(
            _SQLITE_SUBSCRIBERS.format(_marks(len(candidates))),
            [*candidates, WebhookStatus.ACTIVE.value, dialect],
        )
        subscribers[topic] = [row[0] for row in rows]
    last = int(execute(_SQLITE_LAST_SEQ, [])[0][0])
    events_rows = []
    delivery_rows: list[tuple[Any, ...]] = []
    for seq, event in enumerate(fresh, start=last + 1):
        hooks = subscribers[event.topic]
        events_rows.append(
            (seq, event.id, event.idempotency_key, event.topic, event.body, len(hooks), now)
        )
        delivery_rows.extend((seq, hook, now, now, now) for hook in hooks)
    execute_many(_SQLITE_INSERT_EVENT, events_rows)
    if delivery_rows:
        execute_many(_SQLITE_INSERT_DELIVERY, delivery_rows)
