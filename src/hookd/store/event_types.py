"""The event types an administrator added to the device dialect's built-in ones."""

from __future__ import annotations

import time
from collections.abc import Collection
from dataclasses import dataclass
from enum import Enum

from sqlalchemy import delete, func, insert, select
from sqlalchemy.exc import IntegrityError

from hookd.store.database import Database
from hookd.store.schema import event_types, webhook_topics


@dataclass(slots=True, frozen=True)
class CustomEventType:
    name: str
    description: str
    created_at: int


class EventTypeExists(Exception):
    pass


async def create_event_type(db: Database, name: str, description: str) -> CustomEventType:
    created_at = int(time.time())
    try:
        async with db.transaction() as conn:
            await conn.execute(
                insert(event_types).values(
                    name=name, description=description, created_at=created_at
                )
            )
    except IntegrityError:
        raise EventTypeExists(name) from None
    return CustomEventType(name, description, created_at)


async def list_event_types(db: Database) -> list[CustomEventType]:
    """Every custom type, in creation order."""
    async with db.read() as conn:
        rows = await conn.execute(
            select(
                event_types.c.name, event_types.c.description, event_types.c.created_at
            ).order_by(event_types.c.id)
        )
        return [CustomEventType(*row) for row in rows]


async def existing(db: Database, names: Collection[str]) -> set[str]:
    """Which of `names` are custom types."""
    if not names:
        return set()
    async with db.read() as conn:
        rows = await conn.execute(
            select(event_types.c.name).where(event_types.c.name.in_(list(names)))
        )
        return {name for (name,) in rows}


class Deletion(Enum):
    DELETED = "deleted"
    UNKNOWN = "unknown"
    IN_USE = "in use"


async def delete_event_type(db: Database, name: str) -> tuple[Deletion, int]:
    """Delete a custom type, unless webhooks list it by name (wildcards do not count): then
    nothing changes, and the second value says how many webhooks do."""
    async with db.transaction() as conn:
        found = (
            await conn.execute(select(event_types.c.id).where(event_types.c.name == name))
        ).scalar()
        if found is None:
            return Deletion.UNKNOWN, 0
        listing = select(func.count()).select_from(webhook_topics)
        users = (await conn.execute(listing.where(webhook_topics.c.topic == name))).scalar_one()
        if users:
            return Deletion.IN_USE, int(users)
        await conn.execute(delete(event_types).where(event_types.c.id == found))
    return Deletion.DELETED, 0
