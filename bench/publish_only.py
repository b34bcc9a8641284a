"""The publish API alone: `python -m bench.publish_only [--postgres URL]`.

Starts `hookd serve --no-worker` (nothing is delivered, so publishing has the machine to
itself), creates 10 webhooks on one event type and publishes arrays of 100 events (1 KiB of data
each, with ids) from 4 concurrent publishers. Every 202 means the events and their 1 000
deliveries were committed durably. Prints events accepted per second and the request p50/p99.
Traffic stays on 127.0.0.1.
"""

from __future__ import annotations

import argparse
import asyncio
import secrets
import statistics
import sys
import tempfile
import time
from pathlib import Path

import aiohttp
import orjson

from bench.trigger_overhead import (
    LOOPBACK,
    free_port,
    percentile,
    reset_postgres,
    start_hookd,
    stop,
    wait_healthy,
)

EVENT = "log.door_was_opened"


async def _publish(port: int, password: str, batches: int, publishers: int) -> dict[str, float]:
    base = f"http://{LOOPBACK}:{port}"
    async with aiohttp.ClientSession() as session:
        login = {"username": "admin", "password": password}
        async with session.post(f"{base}/api/v1/login", json=login) as response:
            token = (await response.json())["token"]
        headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
        for index in range(10):
            hook = {"url": f"http://{LOOPBACK}:9/hook/{index}", "event_types": [EVENT]}
            async with session.post(f"{base}/api/v1/webhooks", json=hook, headers=headers) as r:
                assert r.status == 201, await r.text()
        data = {"payload": "x" * 1024}
        bodies = [
            orjson.dumps([{"type": EVENT, "id": f"b{b}-{n}", "data": data} for n in range(100)])
            for b in range(batches)
        ]
        calls: list[float] = []

        async def publisher() -> None:
            while bodies:
                body = bodies.pop()
                started = time.perf_counter()
                async with session.post(f"{base}/api/v1/events", data=body, headers=headers) as r:
                    assert r.status == 202, await r.text()
                calls.append((time.perf_counter() - started) * 1000)

        started = time.perf_counter()
        await asyncio.gather(*(publisher() for _ in range(publishers)))
        elapsed = time.perf_counter() - started
    return {
        "events_per_s": round(batches * 100 / elapsed),
        "call_p50_ms": round(statistics.median(calls), 1),
        "call_p99_ms": round(percentile(calls, 0.99), 1),
    }


def run(postgres: str | None, batches: int, publishers: int) -> dict[str, float]:
    with tempfile.TemporaryDirectory(prefix="hookd-publish-") as tmp:
        workdir = Path(tmp)
        database_url = postgres or f"sqlite:///{workdir}/h.db"
        if postgres:
            reset_postgres(postgres)
        password = secrets.token_urlsafe(18)
        port = free_port()
        binary = str(Path(sys.executable).parent / "hookd")
        proc = start_hookd(binary, workdir, database_url, password, port, "--no-worker")
        try:
            wait_healthy(port, proc, workdir)
            asyncio.run(_publish(port, password, max(1, batches // 10), publishers))  # warm-up
            return asyncio.run(_publish(port, password, batches, publishers))
        finally:
            stop(proc)


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.publish_only", description=__doc__)
    parser.add_argument("--postgres", metavar="URL", help="a THROWAWAY PostgreSQL database")
    parser.add_argument("--batches", type=int, default=100, help="requests of 100 events")
    parser.add_argument("--publishers", type=int, default=4)
    args = parser.parse_args()
    figures = run(args.postgres, args.batches, args.publishers)
    backend = "postgresql" if args.postgres else "sqlite"
    print(
        f"{backend}: {figures['events_per_s']} events/s accepted, request p50 "
        f"{figures['call_p50_ms']} ms, p99 {figures['call_p99_ms']} ms"
    )


if __name__ == "__main__":
    main()
