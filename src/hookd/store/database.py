"""The connection to the store: one async engine, SQLite or PostgreSQL, and its wake-ups."""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
from collections.abc import AsyncIterator, Callable, Iterator
from concurrent.futures import Future
from contextlib import asynccontextmanager
from typing import Any, TypeVar

from sqlalchemy import Connection, event, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine

from hookd.store.availability import Availability, StoreCheck, StoreUnavailable, one_line
from hookd.store.secret_box import SecretBox
from hookd.store.sqlite_thread import SqliteReaders, SqliteThread
from hookd.store.write_gate import WriteGate

NOTIFY_CHANNEL = "hookd_deliveries"

# Every PostgreSQL statement is planned for its parameters (`plan_cache_mode`). A generic plan,
# cached once a prepared statement has run five times, is chosen with the statistics of that
# moment: on a new store's empty tables that is a sequential scan, kept until the next ANALYZE.
# The idempotency keys' lookup by its unique index then took 2-5 ms after a minute of publishing
# and grew with the table (bench.isolation, docs/performance.md); claims under a backlog of a
# million deliveries took a quarter to a third longer than on a small queue (bench/backlog.py).
_POSTGRES_SETTINGS = {"plan_cache_mode": "force_custom_plan"}
# The worker's transactions run on connections of their own, set up once to commit without
# waiting for the disk (see `Database.transaction`): set per transaction, that was a round trip
# more for every claim and recording (bench.drain: 7 % of a worker's throughput).
_BOOKKEEPING_SETTINGS = {**_POSTGRES_SETTINGS, "synchronous_commit": "off"}
# Its pool: a worker has one claim and one recording under way at a time, plus the odd release.
_BOOKKEEPING_POOL = 4


def async_url(url: str) -> str:
    """`sqlite:///x.db` → aiosqlite, `postgresql://…` → asyncpg."""
    parsed = make_url(url)
    backend = parsed.get_backend_name()
    if backend == "sqlite":
        return str(parsed.set(drivername="sqlite+aiosqlite"))
    if backend in ("postgresql", "postgres"):
        return parsed.set(drivername="postgresql+asyncpg").render_as_string(hide_password=False)
    raise ValueError(f"unsupported database URL {url!r}")


def libpq_dsn(url: str) -> str:
    """The URL as asyncpg.connect() takes it (for the LISTEN connection)."""
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


def _prepare_sqlite(engine: AsyncEngine) -> None:
    # pysqlite's own transaction handling would begin transactions late and never IMMEDIATE;
    # take it over so a write transaction holds the write lock from its first statement.
    @event.listens_for(engine.sync_engine, "connect")
    def _connect(dbapi_connection: Any, record: Any) -> None:
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=FULL")
        record.info["hookd_synchronous"] = "FULL"
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA busy_timeout=10000")
        cursor.close()

    @event.listens_for(engine.sync_engine, "begin")
    def _begin(connection: Any) -> None:
        options = connection.get_execution_options()
        mode = options.get("sqlite_begin", "DEFERRED")
        if mode is None:  # reads: each statement on its own (WAL keeps it consistent)
            return
        # Each statement is a round trip to the driver's thread: set the mode only when it
        # changes on this connection.
        synchronous = options.get("sqlite_sync", "FULL")
        info = connection.connection.info
        if info.get("hookd_synchronous") != synchronous:
            connection.exec_driver_sql(f"PRAGMA synchronous={synchronous}")
            info["hookd_synchronous"] = synchronous
        connection.exec_driver_sql(f"BEGIN {mode}")


_T = TypeVar("_T")

# SQLite: threads (each with a connection) that reads run on in one pass of the event loop.
_READER_THREADS = 2


