"""`hookd status` as an operator runs it, on each store: the queue by state, the last hour's
deliveries per minute, the failing and disabled webhooks (tables, and --json)."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import orjson
import pytest
from sqlalchemy import insert

from hookd.store import stats
from hookd.store.database import Database
from hookd.store.schema import deliveries, events, webhooks
from support import environment, hookd

pytestmark = pytest.mark.slow  # subprocesses


async def populate(url: str, now: float) -> None:
    db = Database(url, pool_size=1)
    # Every row names every column: an executemany takes its columns from the first row.
    hook = {
        "dialect": "device", "timeout_ms": 1000, "max_retries": 3, "created_at": int(now),
        "failing_since": None, "failures": 0, "probe_at": None, "disabled_reason": None,
    }  # fmt: skip
    try:
        async with db.transaction() as conn:
            await conn.execute(
                insert(webhooks),
                [
                    {**hook, "url": "http://127.0.0.1:9/ok", "status": "active",
                     "updated_at": int(now)},
                    {**hook, "url": "http://me:pw@127.0.0.1:9/failing?key=k", "status": "active",
                     "updated_at": int(now), "failing_since": now - 120, "failures": 4},
                    {**hook, "url": "http://127.0.0.1:9/suspended", "status": "active",
                     "updated_at": int(now), "failing_since": now - 600, "failures": 5,
                     "probe_at": now + 30},
                    {**hook, "url": "http://127.0.0.1:9/gone", "status": "disabled",
                     "updated_at": int(now),
                     "disabled_reason": "disabled by hookd: the receiver answered 410 Gone"},
                ],
            )  # fmt: skip
            await conn.execute(
                insert(events),
                [{"id": "e1", "type": "log.x", "body": b"{}", "deliveries": 6, "created_at": now}],
            )
            states = ["pending", "pending", "pending", "retrying", "delivering", "succeeded"]
            await conn.execute(
                insert(deliveries),
                [
                    {"event_seq": 1, "webhook_id": 1, "state": state, "due_at": now - 5,
                     "created_at": now, "updated_at": now}
                    for state in states
                ],
            )  # fmt: skip
            tally = stats.Tally(exhausted=2)
            for _ in range(30):
                tally.attempt(12.0, ok=True)
            tally.attempt(40.0, ok=False)
            await conn.run_sync(lambda sync: stats.add(sync, tally, now - 60))
    finally:
        await db.close()


async def test_status_shows_the_queue_the_last_hour_and_the_troubled_webhooks(
    database_url: str, tmp_path: Path
) -> None:
    now = time.time()
    await populate(database_url, now)
    env = environment(HOOKD_DATABASE_URL=database_url, COLUMNS="200")

    shown = hookd(tmp_path, "status", env=env)
    assert shown.returncode == 0, shown.stderr
    out = shown.stdout
    assert "Queue" in out and "Last hour" in out
    assert "Failing webhooks" in out and "Disabled webhooks" in out
    lines = {line.split()[0]: line.split()[1:] for line in out.splitlines() if line.split()}
    assert lines["pending"] == ["3"]
    assert lines["retrying"] == ["1"]
    assert lines["delivering"] == ["1"]
    assert "http://127.0.0.1:9/failing" in out
    assert "pw" not in out.replace("/suspended", "") and "key=k" not in out
    assert "410 Gone" in out

    document = orjson.loads(hookd(tmp_path, "status", "--json", env=env).stdout)
    assert document["queue"] == {"pending": 3, "retrying": 1, "delivering": 1}
    assert document["oldest_due_age_seconds"] >= 5
    assert len(document["minutes"]) == 60
    counted: dict[str, Any] = {
        key: sum(minute[key] for minute in document["minutes"])
        for key in ("attempts", "answered_2xx", "exhausted")
    }
    assert counted == {"attempts": 31, "answered_2xx": 30, "exhausted": 2}
    failing = {hook["url"]: hook for hook in document["failing_webhooks"]}
    assert set(failing) == {"http://127.0.0.1:9/failing", "http://127.0.0.1:9/suspended"}
    assert failing["http://127.0.0.1:9/suspended"]["suspended"] is True
    assert failing["http://127.0.0.1:9/failing"]["failures"] == 4
    [disabled] = document["disabled_webhooks"]
    assert disabled["url"] == "http://127.0.0.1:9/gone"
    assert "410" in disabled["disabled_reason"]


def test_status_of_an_empty_store(tmp_path: Path) -> None:
    env = environment(HOOKD_DATABASE_URL=f"sqlite:///{tmp_path}/x.db")
    assert hookd(tmp_path, "migrate", env=env).returncode == 0
    shown = hookd(tmp_path, "status", env=env)
    assert shown.returncode == 0, shown.stderr
    assert "No failing webhooks." in shown.stdout
    assert "No disabled webhooks." in shown.stdout
