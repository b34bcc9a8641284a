"""Shared fixtures: a store on each backend, the app, tokens, and a real receiver on 127.0.0.1.

Every test that takes `database_url` (directly or through `settings`, `db`, `client`…) runs
once on SQLite and once on PostgreSQL. PostgreSQL runs when HOOKD_TEST_DATABASE_URL is set;
without it those cases are skipped, and HOOKD_REQUIRE_POSTGRES=1 turns that skip into a failure.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import httpx
import orjson
import pytest
from aiohttp import web
from sqlalchemy import text

from hookd.api.app import create_app
from hookd.config import Settings, load_settings
from hookd.domain.credentials import hash_password
from hookd.store import accounts, migrate
from hookd.store.database import Database
from hookd.store.schema import metadata

POSTGRES_URL = os.environ.get("HOOKD_TEST_DATABASE_URL")
REQUIRE_POSTGRES = os.environ.get("HOOKD_REQUIRE_POSTGRES") == "1"
ADMIN_PASSWORD = "admin-password-1"
USER_PASSWORD = "user-password-1"

_postgres_migrated = False


@pytest.fixture(autouse=True, scope="session")
def _cheap_password_hashing() -> Iterator[None]:
    """Argon2 at its production cost takes ~100 ms a hash; tests log in a lot."""
    from argon2 import PasswordHasher

    from hookd.domain import credentials

    production = credentials._hasher
    credentials._hasher = PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)
    yield
    credentials._hasher = production


def pytest_report_header() -> str:
    if POSTGRES_URL:
        return f"hookd: PostgreSQL tests run against {POSTGRES_URL}"
    return (
        "hookd: PostgreSQL tests SKIPPED (set HOOKD_TEST_DATABASE_URL=postgresql://... to run them)"
    )


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if not POSTGRES_URL:
        terminalreporter.write_line(
            "hookd: the PostgreSQL half of the suite was SKIPPED: HOOKD_TEST_DATABASE_URL is "
            "not set. Only SQLite was tested.",
            yellow=True,
            bold=True,
        )


async def _reset_postgres(url: str) -> None:
    global _postgres_migrated
    db = Database(url, pool_size=1)
    try:
        if not _postgres_migrated:
            async with db.transaction() as conn:
                await conn.execute(text("DROP SCHEMA public CASCADE"))
                await conn.execute(text("CREATE SCHEMA public"))
            await migrate.upgrade(db)
            _postgres_migrated = True
        else:
            tables = ", ".join(table.name for table in metadata.sorted_tables)
            async with db.transaction() as conn:
                await conn.execute(text(f"TRUNCATE {tables} RESTART IDENTITY CASCADE"))
    finally:
        await db.close()


async def migrated_store_url(backend: str, tmp_path: Any) -> str:
    """A migrated, empty store: a new SQLite file, or the emptied PostgreSQL test database."""
    if backend == "sqlite":
        url = f"sqlite:///{tmp_path}/hookd.db"
        db = Database(url, pool_size=1)
        await migrate.upgrade(db)
        await db.close()
        return url
    if not POSTGRES_URL:
        if REQUIRE_POSTGRES:
            pytest.fail("HOOKD_REQUIRE_POSTGRES=1 but HOOKD_TEST_DATABASE_URL is not set")
        pytest.skip("PostgreSQL half skipped: HOOKD_TEST_DATABASE_URL is not set")
    await _reset_postgres(POSTGRES_URL)
    return POSTGRES_URL


@pytest.fixture(params=["sqlite", "postgresql"])
async def database_url(request: pytest.FixtureRequest, tmp_path: Any) -> str:
    """A migrated, empty store on each backend."""
    return await migrated_store_url(request.param, tmp_path)


@pytest.fixture
def make_settings(database_url: str) -> Callable[..., Settings]:
    def make(**overrides: Any) -> Settings:
        values: dict[str, Any] = {
            "database_url": database_url,
            "allow_targets": "127.0.0.0/8,::1/128",
            "retry_schedule": "50ms",
            "poll_interval": "200ms",
            "admin_password": ADMIN_PASSWORD,
        }
        values.update(overrides)
        return load_settings(**values)

    return make


@pytest.fixture
def settings(make_settings: Callable[..., Settings]) -> Settings:
    return make_settings()


@pytest.fixture
async def db(database_url: str) -> AsyncIterator[Database]:
    database = Database(database_url)
    yield database
    await database.close()


@dataclass
class Api:
    """An in-process hookd (API and, unless turned off, its embedded worker)."""

    client: httpx.AsyncClient
    admin: dict[str, str]
    user: dict[str, str]
    settings: Settings

    async def create_webhook(self, **fields: Any) -> dict[str, Any]:
        body = {"event_types": ["log.door_was_opened"], "secret": "s" * 16, **fields}
        response = await self.client.post("/api/v1/webhooks", json=body, headers=self.admin)
        assert response.status_code == 201, response.text
        return response.json()  # type: ignore[no-any-return]

    async def publish(self, events: Any) -> dict[str, Any]:
        response = await self.client.post("/api/v1/events", json=events, headers=self.user)
        assert response.status_code == 202, response.text
        return response.json()  # type: ignore[no-any-return]

    async def deliveries(self, uid: int, **params: Any) -> list[dict[str, Any]]:
        response = await self.client.get(
            f"/api/v1/webhooks/{uid}/deliveries", params=params, headers=self.admin
        )
        assert response.status_code == 200, response.text
        return response.json()["items"]  # type: ignore[no-any-return]

    async def wait_for_deliveries(
        self,
        uid: int,
        count: int,
        *,
        states: tuple[str, ...] = ("succeeded", "failed"),
        timeout: float = 10.0,
    ) -> list[dict[str, Any]]:
        """Poll the delivery log until `count` deliveries of `uid` are in one of `states`."""
        deadline = time.monotonic() + timeout
        while True:
            items = await self.deliveries(uid, limit=1000)
            done = [item for item in items if item["status"] in states]
            if len(done) >= count or time.monotonic() > deadline:
                return items
            await asyncio.sleep(0.05)


async def _login(client: httpx.AsyncClient, username: str, password: str) -> dict[str, str]:
    response = await client.post("/api/v1/login", json={"username": username, "password": password})
    assert response.status_code == 200, response.text
    return {"Authorization": f"Bearer {response.json()['token']}"}


@pytest.fixture
def run_worker() -> bool:
    """Override in a module (or with indirect parametrisation) to run the app without worker."""
    return True


@asynccontextmanager
async def _running_api(settings: Settings, run_worker: bool) -> AsyncIterator[Api]:
    database = Database(settings.database_url, pool_size=1)
    for name, password, role in (
        ("admin", ADMIN_PASSWORD, "admin"),
        ("user", USER_PASSWORD, "user"),
    ):
        if await accounts.find_login(database, name) is None:
            await accounts.create_user(database, name, hash_password(password), role)
    await database.close()
    app = create_app(settings, run_worker=run_worker)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://hookd.test") as client:
            admin = await _login(client, "admin", ADMIN_PASSWORD)
            user = await _login(client, "user", USER_PASSWORD)
            yield Api(client, admin, user, settings)


@pytest.fixture
async def api(settings: Settings, run_worker: bool) -> AsyncIterator[Api]:
    async with _running_api(settings, run_worker) as running:
        yield running


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: bytes
    at: float

    def json(self) -> Any:
        return orjson.loads(self.body)


@dataclass
class Receiver:
    """A real HTTP receiver on 127.0.0.1 whose answers a test scripts."""

    port: int = 0
    requests: list[Received] = field(default_factory=list)
    # Answers given in turn per path; once used up, `default` answers.
    script: dict[str, list[tuple[int, dict[str, str], float, bytes]]] = field(default_factory=dict)
    default: tuple[int, dict[str, str], float, bytes] = (200, {}, 0.0, b"ok")
    arrived: asyncio.Event = field(default_factory=asyncio.Event)

    def url(self, path: str = "/hook") -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def answer(
        self,
        path: str,
        status: int,
        *,
        headers: dict[str, str] | None = None,
        delay: float = 0.0,
        body: bytes = b"",
    ) -> None:
        self.script.setdefault(path, []).append((status, headers or {}, delay, body))

    def at(self, path: str) -> list[Received]:
        return [request for request in self.requests if request.path == path]

    async def wait_for(self, count: int, path: str | None = None, timeout: float = 10.0) -> None:
        deadline = time.monotonic() + timeout
        while len(self.at(path) if path else self.requests) < count:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return
            self.arrived.clear()
            try:
                await asyncio.wait_for(self.arrived.wait(), remaining)
            except TimeoutError:
                return

    async def handle(self, request: web.Request) -> web.StreamResponse:
        body = await request.read()
        self.requests.append(Received(request.path, dict(request.headers), body, time.time()))
        self.arrived.set()
        queue = self.script.get(request.path)
        status, headers, delay, reply = queue.pop(0) if queue else self.default
        if delay:
            await asyncio.sleep(delay)
        return web.Response(status=status, headers=headers, body=reply)


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    found = Receiver()
    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", found.handle)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    found.port = runner.addresses[0][1]
    yield found
    await runner.cleanup()


@pytest.fixture
async def api_factory(run_worker: bool) -> AsyncIterator[Callable[[Settings], Any]]:
    """Start an in-process hookd with settings of the test's choosing (at most a few)."""
    from contextlib import AsyncExitStack

    async with AsyncExitStack() as stack:

        async def start(settings: Settings) -> Api:
            return await stack.enter_async_context(_running_api(settings, run_worker))

        yield start


@pytest.fixture
def unused_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
async def postgres_url(tmp_path: Any) -> str:
    """An empty, migrated PostgreSQL store (for tests that need several processes)."""
    return await migrated_store_url("postgresql", tmp_path)
