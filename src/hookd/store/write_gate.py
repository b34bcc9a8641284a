"""SQLite's one writer, shared by this process's two ways of writing.

Transactions on the store's own thread (`Database.run`) go through together: the thread runs
them one after another anyway, so they do not wait here for each other (each such wait would
cost passes of the event loop, milliseconds each when it is busy, while the thread idles). A
transaction through the async driver (`Database.transaction`) goes alone: it waits until those
in flight have ended, and holds back new ones, and other such transactions, until it ends.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager


class WriteGate:
    def __init__(self) -> None:
        self._threaded = 0  # transactions on the store's thread, in flight
        self._alone = asyncio.Lock()  # held by a transaction going alone, or waiting to
        self._drained: asyncio.Event | None = None

    @asynccontextmanager
    async def threaded(self) -> AsyncIterator[None]:
        """Around a transaction on the store's thread."""
        if self._alone.locked():  # one goes alone, or waits to: after it
            async with self._alone:
                pass
        self._threaded += 1
        try:
            yield
        finally:
            self._threaded -= 1
            if not self._threaded and self._drained is not None:
                self._drained.set()

    @asynccontextmanager
    async def alone(self) -> AsyncIterator[None]:
        """Around a transaction through the async driver."""
        async with self._alone:
            while self._threaded:
                self._drained = asyncio.Event()
                try:
                    await self._drained.wait()
                finally:
                    self._drained = None
            yield
