"""Alembic, driven from code: `hookd migrate` and the start-up schema check."""

from __future__ import annotations

from typing import Any

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

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


def _upgrade(sync_conn: Any, revision: str) -> None:
    command.upgrade(_config(sync_conn), revision)


async def _create_schema(conn: AsyncConnection, schema: str) -> None:
    """Create hookd's schema unless it exists (creating asks for a right that using does not)."""
    found = await conn.execute(
        text("SELECT 1 FROM pg_namespace WHERE nspname = :schema"), {"schema": schema}
    )
    if found.first() is None:
        await conn.exec_driver_sql(f'CREATE SCHEMA "{schema}"')


class MigrationError(RuntimeError):
    pass


async def upgrade(db: Database, revision: str = "head") -> None:
    """Migrate to `revision`, all of it in one transaction."""
    if not db.is_sqlite:
        async with db.transaction() as conn:
            await _create_schema(conn, db.schema)
            await conn.run_sync(_upgrade, revision)
        return
    # SQLite changes a table by building a new one and dropping the old; with foreign keys
    # enforced, that drop would delete the rows referring to the old table. The pragma only
    # takes effect outside a transaction, so this one is begun and ended by hand.
    async with db.engine.connect() as conn:
        conn = await conn.execution_options(sqlite_begin=None)
        await conn.exec_driver_sql("PRAGMA foreign_keys=OFF")
        try:
            await conn.exec_driver_sql("BEGIN IMMEDIATE")
            try:
                await conn.run_sync(_upgrade, revision)
                broken = (await conn.exec_driver_sql("PRAGMA foreign_key_check")).all()
                if broken:
                    raise MigrationError(f"the migration broke foreign keys: {broken[:5]}")
            except BaseException:
                await conn.exec_driver_sql("ROLLBACK")
                raise
            await conn.exec_driver_sql("COMMIT")
        finally:
            await conn.exec_driver_sql("PRAGMA foreign_keys=ON")


async def schema_problem(db: Database) -> str | None:
    """Why the store cannot be used as it is, or None when its schema is current."""
    current, head = await current_revision(db), head_revision()
    if current == head:
        return None
    if current is None:
        return "the database has no hookd schema yet: run `hookd migrate`"
    return f"the database schema is at {current}, this hookd needs {head}: run `hookd migrate`"
