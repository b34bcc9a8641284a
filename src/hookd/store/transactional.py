"""Publishing through a producer's own connection, inside the producer's transaction.

PostgreSQL: one call of the `publish_many()` function that migration 0009 installs (the rules
live there). SQLite: the same rows, written by the function an HTTP publish runs
(`store.events.write_sqlite`), through the producer's synchronous DB-API connection to hookd's
database file; workers find them when they next poll.
"""

from __future__ import annotations

from collections.abc import Sequence

from hookd.store.events import Execute, ExecuteMany, NewEvent, write_sqlite


def publish_many_call(schema: str, placeholder: str) -> str:
    """The statement that publishes a JSON array of events, with the driver's placeholder
    (`:items`, `%s`, `$1`) for it."""
    return f'SELECT "{schema}".publish_many(CAST(CAST({placeholder} AS text) AS jsonb))'


def _marks(count: int) -> str:
    return ", ".join("?" * count)


# A write that changes nothing, so that the write lock is held before the catalogue is read.
_SQLITE_TAKE_WRITE_LOCK = "UPDATE event_types SET name = name WHERE 0"
_SQLITE_ADDED_TYPES = "SELECT name FROM event_types WHERE name IN ({})"


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
    webhook of `dialect` subscribed to it, as an HTTP publish does; an event whose idempotency
    key was used within 24 h, or earlier in `new_events`, is not stored again."""
    write_sqlite(execute, execute_many, new_events, now, dialect=dialect)
