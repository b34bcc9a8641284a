"""Writes done by a synchronous function (`Database.run`): on SQLite in one round trip of the
event loop, on the store's own thread; on PostgreSQL through run_sync. They commit or roll back
whole, keep this process's writers one at a time, and report outages like other writes."""

from __future__ import annotations

import asyncio
import sqlite3
import threading
from typing import Any

import pytest
from sqlalchemy import Connection, text
from sqlalchemy.exc import IntegrityError

from hookd.store.availability import StoreUnavailable
from hookd.store.database import Database


async def _type_count(db: Database) -> int:
    async with db.read() as conn:
        return int((await conn.execute(text("SELECT count(*) FROM event_types"))).scalar_one())


def _add_type(name: str) -> Any:
    def work(conn: Connection) -> None:
        conn.execute(
            text("INSERT INTO event_types (name, description, created_at) VALUES (:n, '', 0)"),
            {"n": name},
        )

    return work


async def _add_type_the_pooled_way(db: Database, name: str) -> None:
    async with db.transaction() as conn:
        await conn.run_sync(_add_type(name))


async def test_a_run_commits_its_statements(db: Database) -> None:
    before = await _type_count(db)
    await db.run(_add_type("shop.order_placed"))
    assert await _type_count(db) == before + 1


async def test_a_run_that_raises_writes_nothing(db: Database) -> None:
    before = await _type_count(db)

    def half_then_fail(conn: Connection) -> None:
        _add_type("shop.order_paid")(conn)
        _add_type("shop.order_paid")(conn)  # the name is unique

    with pytest.raises(IntegrityError):
        await db.run(half_then_fail)
    assert await _type_count(db) == before
    await db.run(_add_type("shop.order_paid"))  # the store takes writes again at once
    assert await _type_count(db) == before + 1


async def test_a_cancelled_callers_transaction_still_commits_and_later_writes_wait_for_it(
    db: Database,
) -> None:
    if not db.is_sqlite:
        pytest.skip("PostgreSQL runs no writes on a thread of hookd's")
    started, release = threading.Event(), threading.Event()

    def slow(conn: Connection) -> None:
        started.set()
        release.wait(10)
        _add_type("shop.slow")(conn)

    before = await _type_count(db)
    first = asyncio.create_task(db.run(slow))
    await asyncio.to_thread(started.wait, 10)
    first.cancel()
    second = asyncio.create_task(_add_type_the_pooled_way(db, "shop.after"))
    await asyncio.sleep(0.2)
    assert not second.done()  # queued behind the transaction still running
    release.set()
    with pytest.raises(asyncio.CancelledError):
        await first
    await second
    assert await _type_count(db) == before + 2  # the cancelled caller's transaction went on


async def test_a_full_store_is_an_outage_not_an_error(db: Database) -> None:
    if not db.is_sqlite:
        pytest.skip("a full disk is simulated through SQLite's error")

    def full(conn: Connection) -> None:
        raise sqlite3.OperationalError("database or disk is full")

    with pytest.raises(StoreUnavailable):
        await db.run(full)
