"""Passwords (Argon2id at the library's recommended cost) and bearer tokens (kept as SHA-256).

tests/conftest.py swaps in cheap Argon2 parameters for the whole session; the production hasher
is checked here on a fresh copy of hookd.domain.credentials.
"""

from __future__ import annotations

import hashlib
import importlib.util
from types import ModuleType

from argon2 import PasswordHasher

from hookd.domain import credentials
from hookd.domain.credentials import (
    ROLES,
    generate_password,
    hash_password,
    new_token,
    token_digest,
    verify_password,
)


def production_credentials() -> ModuleType:
    """hookd.domain.credentials as the service loads it, untouched by the test session."""
    spec = importlib.util.spec_from_file_location("production_credentials", credentials.__file__)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_password_hash_is_argon2id_with_recommended_parameters() -> None:
    production = production_credentials()
    hashed = production.hash_password("correct horse")
    assert hashed.startswith("$argon2id$")
    assert "correct horse" not in hashed
    assert not PasswordHasher().check_needs_rehash(hashed)
    assert production.verify_password(hashed, "correct horse")
    assert not production.verify_password(hashed, "correct horsE")


def test_password_hashing() -> None:
    hashed = hash_password("correct horse")
    assert hashed.startswith("$argon2id$")
    assert verify_password(hashed, "correct horse")
    assert not verify_password(hashed, "correct horsE")
    assert not verify_password(hashed, "")


def test_password_hashes_are_salted() -> None:
    assert hash_password("same") != hash_password("same")


def test_verify_survives_a_broken_hash() -> None:
    assert not verify_password("not-a-hash", "x")
    assert not verify_password("", "x")


def test_tokens() -> None:
    token, digest = new_token()
    other, other_digest = new_token()
    assert token != other and digest != other_digest
    assert len(token) >= 32
    assert digest == hashlib.sha256(token.encode()).hexdigest() == token_digest(token)
    assert token not in digest


def test_generated_passwords() -> None:
    first, second = generate_password(), generate_password()
    assert first != second
    assert len(first) >= 16


def test_roles() -> None:
    assert ROLES == ("admin", "user")
