"""HOOKD_DATABASE_SCHEMA: hookd in a schema of its own in the producer's PostgreSQL database.

`hookd migrate` and `hookd serve` run as a new user would run them; events published over
HTTP, from SQL and through `hookd.publish` are all delivered to a receiver on 127.0.0.1.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import asyncpg
import httpx
import psycopg
import pytest

import hookd
from support import (
    POSTGRES_URL,
    REQUIRE_POSTGRES,
    Receiver,
    environment,
    start_serve,
    stop_serve,
)
from support import (
    hookd as run_hookd,
)

SCHEMA = "hookd_elsewhere"
EVENT = "log.door_was_opened"
PASSWORD = "admin-password-1"


@pytest.fixture
async def url() -> AsyncIterator[str]:
    if not POSTGRES_URL:
        if REQUIRE_POSTGRES:
            pytest.fail("HOOKD_REQUIRE_POSTGRES=1 but HOOKD_TEST_DATABASE_URL is not set")
        pytest.skip("PostgreSQL half skipped: HOOKD_TEST_DATABASE_URL is not set")
    conn = await asyncpg.connect(POSTGRES_URL)
    await conn.execute(f"DROP SCHEMA IF EXISTS {SCHEMA} CASCADE")
    try:
        yield POSTGRES_URL
    finally:
        await conn.execute(f"DROP SCHEMA IF EXISTS {SCHEMA} CASCADE")
        await conn.close()


async def test_hookd_lives_in_its_own_schema(url: str, receiver: Receiver, tmp_path: Path) -> None:
    settings = {
        "HOOKD_DATABASE_URL": url,
        "HOOKD_DATABASE_SCHEMA": SCHEMA,
        "HOOKD_ADMIN_PASSWORD": PASSWORD,
        "HOOKD_ALLOW_TARGETS": "127.0.0.0/8",
        "HOOKD_POLL_INTERVAL": "1h",
    }
    migrated = run_hookd(tmp_path, "migrate", env=environment(**settings))
    assert migrated.returncode == 0, migrated.stdout + migrated.stderr
    conn = await asyncpg.connect(url)
    try:
        found = await conn.fetchrow(
            f"SELECT to_regclass('{SCHEMA}.events') AS events,"
            f" to_regclass('{SCHEMA}.alembic_version') AS versions,"
            f" to_regprocedure('{SCHEMA}.publish(text, jsonb, text)') AS publish"
        )
        assert None not in tuple(found)
    finally:
        await conn.close()

    served = start_serve(tmp_path, **settings)
    try:
        async with httpx.AsyncClient(base_url=served.base, timeout=10) as client:
            login = {"username": "admin", "password": PASSWORD}
            token = (await client.post("/api/v1/login", json=login)).json()["token"]
            headers = {"Authorization": f"Bearer {token}"}
            hook = {"url": receiver.url(), "event_types": [EVENT]}
            created = await client.post("/api/v1/webhooks", json=hook, headers=headers)
            assert created.status_code == 201, created.text
            published = await client.post(
                "/api/v1/events", json={"type": EVENT, "id": "over-http"}, headers=headers
            )
            assert published.status_code == 202, published.text

        conn = await asyncpg.connect(url)  # the producer's own search_path: not hookd's schema
        try:
            await conn.fetchval(f"SELECT {SCHEMA}.publish('{EVENT}', NULL, 'in-sql')")
        finally:
            await conn.close()
        async with await psycopg.AsyncConnection.connect(url) as producer:
            ids = await hookd.publish(producer, [{"type": EVENT, "id": "in-python"}], schema=SCHEMA)
        assert ids == ["in-python"]

        await receiver.wait_for(3, timeout=60)
        delivered = sorted(request.headers["webhook-id"] for request in receiver.requests)
        assert delivered == ["in-python", "in-sql", "over-http"]
    finally:
        stop_serve(served)
