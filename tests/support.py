"""What the tests share: stores on each backend, an in-process hookd, a real receiver on
127.0.0.1, the `hookd` command as a subprocess, and the device dialect's specification."""

from __future__ import annotations

import asyncio
import os
import re
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
from aiohttp import web
from sqlalchemy import insert, text
from sqlalchemy.ext.asyncio import AsyncConnection

from hookd.app import create_app
from hookd.config import Settings, load_settings
from hookd.domain.credentials import hash_password
from hookd.store import accounts, migrate
from hookd.store.database import Database
from hookd.store.schema import deliveries, events, metadata

POSTGRES_URL = os.environ.get("HOOKD_TEST_DATABASE_URL")
REQUIRE_POSTGRES = os.environ.get("HOOKD_REQUIRE_POSTGRES") == "1"
REQUIRE_CHROMIUM = os.environ.get("HOOKD_REQUIRE_CHROMIUM") == "1"
ADMIN_PASSWORD = "admin-password-1"
USER_PASSWORD = "user-password-1"

_postgres_migrated = False

# --- stores -----------------------------------------------------------------------------------


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


async def queue_in_transaction(
    conn: AsyncConnection, webhook_id: int, event_id: str, topic: str, due_at: float, now: float
) -> None:
    """An event and its one delivery written in `conn`'s transaction, visible only when the caller
    commits it: a publish still in flight (PostgreSQL hands out its ids before it commits)."""
    seq = (
        await conn.execute(
            insert(events).returning(events.c.seq),
            {"id": event_id, "type": topic, "body": b"{}", "deliveries": 1, "created_at": now},
        )
    ).scalar_one()
    await conn.execute(
        insert(deliveries),
        {"event_seq": seq, "webhook_id": webhook_id, "state": "pending", "due_at": due_at,
         "created_at": now, "updated_at": now},
    )  # fmt: skip


# --- an in-process hookd ---------------------------------------------------------------------


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


async def login(client: httpx.AsyncClient, username: str, password: str) -> dict[str, str]:
    response = await client.post("/api/v1/login", json={"username": username, "password": password})
    assert response.status_code == 200, response.text
    return {"Authorization": f"Bearer {response.json()['token']}"}


@asynccontextmanager
async def running_api(settings: Settings, run_worker: bool) -> AsyncIterator[Api]:
    database = Database(settings.database_url, pool_size=1, schema=settings.database_schema)
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
            admin = await login(client, "admin", ADMIN_PASSWORD)
            user = await login(client, "user", USER_PASSWORD)
            yield Api(client, admin, user, settings)


# --- a receiver ------------------------------------------------------------------------------


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


async def start_receiver() -> tuple[Receiver, web.AppRunner]:
    found = Receiver()
    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", found.handle)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    found.port = runner.addresses[0][1]
    return found, runner


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


# --- the `hookd` command ----------------------------------------------------------------------

HOOKD = str(Path(sys.executable).with_name("hookd"))


def environment(**settings: str) -> dict[str, str]:
    """The caller's environment without any HOOKD_* setting (and without COLUMNS, so the output
    is laid out as for any non-terminal), plus `settings`."""
    env = {
        name: value
        for name, value in os.environ.items()
        if not name.startswith("HOOKD_") and name not in ("COLUMNS", "LINES")
    }
    return {**env, **settings}


