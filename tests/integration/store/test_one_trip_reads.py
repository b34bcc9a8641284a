"""Reads done by a synchronous function (`Database.run_read`): on SQLite in one round trip of the
event loop, on a reading thread; on PostgreSQL through run_sync. They see what was committed,
read beside a writer, and report outages like other reads."""

from __future__ import annotations

import asyncio
import sqlite3
import threading
from collections.abc import Callable

import pytest
from sqlalchemy import Connection, text

from hookd.store.availability import StoreUnavailable
from hookd.store.database import Database


def _names(conn: Connection) -> list[str]:
    return list(conn.execute(text("SELECT name FROM event_types ORDER BY name")).scalars())


def _add_type(
    name: str, started: threading.Event, release: threading.Event
) -> Callable[[Connection], None]:
    """Adds an event type, then waits (uncommitted) until `release` is set."""

    def work(conn: Connection) -> None:
        conn.execute(
            text("INSERT INTO event_types (name, description, created_at) VALUES (:n, '', 0)"),
            {"n": name},
        )
        started.set()
        release.wait(10)

    return work


async def test_a_read_sees_what_was_committed(db: Database) -> None:
    done = threading.Event()
    done.set()
    await db.run(_add_type("shop.read_me", threading.Event(), done))
    assert "shop.read_me" in await db.run_read(_names)


async def test_a_read_goes_on_beside_a_write_in_progress(db: Database) -> None:
    if not db.is_sqlite:
        pytest.skip("PostgreSQL runs no writes on a thread of hookd's")
    started, release = threading.Event(), threading.Event()
    writing = asyncio.create_task(db.run(_add_type("shop.uncommitted", started, release)))
    try:
        await asyncio.to_thread(started.wait, 10)
        names = await asyncio.wait_for(db.run_read(_names), 5)  # not behind the writer
        assert "shop.uncommitted" not in names
    finally:
        release.set()
        await writing
    assert "shop.uncommitted" in await db.run_read(_names)


async def test_a_store_that_does_not_answer_is_an_outage(db: Database) -> None:
    if not db.is_sqlite:
        pytest.skip("SQLite's error stands for the outage here")

    def locked(conn: Connection) -> None:
        raise sqlite3.OperationalError("unable to open database file")

    with pytest.raises(StoreUnavailable):
        await db.run_read(locked)
