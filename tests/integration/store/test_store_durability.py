"""Durable commits wait for the disk; the worker's bookkeeping commits need not."""

from __future__ import annotations

from sqlalchemy import text

from hookd.store.database import Database


async def commit_setting(db: Database, *, durable: bool) -> str:
    async with db.transaction(durable=durable) as conn:
        if db.is_sqlite:
            level = (await conn.exec_driver_sql("PRAGMA synchronous")).scalar()
            return {2: "FULL", 1: "NORMAL"}.get(int(level or 0), str(level))
        return str((await conn.execute(text("SHOW synchronous_commit"))).scalar())


async def test_durable_commits_are_synchronous(db: Database) -> None:
    expected = "FULL" if db.is_sqlite else "on"
    assert await commit_setting(db, durable=True) == expected
    # Switching back and forth on pooled connections keeps each transaction's own setting.
    assert await commit_setting(db, durable=False) == ("NORMAL" if db.is_sqlite else "off")
    assert await commit_setting(db, durable=True) == expected


async def test_every_transaction_plans_each_statement_for_its_parameters(db: Database) -> None:
    """On PostgreSQL a cached generic plan made claims under a deep backlog slower, and a plan
    cached while a new store's tables were empty scanned them whole for idempotency keys."""
    if db.is_sqlite:
        return  # SQLite plans every statement anyway
    for durable in (False, True, False):
        async with db.transaction(durable=durable) as conn:
            mode = (await conn.execute(text("SHOW plan_cache_mode"))).scalar()
        assert mode == "force_custom_plan", (durable, mode)
    async with db.read() as conn:
        mode = (await conn.execute(text("SHOW plan_cache_mode"))).scalar()
    assert mode == "force_custom_plan"
