"""Fixtures: a store on each backend, the app, tokens, and a real receiver on 127.0.0.1.

Every test that takes `database_url` (directly or through `settings`, `db`, `api`…) runs once on
SQLite and once on PostgreSQL. PostgreSQL runs when HOOKD_TEST_DATABASE_URL is set; without it
those cases are skipped, and HOOKD_REQUIRE_POSTGRES=1 turns that skip into a failure. What the
fixtures are made of is in `support.py`.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import AsyncExitStack
from typing import Any

import pytest

from hookd.config import Settings, load_settings
from hookd.store.database import Database
from support import (
    ADMIN_PASSWORD,
    POSTGRES_URL,
    Api,
    Receiver,
    chromium_missing,
    free_port,
    migrated_store_url,
    running_api,
    start_receiver,
)


@pytest.fixture(autouse=True, scope="session")
def _cheap_password_hashing() -> Iterator[None]:
    """Argon2 at its production cost takes ~100 ms a hash; tests log in a lot."""
    from argon2 import PasswordHasher

    from hookd.domain import credentials

    production = credentials._hasher
    credentials._hasher = PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)
    yield
    credentials._hasher = production


def pytest_report_header() -> list[str]:
    lines = []
    if POSTGRES_URL:
        lines.append(f"hookd: PostgreSQL tests run against {POSTGRES_URL}")
    else:
        lines.append(
            "hookd: PostgreSQL tests SKIPPED (set HOOKD_TEST_DATABASE_URL=postgresql://... to run "
            "them)"
        )
    missing = chromium_missing()
    lines.append(
        f"hookd: browser tests SKIPPED: {missing}" if missing else "hookd: browser tests run"
    )
    return lines


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if not POSTGRES_URL:
        terminalreporter.write_line(
            "hookd: the PostgreSQL half of the suite was SKIPPED: HOOKD_TEST_DATABASE_URL is "
            "not set. Only SQLite was tested.",
            yellow=True,
            bold=True,
        )
    missing = chromium_missing()
    if missing:
        terminalreporter.write_line(
            f"hookd: the web console's browser tests were SKIPPED: {missing}.",
            yellow=True,
            bold=True,
        )


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


@pytest.fixture
def run_worker() -> bool:
    """Override in a module (or with indirect parametrisation) to run the app without worker."""
    return True


@pytest.fixture
async def api(settings: Settings, run_worker: bool) -> AsyncIterator[Api]:
    async with running_api(settings, run_worker) as running:
        yield running


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    found, runner = await start_receiver()
    yield found
    await runner.cleanup()


@pytest.fixture
async def api_factory(run_worker: bool) -> AsyncIterator[Callable[[Settings], Any]]:
    """Start an in-process hookd with settings of the test's choosing (at most a few)."""
    async with AsyncExitStack() as stack:

        async def start(settings: Settings) -> Api:
            return await stack.enter_async_context(running_api(settings, run_worker))

        yield start


@pytest.fixture
def unused_port() -> int:
    return free_port()


@pytest.fixture
async def postgres_url(tmp_path: Any) -> str:
    """An empty, migrated PostgreSQL store (for tests that need several processes)."""
    return await migrated_store_url("postgresql", tmp_path)