def start_worker(
    started: list[subprocess.Popen[bytes]],
    url: str,
    tmp_path: Path,
    *args: str,
    **env: str,
) -> subprocess.Popen[bytes]:
    """Start a `hookd worker args…` process on `url`, its output in `tmp_path`/worker-N.log; it
    is added to `started`, which the caller kills when done."""
    settings = {
        "HOOKD_DATABASE_URL": url,
        "HOOKD_ALLOW_TARGETS": "127.0.0.0/8",
        "HOOKD_POLL_INTERVAL": "200ms",
        "HOOKD_RETRY_SCHEDULE": "100ms",
        **env,
    }
    log = (tmp_path / f"worker-{len(started)}.log").open("wb")
    process = subprocess.Popen(
        [HOOKD, "worker", *args],
        env={**os.environ, **settings},
        cwd=tmp_path,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    started.append(process)
    return process


def hookd(
    cwd: Path,
    *args: str,
    env: dict[str, str] | None = None,
    timeout: float = 60,
    stdin: str | None = None,
) -> subprocess.CompletedProcess[str]:
    """Run `hookd args…` (with `stdin` as its standard input, else none); subprocess.run kills
    it if it outlives `timeout`."""
    return subprocess.run(
        [HOOKD, *args],
        cwd=cwd,
        env=env if env is not None else environment(),
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
        **({"input": stdin} if stdin is not None else {"stdin": subprocess.DEVNULL}),
    )


# --- the device dialect's specification -------------------------------------------------------

# A copy of the device dialect's specification (its webhook entity), read for the exact values
# it lists.
DEVICE_SPEC = (Path(__file__).parent / "data" / "device-webhook-spec.txt").read_text()


def spec_event_types() -> list[str]:
    """The specification's `event_types` values, in its order."""
    section = DEVICE_SPEC.split("- event_types string[]", 1)[1].split("]Describes", 1)[0]
    return re.findall(r"log\.[a-z_]+", section)


def spec_system_headers() -> list[str]:
    """The specification's system headers, which `headers` may not override."""
    section = DEVICE_SPEC.split("system headers cannot be overridden (", 1)[1].split(")", 1)[0]
    return re.findall(r'"([^"]+)"', section)


BASE: dict[str, Any] = {
    "url": "http://127.0.0.1:9/hook",
    "event_types": ["log.door_was_opened"],
    "secret": "s" * 16,
}


@dataclass
class Shared:
    client: httpx.AsyncClient
    admin: dict[str, str]
    user: dict[str, str]
    target: int
    target_entity: dict[str, Any]

    async def total(self) -> int:
        response = await self.client.get("/api/v1/webhooks", headers=self.admin)
        assert response.status_code == 200, response.text
        return int(response.json()["total"])

    async def entity(self, uid: int) -> dict[str, Any]:
        response = await self.client.get(f"/api/v1/webhooks/{uid}", headers=self.admin)
        assert response.status_code == 200, response.text
        return response.json()  # type: ignore[no-any-return]

    async def create(self, body: Any) -> httpx.Response:
        return await self.client.post("/api/v1/webhooks", json=body, headers=self.admin)

    async def send(
        self, method: str, path: str, body: Any = None, headers: dict[str, str] | None = None
    ) -> httpx.Response:
        return await self.client.request(
            method, path, json=body, headers=self.admin if headers is None else headers
        )

    async def assert_target_untouched(self) -> None:
        assert await self.entity(self.target) == self.target_entity


@asynccontextmanager
async def running_device_app(backend: str, tmp: Path) -> AsyncIterator[Shared]:
    """An app on a fresh store of `backend`, with an admin, a user and a target webhook."""
    url = await migrated_store_url(backend, tmp)
    db = Database(url, pool_size=1)
    await accounts.create_user(db, "admin", hash_password(ADMIN_PASSWORD), "admin")
    await accounts.create_user(db, "user", hash_password(USER_PASSWORD), "user")
    await db.close()
    settings = load_settings(database_url=url, allow_targets="127.0.0.0/8")
    app = create_app(settings, run_worker=False)
    async with app.router.lifespan_context(app):
        # A 500 is an answer to check, not an exception to propagate.
        transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url="http://hookd.test") as client:
            admin = await login(client, "admin", ADMIN_PASSWORD)
            user = await login(client, "user", USER_PASSWORD)
            body = {
                **BASE,
                "description": "the target of refused PUTs and PATCHes",
                "headers": '{"X-Target": "yes"}',
                "timeout": 4321,
                "max_retries": 2,
                "status": "disabled",
                "event_types": ["log.tamper_event", "log.door_was_opened"],
            }
            created = await client.post("/api/v1/webhooks", json=body, headers=admin)
            assert created.status_code == 201, created.text
            target = created.json()
            yield Shared(client, admin, user, target["uid"], target)


def assert_field_error(response: httpx.Response, field: str, says: str | None = None) -> None:
    """400 `{"error": "<field>: <message>"}`, the message holding `says` when given."""
    assert response.status_code == 400, response.text
    body = response.json()
    assert list(body) == ["error"], body
    message = body["error"]
    assert isinstance(message, str)
    assert message.startswith(f"{field}: "), message
    assert message[len(field) + 2 :].strip(), message
    if says is not None:
        assert says.lower() in message[len(field) + 2 :].lower(), message


def assert_error(response: httpx.Response, status: int, message: str) -> None:
    assert response.status_code == status, response.text
    assert response.json() == {"error": message}


# --- a browser (the web console's tests) ------------------------------------------------------

# Debian's Chromium, driven by Playwright; Playwright never downloads a browser of its own.
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def chromium_missing() -> str | None:
    """Why the browser tests cannot run here, or None when they can."""
    if not CHROMIUM.exists():
        return f"{CHROMIUM} is not installed (apt-get install chromium)"
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "the playwright package is not installed (make test installs it)"
    return None


@dataclass
class ServedHookd:
    """`hookd serve` running as a subprocess on 127.0.0.1."""

    base: str
    process: subprocess.Popen[bytes]
    cwd: Path


