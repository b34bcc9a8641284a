"""Validation hooks within bounds: an overall deadline per trigger (the answer names the hook
that ran out of time), at most a few chains per repository at once on a client pool of their
own (one repository's slow hook cannot make another's healthy hook time out), and a chain stops
when its caller goes away (what it called is logged)."""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import Callable
from typing import Any

import pytest

from hookd.config import Settings
from hookd.dialects.repository import store as repository_store
from hookd.store import deliveries
from hookd.store.database import Database
from support import Api, Receiver, served_api

EVENT = "document.beforecreate"


async def blocking_hook(
    api: Api, receiver: Receiver, repo: str, path: str, **fields: Any
) -> dict[str, Any]:
    response = await api.client.put(f"/r/{repo}", json={"name": repo}, headers=api.admin)
    assert response.status_code in (200, 201), response.text
    body = {
        "uri": receiver.url(path),
        "description": path,
        "handleResponse": "STATUS",
        "enabled": True,
        "retry": False,
        "timeout": 5000,
        **fields,
    }
    created = await api.client.post(f"/r/{repo}/events/{EVENT}", json=body, headers=api.admin)
    assert created.status_code == 201, created.text
    return created.json()  # type: ignore[no-any-return]


async def trigger(api: Api, repo: str) -> dict[str, Any]:
    response = await api.client.post(
        f"/r/{repo}/events/{EVENT}/trigger", json={}, headers=api.admin
    )
    assert response.status_code == 200, response.text
    return response.json()  # type: ignore[no-any-return]


async def test_a_trigger_stops_at_its_deadline_naming_the_hook(
    make_settings: Callable[..., Settings], api_factory: Any, receiver: Receiver
) -> None:
    api = await api_factory(make_settings(validation_deadline="1s"))
    hooks = [await blocking_hook(api, receiver, "repo1", f"/h{n}") for n in range(3)]
    for n in range(3):
        receiver.answer(f"/h{n}", 200, delay=0.45)

    started = time.monotonic()
    answer = await trigger(api, "repo1")

    assert time.monotonic() - started < 2.0
    assert answer["allowed"] is False
    first, second, third = answer["results"]
    assert (first["status_code"], second["status_code"]) == (200, 200)
    assert third["webhook"] == hooks[2]["id"]
    assert third["status_code"] is None
    assert "deadline of 1000 ms ran out" in third["error"]


async def test_retries_stop_at_the_deadline(
    make_settings: Callable[..., Settings], api_factory: Any, receiver: Receiver
) -> None:
    api = await api_factory(make_settings(validation_deadline="500ms"))
    await blocking_hook(api, receiver, "repo1", "/slow", retry=True, timeout=300)
    for _ in range(4):
        receiver.answer("/slow", 200, delay=2.0)

    [result] = (await trigger(api, "repo1"))["results"]

    assert result["attempts"] == 2  # 300 ms, then the 200 ms the deadline left
    assert "deadline of 500 ms ran out" in result["error"]


async def test_a_repository_s_slow_hooks_leave_others_alone(
    make_settings: Callable[..., Settings], api_factory: Any, receiver: Receiver
) -> None:
    """More slow triggers than the old shared pool's 64 connections: another repository's
    healthy hook (300 ms timeout) still answers in time."""
    api = await api_factory(make_settings(validation_deadline="1500ms"))
    await blocking_hook(api, receiver, "slow", "/slow")
    await blocking_hook(api, receiver, "fast", "/fast", timeout=300)
    for _ in range(70):
        receiver.answer("/slow", 200, delay=3.0)

    slow = [asyncio.create_task(trigger(api, "slow")) for _ in range(70)]
    await asyncio.sleep(0.3)  # the slow triggers hold what they can
    fast = await trigger(api, "fast")
    answers = await asyncio.gather(*slow)

    assert fast["allowed"] is True, fast
    assert all(answer["allowed"] is False for answer in answers)
    errors = [answer["results"][0]["error"] for answer in answers]
    ran_out = [e for e in errors if "deadline of 1500 ms ran out" in e]
    not_called = [e for e in errors if e.startswith("not called: 10 validations")]
    assert len(ran_out) + len(not_called) == 70, sorted(set(errors))
    # Ten at a time (test_chain checks that exactly); a trigger that waits for a slot past its
    # deadline is vetoed without a call.
    assert len(receiver.at("/slow")) <= len(ran_out)


@pytest.fixture
def slow_then_fast(receiver: Receiver) -> Receiver:
    receiver.answer("/first", 200, delay=2.0)
    return receiver


async def test_a_chain_stops_when_its_caller_goes_away(
    make_settings: Callable[..., Settings], slow_then_fast: Receiver, db: Database
) -> None:
    receiver = slow_then_fast
    async with served_api(make_settings()) as api:
        first = await blocking_hook(api, receiver, "repo1", "/first")
        await blocking_hook(api, receiver, "repo1", "/second")
        port = int(str(api.client.base_url).rsplit(":", 1)[1])
        token = api.admin["Authorization"]
        body = b"{}"
        request = (
            f"POST /r/repo1/events/{EVENT}/trigger HTTP/1.1\r\nHost: h\r\n"
            f"Authorization: {token}\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\n\r\n"
        ).encode() + body
        with socket.create_connection(("127.0.0.1", port)) as caller:
            caller.sendall(request)
            await receiver.wait_for(1, "/first")
        # The caller is gone while the first hook takes its time.
        await asyncio.sleep(2.5)

        assert len(receiver.at("/first")) == 1
        assert receiver.at("/second") == []
        found = await repository_store.get_webhook(db, first["id"])
        assert found is not None
        for _ in range(50):
            logged, _ = await deliveries.list_deliveries(
                db, found.webhook.id, state=None, limit=10, offset=0
            )
            if logged:
                break
            await asyncio.sleep(0.05)
        [delivery] = logged
        [attempt] = delivery.attempt_log
        assert attempt.error == "cancelled: the caller went away"
