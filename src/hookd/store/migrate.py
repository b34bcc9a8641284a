"""Alembic, driven from code: `hookd migrate` and the start-up schema check."""

from __future__ import annotations

from typing import Any

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory

from hookd.store.database import Database


def _config(connection: Any = None) -> Config:
    config = Config()
    config.set_main_option("script_location", "hookd.store:migrations")
    config.attributes["connection"] = connection
    return config


def head_revision() -> str | None:
    return ScriptDirectory.from_config(_config()).get_current_head()


async def current_revision(db: Database) -> str | None:
    async with db.read() as conn:
        return await conn.run_sync(
            lambda sync_conn: MigrationContext.configure(sync_conn).get_current_revision()
        )


async def upgrade(db: Database) -> None:
    async with db.transaction() as conn:
        await conn.run_sync(lambda sync_conn: command.upgrade(_config(sync_conn), "head"))


async def schema_problem(db: Database) -> str | None:
    """Why the store cannot be used as it is, or None when its schema is current."""
    current, head = await current_revision(db), head_revision()
    if current == head:
        return None
    if current is None:
        return "the database has no hookd schema yet: run `hookd migrate`"
    return f"the database schema is at {current}, this hookd needs {head}: run `hookd migrate`"
