"""Passwords (Argon2) and bearer tokens (opaque, stored only as their SHA-256)."""

from __future__ import annotations

import hashlib
import secrets

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

ROLES = ("admin", "user")

_hasher = PasswordHasher()


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def verify_password(password_hash: str, password: str) -> bool:
    try:
        return _hasher.verify(password_hash, password)
    except (VerificationError, InvalidHashError):
        return False


# The hash an unknown user name is checked against, made by the hasher of the moment (so that
# it costs what a real user's check costs), and the hasher it was made by.
_unknown_user: tuple[PasswordHasher, str] | None = None


def verify_unknown_user(password: str) -> bool:
    """False, after as long as checking a real user's password takes: a login for a name that
    does not exist must not answer faster than one for a name that does."""
    global _unknown_user
    if _unknown_user is None or _unknown_user[0] is not _hasher:
        _unknown_user = (_hasher, _hasher.hash(secrets.token_urlsafe(18)))
    verify_password(_unknown_user[1], password)
    return False


def generate_password() -> str:
    return secrets.token_urlsafe(18)


def new_token() -> tuple[str, str]:
    """A fresh bearer token and the hash under which it is stored."""
    token = secrets.token_urlsafe(32)
    return token, token_digest(token)


def token_digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()
