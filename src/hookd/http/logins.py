"""What a login costs, and how many a client may try.

A password check is an Argon2 hash: ~200 ms of a core by design. It runs in a small pool of
threads, never on the event loop, with a bounded queue: when the queue is full the login is
refused at once (503) rather than waiting. Failed logins are counted per user name and per
client address in a sliding window; past the limit a login is answered 429 with Retry-After
before any hashing. A user name that does not exist costs the same hash as one that does, so
that answer times do not tell which names exist.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import os
import threading
from collections import deque
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager

from hookd.domain.credentials import verify_password, verify_unknown_user
from hookd.http.errors import ApiError

# Per-user and per-address counters kept at most; the oldest are dropped past this.
MAX_TRACKED = 10_000


# Password threads run at this lower CPU priority (Linux nice), so that on a small machine the
# event loop, not a guessed password, gets the core first.
PASSWORD_THREAD_NICENESS = 10


def _yield_cpu() -> None:
    with contextlib.suppress(AttributeError, OSError):  # no per-thread priority here
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), PASSWORD_THREAD_NICENESS)


def too_many_attempts(retry_after: float) -> ApiError:
    seconds = str(max(1, math.ceil(retry_after)))
    return ApiError(429, "Too many attempts", headers={"Retry-After": seconds})


def too_many_logins_at_once() -> ApiError:
    return ApiError(503, "Too many logins at once", headers={"Retry-After": "1"})


class FailureWindow:
    """Failures per key within the last `window` seconds, up to `limit` each. Attempts still
    being checked count as failures until they are known: a burst of concurrent guesses gets
    no more checks than one after the other."""

    def __init__(self, limit: int, window: float) -> None:
        self.limit = limit
        self.window = window
        self._failures: dict[str, deque[float]] = {}
        self._checking: dict[str, int] = {}

    def retry_after(self, key: str, now: float) -> float | None:
        """Seconds until `key` may try again, or None when it may now."""
        failures = self._failures.get(key)
        recent = 0 if failures is None else sum(1 for at in failures if at > now - self.window)
        checking = self._checking.get(key, 0)
        if recent + checking < self.limit:
            return None
        if failures is None or recent < self.limit:
            return 1.0  # once the checks under way are done
        return failures[0] + self.window - now

    def checking(self, key: str) -> None:
        self._checking[key] = self._checking.get(key, 0) + 1

    def checked(self, key: str) -> None:
        left = self._checking.pop(key, 1) - 1
        if left:
            self._checking[key] = left

    def failed(self, key: str, now: float) -> None:
        failures = self._failures.pop(key, None)
        if failures is None:
            if len(self._failures) >= MAX_TRACKED:
                del self._failures[next(iter(self._failures))]
            failures = deque(maxlen=self.limit)
        failures.append(now)
        self._failures[key] = failures  # (re)inserted last: the dict stays in order of use

    def forget(self, key: str) -> None:
        self._failures.pop(key, None)


class LoginGuard:
    """Throttling and password checks for logins."""

    def __init__(
        self,
        *,
        per_user: int,
        per_address: int,
        window: float,
        threads: int,
        queue: int,
    ) -> None:
        self.users = FailureWindow(per_user, window)
        self.addresses = FailureWindow(per_address, window)
        self._pool = ThreadPoolExecutor(
            max_workers=threads, thread_name_prefix="hookd-password", initializer=_yield_cpu
        )
        # Checks running or waiting for a thread.
        self._slots = threads + queue
        self._pending = 0

    @contextmanager
    def attempt(self, username: str, address: str, now: float) -> Iterator[None]:
        """Around one login's check: 429 when the user name or the address has failed too often
        lately (counting the checks under way as failures); the check under way meanwhile."""
        by_user = self.users.retry_after(username, now)
        by_address = self.addresses.retry_after(address, now)
        if by_user is not None or by_address is not None:
            raise too_many_attempts(max(by_user or 0.0, by_address or 0.0))
        self.users.checking(username)
        self.addresses.checking(address)
        try:
            yield
        finally:
            self.users.checked(username)
            self.addresses.checked(address)

    def failed(self, username: str, address: str, now: float) -> None:
        self.users.failed(username, now)
        self.addresses.failed(address, now)

    def succeeded(self, username: str) -> None:
        self.users.forget(username)

    async def verify(self, password_hash: str | None, password: str) -> bool:
        """Whether `password` matches `password_hash` (None: the user does not exist, and the
        answer is False after as long a check); 503 when too many checks are waiting."""
        if self._pending >= self._slots:
            raise too_many_logins_at_once()
        self._pending += 1
        try:
            loop = asyncio.get_running_loop()
            if password_hash is None:
                return await loop.run_in_executor(self._pool, verify_unknown_user, password)
            return await loop.run_in_executor(self._pool, verify_password, password_hash, password)
        finally:
            self._pending -= 1

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)
