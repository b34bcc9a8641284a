"""`hookd.publish`: events published inside the producer's own database transaction.

The events and their deliveries are written through the caller's open connection, so they
commit or roll back with the caller's own rows; this never commits or rolls back itself.

PostgreSQL (hookd's tables in the producer's database, in HOOKD_DATABASE_SCHEMA): one call of
the SQL function `publish_many()`, which does what an HTTP publish in the device dialect does
and wakes the workers when the transaction commits. A bad event raises the driver's error
(SQLSTATE 22023), which aborts the transaction.

SQLite (the producer writes to hookd's own database file): the same rows, written from here.
A bad event raises `InvalidField` or `TooLarge` before anything is written. The workers find
the events when they next poll (at most HOOKD_POLL_INTERVAL after the commit), and the
producer's transaction holds SQLite's only write lock until it ends.
"""

from __future__ import annotations

import os
import sqlite3
import sys
import time
from collections.abc import Awaitable, Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, overload

import orjson

from hookd.config import SCHEMA_NAME
from hookd.dialects.device.event_types import KNOWN_EVENT_TYPES
from hookd.dialects.device.events import MAX_EVENTS_PER_REQUEST, parse_events, requested_types
from hookd.dialects.device.fields import NAME as DEVICE_DIALECT
from hookd.domain.errors import InvalidField
from hookd.domain.event_types import could_be_added
from hookd.publishing import prepare
from hookd.store import transactional as store

if TYPE_CHECKING:
    from sqlalchemy.engine import Connection
    from sqlalchemy.ext.asyncio import AsyncConnection

# The producer that SQL's publish() and in-transaction publishes share: an id they give is an
# idempotency key in their own scope, apart from every HTTP producer's.
PRODUCER = "sql"
# HOOKD_MAX_EVENT_BYTES's default, as the SQL function holds events to it.
MAX_EVENT_BYTES = 1024 * 1024

Event = Mapping[str, Any]


@overload
def publish(
    connection: Connection | sqlite3.Connection,
    events: Iterable[Event],
    *,
    schema: str | None = None,
) -> list[str]: ...


@overload
def publish(
    connection: AsyncConnection, events: Iterable[Event], *, schema: str | None = None
) -> Awaitable[list[str]]: ...


@overload
def publish(connection: Any, events: Iterable[Event], *, schema: str | None = None) -> Any: ...


def publish(connection: Any, events: Iterable[Event], *, schema: str | None = None) -> Any:
    """Publish `events` — `{"type", "data"?, "id"?}` each, as in the HTTP API — in the
    transaction open on `connection`, and return their ids.

    `connection`: a SQLAlchemy `Connection` or `AsyncConnection` (PostgreSQL or SQLite), a
    psycopg 3 `Connection` or `AsyncConnection`, an asyncpg `Connection` (PostgreSQL), or a
    `sqlite3.Connection`. With an asynchronous one, the result is awaited.
    `schema`: where hookd's tables are on PostgreSQL (default: HOOKD_DATABASE_SCHEMA, else
    `public`).
    """
    if isinstance(events, Mapping):
        raise TypeError("hookd.publish takes a list of events, not one event")
    items = list(events)
    if _is(connection, "sqlalchemy.ext.asyncio", "AsyncConnection"):
        return _sqlalchemy_async(connection, items, schema)
    if _is(connection, "sqlalchemy.engine", "Connection"):
        if connection.dialect.name == "sqlite":
            return _sqlite(connection.exec_driver_sql, items)
        return _sqlalchemy_rows(connection.execute(*_sqlalchemy_call(items, schema)))
    if isinstance(connection, sqlite3.Connection):
        return _sqlite3(connection, items)
    if _is(connection, "psycopg", "AsyncConnection"):
        return _psycopg_async(connection, items, schema)
    if _is(connection, "psycopg", "Connection"):
        if not items:
            return []
        row = connection.execute(_call(schema, "%s"), (_json(items),)).fetchone()
        return list(row[0])
    if _is(connection, "asyncpg", "Connection") or _is(
        connection, "asyncpg.pool", "PoolConnectionProxy"
    ):
        return _asyncpg(connection, items, schema)
    raise TypeError(
        f"hookd.publish cannot use a {type(connection).__module__}.{type(connection).__name__}: "
        "give a SQLAlchemy, psycopg 3, asyncpg or sqlite3 connection"
    )


