"""The web console with a million deliveries in the store: how long the overview, the first page
of the delivery log and a deep page (page 1000) take to render, against a bare request to the
same `hookd serve` (`/healthz`) measured in the same run.

`python -m bench.console_pages [--rows N] [--backend sqlite|postgres|both] [--wait-quiet S]`

The store is filled set-based (events, deliveries, one attempt each, a day of per-minute
counters: what a busy day leaves behind), analyzed, then served by `hookd serve --no-worker` on
127.0.0.1; each page is fetched over HTTP with a logged-in session, `--requests` times after a
warm-up, one at a time.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import text

from bench import machine
from bench.console import say
from bench.hookd_proc import HookdProcesses
from bench.postgres import ThrowAwayDatabase
from hookd.domain.webhook import WebhookFields
from hookd.store import webhooks
from hookd.store.database import Database
from hookd.store.schema import LATENCY_COLUMNS

WEBHOOKS = 10
PAGE_SIZE = 50  # the console's delivery log shows 50 a page
DEEP_PAGE = 1000
WARM_UP = 5
DAY = 24 * 3600.0

# Generated numbers 1…n, in each dialect of SQL.
_SERIES = {
    "sqlite": "WITH RECURSIVE g(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM g WHERE n < :rows) ",
    "postgres": "WITH g(n) AS (SELECT generate_series(1, :rows)) ",
}
# Every event is delivered to each of the webhooks; 2 % of deliveries failed, the newest
# `--pending` are still pending (a backlog), the rest succeeded. Times spread over the last
# day, in id order.
_EVENTS = """
INSERT INTO events (seq, id, idempotency_key, type, body, deliveries, created_at)
SELECT n, 'evt_bench_' || n, NULL, 'log.door_was_opened', :body, :webhooks,
       :start + n * :step
FROM g
"""
_DELIVERIES = """
INSERT INTO deliveries (id, event_seq, webhook_id, state, attempts, due_at, created_at,
                        updated_at, last_status_code, last_error)
SELECT n, (n - 1) / :webhooks + 1, (n - 1) % :webhooks + 1,
       CASE WHEN n > :pending_from THEN 'pending' WHEN n % 50 = 0 THEN 'failed'
            ELSE 'succeeded' END,
       CASE WHEN n > :pending_from THEN 0 ELSE 1 END,
       :start + ((n - 1) / :webhooks + 1) * :step,
       :start + ((n - 1) / :webhooks + 1) * :step,
       :start + ((n - 1) / :webhooks + 1) * :step,
       CASE WHEN n > :pending_from THEN NULL WHEN n % 50 = 0 THEN 503 ELSE 200 END,
       NULL
FROM g
"""
_ATTEMPTS = """
INSERT INTO attempts (delivery_id, number, started_at, duration_ms, status_code, response_body,
                      error)
SELECT n, 1, :start + ((n - 1) / :webhooks + 1) * :step, 5 + (n % 37),
       CASE WHEN n % 50 = 0 THEN 503 ELSE 200 END,
       CASE WHEN n % 50 = 0 THEN 'busy, try later' ELSE 'ok' END, NULL
