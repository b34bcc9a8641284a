"""`StoreCheck`: /healthz looks at the store at most once per CHECK_EVERY, whatever the number
of checks (they need no login), and a look left unanswered counts as the store not answering."""

from __future__ import annotations

import asyncio

import pytest

from hookd.store import availability
from hookd.store.availability import StoreCheck


async def test_a_flood_of_checks_looks_at_the_store_once_per_period(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(availability, "CHECK_EVERY", 0.2)
    looks: list[float] = []
    problem: str | None = None

    async def look() -> str | None:
        looks.append(asyncio.get_running_loop().time())
        return problem

    check = StoreCheck(look)
    assert [await check.problem() for _ in range(200)] == [None] * 200
    assert len(looks) == 1
    problem = "the store is full"
    await asyncio.sleep(0.25)
    assert await check.problem() is None  # the last look's finding; a new look has started
    await asyncio.sleep(0)
    assert len(looks) == 2
    assert await check.problem() == "the store is full"
    await check.close()


async def test_the_first_check_waits_for_its_look() -> None:
    async def look() -> str | None:
        await asyncio.sleep(0.05)
        return "the store does not answer"

    check = StoreCheck(look)
    assert await check.problem() == "the store does not answer"
    await check.close()


async def test_a_look_that_hangs_counts_as_the_store_not_answering(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(availability, "CHECK_EVERY", 0.05)
    monkeypatch.setattr(availability, "CHECK_PATIENCE", 0.3)
    hang = asyncio.Event()

    async def look() -> str | None:
        if looks:
            await hang.wait()
        looks.append(1)
        return None

    looks: list[int] = []
    check = StoreCheck(look)
    assert await check.problem() is None
    await asyncio.sleep(0.1)
    assert await check.problem() is None  # the second look starts, and hangs
    await asyncio.sleep(0.35)
    found = await check.problem()
    assert found is not None and found.startswith("the store has not answered for")
    hang.set()
    await asyncio.sleep(0.01)
    assert await check.problem() is None
    await check.close()


async def test_a_look_that_raises_is_a_problem_in_one_line() -> None:
    async def look() -> str | None:
        raise RuntimeError("first line\nsecond line")

    check = StoreCheck(look)
    assert await check.problem() == "the check failed: RuntimeError: first line"
    await check.close()