def start_serve(cwd: Path, **settings: str) -> ServedHookd:
    """Start `hookd serve` on a free port in `cwd` and wait until /healthz answers."""
    port = free_port()
    log = (cwd / "serve.log").open("wb")
    process = subprocess.Popen(
        [HOOKD, "serve", "--port", str(port)],
        cwd=cwd,
        env=environment(**settings),
        stdin=subprocess.DEVNULL,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while True:
        if process.poll() is not None:
            raise AssertionError(f"hookd serve exited: {(cwd / 'serve.log').read_text()}")
        try:
            if httpx.get(f"{base}/healthz", timeout=1).status_code == 200:
                return ServedHookd(base, process, cwd)
        except httpx.TransportError:
            pass
        if time.monotonic() > deadline:
            process.kill()
            raise AssertionError("hookd serve did not answer within 30 s")
        time.sleep(0.1)


def stop_serve(served: ServedHookd) -> None:
    if served.process.poll() is None:
        served.process.terminate()
        try:
            served.process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            served.process.kill()
            served.process.wait(timeout=10)


# --- the web console over HTTP ------------------------------------------------------------------


def form_token(html: str) -> str:
    """The token a console page's forms carry."""
    found = re.search(r'name="csrf" value="([^"]+)"', html)
    assert found, "the page has no form token"
    return found.group(1)


async def console_login(
    client: httpx.AsyncClient, username: str, password: str, next_page: str = "/"
) -> httpx.Response:
    """Log in through the console's form (with the nonce its page sets); the client keeps the
    session cookie."""
    page = await client.get("/login")
    nonce = re.search(r'name="nonce" value="([^"]+)"', page.text)
    assert nonce, page.text
    return await client.post(
        "/login",
        data={
            "nonce": nonce.group(1),
            "next": next_page,
            "username": username,
            "password": password,
        },
    )


@asynccontextmanager
async def console_client(
    api: Api, username: str, password: str
) -> AsyncIterator[httpx.AsyncClient]:
    """A second client of the same app (its own cookies), logged in to the console."""
    transport = api.client._transport
    async with httpx.AsyncClient(transport=transport, base_url="http://hookd.test") as client:
        answer = await console_login(client, username, password)
        assert answer.status_code == 303, answer.text
        yield client


# --- a store that goes away ----------------------------------------------------------------------


class TcpProxy:
    """A TCP forwarder on 127.0.0.1 in front of another loopback port, that can be stopped (every
    connection through it is cut, new ones are refused) and started again on the same port: a
    PostgreSQL server that goes away and comes back, without touching the real one."""

    def __init__(self, target_port: int) -> None:
        self.target_port = target_port
        self.port = free_port()
        self._server: asyncio.Server | None = None
        self._open: set[asyncio.StreamWriter] = set()

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._forward, "127.0.0.1", self.port)

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None
        for writer in list(self._open):
            writer.transport.abort()
        self._open.clear()

    async def _forward(
        self, client_r: asyncio.StreamReader, client_w: asyncio.StreamWriter
    ) -> None:
        try:
            server_r, server_w = await asyncio.open_connection("127.0.0.1", self.target_port)
        except OSError:
            client_w.transport.abort()
            return
        self._open.update((client_w, server_w))

        async def pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            try:
                while data := await reader.read(65536):
                    writer.write(data)
                    await writer.drain()
            except (OSError, asyncio.CancelledError):
                pass
            finally:
                writer.transport.abort()
                self._open.discard(writer)

        await asyncio.gather(pipe(client_r, server_w), pipe(server_r, client_w))


def through_proxy(url: str, proxy: TcpProxy) -> str:
    """A PostgreSQL URL `url` reached through `proxy` instead."""
    from sqlalchemy.engine import make_url

    parsed = make_url(url).set(host="127.0.0.1", port=proxy.port)
    return parsed.render_as_string(hide_password=False)


class FailingWrites:
    """Makes every write statement of a SQLite store fail as a full disk fails it ("database or
    disk is full"), while reads go on working: a fault injected into the store's engine."""

    WRITES = ("INSERT", "UPDATE", "DELETE", "PRAGMA USER_VERSION =")

    def __init__(self, db: Database) -> None:
        import sqlite3

        from sqlalchemy import event

        self.failing = False

        def before(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
            if self.failing and statement.lstrip().upper().startswith(self.WRITES):
                raise sqlite3.OperationalError("database or disk is full")

        for engine in db.sync_engines:
            event.listen(engine, "before_cursor_execute", before)


# --- hookd behind a real server -------------------------------------------------------------------


@asynccontextmanager
async def served_api(settings: Settings) -> AsyncIterator[Api]:
    """hookd served by uvicorn with its own protocol and limits (as `hookd serve` runs it) on
    127.0.0.1, in this event loop; the Api's client talks to it over TCP."""
    import uvicorn

    from hookd.http.server import ServerLimits, protocol

    database = Database(settings.database_url, pool_size=1)
    for name, password, role in (
        ("admin", ADMIN_PASSWORD, "admin"),
        ("user", USER_PASSWORD, "user"),
    ):
        if await accounts.find_login(database, name) is None:
            await accounts.create_user(database, name, hash_password(password), role)
    await database.close()
    port = free_port()
    config = uvicorn.Config(
        create_app(settings, run_worker=True),
        host="127.0.0.1",
        port=port,
        http=protocol(ServerLimits.of(settings)),
        ws="none",
        log_level="warning",
    )
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    try:
        for _ in range(500):
            if server.started:
                break
            assert not task.done(), "the server stopped"
            await asyncio.sleep(0.02)
        base = f"http://127.0.0.1:{port}"
        async with httpx.AsyncClient(base_url=base, timeout=30) as client:
            admin = await login(client, "admin", ADMIN_PASSWORD)
            user = await login(client, "user", USER_PASSWORD)
            yield Api(client, admin, user, settings)
    finally:
        server.should_exit = True
        await asyncio.wait_for(task, 60)
