"""Producers' API keys: created and revoked by an administrator, found by their digest."""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import orjson
from sqlalchemy import Row, delete, insert, select

from hookd.store.database import Database
from hookd.store.schema import api_keys


@dataclass(slots=True, frozen=True)
class ApiKey:
    id: int
    name: str
    # The key's first characters, to tell it apart in a list.
    prefix: str
    # What it may publish (types or wildcards); None: any type.
    event_types: tuple[str, ...] | None
    created_at: int


_COLUMNS = (
    api_keys.c.id,
    api_keys.c.name,
    api_keys.c.prefix,
    api_keys.c.event_types,
    api_keys.c.created_at,
)


def _key(row: Row[Any, Any, Any, Any, Any]) -> ApiKey:
    scope = None if row.event_types is None else tuple(orjson.loads(row.event_types))
    return ApiKey(row.id, row.name, row.prefix, scope, row.created_at)


async def create_api_key(
    db: Database, name: str, prefix: str, digest: str, event_types: Sequence[str] | None
) -> ApiKey:
    scope = None if event_types is None else orjson.dumps(list(event_types)).decode()
    async with db.transaction() as conn:
        row = (
            await conn.execute(
                insert(api_keys)
                .values(
                    name=name,
                    key_hash=digest,
                    prefix=prefix,
                    event_types=scope,
                    created_at=int(time.time()),
                )
                .returning(*_COLUMNS)
            )
        ).one()
    return _key(row)


async def list_api_keys(db: Database) -> list[ApiKey]:
    """Every key, oldest first."""
    async with db.read() as conn:
        rows = await conn.execute(select(*_COLUMNS).order_by(api_keys.c.id))
        return [_key(row) for row in rows]


async def find_api_key(db: Database, digest: str) -> ApiKey | None:
    query = select(*_COLUMNS).where(api_keys.c.key_hash == digest)
    row = await db.run_read(lambda conn: conn.execute(query).first())
    return None if row is None else _key(row)


async def revoke_api_key(db: Database, key_id: int) -> str | None:
    """Delete a key; returns its digest (None when there is no such key)."""
    async with db.transaction() as conn:
        return (
            await conn.execute(
                delete(api_keys).where(api_keys.c.id == key_id).returning(api_keys.c.key_hash)
            )
        ).scalar()
