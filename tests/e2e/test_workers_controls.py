"""Delivery controls held by two `hookd worker` processes on one PostgreSQL database: the
receiver checks the order and measures the rate."""

from __future__ import annotations

import subprocess
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from hookd.config import load_settings
from support import Api, Receiver, running_api, start_worker

pytestmark = pytest.mark.slow

EVENT = "log.door_was_opened"


@pytest.fixture
async def pg_api(postgres_url: str) -> AsyncIterator[Api]:
    settings = load_settings(database_url=postgres_url, admin_password="x")
    async with running_api(settings, run_worker=False) as running:
        yield running


@pytest.fixture
def workers() -> Iterator[list[subprocess.Popen[bytes]]]:
    started: list[subprocess.Popen[bytes]] = []
    yield started
    for process in started:
        if process.poll() is None:
            process.kill()
        process.wait(timeout=10)


async def publish(api: Api, count: int) -> None:
    for start in range(0, count, 100):
        batch = [{"type": EVENT, "id": f"e{n:04d}"} for n in range(start, min(start + 100, count))]
        await api.publish(batch)


def busiest_window(times: list[float], seconds: float) -> int:
    """The most arrivals within any `seconds`-long window."""
    times = sorted(times)
    most, start = 0, 0
    for end, at in enumerate(times):
        while at - times[start] > seconds:
            start += 1
        most = max(most, end - start + 1)
    return most


async def test_a_rate_limit_holds_across_two_workers(
    pg_api: Api, receiver: Receiver, workers: list[subprocess.Popen[bytes]], tmp_path: Path
) -> None:
    rate, total = 40, 480
    hook = await pg_api.create_webhook(url=receiver.url(), rate_limit=rate)
    await publish(pg_api, total)
    for _ in range(2):
        start_worker(workers, pg_api.settings.database_url, tmp_path)

    await receiver.wait_for(total, timeout=60)
    assert len(receiver.requests) == total, "deliveries above the rate must wait, not drop"
    times = [request.at for request in receiver.requests]
    most = busiest_window(times, 10.0)
    assert most <= rate * 10 * 1.1, f"{most} deliveries within 10 s at a limit of {rate}/s"
    assert busiest_window(times, 10.0) >= rate * 10 * 0.8, "far below the rate: too slow"
    assert hook["rate_limit"] == rate


async def test_fifo_holds_across_two_workers(
    pg_api: Api, receiver: Receiver, workers: list[subprocess.Popen[bytes]], tmp_path: Path
) -> None:
    total = 60
    hook = await pg_api.create_webhook(url=receiver.url(), ordering="fifo", max_retries=5)
    for n in range(total):  # some first attempts fail, and answers take varying time
        receiver.answer("/hook", 500 if n % 4 == 1 else 200, delay=(n % 3) * 0.01)
    await publish(pg_api, total)
    for _ in range(2):
        start_worker(workers, pg_api.settings.database_url, tmp_path)

    items = await pg_api.wait_for_deliveries(hook["uid"], total, states=("succeeded",), timeout=60)
    assert sum(item["status"] == "succeeded" for item in items) == total
    sent = [request.json()["id"] for request in receiver.requests]
    assert sent == sorted(sent), "a delivery went out before the one published before it ended"
    assert len(set(sent)) == total