def _is(connection: Any, module: str, name: str) -> bool:
    """Whether `connection` is a `module.name`, without importing a module not in use."""
    loaded = sys.modules.get(module)
    kind = getattr(loaded, name, None) if loaded is not None else None
    return isinstance(kind, type) and isinstance(connection, kind)


def _schema(schema: str | None) -> str:
    name = schema if schema is not None else os.environ.get("HOOKD_DATABASE_SCHEMA", "public")
    if not SCHEMA_NAME.fullmatch(name):
        raise ValueError(f"{name!r} is not a schema name hookd takes (see HOOKD_DATABASE_SCHEMA)")
    return name


def _call(schema: str | None, placeholder: str) -> str:
    return store.publish_many_call(_schema(schema), placeholder)


def _json(items: list[Event]) -> str:
    return orjson.dumps(items).decode()


def _sqlalchemy_call(items: list[Event], schema: str | None) -> tuple[Any, dict[str, str]]:
    from sqlalchemy import text

    return text(_call(schema, ":items")), {"items": _json(items)}


def _sqlalchemy_rows(result: Any) -> list[str]:
    return list(result.scalar_one())


async def _sqlalchemy_async(
    connection: AsyncConnection, items: list[Event], schema: str | None
) -> list[str]:
    if connection.dialect.name == "sqlite":
        return await connection.run_sync(lambda sync: _sqlite(sync.exec_driver_sql, items))
    if not items:
        return []
    return _sqlalchemy_rows(await connection.execute(*_sqlalchemy_call(items, schema)))


async def _psycopg_async(connection: Any, items: list[Event], schema: str | None) -> list[str]:
    if not items:
        return []
    cursor = await connection.execute(_call(schema, "%s"), (_json(items),))
    row = await cursor.fetchone()
    return list(row[0])


async def _asyncpg(connection: Any, items: list[Event], schema: str | None) -> list[str]:
    if not items:
        return []
    return list(await connection.fetchval(_call(schema, "$1"), _json(items)))


def _sqlite3(connection: sqlite3.Connection, items: list[Event]) -> list[str]:
    if connection.isolation_level is None and not connection.in_transaction:
        raise ValueError(
            "hookd.publish needs a transaction: the sqlite3 connection is in autocommit mode "
            "and none is open (execute BEGIN first)"
        )

    def execute(sql: str, parameters: Sequence[Any]) -> list[tuple[Any, ...]]:
        return connection.execute(sql, parameters).fetchall()

    def execute_many(sql: str, rows: list[tuple[Any, ...]]) -> None:
        connection.executemany(sql, rows)

    return _write_sqlite(execute, execute_many, items)


def _sqlite(exec_driver_sql: Any, items: list[Event]) -> list[str]:
    def execute(sql: str, parameters: Sequence[Any]) -> list[tuple[Any, ...]]:
        result = exec_driver_sql(sql, tuple(parameters))
        return [tuple(row) for row in result.fetchall()] if result.returns_rows else []

    def execute_many(sql: str, rows: list[tuple[Any, ...]]) -> None:
        exec_driver_sql(sql, rows)

    return _write_sqlite(execute, execute_many, items)


def _write_sqlite(
    execute: store.Execute, execute_many: store.ExecuteMany, items: list[Event]
) -> list[str]:
    if not items:
        return []
    wanted = {
        name
        for start in range(0, len(items), MAX_EVENTS_PER_REQUEST)
        for name in requested_types(items[start : start + MAX_EVENTS_PER_REQUEST])
        if name not in KNOWN_EVENT_TYPES and could_be_added(name)
    }
    known = KNOWN_EVENT_TYPES | store.added_types(execute, sorted(wanted))
    drafts = []
    for start in range(0, len(items), MAX_EVENTS_PER_REQUEST):
        chunk = items[start : start + MAX_EVENTS_PER_REQUEST]
        try:
            drafts.extend(parse_events(chunk, known))
        except InvalidField as error:  # named by its place in the whole list
            if start == 0:
                raise
            place, _, rest = error.field.removeprefix("[").partition("]")
            raise InvalidField(f"[{start + int(place)}]{rest}", error.message) from None
    for index, draft in enumerate(drafts):
        draft.field = f"[{index}]"
    now = time.time()
    new_events = prepare(drafts, now, MAX_EVENT_BYTES, producer=PRODUCER)
    store.publish_sqlite(execute, execute_many, new_events, now, dialect=DEVICE_DIALECT)
    return [event.id for event in new_events]
