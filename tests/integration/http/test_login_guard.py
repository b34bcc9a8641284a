"""Logins: throttled per user and per client address (429 + Retry-After), password checks off the
event loop in a bounded pool, and the same check for a user name that does not exist."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator, Callable

import httpx
import pytest
from argon2 import PasswordHasher

from hookd.config import Settings
from hookd.domain import credentials
from support import ADMIN_PASSWORD, USER_PASSWORD, running_api

Client = Callable[[str], httpx.AsyncClient]


class RecordingHasher(PasswordHasher):
    """The tests' cheap hasher, noting the thread of every check; `gate`, when set, holds
    checks until it opens."""

    def __init__(self) -> None:
        super().__init__(time_cost=1, memory_cost=1024, parallelism=1)
        self.threads: list[str] = []
        self.gate: threading.Event | None = None

    def verify(self, hash: str | bytes, password: str | bytes) -> bool:
        self.threads.append(threading.current_thread().name)
        if self.gate is not None:
            self.gate.wait(10)
        return super().verify(hash, password)


@pytest.fixture
def hasher(monkeypatch: pytest.MonkeyPatch) -> RecordingHasher:
    recording = RecordingHasher()
    monkeypatch.setattr(credentials, "_hasher", recording)
    return recording


@pytest.fixture
async def clients(
    make_settings: Callable[..., Settings], hasher: RecordingHasher
) -> AsyncIterator[Client]:
    """Clients of one app, each from the client address it is asked for."""
    settings = make_settings(
        login_failures_per_user=3, login_failures_per_address=5, login_window="2s"
    )
    async with running_api(settings, run_worker=False) as api:  # creates admin and user
        transport = api.client._transport
        assert isinstance(transport, httpx.ASGITransport)
        app = transport.app
        opened: list[httpx.AsyncClient] = []

        def client(address: str) -> httpx.AsyncClient:
            transport = httpx.ASGITransport(app=app, client=(address, 40000))
            opened.append(httpx.AsyncClient(transport=transport, base_url="http://hookd.test"))
            return opened[-1]

        yield client
        for each in opened:
            await each.aclose()


async def log_in(client: httpx.AsyncClient, username: str, password: str) -> httpx.Response:
    return await client.post("/api/v1/login", json={"username": username, "password": password})


def assert_throttled(response: httpx.Response) -> None:
    assert response.status_code == 429, response.text
    assert response.json() == {"error": "Too many attempts"}
    assert 1 <= int(response.headers["retry-after"]) <= 2


async def test_a_user_name_is_throttled_after_its_failures(clients: Client) -> None:
    one, other = clients("10.0.0.1"), clients("10.0.0.2")
    for _ in range(3):
        assert (await log_in(one, "admin", "wrong")).status_code == 401

    assert_throttled(await log_in(one, "admin", ADMIN_PASSWORD))
    assert_throttled(await log_in(other, "admin", ADMIN_PASSWORD))  # from anywhere
    assert (await log_in(one, "user", USER_PASSWORD)).status_code == 200  # others may log in

    await asyncio.sleep(2.1)  # the window passes
    assert (await log_in(other, "admin", ADMIN_PASSWORD)).status_code == 200


async def test_an_address_is_throttled_after_its_failures(clients: Client) -> None:
    attacker, elsewhere = clients("10.0.0.9"), clients("10.0.0.10")
    for name in ("a", "b", "c", "d", "e"):
        assert (await log_in(attacker, name, "guess")).status_code == 401

    assert_throttled(await log_in(attacker, "user", USER_PASSWORD))
    assert (await log_in(elsewhere, "user", USER_PASSWORD)).status_code == 200


async def test_a_throttled_login_costs_no_password_check(
    clients: Client, hasher: RecordingHasher
) -> None:
    client = clients("10.0.0.3")
    for _ in range(3):
        await log_in(client, "admin", "wrong")
    checks = len(hasher.threads)
    for _ in range(20):
        assert_throttled(await log_in(client, "admin", "wrong"))
    assert len(hasher.threads) == checks


async def test_a_success_clears_the_user_s_failures(clients: Client) -> None:
    client = clients("10.0.0.4")
    for _ in range(2):
        await log_in(client, "admin", "wrong")
    assert (await log_in(client, "admin", ADMIN_PASSWORD)).status_code == 200
    for _ in range(2):
        assert (await log_in(client, "admin", "wrong")).status_code == 401
    assert (await log_in(client, "admin", ADMIN_PASSWORD)).status_code == 200


async def test_passwords_are_checked_off_the_event_loop(
    clients: Client, hasher: RecordingHasher
) -> None:
    client = clients("10.0.0.5")
    hasher.threads.clear()
    assert (await log_in(client, "admin", ADMIN_PASSWORD)).status_code == 200
    assert (await log_in(client, "admin", "wrong")).status_code == 401
    assert hasher.threads
    assert threading.main_thread().name not in hasher.threads


async def test_an_unknown_user_name_costs_a_password_check_too(
    clients: Client, hasher: RecordingHasher
) -> None:
    client = clients("10.0.0.6")
    hasher.threads.clear()
    assert (await log_in(client, "nobody-by-this-name", "wrong")).status_code == 401
    assert len(hasher.threads) == 1


async def test_logins_beyond_the_queue_are_refused_at_once(
    make_settings: Callable[..., Settings], hasher: RecordingHasher
) -> None:
    settings = make_settings(password_threads=1, password_queue=1)
    async with running_api(settings, run_worker=False) as api:
        hasher.gate = threading.Event()
        try:
            waiting = [
                asyncio.create_task(log_in(api.client, "admin", ADMIN_PASSWORD)) for _ in range(2)
            ]
            await asyncio.sleep(0.2)  # one is being checked, one waits for the thread
            refused = await log_in(api.client, "admin", ADMIN_PASSWORD)
        finally:
            hasher.gate.set()
        assert refused.status_code == 503, refused.text
        assert refused.json() == {"error": "Too many logins at once"}
        assert refused.headers["retry-after"] == "1"
        assert [(await task).status_code for task in waiting] == [200, 200]


async def test_concurrent_guesses_get_no_more_checks_than_the_limit(
    clients: Client, hasher: RecordingHasher
) -> None:
    client = clients("10.0.0.7")
    hasher.threads.clear()
    hasher.gate = threading.Event()
    try:
        guesses = [asyncio.create_task(log_in(client, "admin", f"guess-{n}")) for n in range(20)]
        await asyncio.sleep(0.3)
    finally:
        hasher.gate.set()
    answers = [(await guess).status_code for guess in guesses]
    assert sorted(answers) == [401] * 3 + [429] * 17
    assert len(hasher.threads) == 3
