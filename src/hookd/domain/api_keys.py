"""Producers' API keys: long random secrets, recognisable by their prefix, stored only as their
SHA-256 (a key has enough entropy that a slow hash would add cost and no safety)."""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Sequence

from hookd.domain.event_types import matches

PREFIX = "hk_"
# How much of a key is kept in clear to tell keys apart in a list: the prefix and 8 characters.
DISPLAY_LENGTH = len(PREFIX) + 8
MAX_NAME_LENGTH = 100


def new_api_key() -> tuple[str, str]:
    """A fresh key and the digest under which it is stored."""
    key = PREFIX + secrets.token_urlsafe(32)
    return key, key_digest(key)


def is_api_key(token: str) -> bool:
    """Whether a bearer token is an API key rather than a login token."""
    return token.startswith(PREFIX)


def key_digest(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def displayed(key: str) -> str:
    return key[:DISPLAY_LENGTH]


def allows(scope: Sequence[str] | None, event_type: str) -> bool:
    """Whether a key limited to `scope` (None: every type) may publish `event_type`."""
    return scope is None or any(matches(entry, event_type) for entry in scope)
