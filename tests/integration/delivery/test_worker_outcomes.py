"""The worker records every outcome, however sends and writes interleave.

The sender here is a stand-in that holds attempts until the test releases them, so the test
can force the interleaving it needs; HTTP itself is covered by the delivery tests.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

from sqlalchemy import text

from hookd.delivery.sender import Attempt, Result
from hookd.delivery.worker import Worker
from hookd.domain.webhook import WebhookFields
from hookd.store import webhooks
from hookd.store.database import Database
from hookd.store.events import NewEvent, publish


class GatedSender:
    def __init__(self, released: int) -> None:
        self.gate = asyncio.Event()
        self.started = 0
        self.released = released

    async def open(self) -> None: ...

    async def close(self) -> None: ...

    async def send(self, attempt: Attempt) -> Result:
        self.started += 1
        if self.started > self.released:
            await self.gate.wait()
        return Result(time.time(), 1.0, status_code=200, body="ok")


async def states(db: Database) -> dict[str, int]:
    async with db.read() as conn:
        rows = await conn.execute(text("SELECT state, count(*) FROM deliveries GROUP BY state"))
        return {state: count for state, count in rows}


async def wait_for_state(db: Database, state: str, count: int) -> dict[str, int]:
    deadline = time.monotonic() + 5
    while (found := await states(db)).get(state, 0) < count and time.monotonic() < deadline:
        await asyncio.sleep(0.02)
    return found


async def test_outcomes_finishing_while_others_are_written_are_not_lost(
    db: Database, make_settings: Any
) -> None:
    await webhooks.create_webhook(
        db, "device", WebhookFields(url="http://127.0.0.1:9/", topics=("log.door_was_opened",))
    )
    await publish(db, [NewEvent(f"e{n}", "log.door_was_opened", b"{}") for n in range(10)],
                  time.time())  # fmt: skip
    sender = GatedSender(released=5)
    worker = Worker(db, make_settings(worker_lease="1h"), sender=sender)  # type: ignore[arg-type]
    running = asyncio.create_task(worker.run())
    try:
        assert (await wait_for_state(db, "succeeded", 5))["succeeded"] == 5
        sender.gate.set()
        found = await wait_for_state(db, "succeeded", 10)
        assert found == {"succeeded": 10}, f"outcomes lost: {found}"
    finally:
        worker.stop()
        sender.gate.set()
        await asyncio.wait_for(running, 10)


async def test_stop_gives_up_recording_when_the_store_is_away(
    db: Database, make_settings: Any, monkeypatch: Any
) -> None:
    import hookd.delivery.worker as worker_module

    await webhooks.create_webhook(
        db, "device", WebhookFields(url="http://127.0.0.1:9/", topics=("log.door_was_opened",))
    )
    await publish(db, [NewEvent("e", "log.door_was_opened", b"{}")], time.time())

    async def store_away(*_: Any) -> list[int]:
        raise OSError("the store is away")

    monkeypatch.setattr(worker_module, "record_outcomes", store_away)
    monkeypatch.setattr(worker_module, "SHUTDOWN_RECORD_SECONDS", 0.5)
    sender = GatedSender(released=1)
    worker = Worker(db, make_settings(poll_interval="50ms"), sender=sender)  # type: ignore[arg-type]
    running = asyncio.create_task(worker.run())
    deadline = time.monotonic() + 5
    while sender.started == 0 and time.monotonic() < deadline:
        await asyncio.sleep(0.02)
    worker.stop()
    await asyncio.wait_for(running, 5)  # returns although nothing could be recorded
    assert (await states(db)) == {"delivering": 1}  # its lease will bring it back


async def test_claims_stop_at_the_senders_plus_one_round_waiting(
    db: Database, make_settings: Any
) -> None:
    """With every sender stuck, a worker holds `capacity` in flight and at most as many waiting:
    a waiting delivery goes out within one round of sends, well inside its lease."""
    await webhooks.create_webhook(
        db, "device", WebhookFields(url="http://127.0.0.1:9/", topics=("log.door_was_opened",))
    )
    await publish(db, [NewEvent(f"e{n}", "log.door_was_opened", b"{}") for n in range(40)],
                  time.time())  # fmt: skip
    sender = GatedSender(released=0)
    settings = make_settings(worker_concurrency=4, worker_batch_size=50, poll_interval="20ms")
    worker = Worker(db, settings, sender=sender)  # type: ignore[arg-type]
    running = asyncio.create_task(worker.run())
    try:
        await wait_for_state(db, "delivering", 8)
        await asyncio.sleep(0.3)  # several poll intervals: time enough to claim more, if it would
        found = await states(db)
        assert sender.started == 4
        assert found == {"delivering": 8, "pending": 32}, found
        # Stopping gives back the claimed ones still waiting at once, and claims nothing more,
        worker.stop()
        found = await wait_for_state(db, "pending", 36)
        assert found == {"delivering": 4, "pending": 36}, found
    finally:
        worker.stop()
        sender.gate.set()
        await asyncio.wait_for(running, 10)
    # … and finishes the sends under way.
    assert (await states(db)) == {"succeeded": 4, "pending": 36}
