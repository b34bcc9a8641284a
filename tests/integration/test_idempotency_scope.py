"""Event ids as idempotency keys: scoped to the dialect and to the producer's account, and
concurrent publishes of one id all answer the first result (on each backend)."""

from __future__ import annotations

import asyncio
import hashlib
from typing import Any

import httpx
from sqlalchemy import func, select

from hookd.domain.credentials import hash_password
from hookd.store import accounts
from hookd.store.database import Database
from hookd.store.schema import events
from support import USER_PASSWORD, Api, Receiver, login

EVENT = "log.door_was_opened"


async def second_user(api: Api) -> dict[str, str]:
    db = Database(api.settings.database_url, pool_size=1)
    try:
        await accounts.create_user(db, "other", hash_password(USER_PASSWORD), "user")
    finally:
        await db.close()
    return await login(api.client, "other", USER_PASSWORD)


async def stored_events(db: Database) -> int:
    async with db.read() as conn:
        return int((await conn.execute(select(func.count()).select_from(events))).scalar_one())


async def test_a_device_id_cannot_silence_a_repository_trigger(
    api: Api, receiver: Receiver
) -> None:
    await api.client.put("/r/repo1", json={"name": "r"}, headers=api.admin)
    hook = {"uri": receiver.url(), "description": "d", "handleResponse": "NONE", "enabled": True}
    created = await api.client.post(
        "/r/repo1/events/document.created", json=hook, headers=api.admin
    )
    assert created.status_code == 201, created.text
    # The key a repository trigger of id "change-1" was once stored under, sent as a device id.
    crafted = "s:" + hashlib.sha256(b"repo1/document.created\x00change-1").hexdigest()
    await api.publish({"type": EVENT, "id": crafted})

    triggered = await api.client.post(
        "/r/repo1/events/document.created/trigger", json={"id": "change-1"}, headers=api.user
    )

    assert triggered.status_code == 202, triggered.text
    assert triggered.json() == {"id": "change-1", "deliveries": 1}
    await receiver.wait_for(1)


async def test_one_id_in_both_dialects_is_two_events(api: Api, db: Database) -> None:
    await api.client.put("/r/repo1", json={"name": "r"}, headers=api.admin)
    await api.publish({"type": EVENT, "id": "same-1"})
    triggered = await api.client.post(
        "/r/repo1/events/document.created/trigger", json={"id": "same-1"}, headers=api.user
    )
    assert triggered.status_code == 202, triggered.text
    assert await stored_events(db) == 2


async def test_ids_are_the_producers_own(api: Api, receiver: Receiver, db: Database) -> None:
    hook = await api.create_webhook(url=receiver.url())
    other = await second_user(api)

    mine = await api.publish({"type": EVENT, "id": "order-7"})
    theirs = await api.client.post(
        "/api/v1/events", json={"type": EVENT, "id": "order-7"}, headers=other
    )
    again = await api.publish({"type": EVENT, "id": "order-7"})

    assert theirs.status_code == 202, theirs.text
    assert mine == theirs.json() == again == {"ids": ["order-7"], "deliveries": 1}
    assert await stored_events(db) == 2
    await api.wait_for_deliveries(hook["uid"], 2)
    await receiver.wait_for(2)
    assert len(receiver.requests) == 2


async def test_concurrent_publishes_of_one_id_answer_the_first_result(
    api: Api, receiver: Receiver, db: Database
) -> None:
    await api.create_webhook(url=receiver.url())
    body = [{"type": EVENT, "id": "burst-1"}, {"type": EVENT}]

    async def publish() -> httpx.Response:
        return await api.client.post("/api/v1/events", json=body, headers=api.user)

    answers = await asyncio.gather(*(publish() for _ in range(60)))

    assert [a.status_code for a in answers] == [202] * 60, {a.text for a in answers}
    firsts: set[Any] = {a.json()["ids"][0] for a in answers}
    assert firsts == {"burst-1"}
    async with db.read() as conn:
        keyed = await conn.execute(
            select(func.count()).select_from(events).where(events.c.id == "burst-1")
        )
        assert keyed.scalar_one() == 1
    assert await stored_events(db) == 61  # the one keyed event, and each request's other one
