"""A connection to the SQLite file owned by one thread of its own: a whole write transaction in
one round trip of the event loop.

Through the async driver, each statement of a transaction (BEGIN, each query, COMMIT, the
pool's reset) waits for a pass of the event loop, and a loop busy with many connections makes
each pass long. A transaction run here costs one pass, whatever it does.
"""

from __future__ import annotations

import contextlib
import sqlite3
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import TypeVar

from sqlalchemy import Connection, Engine, QueuePool, StaticPool, create_engine

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
        # One connection, opened on that thread when first needed, and used there only.
        self.engine: Engine = create_engine(
            "sqlite://", creator=self._open, poolclass=StaticPool, hide_parameters=True
        )
        self._connection: Connection | None = None
        self._synchronous = "FULL"

    def submit(self, work: Callable[[Connection], _T], *, durable: bool = True) -> Future[_T]:
        """Run `work` with a (synchronous) SQLAlchemy connection inside a write transaction
        (BEGIN IMMEDIATE … COMMIT, rolled back if it raises) on this thread; a durable one is
        on disk when it is done. Code written for it runs on PostgreSQL too, through
        `AsyncConnection.run_sync`."""
        return self._executor.submit(self._transaction, work, "FULL" if durable else "NORMAL")

    def _transaction(self, work: Callable[[Connection], _T], synchronous: str) -> _T:
        if self._connection is None:
            self._connection = self.engine.connect()
            self._synchronous = "FULL"
        connection = self._connection
        raw = connection.connection.driver_connection
        assert isinstance(raw, sqlite3.Connection)
        if synchronous != self._synchronous:
            raw.execute(f"PRAGMA synchronous={synchronous}")
            self._synchronous = synchronous
        try:
            raw.execute("BEGIN IMMEDIATE")
            result = work(connection)
            raw.execute("COMMIT")
        except BaseException:
            with contextlib.suppress(sqlite3.Error):
                if raw.in_transaction:
                    raw.execute("ROLLBACK")
            # A connection in an unknown state is not used again: the next call opens another.
            if raw.in_transaction:
                self._drop()
            raise
        finally:
            if self._connection is connection:
                connection.rollback()  # SQLAlchemy's view: the transaction is over (no SQL sent)
        return result

    def _open(self) -> sqlite3.Connection:
        return _connect(self._path, _PRAGMAS)

    def _drop(self) -> None:
        if self._connection is not None:
            with contextlib.suppress(Exception):
                self._connection.invalidate()
                self._connection.close()
            self._connection = None
        self.engine.dispose()

    def close(self) -> None:
        self._executor.submit(self._drop).result()
        self._executor.shutdown()


# The file's own settings (WAL) let readers read beside the writer.
_READER_PRAGMAS = ("PRAGMA busy_timeout=10000",)


class SqliteReaders:
    """Connections to the SQLite file on threads of their own, for reads: a whole read, any
    number of statements, in one round trip of the event loop (through the async driver, a read
    costs a pass per statement, and one to give the connection back)."""

    def __init__(self, path: str, threads: int) -> None:
        self._path = path
        self._executor = ThreadPoolExecutor(
            max_workers=threads, thread_name_prefix="hookd-sqlite-read"
        )
        self.engine: Engine = create_engine(
            "sqlite://",
            creator=self._open,
            poolclass=QueuePool,
            pool_size=threads,
            max_overflow=0,
            hide_parameters=True,
        )

    def submit(self, work: Callable[[Connection], _T]) -> Future[_T]:
        """Run `work`, which only reads, with a (synchronous) SQLAlchemy connection on one of
        these threads. Code written for it runs on PostgreSQL too, through `run_sync`."""
        return self._executor.submit(self._read, work)

    def _read(self, work: Callable[[Connection], _T]) -> _T:
        with self.engine.connect() as connection:
            return work(connection)

    def _open(self) -> sqlite3.Connection:
        # A pooled connection goes to whichever of the threads checks it out, one at a time.
        return _connect(self._path, _READER_PRAGMAS, one_thread=False)

    def close(self) -> None:
        self._executor.shutdown()
        self.engine.dispose()


def _connect(path: str, pragmas: tuple[str, ...], *, one_thread: bool = True) -> sqlite3.Connection:
    raw = sqlite3.connect(path, isolation_level=None, check_same_thread=one_thread)
    try:
        for pragma in pragmas:
            raw.execute(pragma)
    except sqlite3.Error:
        raw.close()
        raise
    return raw
