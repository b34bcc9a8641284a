"""The log-flood defence (`logs.LineBudget`, `logs.ErrorLineBudget`): lines about error answers
are kept to a number per status and second, and the count of those left out is told."""

from __future__ import annotations

import io
import logging
from collections.abc import Iterator

import orjson
import pytest

from hookd import logs


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_lines_beyond_the_budget_are_counted_and_told_with_the_next_one() -> None:
    clock = Clock()
    budget = logs.LineBudget(3, clock)
    assert [budget.admit(431) for _ in range(5)] == [0, 0, 0, None, None]
    assert budget.admit(429) == 0  # each kind has its own budget
    clock.now += 0.999
    assert budget.admit(431) is None
    clock.now += 0.001
    assert budget.admit(431) == 3
    assert [budget.admit(431) for _ in range(3)] == [0, 0, None]
    clock.now += 5
    assert budget.admit(431) == 1


def test_no_limit_when_the_budget_is_zero() -> None:
    budget = logs.LineBudget(0, Clock())
    assert all(budget.admit(431) == 0 for _ in range(10_000))


@pytest.fixture
def http_log() -> Iterator[tuple[logging.Logger, io.StringIO, Clock]]:
    logger = logging.getLogger("hookd.test-log-budget")
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logs.JsonFormatter())
    clock = Clock()
    budget = logs.ErrorLineBudget(2, clock)
    logger.addHandler(handler)
    logger.addFilter(budget)
    logger.setLevel(logging.INFO)
    logger.propagate = False
    try:
        yield logger, stream, clock
    finally:
        logger.removeHandler(handler)
        logger.removeFilter(budget)


def test_error_answers_are_kept_within_the_budget_and_others_are_not(
    http_log: tuple[logging.Logger, io.StringIO, Clock],
) -> None:
    logger, stream, clock = http_log
    for _ in range(50):
        logger.info("GET / %s", 200, extra={"status": 200})
        logger.info("refused: %s", 431, extra={"status": 431})
        logger.info("POST /login %s", 429, extra={"status": 429})
    logger.info("no status at all")
    clock.now += 1
    logger.info("refused: %s", 431, extra={"status": 431})
    lines = [orjson.loads(line) for line in stream.getvalue().splitlines()]
    assert sum(line.get("status") == 200 for line in lines) == 50
    assert sum(line.get("status") == 429 for line in lines) == 2
    assert [line["message"] for line in lines if line.get("status") == 431] == [
        "refused: 431",
        "refused: 431",
        "refused: 431 (48 lines like this left out before it)",
    ]
    assert lines[-1]["left_out"] == 48
    assert lines[-2]["message"] == "no status at all"