FROM g WHERE n <= :pending_from
"""


async def fill(url: str, rows: int, pending: int = 2000) -> dict[str, float]:
    db = Database(url)
    backend = "sqlite" if db.is_sqlite else "postgres"
    for n in range(WEBHOOKS):
        await webhooks.create_webhook(
            db,
            "device",
            WebhookFields(f"http://127.0.0.1:9/hook/{n}", ("log.door_was_opened",)),
        )
    events = rows // WEBHOOKS
    now = time.time()
    params = {
        "webhooks": WEBHOOKS,
        "start": now - DAY,
        "step": DAY / events,
        "body": b'{"id": "evt", "type": "log.door_was_opened", "data": {"door": 1}}',
        "pending_from": rows - pending,
    }
    timings = {}
    for name, statement, count in (
        ("events", _EVENTS, events),
        ("deliveries", _DELIVERIES, rows),
        ("attempts", _ATTEMPTS, rows),
    ):
        started = time.perf_counter()
        async with db.transaction() as conn:
            await conn.execute(text(_SERIES[backend] + statement), {**params, "rows": count})
        timings[f"fill_{name}_s"] = round(time.perf_counter() - started, 1)
        say(f"console_pages: {count} {name} in {timings[f'fill_{name}_s']} s")
    await _fill_minutes(db, now)
    if backend == "postgres":
        for table in ("events", "deliveries", "attempts"):
            await _postgres_sequence(db, table)
    started = time.perf_counter()
    if db.is_sqlite:
        async with db.transaction() as conn:
            await conn.execute(text("ANALYZE"))
    else:
        # What autovacuum would have done by now (it is off on this machine): statistics, and
        # the visibility map that lets index-only scans skip the table.
        async with db.engine.connect() as conn:
            conn = await conn.execution_options(isolation_level="AUTOCOMMIT")
            await conn.execute(text("VACUUM ANALYZE"))
            await conn.execute(text("CHECKPOINT"))
    timings["analyze_s"] = round(time.perf_counter() - started, 1)
    await db.close()
    return timings


async def _postgres_sequence(db: Database, table: str) -> None:
    """Rows inserted with explicit keys leave the sequence behind: move it past them."""
    column = "seq" if table == "events" else "id"
    async with db.transaction() as conn:
        await conn.execute(
            text(
                f"SELECT setval(pg_get_serial_sequence('{table}', '{column}'), "
                f"(SELECT max({column}) FROM {table}))"
            )
        )


async def _fill_minutes(db: Database, now: float) -> None:
    """A day of per-minute counters, one shard a minute."""
    last = int(now // 60)
    rows = [
        {
            "minute": minute,
            "shard": 0,
            "attempts": 700,
            "answered_2xx": 686,
            "exhausted": 14,
            **{name: (700 if name == "ms_50" else 0) for name in LATENCY_COLUMNS},
        }
        for minute in range(last - 24 * 60, last + 1)
    ]
    columns = ["minute", "shard", "attempts", "answered_2xx", "exhausted", *LATENCY_COLUMNS]
    async with db.transaction() as conn:
        await conn.execute(
            text(
                f"INSERT INTO delivery_stats ({', '.join(columns)}) "
                f"VALUES ({', '.join(':' + c for c in columns)})"
            ),
            rows,
        )


def _login(client: httpx.Client, password: str) -> None:
    page = client.get("/login")
    nonce = re.search(r'name="nonce" value="([^"]+)"', page.text)
    assert nonce, page.text
    answer = client.post(
        "/login",
        data={"nonce": nonce.group(1), "next": "/", "username": "admin", "password": password},
    )
    assert answer.status_code == 303, answer.text


def _time_pages(
    client: httpx.Client, pages: dict[str, str], requests: int
) -> dict[str, dict[str, float]]:
    """Each page `requests` times (after a warm-up), one request at a time, round robin."""
    timings: dict[str, list[float]] = {name: [] for name in pages}
    for round_number in range(WARM_UP + requests):
        for name, path in pages.items():
            started = time.perf_counter()
            answer = client.get(path)
            elapsed = (time.perf_counter() - started) * 1000
            if answer.status_code != 200:
                raise RuntimeError(f"{path}: HTTP {answer.status_code}: {answer.text[:300]}")
            if round_number >= WARM_UP:
                timings[name].append(elapsed)
    return {
        name: {
            "p50_ms": round(statistics.median(values), 1),
            "p95_ms": round(sorted(values)[int(0.95 * (len(values) - 1))], 1),
            "max_ms": round(max(values), 1),
        }
        for name, values in timings.items()
    }


def measure(url: str, rows: int, pending: int, requests: int, workdir: Path) -> dict[str, Any]:
    hookd = HookdProcesses(workdir, url, workers=1, serve_args=("--no-worker",))
    with hookd:
        hookd.migrate()
        figures: dict[str, Any] = {
            "rows": rows,
            "pending": pending,
            **asyncio.run(fill(url, rows, pending)),
        }
        hookd.start()
        with httpx.Client(base_url=hookd.base_url, timeout=30) as client:
            _login(client, hookd.password)
            newest = rows
            deep_cursor = newest - PAGE_SIZE * (DEEP_PAGE - 1) + 1
            pages = {
                "healthz (ceiling)": "/healthz",
                "overview 6 h": "/",
                "overview 24 h": "/?hours=24",
                "log page 1": "/deliveries",
                f"log page {DEEP_PAGE}": f"/deliveries?before={deep_cursor}",
                "log, failed only": "/deliveries?state=failed",
                f"log, webhook 3, page {DEEP_PAGE}": (
                    f"/deliveries?webhook=3&before={newest - PAGE_SIZE * WEBHOOKS * DEEP_PAGE}"
                ),
                "log, one event": f"/deliveries?event=evt_bench_{rows // WEBHOOKS // 2}",
                "webhooks (health of each)": "/webhooks",
                "one delivery": f"/deliveries/{rows // 2}",
            }
            # The deep page is the thousandth: check that it is what the cursor says.
            deep = client.get(pages[f"log page {DEEP_PAGE}"]).text
            first_row = re.search(r'<tr data-id="(\d+)">', deep)
            assert first_row and int(first_row.group(1)) == deep_cursor - 1
            figures["pages"] = _time_pages(client, pages, requests)
    ceiling = figures["pages"]["healthz (ceiling)"]["p50_ms"]
    for found in figures["pages"].values():
        found["x_healthz"] = round(found["p50_ms"] / ceiling, 1) if ceiling else None
    return figures


def _measure_backend(backend: str, rows: int, pending: int, requests: int) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="hookd-console-") as tmp:
        workdir = Path(tmp)
        if backend == "sqlite":
            url = f"sqlite:///{workdir / 'hookd.db'}"
            return measure(url, rows, pending, requests, workdir)
        database = ThrowAwayDatabase()
        why = database.available()
        if why is not None:
            return {"skipped": f"PostgreSQL unavailable: {why}"}
        with database:
            return measure(database.url, rows, pending, requests, workdir)


def print_table(backend: str, figures: dict[str, Any]) -> None:
    if "pages" not in figures:
        print(f"{backend}: {figures}")
        return
    print(
        f"\n{backend}, {figures['rows']:,} deliveries of which {figures['pending']:,} pending "
        "(p50 / p95 / max ms; × the /healthz p50)"
    )
    for name, found in figures["pages"].items():
        print(
            f"  {name:32} {found['p50_ms']:8.1f} {found['p95_ms']:8.1f} {found['max_ms']:8.1f}"
            f"   ×{found['x_healthz']}"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=1_000_000, help="deliveries in the store")
    parser.add_argument("--backend", choices=("sqlite", "postgres", "both"), default="both")
    parser.add_argument("--pending", type=int, default=2000, help="of them still pending")
    parser.add_argument("--requests", type=int, default=30, help="timed requests per page")
    parser.add_argument("--wait-quiet", type=float, default=0.0, help="wait up to S seconds")
    parser.add_argument("--json", action="store_true", help="measure one backend, print JSON")
    args = parser.parse_args()
    backends = ["sqlite", "postgres"] if args.backend == "both" else [args.backend]
    if args.json:
        print(json.dumps(_measure_backend(backends[0], args.rows, args.pending, args.requests)))
        return
    for backend in backends:
        if args.wait_quiet > 0:
            say(f"waiting up to {args.wait_quiet:.0f}s for the machine to be quiet")
            say(f"load before start: {machine.wait_quiet(args.wait_quiet)} cores")
        say(f"console_pages: {backend}, {args.rows} deliveries")
        # Each backend in a process of its own (a fresh interpreter and store).
        done = subprocess.run(
            [
                sys.executable,
                "-m",
                "bench.console_pages",
                "--rows",
                str(args.rows),
                "--backend",
                backend,
                "--pending",
                str(args.pending),
                "--requests",
                str(args.requests),
                "--json",
            ],
            capture_output=True,
            text=True,
            timeout=1800,
            check=False,
        )
        if done.returncode != 0:
            print(f"{backend}: failed\n{done.stderr[-3000:]}")
            continue
        print_table(backend, json.loads(done.stdout.strip().splitlines()[-1]))


if __name__ == "__main__":
    main()
