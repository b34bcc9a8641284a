"""Several `hookd worker` processes on one PostgreSQL database: sharing, crashes, shutdown."""

from __future__ import annotations

import asyncio
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from sqlalchemy import text

from hookd.config import load_settings
from hookd.store.database import Database
from support import Api, Receiver, running_api, start_worker

pytestmark = pytest.mark.slow

HOOKD = str(Path(sys.executable).with_name("hookd"))
EVENT = "log.door_was_opened"


@pytest.fixture
async def pg_api(postgres_url: str) -> AsyncIterator[Api]:
    settings = load_settings(database_url=postgres_url, admin_password="x")
    async with running_api(settings, run_worker=False) as running:
        yield running


@pytest.fixture
def workers(postgres_url: str, tmp_path: Path) -> Iterator[list[subprocess.Popen[bytes]]]:
    started: list[subprocess.Popen[bytes]] = []
    yield started
    for process in started:
        if process.poll() is None:
            process.kill()
        process.wait(timeout=10)


async def states(url: str) -> Counter[str]:
    db = Database(url, pool_size=1)
    try:
        async with db.read() as conn:
            rows = await conn.execute(text("SELECT state, count(*) FROM deliveries GROUP BY state"))
            return Counter({state: count for state, count in rows})
    finally:
        await db.close()


async def wait_until(predicate, timeout: float) -> bool:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if await predicate():
            return True
        await asyncio.sleep(0.2)
    return False


async def setup_load(api: Api, receiver: Receiver, webhooks: int, events: int) -> int:
    for index in range(webhooks):
        await api.create_webhook(url=receiver.url(f"/hook/{index}"))
    for start in range(0, events, 100):
        batch = [{"type": EVENT, "id": f"e{n}"} for n in range(start, min(start + 100, events))]
        await api.publish(batch)
    return webhooks * events


async def test_two_workers_share_the_queue_without_double_claims(
    pg_api: Api, receiver: Receiver, workers: list[subprocess.Popen[bytes]], tmp_path: Path
) -> None:
    url = pg_api.settings.database_url
    total = await setup_load(pg_api, receiver, webhooks=10, events=300)
    for _ in range(2):
        start_worker(workers, url, tmp_path, HOOKD_WORKER_BATCH_SIZE="50")

    await receiver.wait_for(total, timeout=90)
    assert await wait_until(lambda: _all_succeeded(url, total), timeout=30)

    arrivals = Counter((r.path, r.headers["webhook-id"]) for r in receiver.requests)
    assert len(arrivals) == total
    assert max(arrivals.values()) == 1, "a delivery was sent twice: it was claimed twice"
    db = Database(url, pool_size=1)
    try:
        async with db.read() as conn:
            per_delivery = (
                await conn.execute(
                    text(
                        "SELECT max(c) FROM (SELECT count(*) AS c FROM attempts "
                        "GROUP BY delivery_id) AS x"
                    )
                )
            ).scalar_one()
    finally:
        await db.close()
    assert per_delivery == 1
    for process in workers:
        process.send_signal(signal.SIGTERM)
    for process in workers:
        assert await asyncio.to_thread(process.wait, 30) == 0
    logs = [path.read_text() for path in sorted(tmp_path.glob("worker-*.log"))]
    assert all("worker started" in log for log in logs)


async def _all_succeeded(url: str, total: int) -> bool:
    return (await states(url))["succeeded"] == total


async def test_a_killed_worker_loses_nothing(
    pg_api: Api, receiver: Receiver, workers: list[subprocess.Popen[bytes]], tmp_path: Path
) -> None:
    url = pg_api.settings.database_url
    receiver.default = (200, {}, 0.5, b"slow")
    total = await setup_load(pg_api, receiver, webhooks=4, events=50)
    first = start_worker(
        workers, url, tmp_path, HOOKD_WORKER_LEASE="2s", HOOKD_WORKER_CONCURRENCY="50"
    )
    await receiver.wait_for(20, timeout=30)
    first.send_signal(signal.SIGKILL)
    first.wait(timeout=10)
    in_flight = (await states(url))["delivering"]
    assert in_flight > 0, "the worker should have died holding deliveries"

    start_worker(workers, url, tmp_path, HOOKD_WORKER_LEASE="2s")
    assert await wait_until(lambda: _all_succeeded(url, total), timeout=60)
    arrived = {(r.path, r.headers["webhook-id"]) for r in receiver.requests}
    assert len(arrived) == total


async def test_sigterm_finishes_in_flight_deliveries(
    pg_api: Api, receiver: Receiver, workers: list[subprocess.Popen[bytes]], tmp_path: Path
) -> None:
    url = pg_api.settings.database_url
    receiver.default = (200, {}, 1.0, b"slow")
    await setup_load(pg_api, receiver, webhooks=2, events=50)
    worker = start_worker(workers, url, tmp_path, HOOKD_WORKER_CONCURRENCY="20")
    await receiver.wait_for(5, timeout=30)
    worker.send_signal(signal.SIGTERM)

    # Wait in a thread: the receiver lives in this event loop and must keep answering.
    assert await asyncio.to_thread(worker.wait, 30) == 0
    counts = await states(url)
    assert counts["delivering"] == 0, f"in-flight deliveries were left claimed: {counts}"
    assert counts["succeeded"] == len(receiver.requests), counts
    assert counts["succeeded"] == len(receiver.requests)
    assert counts["pending"] == 100 - counts["succeeded"]
