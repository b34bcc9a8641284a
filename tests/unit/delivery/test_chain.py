"""Synchronous calls: what is tried again."""

from __future__ import annotations

from hookd.delivery.chain import retryable
from hookd.delivery.sender import Result


def test_what_is_tried_again() -> None:
    assert retryable(Result(0.0, 1.0, error="timed out after 300 ms"))
    assert retryable(Result(0.0, 1.0, status_code=500))
    assert retryable(Result(0.0, 1.0, status_code=503))
    assert not retryable(Result(0.0, 1.0, status_code=422))
    assert not retryable(Result(0.0, 1.0, status_code=302))
