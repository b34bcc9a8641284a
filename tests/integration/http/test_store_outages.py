"""A store that is away or full: 503 with Retry-After and a one-line reason in the shape of the
path's dialect, /healthz 503 while the store cannot write, one log line per change of state (no
traceback per request or poll), and recovery without a restart.

A full SQLite disk is simulated by failing every write statement of the engine as SQLite fails
them on a full disk; PostgreSQL goes away behind a TCP proxy that is stopped and started again
(the real server is never touched).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from hookd.config import load_settings
from support import (
    ADMIN_PASSWORD,
    POSTGRES_URL,
    Api,
    FailingWrites,
    Receiver,
    TcpProxy,
    migrated_store_url,
    running_api,
    through_proxy,
)

EVENT = {"type": "log.door_was_opened"}


def settings_for(url: str) -> Any:
    return load_settings(
        database_url=url,
        allow_targets="127.0.0.0/8",
        retry_schedule="50ms",
        poll_interval="200ms",
        admin_password=ADMIN_PASSWORD,
    )


def outage_lines(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.getMessage().startswith("store unavail")]


def recovery_lines(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if "available again" in r.getMessage()]


def tracebacks(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.exc_info]


async def until(check: Any, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not await check():
        assert time.monotonic() < deadline, "not within the time allowed"
        await asyncio.sleep(0.1)


def assert_unavailable(response: httpx.Response, reason: str, *, shape: str = "device") -> None:
    assert response.status_code == 503, response.text
    assert response.headers["retry-after"] == "5"
    body = response.json()
    if shape == "device":
        assert body == {"error": f"Unavailable: {reason}"}
    else:
        assert body == {"code": 503, "reason": f"Unavailable: {reason}"}


# --- a full SQLite store ----------------------------------------------------------------------


@pytest.fixture
async def sqlite_api(tmp_path: Path) -> AsyncIterator[Api]:
    url = await migrated_store_url("sqlite", tmp_path)
    async with running_api(settings_for(url), run_worker=True) as api:
        yield api


def failing_writes(api: Api) -> FailingWrites:
    db = api_services(api).db
    db.availability.write_outage_hold = 1.0  # rather than 30 s
    return FailingWrites(db)


def api_services(api: Api) -> Any:
    transport = api.client._transport
    assert isinstance(transport, httpx.ASGITransport)
    return transport.app.state.services  # type: ignore[attr-defined]


async def test_a_full_sqlite_store_answers_503_and_recovers(
    sqlite_api: Api, caplog: pytest.LogCaptureFixture
) -> None:
    api = sqlite_api
    caplog.set_level(logging.INFO)
    disk = failing_writes(api)
    await api.publish(EVENT)

    disk.failing = True
    for _ in range(5):
        published = await api.client.post("/api/v1/events", json=EVENT, headers=api.user)
        assert_unavailable(published, "the store is full")
    login = await api.client.post(
        "/api/v1/login", json={"username": "admin", "password": ADMIN_PASSWORD}
    )
    assert_unavailable(login, "the store is full")
    repository = await api.client.put("/r/repo1", json={"name": "r"}, headers=api.admin)
    assert_unavailable(repository, "the store is full", shape="repository")
    health = await api.client.get("/healthz")
    assert health.status_code == 503
    assert health.json() == {"status": "unavailable", "reason": "the store is full"}
    # Reads go on.
    assert (await api.client.get("/api/v1/webhooks", headers=api.admin)).status_code == 200

    disk.failing = False

    async def healthy() -> bool:
        return (await api.client.get("/healthz")).status_code == 200

    await until(healthy)
    await api.publish(EVENT)
    assert outage_lines(caplog) and len(outage_lines(caplog)) == 1, caplog.text
    assert len(recovery_lines(caplog)) == 1, caplog.text
    assert tracebacks(caplog) == []


async def test_healthz_finds_a_store_that_cannot_write_before_anyone_writes(
    sqlite_api: Api,
) -> None:
    api = sqlite_api
    disk = failing_writes(api)
    disk.failing = True

    async def unhealthy() -> bool:
        response = await api.client.get("/healthz")
        return response.status_code == 503 and response.json()["reason"] == "the store is full"

    await until(unhealthy)


# --- PostgreSQL goes away ------------------------------------------------------------------------


@pytest.fixture
async def proxied_postgres(tmp_path: Path) -> AsyncIterator[tuple[TcpProxy, str]]:
    url = await migrated_store_url("postgresql", tmp_path)
    assert POSTGRES_URL
    from sqlalchemy.engine import make_url

    proxy = TcpProxy(make_url(url).port or 5432)
    await proxy.start()
    try:
        yield proxy, through_proxy(url, proxy)
    finally:
        await proxy.stop()


async def test_postgresql_going_away_answers_503_and_recovers(
    proxied_postgres: tuple[TcpProxy, str],
    receiver: Receiver,
    caplog: pytest.LogCaptureFixture,
) -> None:
    proxy, url = proxied_postgres
    caplog.set_level(logging.INFO)
    async with running_api(settings_for(url), run_worker=True) as api:
        hook = await api.create_webhook(url=receiver.url())
        await api.publish(EVENT)
        await receiver.wait_for(1)

        await proxy.stop()
        for _ in range(3):
            published = await api.client.post("/api/v1/events", json=EVENT, headers=api.user)
            assert_unavailable(published, "the store does not answer")
        trigger = await api.client.post(
            "/r/repo1/events/document.created/trigger", json={}, headers=api.user
        )
        assert_unavailable(trigger, "the store does not answer", shape="repository")
        login = await api.client.post(
            "/api/v1/login", json={"username": "admin", "password": ADMIN_PASSWORD}
        )
        assert_unavailable(login, "the store does not answer")
        health = await api.client.get("/healthz")
        assert health.status_code == 503
        assert health.json()["reason"] == "the store does not answer"
        await asyncio.sleep(2.0)  # the worker polls every 200 ms meanwhile

        await proxy.start()

        async def healthy() -> bool:
            return (await api.client.get("/healthz")).status_code == 200

        await until(healthy)
        await api.publish(EVENT)
        await receiver.wait_for(2)
        await api.wait_for_deliveries(hook["uid"], 2)

    assert len(outage_lines(caplog)) == 1, caplog.text
    assert len(recovery_lines(caplog)) == 1, caplog.text
    assert tracebacks(caplog) == [], caplog.text
