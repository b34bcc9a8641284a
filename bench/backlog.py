"""Claims against a deep backlog: is claiming a batch as fast with a million deliveries pending
as with a nearly empty queue, and does a worker's memory stay bounded?

`python -m bench.backlog [--rows N] [--backend sqlite|postgres|both]`; also part of the full
`make bench`. Only the store is exercised; the worker's sends go to a closed port on 127.0.0.1.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from sqlalchemy import bindparam, text

from bench.console import say
from bench.postgres import ThrowAwayDatabase
from bench.procs import free_port
from hookd.config import load_settings
from hookd.delivery.worker import Worker
from hookd.domain.webhook import WebhookFields
from hookd.store import migrate, webhooks
from hookd.store.database import Database
from hookd.store.events import NewEvent, publish
from hookd.store.queue import claim_due

BATCH = 200
ROUNDS = 100
WARM_UP_ROUNDS = 10  # not counted: the first claims of a process compile and cache
EMPTY_ROWS = 1_000

_FILL_POSTGRES = text("""
INSERT INTO deliveries (event_seq, webhook_id, state, due_at, created_at, updated_at)
SELECT :seq, :hook, 'pending', :due + g * 1e-6, :due, :due FROM generate_series(1, :n) AS g
""")
_FILL_SQLITE = text("""
WITH RECURSIVE g(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM g WHERE x < :n)
INSERT INTO deliveries (event_seq, webhook_id, state, due_at, created_at, updated_at)
SELECT :seq, :hook, 'pending', :due + x * 1e-6, :due, :due FROM g
""")
# Put a claimed batch back by its ids (a scan for state = 'delivering' would read the whole
# backlog between rounds and disturb the next claim's timing).
_RELEASE = text(
    "UPDATE deliveries SET state = 'pending', due_at = :due WHERE id IN :ids"
).bindparams(bindparam("ids", expanding=True))


def _rss_peak_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


async def _fill(db: Database, seq: int, hook: int, rows: int, due: float) -> float:
    started = time.perf_counter()
    async with db.transaction() as conn:
        fill = _FILL_SQLITE if db.is_sqlite else _FILL_POSTGRES
        await conn.execute(fill, {"seq": seq, "hook": hook, "n": rows, "due": due})
    if db.is_sqlite:
        async with db.transaction() as conn:
            await conn.execute(text("ANALYZE"))
    else:
        # What autovacuum would have done by the time a backlog is old; measuring while it is
        # still at work on a million fresh rows would time autovacuum, not the claim,
        async with db.engine.connect() as conn:
            conn = await conn.execution_options(isolation_level="AUTOCOMMIT")
            await conn.execute(text("VACUUM ANALYZE deliveries"))
            await conn.execute(text("CHECKPOINT"))  # nor the checkpointer writing them out
    return time.perf_counter() - started


async def _claim_ms(db: Database, due: float) -> list[float]:
    """Claim a batch ROUNDS times, putting it back between rounds (not timed)."""
    timings = []
    for _ in range(WARM_UP_ROUNDS + ROUNDS):
        started = time.perf_counter()
        claimed = await claim_due(db, BATCH, time.time(), lease=3600)
        timings.append((time.perf_counter() - started) * 1000)
        assert len(claimed) == BATCH, f"claimed {len(claimed)}"
        async with db.transaction() as conn:
            await conn.execute(_RELEASE, {"due": due, "ids": [c.id for c in claimed]})
    return timings[WARM_UP_ROUNDS:]


async def _worker_memory(url: str, seconds: float) -> dict[str, Any]:
    """Run a worker against the backlog for a while; its sends fail fast on a closed port."""
    settings = load_settings(
        database_url=url, allow_targets="127.0.0.0/8", retention="0", poll_interval="100ms"
    )
    db = Database(url)
    worker = Worker(db, settings)
    task = asyncio.create_task(worker.run())
    await asyncio.sleep(seconds)
    worker.stop()
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(task, 30)
    async with db.read() as conn:
        done = (
            await conn.execute(text("SELECT count(*) FROM deliveries WHERE state = 'failed'"))
        ).scalar_one()
    await db.close()
    return {"seconds": seconds, "deliveries_done": done, "rss_peak_mib": round(_rss_peak_mib(), 1)}


async def measure(url: str, rows: int, worker_seconds: float) -> dict[str, Any]:
    db = Database(url)
    await migrate.upgrade(db)
    port = free_port()
    hook = await webhooks.create_webhook(
        db,
        "device",
        WebhookFields(url=f"http://127.0.0.1:{port}/closed", topics=("t",), max_retries=0),
    )
    # One event to hang the deliveries on; it queues one delivery of its own.
    await publish(db, [NewEvent("backlog", "t", b"{}")], time.time())
    async with db.read() as conn:
        seq = (await conn.execute(text("SELECT max(seq) FROM events"))).scalar_one()
    due = time.time() - 3600

    await _fill(db, seq, hook.id, EMPTY_ROWS, due)
    empty = await _claim_ms(db, due)
    fill_s = await _fill(db, seq, hook.id, rows, due)
    deep = await _claim_ms(db, due)
    await db.close()
    memory = await _worker_memory(url, worker_seconds)
    empty_ms, deep_ms = statistics.median(empty), statistics.median(deep)
    return {
        "pending": rows + EMPTY_ROWS,
        "fill_s": round(fill_s, 1),
        "claim_ms_empty_p50": round(empty_ms, 2),
        "claim_ms_backlog_p50": round(deep_ms, 2),
        "claim_ratio": round(deep_ms / empty_ms, 2),
        "worker": memory,
    }


def _measure_backend(backend: str, rows: int, worker_seconds: float) -> dict[str, Any]:
    if backend == "sqlite":
        with tempfile.TemporaryDirectory(prefix="hookd-backlog-") as tmp:
            return asyncio.run(measure(f"sqlite:///{Path(tmp) / 'hookd.db'}", rows, worker_seconds))
    database = ThrowAwayDatabase()
    why = database.available()
    if why is not None:
        return {"skipped": f"PostgreSQL unavailable: {why}"}
    with database:
        return asyncio.run(measure(database.url, rows, worker_seconds))


def run_backlog(backends: list[str], rows: int, worker_seconds: float = 5.0) -> dict[str, Any]:
    """Each backend in a process of its own, so that its peak RSS is the worker's alone."""
    results: dict[str, Any] = {}
    for backend in backends:
        say(f"backlog: {backend}, {rows} pending deliveries")
        command = [
            sys.executable,
            "-m",
            "bench.backlog",
            "--rows",
            str(rows),
            "--backend",
            backend,
            "--worker-seconds",
            str(worker_seconds),
            "--json",
        ]
        done = subprocess.run(command, capture_output=True, text=True, timeout=600, check=False)
        if done.returncode != 0:
            results[backend] = {"error": done.stderr.strip().splitlines()[-1:] or "failed"}
            continue
        results[backend] = json.loads(done.stdout.strip().splitlines()[-1])
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--backend", choices=("sqlite", "postgres", "both"), default="both")
    parser.add_argument("--worker-seconds", type=float, default=5.0)
    parser.add_argument("--json", action="store_true", help="measure here, print JSON")
    args = parser.parse_args()
    backends = ["sqlite", "postgres"] if args.backend == "both" else [args.backend]
    if args.json:
        print(json.dumps(_measure_backend(backends[0], args.rows, args.worker_seconds)))
        return
    for backend, figures in run_backlog(backends, args.rows, args.worker_seconds).items():
        print(backend, figures)


if __name__ == "__main__":
    main()
