"""The retry policy: schedule, jitter, the retry budget and Retry-After."""

from __future__ import annotations

from email.utils import formatdate

import pytest

from hookd.delivery.retry import MAX_RETRY_AFTER, RetryPolicy, parse_retry_after
from hookd.domain.states import DeliveryState

FAILED, RETRYING = DeliveryState.FAILED, DeliveryState.RETRYING

NOW = 1_000_000.0


def policy(*schedule: float, rng: float = 0.5) -> RetryPolicy:
    return RetryPolicy(schedule, rng=lambda: rng)


def test_schedule_then_its_last_delay_repeats() -> None:
    retry = policy(5, 30, 120)
    assert [retry.delay(n) for n in (1, 2, 3, 4, 9)] == [5, 30, 120, 120, 120]


@pytest.mark.parametrize(("rng", "factor"), [(0.0, 0.9), (0.5, 1.0), (1.0, 1.1)])
def test_jitter_spreads_by_ten_percent(rng: float, factor: float) -> None:
    assert policy(100, rng=rng).delay(1) == pytest.approx(100 * factor)


def test_failed_attempts_retry_until_the_budget_is_spent() -> None:
    retry = policy(5, 30)
    assert retry.after_failure(1, max_retries=2, now=NOW) == (RETRYING, NOW + 5)
    assert retry.after_failure(2, max_retries=2, now=NOW) == (RETRYING, NOW + 30)
    assert retry.after_failure(3, max_retries=2, now=NOW) == (FAILED, NOW)


def test_no_retries_fails_at_once() -> None:
    assert policy(5).after_failure(1, max_retries=0, now=NOW) == (FAILED, NOW)


def test_retry_after_replaces_the_schedule() -> None:
    assert policy(5).after_failure(1, 3, NOW, retry_after=42.0) == (RETRYING, NOW + 42)


def test_an_empty_schedule_is_refused() -> None:
    with pytest.raises(ValueError):
        RetryPolicy(())


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("120", 120.0),
        (" 7 ", 7.0),
        ("0", 0.0),
        ("999999", MAX_RETRY_AFTER),
        (formatdate(NOW + 90, usegmt=True), 90.0),
        (formatdate(NOW - 90, usegmt=True), 0.0),
        ("soon", None),
        ("-5", None),
        ("", None),
        (None, None),
    ],
)
def test_parse_retry_after(header: str | None, expected: float | None) -> None:
    assert parse_retry_after(header, NOW) == expected
