"""Errors the domain rules raise; each API dialect renders them in its own shape."""

from __future__ import annotations


class InvalidField(ValueError):
    """A field of a request is wrong: `field` names it, `message` says what is wrong."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


class TooLarge(ValueError):
    """Something in a request is larger than its limit (HTTP 413)."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message
