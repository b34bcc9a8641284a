"""SQLite has one process per store: claims a crashed process left are given back at start."""

from __future__ import annotations

import time
from typing import Any

import pytest

from hookd.config import load_settings
from hookd.domain.webhook import WebhookFields
from hookd.store import webhooks
from hookd.store.database import Database
from hookd.store.events import NewEvent, publish
from hookd.store.queue import claim_due
from support import Receiver, migrated_store_url


@pytest.fixture
async def sqlite_url(tmp_path: Any) -> str:
    return await migrated_store_url("sqlite", tmp_path)


async def test_claims_of_a_crashed_process_go_out_at_the_next_start(
    sqlite_url: str, api_factory: Any, receiver: Receiver
) -> None:
    db = Database(sqlite_url)
    try:
        fields = WebhookFields(url=receiver.url(), topics=("log.door_was_opened",))
        await webhooks.create_webhook(db, "device", fields)
        await publish(db, [NewEvent(f"e{n}", "log.door_was_opened", b"{}") for n in range(5)],
                      time.time())  # fmt: skip
        # The process that claimed these died before sending them; its lease has 90 s to run.
        assert len(await claim_due(db, 10, time.time(), lease=90)) == 5
    finally:
        await db.close()

    await api_factory(load_settings(database_url=sqlite_url, allow_targets="127.0.0.0/8"))
    await receiver.wait_for(5, timeout=5)
    assert len(receiver.requests) == 5, "the new process waited for the dead one's leases"
