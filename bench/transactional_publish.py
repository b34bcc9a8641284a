"""Publishing in the producer's transaction against the HTTP API:
`python -m bench.transactional_publish [--postgres URL] [--events N]`.

Both rates come from one run, on one store kind. The HTTP API's rate is measured as in
bench/publish_only.py: `hookd serve --no-worker`, 10 webhooks on one event type, arrays of 100
events (1 KiB of data each, with ids) from 4 concurrent publishers. Then `hookd.publish`
publishes N events (100 000 by default) of the same shape in transactions of 100, on a fresh
store with the same 10 webhooks. On PostgreSQL it uses 4 asyncpg connections at once, like the
4 HTTP publishers. On SQLite it uses one sqlite3 connection, since SQLite has a single writer.
Every commit is durable, as a 202 is. Nothing delivers meanwhile. The ratio is the
transactional rate divided by the HTTP rate; the target is at least 1.0. Traffic stays on
127.0.0.1.
"""

from __future__ import annotations

import argparse
import asyncio
import sqlite3
import tempfile
import time
from pathlib import Path
from typing import Any

import asyncpg

import hookd
from bench import publish_only
from bench.trigger_overhead import reset_postgres
from hookd.domain.webhook import WebhookFields
from hookd.store import migrate, webhooks
from hookd.store.database import Database

EVENT = publish_only.EVENT
PER_TRANSACTION = 100
CONNECTIONS = 4
WARM_UP_TRANSACTIONS = 20


def _batches(events: int, tag: str) -> list[list[dict[str, Any]]]:
    data = {"payload": "x" * 1024}
    return [
        [
            {"type": EVENT, "id": f"{tag}-{start + n}", "data": data}
            for n in range(min(PER_TRANSACTION, events - start))
        ]
        for start in range(0, events, PER_TRANSACTION)
    ]


async def _fresh_store(url: str) -> None:
    """Migrate the store and give it the 10 webhooks of bench/publish_only.py."""
    db = Database(url, pool_size=1)
    try:
        await migrate.upgrade(db)
        for index in range(10):
            fields = WebhookFields(url=f"http://127.0.0.1:9/hook/{index}", topics=(EVENT,))
            await webhooks.create_webhook(db, "device", fields)
    finally:
        await db.close()


async def _postgres(url: str, events: int) -> float:
    """Events per second through `hookd.publish` on CONNECTIONS asyncpg connections."""
    connections = [await asyncpg.connect(url) for _ in range(CONNECTIONS)]
    try:

        async def publisher(conn: asyncpg.Connection, work: list[list[dict[str, Any]]]) -> None:
            while work:
                batch = work.pop()
                async with conn.transaction():
                    await hookd.publish(conn, batch)

        warm_up = _batches(WARM_UP_TRANSACTIONS * PER_TRANSACTION, "warm")
        await asyncio.gather(*(publisher(conn, warm_up) for conn in connections))
        work = _batches(events, "tx")
        started = time.perf_counter()
        await asyncio.gather(*(publisher(conn, work) for conn in connections))
        return events / (time.perf_counter() - started)
    finally:
        for conn in connections:
            await conn.close()


def _sqlite(path: Path, events: int) -> float:
    """Events per second through `hookd.publish` on one sqlite3 connection."""
    conn = sqlite3.connect(path, timeout=30)
    try:
        conn.execute("PRAGMA synchronous=FULL")  # as hookd commits a publish
        for batch in _batches(WARM_UP_TRANSACTIONS * PER_TRANSACTION, "warm"):
            hookd.publish(conn, batch)
            conn.commit()
        work = _batches(events, "tx")
        started = time.perf_counter()
        for batch in work:
            hookd.publish(conn, batch)
            conn.commit()
        return events / (time.perf_counter() - started)
    finally:
        conn.close()


def run(postgres: str | None, events: int, http_batches: int) -> dict[str, float]:
    """The HTTP API's rate and `hookd.publish`'s on one store kind, and their ratio."""
    http = publish_only.run(postgres, http_batches, CONNECTIONS)
    with tempfile.TemporaryDirectory(prefix="hookd-transactional-") as tmp:
        if postgres:
            reset_postgres(postgres)
            asyncio.run(_fresh_store(postgres))
            rate = asyncio.run(_postgres(postgres, events))
        else:
            path = Path(tmp) / "h.db"
            asyncio.run(_fresh_store(f"sqlite:///{path}"))
            rate = _sqlite(path, events)
    return {
        "events": events,
        "http_events_per_s": http["events_per_s"],
        "transactional_events_per_s": round(rate),
        "ratio_to_http": round(rate / http["events_per_s"], 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        prog="python -m bench.transactional_publish", description=__doc__
    )
    parser.add_argument("--postgres", metavar="URL", help="a THROWAWAY PostgreSQL database")
    parser.add_argument("--events", type=int, default=100_000, help="events through hookd.publish")
    parser.add_argument("--http-batches", type=int, default=100, help="HTTP requests of 100 events")
    args = parser.parse_args()
    figures = run(args.postgres, args.events, args.http_batches)
    backend = "postgresql" if args.postgres else "sqlite"
    print(
        f"{backend}: hookd.publish {figures['transactional_events_per_s']} events/s in "
        f"transactions of {PER_TRANSACTION}, HTTP API {figures['http_events_per_s']} events/s: "
        f"{figures['ratio_to_http']}x"
    )


if __name__ == "__main__":
    main()
