"""When the store is away, full or read-only: one exception for callers, one log line per change.

Every statement runs inside `Database.read()` or `Database.transaction()`; an error there that
means the store cannot be used for now (no connection, a terminated backend, a full disk, a
read-only file, a pool with no connection free) leaves them as `StoreUnavailable` with a
one-line reason, and is logged once when the state changes, not once per attempt. The next
statement that succeeds ends the outage (a read ends only an outage that stopped reads too),
and that is logged once as well.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from sqlalchemy import exc as sa

log = logging.getLogger("hookd.store")


@dataclass(frozen=True, slots=True)
class Outage:
    reason: str
    # Writes fail but reads may work (a full disk, a read-only store).
    writes_only: bool = False


class StoreUnavailable(Exception):
    """The store cannot be used for now; `reason` says why in a line."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


NOT_ANSWERING = Outage("the store does not answer")
FULL = Outage("the store is full", writes_only=True)
READ_ONLY = Outage("the store is read-only", writes_only=True)
BUSY = Outage("the store is busy")
NO_CONNECTION_FREE = Outage("the store has no connection free")

# PostgreSQL SQLSTATEs: connection exceptions (08…), operator intervention (57P01 admin
# shutdown, 57P02 crash shutdown, 57P03 cannot connect now), insufficient resources (53…).
_SQLSTATES = {
    "53100": FULL,
    "25006": READ_ONLY,
    "57P01": NOT_ANSWERING,
    "57P02": NOT_ANSWERING,
    "57P03": NOT_ANSWERING,
}
_SQLSTATE_CLASSES = {"08": NOT_ANSWERING, "53": Outage("the store is out of resources")}
# SQLite says what went wrong in its message only.
_SQLITE_MESSAGES = (
    ("database or disk is full", FULL),
    ("readonly database", READ_ONLY),
    ("database is locked", BUSY),
    ("unable to open database file", Outage("the store cannot be opened")),
    ("disk i/o error", Outage("the store's disk fails")),
)


def outage_of(error: BaseException) -> Outage | None:
    """The outage `error` shows, or None when it is an error of another kind (a bug, a
    constraint violated…)."""
    if isinstance(error, StoreUnavailable):
        return Outage(error.reason)
    if isinstance(error, sa.TimeoutError):  # waiting for a pooled connection
        return NO_CONNECTION_FREE
    if isinstance(error, OSError):  # connecting: refused, unreachable, timed out
        return NOT_ANSWERING
    if isinstance(error, sa.InterfaceError):
        return NOT_ANSWERING
    if isinstance(error, sa.DBAPIError):
        if error.connection_invalidated:
            return NOT_ANSWERING
        original = error.orig
        state = getattr(original, "sqlstate", None) or getattr(original, "pgcode", None)
        if isinstance(state, str):
            found = _SQLSTATES.get(state) or _SQLSTATE_CLASSES.get(state[:2])
            if found is not None:
                return found
        message = str(original).lower()
        for fragment, outage in _SQLITE_MESSAGES:
            if fragment in message:
                return outage
    return None


# A full disk takes small writes while larger ones fail: a store that was found full (or
# read-only) counts as such until no write has failed for this long.
WRITE_OUTAGE_HOLD = 30.0


# Told of every statement the store could not run ("error") and of every outage's end
# ("recovered"); the metrics, which sit above the store, register here.
_observers: list[Callable[[str, Outage], None]] = []


def observe(callback: Callable[[str, Outage], None]) -> None:
    _observers.append(callback)


class Availability:
    """The store as this process last found it."""

    def __init__(self) -> None:
        self.outage: Outage | None = None
        self.write_outage_hold = WRITE_OUTAGE_HOLD
        self._failed_at = 0.0

    def failed(self, error: BaseException) -> Outage | None:
        """Note an error; its outage when it is one (logged if the state changed)."""
        outage = outage_of(error)
        if outage is None:
            return None
        self._failed_at = time.monotonic()
        for observer in _observers:
            observer("error", outage)
        if outage != self.outage:
            log.warning("store unavailable: %s (%s)", outage.reason, one_line(error))
            self.outage = outage
        return outage

    def succeeded(self, *, wrote: bool) -> None:
        """A statement went through: the outage is over if it would have stopped this one."""
        outage = self.outage
        if outage is None:
            return
        if outage.writes_only and (
            not wrote or time.monotonic() - self._failed_at < self.write_outage_hold
        ):
            return
        log.info("store available again (it was: %s)", outage.reason)
        self.outage = None
        for observer in _observers:
            observer("recovered", outage)


# A health check looks at the store at most this often; checks in between reuse what it found.
CHECK_EVERY = 1.0
# A look still unanswered after this long: the store does not answer.
CHECK_PATIENCE = 5.0


class StoreCheck:
    """Whether the store answers a read and takes a write, found by `probe` (the problem, or
    None) at most every CHECK_EVERY.

    The first check waits for its probe; later ones answer with the last result at once and,
    when it is older than CHECK_EVERY, start a new probe in the background. So a busy store
    never slows a health check down, and a flood of health checks (they need no login) costs
    the store one look a second.
    """

    def __init__(self, probe: Callable[[], Awaitable[str | None]]) -> None:
        self._probe = probe
        self._problem: str | None = None
        self._checked_at: float | None = None
        self._running: asyncio.Task[None] | None = None
        self._started_at = 0.0

    async def problem(self) -> str | None:
        """Why the store cannot be used (as last found), or None."""
        now = time.monotonic()
        running = self._running is not None and not self._running.done()
        if not running and (self._checked_at is None or now - self._checked_at >= CHECK_EVERY):
            self._started_at = now
            self._running = asyncio.create_task(self._check())
            running = True
        if self._checked_at is None and self._running is not None:
            await asyncio.shield(self._running)
        elif running and now - self._started_at >= CHECK_PATIENCE:
            return f"the store has not answered for {now - self._started_at:.0f} s"
        return self._problem

    async def close(self) -> None:
        if self._running is not None and not self._running.done():
            self._running.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._running

    async def _check(self) -> None:
        try:
            self._problem = await self._probe()
        except Exception as error:  # not an outage we know: say what it was
            self._problem = f"the check failed: {one_line(error)}"
        self._checked_at = time.monotonic()


def one_line(error: BaseException) -> str:
    cause = getattr(error, "orig", None) or error
    text = str(cause).strip().splitlines()
    return f"{type(cause).__name__}: {text[0][:200]}" if text else type(cause).__name__
