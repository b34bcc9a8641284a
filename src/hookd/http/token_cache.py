"""Bearer tokens checked a moment ago, so that a burst of requests does not look each one up.

A token revoked by another hookd process is refused here within `TTL` seconds; one revoked
through this process (logout) at once.
"""

from __future__ import annotations

from hookd.store.accounts import User

TTL = 2.0
MAX_ENTRIES = 10_000


class TokenCache:
    def __init__(self, ttl: float = TTL) -> None:
        self.ttl = ttl
        self._entries: dict[str, tuple[User, float]] = {}

    def get(self, digest: str, now: float) -> User | None:
        entry = self._entries.get(digest)
        if entry is None:
            return None
        user, valid_until = entry
        if now >= valid_until:
            del self._entries[digest]
            return None
        return user

    def put(self, digest: str, user: User, expires_at: float, now: float) -> None:
        if len(self._entries) >= MAX_ENTRIES:
            self._entries.clear()
        self._entries[digest] = (user, min(now + self.ttl, expires_at))

    def forget(self, digest: str) -> None:
        self._entries.pop(digest, None)