class Database:
    """The store's engine plus the two things every caller needs: transactions and wake-ups."""

    def __init__(
        self,
        url: str,
        *,
        pool_size: int = 10,
        secret_key: str | None = None,
        schema: str = "public",
    ) -> None:
        self.url = url
        # PostgreSQL: where hookd's tables are (every connection's search_path).
        self.schema = schema
        self.secrets = SecretBox(secret_key)
        # Whether the store answers, as this process last found it.
        self.availability = Availability()
        self.check = StoreCheck(self._look)
        self.is_sqlite = make_url(url).get_backend_name() == "sqlite"
        # hide_parameters: an error's message (logged) never holds the values of a statement,
        # such as a webhook's secret.
        if self.is_sqlite:
            self.engine = create_async_engine(
                async_url(url), pool_size=pool_size, hide_parameters=True
            )
            _prepare_sqlite(self.engine)
            # SQLite's bookkeeping differs by a pragma per transaction, on the same pool.
            self._bookkeeping = self.engine
            self._engines = [self.engine]
        else:
            self.engine = self._postgres_engine(url, pool_size, _POSTGRES_SETTINGS)
            self._bookkeeping = self._postgres_engine(url, _BOOKKEEPING_POOL, _BOOKKEEPING_SETTINGS)
            self._engines = [self.engine, self._bookkeeping]
        # SQLite has one writer at a time: queue the process's writers here rather than on
        # SQLite's busy loop.
        self._write_gate = WriteGate() if self.is_sqlite else None
        path = make_url(url).database if self.is_sqlite else None
        if path == ":memory:":
            path = None
        self._sqlite_thread = SqliteThread(path) if path else None
        self._sqlite_readers = SqliteReaders(path, _READER_THREADS) if path else None
        # Every engine this store writes through: the pools', and SQLite's own thread's.
        self.sync_engines = [engine.sync_engine for engine in self._engines]
        if self._sqlite_thread is not None:
            self.sync_engines.append(self._sqlite_thread.engine)
        if self._sqlite_readers is not None:
            self.sync_engines.append(self._sqlite_readers.engine)
        self._wake_callbacks: list[Callable[[], None]] = []

    def _postgres_engine(self, url: str, pool_size: int, settings: dict[str, str]) -> AsyncEngine:
        # No pre-ping: it costs a round trip per checkout; a broken connection fails its
        # statement instead, and every caller (worker loops, API requests) tries again.
        return create_async_engine(
            async_url(url),
            pool_size=pool_size,
            max_overflow=pool_size,
            pool_recycle=3600,
            connect_args={"server_settings": {"search_path": self.schema, **settings}},
            hide_parameters=True,
        )

    @asynccontextmanager
    async def read(self) -> AsyncIterator[AsyncConnection]:
        """A connection for reading; on SQLite without a transaction around the statements.

        Raises StoreUnavailable when the store cannot be used for now (see `availability`).
        """
        try:
            async with self.engine.connect() as conn:
                if self.is_sqlite:
                    conn = await conn.execution_options(sqlite_begin=None)
                yield conn
        except Exception as error:
            unavailable = self._unavailable(error)
            if unavailable is None:
                raise
            raise unavailable from error
        self.availability.succeeded(wrote=False)

    async def run_read(self, work: Callable[[Connection], _T]) -> _T:
        """A read done by the synchronous `work` with a SQLAlchemy connection: on SQLite whole
        on a reading thread, one round trip of the event loop (`SqliteReaders`); on PostgreSQL
        through `run_sync`. Errors and outages come out as from `read`."""
        readers = self._sqlite_readers
        if readers is None:
            async with self.read() as conn:
                return await conn.run_sync(work)
        with self._outages_on_thread():
            result = await _answer(readers.submit(work))
        self.availability.succeeded(wrote=False)
        return result

    @contextlib.contextmanager
    def _outages_on_thread(self) -> Iterator[None]:
        """Errors from one of SQLite's threads as from the pools: StoreUnavailable when one
        means the store is away, full or read-only; else the error, as SQLAlchemy's."""
        try:
            yield
        except Exception as error:
            failure: Exception = error
            if isinstance(error, sqlite3.Error):
                failure = DBAPIError.instance(None, None, error, sqlite3.Error)
            unavailable = self._unavailable(failure)
            if unavailable is not None:
                raise unavailable from error
            if failure is error:
                raise
            raise failure from error

    def _unavailable(self, error: Exception) -> StoreUnavailable | None:
        """`error` as StoreUnavailable when it means the store is away, full or read-only."""
        outage = self.availability.failed(error)
        if outage is None or isinstance(error, StoreUnavailable):
            return None
        return StoreUnavailable(outage.reason)

    @asynccontextmanager
    async def transaction(self, *, durable: bool = True) -> AsyncIterator[AsyncConnection]:
        """A write transaction, committed when the block ends without an exception.

        A durable commit is on disk when it returns (an accepted event survives power loss).
        The worker's bookkeeping (claims, outcomes) need not be: if such a commit is lost, the
        delivery is simply sent again, so it skips the wait for the disk.
        """
        try:
            if self._write_gate is None:
                async with (self.engine if durable else self._bookkeeping).begin() as conn:
                    yield conn
            else:
                async with self._write_gate.alone(), self.engine.connect() as conn:
                    conn = await conn.execution_options(
                        sqlite_begin="IMMEDIATE", sqlite_sync="FULL" if durable else "NORMAL"
                    )
                    async with conn.begin():
                        yield conn
        except Exception as error:
            unavailable = self._unavailable(error)
            if unavailable is None:
                raise
            raise unavailable from error
        self.availability.succeeded(wrote=True)

    async def run(self, work: Callable[[Connection], _T], *, durable: bool = True) -> _T:
        """A write transaction done by the synchronous `work` with a SQLAlchemy connection: on
        SQLite whole on a thread with a connection of its own, one round trip of the event loop
        (`sqlite_thread`); on PostgreSQL through `run_sync` (a round trip per statement, as any
        transaction there). `durable` as for `transaction`; errors and outages come out as from
        it too."""
        if self._write_gate is None or self._sqlite_thread is None:
            async with self.transaction(durable=durable) as conn:
                return await conn.run_sync(work)
        thread = self._sqlite_thread
        return await self._on_sqlite_thread(lambda: thread.submit(work, durable=durable))

    async def _on_sqlite_thread(self, submit: Callable[[], Future[_T]]) -> _T:
        """Submit a transaction to the store's thread once this process's write gate lets it
        through (`WriteGate`), and wait for it."""
        assert self._write_gate is not None
        with self._outages_on_thread():
            async with self._write_gate.threaded():
                submitted = submit()
                try:
                    result = await _answer(submitted)
                except asyncio.CancelledError:
                    # The transaction runs on to its end: keep its place until it has.
                    with contextlib.suppress(BaseException):
                        await asyncio.wrap_future(submitted)
                    raise
        self.availability.succeeded(wrote=True)
        return result

    async def notify_workers(self, conn: AsyncConnection) -> None:
        """Inside a transaction that queued deliveries: tell other processes at commit."""
        if not self.is_sqlite:
            await conn.execute(text(f"NOTIFY {NOTIFY_CHANNEL}"))

    def on_wake(self, callback: Callable[[], None]) -> None:
        """Call `callback` in this process whenever deliveries were queued."""
        self._wake_callbacks.append(callback)

    def wake(self) -> None:
        for callback in self._wake_callbacks:
            callback()

    async def problem(self) -> str | None:
        """Why the store cannot be used now (None when it can): a statement found it away, or
        it did not answer a read or take a write when last looked at (`StoreCheck`)."""
        found = await self.check.problem()
        outage = self.availability.outage
        return outage.reason if outage is not None else found

    async def _look(self) -> str | None:
        """A read, then a small committed write that changes nothing, in one round trip of the
        event loop (`run`): a look must not hold the other writers back over many."""
        try:
            async with self.read() as conn:
                await conn.execute(text("SELECT 1"))
        except StoreUnavailable as error:
            return error.reason
        except Exception as error:
            return f"the store does not answer ({type(error).__name__})"
        try:
            await self.run(_rewrite_nothing, durable=False)
        except StoreUnavailable as error:
            return error.reason
        except Exception as error:
            return f"a write failed: {one_line(error)}"
        return None

    async def close(self) -> None:
        await self.check.close()
        for engine in self._engines:
            await engine.dispose()
        if self._sqlite_thread is not None:
            await asyncio.to_thread(self._sqlite_thread.close)
        if self._sqlite_readers is not None:
            await asyncio.to_thread(self._sqlite_readers.close)


