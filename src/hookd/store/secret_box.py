"""Webhook secrets and API keys at rest: sealed with HOOKD_SECRET_KEY when it is set."""

from __future__ import annotations

import base64
import hashlib

from cryptography.fernet import Fernet, InvalidToken

SEALED_PREFIX = "enc:v1:"


class SecretKeyError(Exception):
    pass


class SecretBox:
    """Seals values written to the store and opens them when read; without a key it passes
    values through, and refuses to open sealed ones."""

    def __init__(self, key: str | None) -> None:
        self._fernet = (
            Fernet(base64.urlsafe_b64encode(hashlib.sha256(key.encode()).digest())) if key else None
        )
        self._opened: dict[str, str] = {}

    def seal(self, value: str | None) -> str | None:
        if value is None or self._fernet is None:
            return value
        return SEALED_PREFIX + self._fernet.encrypt(value.encode()).decode()

    def open(self, value: str | None) -> str | None:
        if value is None or not value.startswith(SEALED_PREFIX):
            return value
        opened = self._opened.get(value)
        if opened is None:
            if self._fernet is None:
                raise SecretKeyError(
                    "HOOKD_SECRET_KEY: the store holds encrypted secrets; set the key they were "
                    "encrypted with"
                )
            try:
                opened = self._fernet.decrypt(value[len(SEALED_PREFIX) :].encode()).decode()
            except InvalidToken:
                raise SecretKeyError(
                    "HOOKD_SECRET_KEY: it does not open the secrets in the store"
                ) from None
            if len(self._opened) > 10_000:
                self._opened.clear()
            self._opened[value] = opened
        return opened
