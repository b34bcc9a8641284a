"""An idle worker sends a new event at once, not at its next poll.

The worker polls only once an hour here, so a delivery that arrives within seconds was woken:
in-process on SQLite, by PostgreSQL NOTIFY through a worker with a store connection of its own.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

from hookd.delivery.worker import Worker
from hookd.domain.webhook import WebhookFields
from hookd.store import webhooks
from hookd.store.database import Database
from hookd.store.events import NewEvent, publish
from support import Receiver


async def test_a_publish_wakes_an_idle_worker(
    db: Database, database_url: str, make_settings: Any, receiver: Receiver
) -> None:
    await webhooks.create_webhook(
        db, "device", WebhookFields(url=receiver.url(), topics=("log.door_was_opened",))
    )
    # On PostgreSQL the worker gets a Database of its own: only NOTIFY can reach it.
    worker_db = db if db.is_sqlite else Database(database_url)
    worker = Worker(worker_db, make_settings(poll_interval="1h"))
    running = asyncio.create_task(worker.run())
    try:
        await asyncio.sleep(1.0)  # idle: its first claim found nothing; it is listening
        assert receiver.requests == []
        started = time.monotonic()
        await publish(db, [NewEvent("e1", "log.door_was_opened", b"{}")], time.time())
        await receiver.wait_for(1, timeout=5)
        assert [r.headers["webhook-id"] for r in receiver.requests] == ["e1"]
        assert time.monotonic() - started < 5
    finally:
        worker.stop()
        await asyncio.wait_for(running, 10)
        if worker_db is not db:
            await worker_db.close()