def _answer(submitted: Future[_T]) -> asyncio.Future[_T]:
    """The outcome of a transaction on the store's thread, for the event loop, in one pass of
    it: through `wrap_future` and `shield`, the awaiting task would resume three passes after the
    commit, and a pass of a busy loop takes milliseconds. Cancelling it leaves the transaction
    to run on."""
    loop = asyncio.get_running_loop()
    answer: asyncio.Future[_T] = loop.create_future()

    def settle(done: Future[_T]) -> None:
        if answer.done():
            return
        if done.cancelled():
            answer.cancel()
        elif (error := done.exception()) is not None:
            answer.set_exception(error)
        else:
            answer.set_result(done.result())

    def hand_over(done: Future[_T]) -> None:  # on the store's thread
        with contextlib.suppress(RuntimeError):  # the loop has closed: nobody waits
            loop.call_soon_threadsafe(settle, done)

    submitted.add_done_callback(hand_over)
    return answer


def _rewrite_nothing(conn: Connection) -> None:
    if conn.dialect.name == "sqlite":
        # The header field no one uses, written back as it is: a page of the WAL.
        version = conn.exec_driver_sql("PRAGMA user_version").scalar_one()
        conn.exec_driver_sql(f"PRAGMA user_version = {int(version)}")
    else:
        conn.execute(text("SELECT txid_current()"))  # writes its commit record
