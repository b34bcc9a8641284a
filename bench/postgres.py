"""A throw-away PostgreSQL database for one benchmark run (127.0.0.1 only)."""

from __future__ import annotations

import asyncio
import os
from urllib.parse import urlsplit, urlunsplit

import asyncpg

from bench import procstat
from bench.console import say

DEFAULT_ADMIN_URL = "postgresql://postgres@127.0.0.1:5432/postgres"


def admin_url() -> str:
    url = os.environ.get("HOOKD_BENCH_PG_URL", DEFAULT_ADMIN_URL)
    host = urlsplit(url).hostname
    if host not in ("127.0.0.1", "localhost"):
        raise SystemExit(f"HOOKD_BENCH_PG_URL must point at 127.0.0.1, not {host!r}")
    return url


def database_url(admin: str, name: str) -> str:
    parts = urlsplit(admin)
    return urlunsplit((parts.scheme, parts.netloc, f"/{name}", "", ""))


async def _execute(url: str, sql: str, limit_s: float = 15) -> None:
    conn = await asyncpg.connect(url, timeout=limit_s)
    try:
        await conn.execute(sql, timeout=limit_s)
    finally:
        await conn.close(timeout=limit_s)


class ThrowAwayDatabase:
    """``hookd_bench_<pid>``: created on enter, dropped (WITH FORCE) on exit."""

    def __init__(self, admin: str | None = None) -> None:
        self.admin = admin or admin_url()
        self.name = f"hookd_bench_{os.getpid()}"
        self.url = database_url(self.admin, self.name)

    def available(self) -> str | None:
        """None when PostgreSQL answers; otherwise why not."""
        try:
            asyncio.run(_execute(self.admin, "SELECT 1", limit_s=5))
        except (OSError, asyncpg.PostgresError, TimeoutError) as exc:
            return f"{type(exc).__name__}: {exc}"
        return None

    def __enter__(self) -> ThrowAwayDatabase:
        asyncio.run(_execute(self.admin, f'DROP DATABASE IF EXISTS "{self.name}" WITH (FORCE)'))
        asyncio.run(_execute(self.admin, f'CREATE DATABASE "{self.name}"'))
        say(f"postgres: created database {self.name}")
        return self

    def __exit__(self, *exc: object) -> None:
        try:
            asyncio.run(_execute(self.admin, f'DROP DATABASE IF EXISTS "{self.name}" WITH (FORCE)'))
            say(f"postgres: dropped database {self.name}")
        except (OSError, asyncpg.PostgresError, TimeoutError) as err:
            say(f"postgres: could not drop {self.name}: {err}")


def server_pids() -> dict[int, str]:
    """Every local PostgreSQL process (postmaster, backends, WAL writer, checkpointer…).

    The figure covers the whole cluster, so anything else using it during the run is counted too.
    """
    return {pid: "postgres" for pid in procstat.pids_by_comm_prefix("postgres")}
