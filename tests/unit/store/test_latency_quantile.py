"""The p95 the overview shows, read from a latency histogram."""

from __future__ import annotations

import pytest

from hookd.store.schema import LATENCY_BOUNDS_MS, LATENCY_COLUMNS
from hookd.store.stats import Tally, histogram_quantile


def histogram(*durations: float) -> list[int]:
    tally = Tally()
    for duration in durations:
        tally.attempt(duration, ok=True)
    return tally.latency


def test_an_empty_histogram_has_no_quantile() -> None:
    assert histogram_quantile([0] * len(LATENCY_COLUMNS), 0.95) is None


def test_each_duration_lands_in_its_bucket() -> None:
    assert histogram(0.5).index(1) == 0  # ≤ 1 ms
    assert histogram(1.0).index(1) == 0
    assert histogram(1.01).index(1) == 1  # ≤ 2 ms
    assert histogram(30_000).index(1) == len(LATENCY_BOUNDS_MS) - 1
    assert histogram(30_001).index(1) == len(LATENCY_BOUNDS_MS)  # past every bound


@pytest.mark.parametrize(
    ("durations", "q", "low", "high"),
    [
        ([15.0] * 100, 0.95, 10, 20),
        ([3.0] * 95 + [900.0] * 5, 0.95, 2, 5),
        ([3.0] * 90 + [900.0] * 10, 0.95, 500, 1000),
        ([60_000.0] * 10, 0.5, 30_000, 30_000),
    ],
)
def test_the_quantile_falls_in_the_right_bucket(
    durations: list[float], q: float, low: float, high: float
) -> None:
    found = histogram_quantile(histogram(*durations), q)
    assert found is not None and low <= found <= high
