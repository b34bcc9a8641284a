"""Bearer tokens (and API keys) checked a moment ago, so that a burst of requests does not look
each one up.

A token revoked by another hookd process is refused here within `TTL` seconds; one revoked
through this process (logout, an API key's revocation) at once.
"""

from __future__ import annotations

from typing import Generic, TypeVar

Holder = TypeVar("Holder")

TTL = 2.0
MAX_ENTRIES = 10_000


class TokenCache(Generic[Holder]):
    """What each token stands for (a user, an API key), by the token's digest."""

    def __init__(self, ttl: float = TTL) -> None:
        self.ttl = ttl
        self._entries: dict[str, tuple[Holder, float]] = {}

    def get(self, digest: str, now: float) -> Holder | None:
        entry = self._entries.get(digest)
        if entry is None:
            return None
        holder, valid_until = entry
        if now >= valid_until:
            del self._entries[digest]
            return None
        return holder

    def put(self, digest: str, holder: Holder, expires_at: float, now: float) -> None:
        if len(self._entries) >= MAX_ENTRIES:
            self._entries.clear()
        self._entries[digest] = (holder, min(now + self.ttl, expires_at))

    def forget(self, digest: str) -> None:
        self._entries.pop(digest, None)
