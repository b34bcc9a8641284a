"""The schema the migrations build is the schema `hookd.store.schema` declares, on each backend."""

from __future__ import annotations

from typing import Any

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import inspect, text

from hookd.store import migrate
from hookd.store.database import Database
from hookd.store.schema import metadata


def _is_sqlite_empty_string_default(diff: Any, dialect: str) -> bool:
    """Alembic's SQLite default comparison strips quotes with `'(.+)'`, which cannot match the
    empty string: a column declared and migrated with DEFAULT '' is reported as changed although
    SQLite holds exactly `DEFAULT ''`. test_sqlite_empty_defaults_really_are_empty checks that."""
    if dialect != "sqlite" or not isinstance(diff, list) or len(diff) != 1:
        return False
    kind, *_, inspected, declared = diff[0]
    return (
        kind == "modify_default"
        and str(getattr(inspected, "arg", inspected)).strip("()") in ("''", "")
        and getattr(declared, "arg", None) == ""
    )


def _declared_for(dialect: str) -> Any:
    """Alembic compares every declared index, even one declared for another backend only
    (`Index.ddl_if`, kept by SQLAlchemy as `_ddl_if`)."""

    def include(obj: Any, name: Any, type_: str, reflected: bool, compare_to: Any) -> bool:
        only_on = getattr(obj, "_ddl_if", None)
        return reflected or only_on is None or only_on.dialect in (None, dialect)

    return include


async def _differences(db: Database) -> list[Any]:
    def compare(sync_conn: Any) -> list[Any]:
        context = MigrationContext.configure(
            sync_conn,
            opts={
                "compare_type": True,
                "compare_server_default": True,
                "include_object": _declared_for(sync_conn.dialect.name),
            },
        )
        return list(compare_metadata(context, metadata))

    async with db.read() as conn:
        return await conn.run_sync(compare)


async def test_migrations_build_the_declared_schema(db: Database) -> None:
    dialect = "sqlite" if db.is_sqlite else "postgresql"
    differences = [
        diff
        for diff in await _differences(db)
        if not _is_sqlite_empty_string_default(diff, dialect)
    ]
    assert differences == []


async def test_sqlite_empty_defaults_really_are_empty(db: Database) -> None:
    # The differences ignored above: the columns do hold DEFAULT '' (or '' on PostgreSQL).
    def defaults(sync_conn: Any) -> dict[str, Any]:
        inspector = inspect(sync_conn)
        return {
            table: {c["name"]: c["default"] for c in inspector.get_columns(table)}["description"]
            for table in ("webhooks", "repository_events")
        }

    async with db.read() as conn:
        found = await conn.run_sync(defaults)
    for default in found.values():
        assert default is not None
        assert default.strip("()").split("::")[0] == "''"


async def test_schema_is_at_head(db: Database) -> None:
    assert await migrate.current_revision(db) == migrate.head_revision()
    assert await migrate.schema_problem(db) is None


async def test_every_table_is_migrated(db: Database) -> None:
    def tables(sync_conn: Any) -> set[str]:
        return set(inspect(sync_conn).get_table_names())

    async with db.read() as conn:
        found = await conn.run_sync(tables)
    assert set(metadata.tables) <= found
    assert found - set(metadata.tables) <= {"alembic_version"}


async def test_claim_index_is_partial(db: Database) -> None:
    # compare_metadata does not compare an index's WHERE; check the partial index by hand.
    if db.is_sqlite:
        query = "SELECT sql FROM sqlite_master WHERE name = 'ix_deliveries_due'"
    else:
        query = "SELECT indexdef FROM pg_indexes WHERE indexname = 'ix_deliveries_due'"
    async with db.read() as conn:
        definition = (await conn.execute(text(query))).scalar_one()
    assert "WHERE" in definition.upper()
    for state in ("pending", "retrying", "delivering"):
        assert f"'{state}'" in definition


async def test_fifo_heads_are_found_without_a_second_claim_index(db: Database) -> None:
    # Each partial index on `deliveries` is written by every publish (and, on PostgreSQL, again
    # by every claim): a second one for fifo heads cost SQLite a fifth of its publish rate and
    # made a PostgreSQL burst write 18 % more WAL. Both stores use webhooks.fifo_from instead.
    def indexes(sync_conn: Any) -> set[str]:
        return {index["name"] for index in inspect(sync_conn).get_indexes("deliveries")}

    async with db.read() as conn:
        found = await conn.run_sync(indexes)
    assert "ix_deliveries_head" not in found
    assert "ix_deliveries_due" in found
