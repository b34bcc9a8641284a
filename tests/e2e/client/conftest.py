"""A `hookd serve` subprocess on a free loopback port (SQLite, an admin and a user made
beforehand), a real receiver on 127.0.0.1, and the client in both flavours: `Client`, and
`AsyncClient` driven on an event loop of its own, so that every scenario runs with each."""

from __future__ import annotations

import asyncio
import json
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest

from hookd.client import AsyncClient, Client
from hookd.domain.credentials import hash_password
from hookd.store import accounts, migrate
from hookd.store.database import Database
from support import ADMIN_PASSWORD, HOOKD, USER_PASSWORD, environment, free_port

STARTUP_SECONDS = 90  # a loaded machine starts slowly
# The server's publish limit: small enough that a test reaches it with a few hundred events,
# large enough that 1000 small events fit (so the count limit is reached too).
PUBLISH_BYTES = 64 * 1024


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class Receiver:
    """A real HTTP receiver on 127.0.0.1, in a thread (the blocking client's tests have no
    event loop): it answers each path with the status set for it (200 by default)."""

    port: int = 0
    requests: list[Received] = field(default_factory=list)
    statuses: dict[str, int] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def at(self, path: str) -> list[Received]:
        with self.lock:
            return [request for request in self.requests if request.path == path]

    def wait_for(self, count: int, path: str, timeout: float = 20.0) -> list[Received]:
        deadline = time.monotonic() + timeout
        while len(self.at(path)) < count and time.monotonic() < deadline:
            time.sleep(0.05)
        return self.at(path)


def _handler(receiver: Receiver) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("content-length") or 0))
            with receiver.lock:
                receiver.requests.append(Received(self.path, dict(self.headers), body))
            status = receiver.statuses.get(self.path, 200)
            answer = json.dumps({"seen": self.path}).encode()
            self.send_response(status)
            self.send_header("content-type", "application/json")
            self.send_header("content-length", str(len(answer)))
            self.end_headers()
            self.wfile.write(answer)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    return Handler


@pytest.fixture(scope="package")
def receiver() -> Iterator[Receiver]:
    found = Receiver()
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(found))
    found.port = server.server_address[1]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield found
    finally:
        server.shutdown()
        server.server_close()


async def _prepare_store(url: str) -> None:
    db = Database(url, pool_size=1)
    try:
        await migrate.upgrade(db)
        await accounts.create_user(db, "admin", hash_password(ADMIN_PASSWORD), "admin")
        await accounts.create_user(db, "user", hash_password(USER_PASSWORD), "user")
    finally:
        await db.close()


@dataclass(frozen=True)
class Server:
    base_url: str
    process: subprocess.Popen[bytes]


@pytest.fixture(scope="package")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    directory = tmp_path_factory.mktemp("client-serve")
    url = f"sqlite:///{directory}/hookd.db"
    asyncio.run(_prepare_store(url))
    port = free_port()
    base_url = f"http://127.0.0.1:{port}"
    process = subprocess.Popen(
        [HOOKD, "serve", "--port", str(port)],
        cwd=directory,
        env=environment(
            HOOKD_DATABASE_URL=url,
            HOOKD_ALLOW_TARGETS="127.0.0.0/8",
            HOOKD_POLL_INTERVAL="100ms",
            HOOKD_RETRY_SCHEDULE="100ms",
            HOOKD_MAX_EVENT_BYTES="16384",
            HOOKD_MAX_PUBLISH_BYTES=str(PUBLISH_BYTES),
        ),
        stdin=subprocess.DEVNULL,
        stdout=(directory / "serve.out").open("wb"),
        stderr=(directory / "serve.err").open("wb"),
    )
    try:
        _wait_healthy(base_url, process, directory)
        yield Server(base_url, process)
    finally:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)


def _wait_healthy(base_url: str, process: subprocess.Popen[bytes], directory: Path) -> None:
    deadline = time.monotonic() + STARTUP_SECONDS
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError((directory / "serve.err").read_text())
        try:
            if httpx.get(f"{base_url}/healthz", timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    raise AssertionError(f"hookd serve did not answer within {STARTUP_SECONDS} s")


class Blocking:
    """An AsyncClient whose calls are run to completion on its own event loop, so that one
    scenario drives either flavour."""

    def __init__(self, client: AsyncClient, loop: asyncio.AbstractEventLoop) -> None:
        self._client = client
        self._loop = loop

    @property
    def token(self) -> str | None:
        return self._client.token

    def __getattr__(self, name: str) -> Callable[..., Any]:
        call = getattr(self._client, name)

        def run(*args: Any, **kwargs: Any) -> Any:
            return self._loop.run_until_complete(call(*args, **kwargs))

        return run


# Makes a client of the test's flavour: make(token=..., username=..., ...).
MakeClient = Callable[..., Any]


@pytest.fixture(params=["sync", "async"])
def make_client(request: pytest.FixtureRequest, server: Server) -> Iterator[MakeClient]:
    made: list[Any] = []
    loop = asyncio.new_event_loop() if request.param == "async" else None

    def make(**options: Any) -> Any:
        if loop is None:
            client: Any = Client(server.base_url, **options)
            made.append(client)
            return client
        async_client = AsyncClient(server.base_url, **options)
        made.append(async_client)
        return Blocking(async_client, loop)

    try:
        yield make
    finally:
        for client in made:
            if loop is None:
                client.close()
            else:
                loop.run_until_complete(client.close())
        if loop is not None:
            loop.close()


@pytest.fixture
def admin(make_client: MakeClient) -> Any:
    """A client logged in as the admin (by username and password, at its first call)."""
    return make_client(username="admin", password=ADMIN_PASSWORD)


@pytest.fixture
def user(make_client: MakeClient) -> Any:
    return make_client(username="user", password=USER_PASSWORD)
