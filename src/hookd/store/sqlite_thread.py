"""A connection to the SQLite file owned by one thread of its own: a whole write transaction in
one round trip of the event loop.

Through the async driver, each statement of a transaction (BEGIN, each query, COMMIT, the
pool's reset) waits for a pass of the event loop, and a loop busy with many connections makes
each pass long. A publish's transaction run here costs one pass, whatever it does.
"""

from __future__ import annotations

import contextlib
import sqlite3
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, TypeVar

from sqlalchemy import Connection, StaticPool, create_engine

_T = TypeVar("_T")

# The same as every pooled connection gets (`database._prepare_sqlite`).
_PRAGMAS = (
    "PRAGMA journal_mode=WAL",
    "PRAGMA synchronous=FULL",
    "PRAGMA foreign_keys=ON",
    "PRAGMA busy_timeout=10000",
)


class SqliteThread:
    def __init__(self, path: str) -> None:
        self._path = path
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="hookd-sqlite")
        # Used on that thread only: the connection, and SQLAlchemy's over it.
        self._connection: sqlite3.Connection | None = None
        self._sqlalchemy: Connection | None = None
        self._synchronous = "FULL"

    def submit(
        self, work: Callable[[sqlite3.Connection], _T], *, durable: bool = True
    ) -> Future[_T]:
        """Run `work` inside a write transaction (BEGIN IMMEDIATE … COMMIT, rolled back if it
        raises) on this thread; a durable one is on disk when it is done."""
        return self._executor.submit(
            self._transaction, work, "FULL" if durable else "NORMAL", sqlalchemy=False
        )

    def submit_sqlalchemy(
        self, work: Callable[[Connection], _T], *, durable: bool = True
    ) -> Future[_T]:
        """The same, with `work` given a (synchronous) SQLAlchemy connection: code written for
        one runs on PostgreSQL too, through `AsyncConnection.run_sync`."""
        return self._executor.submit(
            self._transaction, work, "FULL" if durable else "NORMAL", sqlalchemy=True
        )

    def _transaction(self, work: Callable[[Any], _T], synchronous: str, *, sqlalchemy: bool) -> _T:
        connection = self._connection or self._connect()
        if synchronous != self._synchronous:
            connection.execute(f"PRAGMA synchronous={synchronous}")
            self._synchronous = synchronous
        over = self._sqlalchemy if sqlalchemy else None
        try:
            connection.execute("BEGIN IMMEDIATE")
            result = work(connection if over is None else over)
            connection.execute("COMMIT")
        except BaseException:
            with contextlib.suppress(sqlite3.Error):
                if connection.in_transaction:
                    connection.execute("ROLLBACK")
            # A connection in an unknown state is not used again: the next call opens another.
            if connection.in_transaction:
                self._drop()
            raise
        finally:
            if over is not None and self._sqlalchemy is over:
                over.rollback()  # SQLAlchemy's view: the transaction is over (no SQL is sent)
        return result

    def _connect(self) -> sqlite3.Connection:
        connection = sqlite3.connect(self._path, isolation_level=None)
        try:
            for pragma in _PRAGMAS:
                connection.execute(pragma)
        except sqlite3.Error:
            connection.close()
            raise
        self._connection = connection
        self._synchronous = "FULL"
        engine = create_engine(
            "sqlite://", creator=lambda: connection, poolclass=StaticPool, hide_parameters=True
        )
        self._sqlalchemy = engine.connect()
        return connection

    def _drop(self) -> None:
        if self._sqlalchemy is not None:
            with contextlib.suppress(Exception):
                self._sqlalchemy.invalidate()
            self._sqlalchemy = None
        if self._connection is not None:
            with contextlib.suppress(sqlite3.Error):
                self._connection.close()
            self._connection = None

    def close(self) -> None:
        self._executor.submit(self._drop).result()
        self._executor.shutdown()
