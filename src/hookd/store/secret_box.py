"""Webhook secrets and API keys at rest: sealed with HOOKD_SECRET_KEY when it is set.

A sealed value is `enc:v<N>:<Fernet token>`; the version says how its key was made from the
setting:

- v1 (hookd's first versions): SHA-256 of the setting, unsalted, so that a weak passphrase falls
  to a dictionary at once. Opened, never sealed any more; start-up re-seals such rows as v2.
- v2: Argon2id of the setting with the store's own random salt (the `keyring` table; see
  `keyring.py`), at a cost of ~0.2 s once per process.

The versions are what a key rotation adds to: a new version with its own salt (and key).
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Callable, Mapping
from functools import lru_cache

from argon2.low_level import Type, hash_secret_raw
from cryptography.fernet import Fernet, InvalidToken

SEALED_PREFIX = "enc:"
V1, V2 = 1, 2
# What seal() writes.
CURRENT_VERSION = V2

# Argon2id: RFC 9106's second recommended option (64 MiB, 3 passes), one lane.
KDF_TIME_COST = 3
KDF_MEMORY_KIB = 64 * 1024
KDF_PARALLELISM = 1


class SecretKeyError(Exception):
    pass


def prefix(version: int) -> str:
    return f"{SEALED_PREFIX}v{version}:"


def version_of(value: str) -> int | None:
    """The seal version of a stored value; None for a value stored in clear."""
    if not value.startswith(SEALED_PREFIX):
        return None
    tag, _, _ = value[len(SEALED_PREFIX) :].partition(":")
    if not (tag.startswith("v") and tag[1:].isdigit()):
        return None
    return int(tag[1:])


def _fernet(key: bytes) -> Fernet:
    return Fernet(base64.urlsafe_b64encode(key))


@lru_cache(maxsize=8)
def _v1_key(setting: str) -> Fernet:
    return _fernet(hashlib.sha256(setting.encode()).digest())


@lru_cache(maxsize=8)
def _v2_key(setting: str, salt: bytes) -> Fernet:
    key = hash_secret_raw(
        setting.encode(),
        salt,
        time_cost=KDF_TIME_COST,
        memory_cost=KDF_MEMORY_KIB,
        parallelism=KDF_PARALLELISM,
        hash_len=32,
        type=Type.ID,
    )
    return _fernet(key)


class SecretBox:
    """Seals values written to the store and opens them when read; without a key it passes
    values through, and refuses to open sealed ones.

    With a key, sealing needs the store's salts first (`unlock`, done by `keyring.unlock`).
    """

    def __init__(self, key: str | None) -> None:
        self._setting = key
        self._keys: dict[int, Fernet] = {}
        self._opened: dict[str, str] = {}

    @property
    def has_key(self) -> bool:
        return self._setting is not None

    @property
    def unlocked(self) -> bool:
        return self._setting is None or CURRENT_VERSION in self._keys

    def unlock(self, salts: Mapping[int, bytes]) -> None:
        """Derive the keys of the versions whose salts the store keeps (v2 on)."""
        if self._setting is None:
            return
        derive: dict[int, Callable[[bytes], Fernet]] = {
            V2: lambda salt: _v2_key(self._setting or "", salt)
        }
        for version, salt in salts.items():
            if version in derive:
                self._keys[version] = derive[version](salt)

    def _key(self, version: int) -> Fernet:
        if self._setting is None:
            raise SecretKeyError(
                "HOOKD_SECRET_KEY: the store holds encrypted secrets; set the key they were "
                "encrypted with"
            )
        if version == V1:
            return _v1_key(self._setting)
        key = self._keys.get(version)
        if key is None:
            raise SecretKeyError(
                f"HOOKD_SECRET_KEY: secrets sealed as v{version} cannot be opened "
                "(the store's key salt is missing: run `hookd migrate`)"
            )
        return key

    def seal(self, value: str | None) -> str | None:
        if value is None or self._setting is None:
            return value
        token = self._key(CURRENT_VERSION).encrypt(value.encode()).decode()
        return prefix(CURRENT_VERSION) + token

    def is_current(self, value: str | None) -> bool:
        """Whether `value` is stored as seal() would store it now."""
        if value is None:
            return True
        version = version_of(value)
        return version == CURRENT_VERSION if self._setting is not None else version is None

    def open(self, value: str | None) -> str | None:
        if value is None:
            return None
        version = version_of(value)
        if version is None:
            return value
        opened = self._opened.get(value)
        if opened is None:
            token = value[len(prefix(version)) :]
            try:
                opened = self._key(version).decrypt(token.encode()).decode()
            except InvalidToken:
                raise SecretKeyError(
                    "HOOKD_SECRET_KEY: it does not open the secrets in the store"
                ) from None
            if len(self._opened) > 10_000:
                self._opened.clear()
            self._opened[value] = opened
        return opened
