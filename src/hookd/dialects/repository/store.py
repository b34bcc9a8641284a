"""The repository dialect's queries: repositories, their event definitions, and its webhooks
with their bindings; keeping relative webhooks' delivery URLs current.

A repository webhook stores its `uri` as given (in its binding) and, in the core `url`, where the
worker delivers it. For a relative `uri` that depends on the repository's `base_uri` (or, without
one, on HOOKD_RELATIVE_BASE_URL), so changing either rewrites those URLs here.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, cast

from sqlalchemy import Row, Select, and_, bindparam, func, insert, select, true, update
from sqlalchemy.dialects.postgresql import insert as postgres_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncConnection

from hookd.dialects.repository.model import (
    BUILT_IN_EVENTS,
    NAME,
    Binding,
    EventDefinition,
    Repository,
    RepositoryWebhook,
    join_uri,
    topic,
)
from hookd.domain.errors import InvalidField
from hookd.domain.states import WebhookStatus
from hookd.domain.webhook import WebhookFields
from hookd.store import webhooks as core
from hookd.store.database import Database
from hookd.store.schema import (
    repositories,
    repository_events,
    repository_webhooks,
    webhook_topics,
    webhooks,
)


def _repository(row: Row[Any]) -> Repository:
    return Repository(row.id, row.name, row.base_uri, row.created_at, row.updated_at)


def _event(row: Row[Any]) -> EventDefinition:
    return EventDefinition(row.repository_id, row.id, row.name, row.description, bool(row.blocking))


def _binding(row: Row[Any]) -> Binding:
    return Binding(row.binding_repository_id, row.binding_uri, row.binding_handle_response)


_BINDING_COLUMNS = (
    repository_webhooks.c.repository_id.label("binding_repository_id"),
    repository_webhooks.c.uri.label("binding_uri"),
    repository_webhooks.c.handle_response.label("binding_handle_response"),
)
_WEBHOOKS = select(webhooks, *_BINDING_COLUMNS).join(
    repository_webhooks, repository_webhooks.c.webhook_id == webhooks.c.id
)


def _insert_new(db: Database, table: Any, values: dict[str, Any], keys: list[Any]) -> Any:
    """INSERT … ON CONFLICT DO NOTHING RETURNING the keys: a row back means it was created."""
    statement = (sqlite_insert if db.is_sqlite else postgres_insert)(table).values(**values)
    return statement.on_conflict_do_nothing(index_elements=keys).returning(*keys)


# --- repositories -----------------------------------------------------------------------------


async def put_repository(
    db: Database,
    repository_id: str,
    name: str,
    base_uri: str | None,
    relative_base_url: str | None,
) -> tuple[Repository, bool]:
    """Create the repository (with the built-in events) or update it; True when created.

    An update moves the delivery URLs of the repository's relative webhooks to the new base,
    in the same transaction; it is refused when they would be left without any base.
    """
    now = int(time.time())
    async with db.transaction() as conn:
        created = (
            await conn.execute(
                _insert_new(
                    db,
                    repositories,
                    {
                        "id": repository_id,
                        "name": name,
                        "base_uri": base_uri,
                        "created_at": now,
                        "updated_at": now,
                    },
                    [repositories.c.id],
                )
            )
        ).first() is not None
        if created:
            await conn.execute(
                insert(repository_events),
                [
                    {
                        "repository_id": repository_id,
                        "id": event_id,
                        "name": event_name,
                        "description": description,
                        "blocking": blocking,
                    }
                    for event_id, event_name, description, blocking in BUILT_IN_EVENTS
                ],
            )
            row = (
                await conn.execute(select(repositories).where(repositories.c.id == repository_id))
            ).one()
            return _repository(row), True
        row = (
            await conn.execute(
                update(repositories)
                .where(repositories.c.id == repository_id)
                .values(name=name, base_uri=base_uri, updated_at=now)
                .returning(*repositories.c)
            )
        ).one()
        base = base_uri or relative_base_url
        moved = await _move_relative_webhooks(conn, [repository_id], base)
        if moved and base is None:
            raise InvalidField(
                "base_uri",
                f"is needed: {moved} webhook(s) of this repository have a relative uri and "
                "HOOKD_RELATIVE_BASE_URL is not set",
            )
        return _repository(row), False


async def _move_relative_webhooks(
    conn: AsyncConnection, repository_ids: list[str], base: str | None
) -> int:
    """Point the relative webhooks of these repositories at `base`; how many there are."""
    rows = (
        await conn.execute(
            select(webhooks.c.id, repository_webhooks.c.uri, webhooks.c.url)
            .join(repository_webhooks, repository_webhooks.c.webhook_id == webhooks.c.id)
            .where(
                repository_webhooks.c.repository_id.in_(repository_ids),
                repository_webhooks.c.uri.like("/%"),
            )
        )
    ).all()
    if base is None:
        return len(rows)
    changed = [
        {"webhook_id": row.id, "new_url": join_uri(base, row.uri)}
        for row in rows
        if join_uri(base, row.uri) != row.url
    ]
    if changed:
        await conn.execute(
            update(webhooks)
            .where(webhooks.c.id == bindparam("webhook_id"))
            .values(url=bindparam("new_url")),
            changed,
        )
    return len(rows)


async def follow_relative_base_url(db: Database, relative_base_url: str | None) -> None:
    """At start: relative webhooks of repositories without a base_uri follow the setting."""
    if relative_base_url is None:
        return
    async with db.read() as conn:
        ids = (
            (await conn.execute(select(repositories.c.id).where(repositories.c.base_uri.is_(None))))
            .scalars()
            .all()
        )
    if ids:
        async with db.transaction() as conn:
            await _move_relative_webhooks(conn, list(ids), relative_base_url)


async def get_repository(db: Database, repository_id: str) -> Repository | None:
    async with db.read() as conn:
        row = (
            await conn.execute(select(repositories).where(repositories.c.id == repository_id))
        ).first()
    return None if row is None else _repository(row)


# --- event definitions ------------------------------------------------------------------------


@dataclass(slots=True)
class EventLookup:
    repository: Repository
    event: EventDefinition | None
    # With `targets`: the enabled webhooks of a blocking event, in creation order.
    webhooks: list[RepositoryWebhook]


def _find_event_query(targets: bool) -> Select[Any]:
    """Built once: the statement (and its cache key) is reused on every trigger."""
    query = select(
        repositories.c.name.label("repository_name"),
        repositories.c.base_uri.label("repository_base_uri"),
        repositories.c.created_at.label("repository_created_at"),
        repositories.c.updated_at.label("repository_updated_at"),
        repository_events.c.id.label("event_id"),
        repository_events.c.name.label("event_name"),
        repository_events.c.description.label("event_description"),
        repository_events.c.blocking.label("event_blocking"),
    )
    joined = repositories.outerjoin(
        repository_events,
        and_(
            repository_events.c.repository_id == repositories.c.id,
            repository_events.c.id == bindparam("event_id"),
        ),
    )
    if targets:
        query = query.add_columns(*webhooks.c, *_BINDING_COLUMNS).order_by(webhooks.c.id)
        joined = (
            joined.outerjoin(
                webhook_topics,
                and_(
                    webhook_topics.c.topic == bindparam("topic"),
                    repository_events.c.blocking.is_(true()),
                ),
            )
            .outerjoin(
                webhooks,
                and_(
                    webhooks.c.id == webhook_topics.c.webhook_id,
                    webhooks.c.status == WebhookStatus.ACTIVE.value,
                ),
            )
            .outerjoin(repository_webhooks, repository_webhooks.c.webhook_id == webhooks.c.id)
        )
    return query.select_from(joined).where(repositories.c.id == bindparam("repository_id"))


_FIND_EVENT = _find_event_query(targets=False)
_FIND_EVENT_WITH_TARGETS = _find_event_query(targets=True)


async def find_event(
    db: Database, repository_id: str, event_id: str, *, targets: bool = False
) -> EventLookup | None:
    """The repository and its event in one query: None when the repository is unknown, no
    `event` when the event is. With `targets`, a blocking event's enabled webhooks come along in
    the same query (this is the validation hot path: one round trip)."""
    params = {"repository_id": repository_id, "event_id": event_id}
    if targets:
        params["topic"] = topic(repository_id, event_id)
    query = _FIND_EVENT_WITH_TARGETS if targets else _FIND_EVENT
    rows = await db.run_read(lambda conn: conn.execute(query, params).all())
    if not rows:
        return None
    first = rows[0]
    repository = Repository(
        repository_id,
        first.repository_name,
        first.repository_base_uri,
        first.repository_created_at,
        first.repository_updated_at,
    )
    if first.event_id is None:
        return EventLookup(repository, None, [])
    event = EventDefinition(
        repository_id,
        first.event_id,
        first.event_name,
        first.event_description,
        bool(first.event_blocking),
    )
    topics = (topic(repository_id, event_id),)
    found = [
        RepositoryWebhook(core.webhook_from_row(db, cast("Row[Any]", row), topics), _binding(row))
        for row in rows
        if targets and row.id is not None
    ]
    return EventLookup(repository, event, found)


async def list_events(db: Database, repository_id: str) -> list[EventDefinition]:
    async with db.read() as conn:
        rows = await conn.execute(
            select(repository_events)
            .where(repository_events.c.repository_id == repository_id)
            .order_by(repository_events.c.id)
        )
        return [_event(row) for row in rows]


async def put_event(
    db: Database, repository_id: str, event_id: str, name: str, description: str, blocking: bool
) -> tuple[EventDefinition, bool]:
    """Define or change an event of an existing repository; True when it was created."""
    values = {"name": name, "description": description, "blocking": blocking}
    async with db.transaction() as conn:
        created = (
            await conn.execute(
                _insert_new(
                    db,
                    repository_events,
                    {"repository_id": repository_id, "id": event_id, **values},
                    [repository_events.c.repository_id, repository_events.c.id],
                )
            )
        ).first() is not None
        if not created:
            await conn.execute(
                update(repository_events)
                .where(
                    repository_events.c.repository_id == repository_id,
                    repository_events.c.id == event_id,
                )
                .values(**values)
            )
    return EventDefinition(repository_id, event_id, name, description, blocking), created


# --- webhooks ---------------------------------------------------------------------------------


def _binding_values(binding: Binding) -> dict[str, str]:
    return {
        "repository_id": binding.repository_id,
        "uri": binding.uri,
        "handle_response": binding.handle_response,
    }


async def create_webhook(
    db: Database, fields: WebhookFields, binding: Binding, public_id: str
) -> RepositoryWebhook:
    async with db.transaction() as conn:
        webhook = await core.insert_webhook(db, conn, NAME, fields, public_id)
        await conn.execute(
            insert(repository_webhooks).values(webhook_id=webhook.id, **_binding_values(binding))
        )
    return RepositoryWebhook(webhook, binding)


async def replace_webhook(
    db: Database, webhook_id: int, fields: WebhookFields, binding: Binding
) -> RepositoryWebhook | None:
    async with db.transaction() as conn:
        webhook = await core.update_webhook(db, conn, webhook_id, fields)
        if webhook is None:
            return None
        await conn.execute(
            update(repository_webhooks)
            .where(repository_webhooks.c.webhook_id == webhook_id)
            .values(**_binding_values(binding))
        )
    return RepositoryWebhook(webhook, binding)


async def _found(
    db: Database, conn: AsyncConnection, rows: list[Row[Any]]
) -> list[RepositoryWebhook]:
    found = await core.with_topics(db, conn, rows)
    return [RepositoryWebhook(w, _binding(row)) for w, row in zip(found, rows, strict=True)]


async def get_webhook(db: Database, public_id: str) -> RepositoryWebhook | None:
    async with db.read() as conn:
        rows = list((await conn.execute(_WEBHOOKS.where(webhooks.c.public_id == public_id))).all())
        found = await _found(db, conn, rows)
    return found[0] if found else None


async def event_webhooks(
    db: Database, repository_id: str, event_id: str
) -> list[RepositoryWebhook]:
    """The webhooks of one event, in creation order."""
    subscribed = select(webhook_topics.c.webhook_id).where(
        webhook_topics.c.topic == topic(repository_id, event_id)
    )
    async with db.read() as conn:
        rows = list(
            (
                await conn.execute(
                    _WEBHOOKS.where(webhooks.c.id.in_(subscribed)).order_by(webhooks.c.id)
                )
            ).all()
        )
        return await _found(db, conn, rows)


async def count_event_webhooks(db: Database, repository_id: str, event_id: str) -> int:
    async with db.read() as conn:
        return (
            await conn.execute(
                select(func.count())
                .select_from(webhook_topics)
                .where(webhook_topics.c.topic == topic(repository_id, event_id))
            )
        ).scalar_one()


# --- for the console ------------------------------------------------------------------------


async def list_repositories(db: Database) -> list[tuple[Repository, int]]:
    """Every repository, by id, with how many webhooks it has."""
    counts = (
        select(repository_webhooks.c.repository_id, func.count().label("webhooks"))
        .group_by(repository_webhooks.c.repository_id)
        .subquery()
    )
    async with db.read() as conn:
        rows = await conn.execute(
            select(repositories, func.coalesce(counts.c.webhooks, 0).label("webhooks"))
            .outerjoin(counts, counts.c.repository_id == repositories.c.id)
            .order_by(repositories.c.id)
        )
        return [(_repository(row), int(row.webhooks)) for row in rows]


async def all_events(db: Database) -> list[EventDefinition]:
    """Every repository's event definitions, by repository and id."""
    async with db.read() as conn:
        rows = await conn.execute(
            select(repository_events).order_by(
                repository_events.c.repository_id, repository_events.c.id
            )
        )
        return [_event(row) for row in rows]


async def bindings(db: Database, webhook_ids: Sequence[int]) -> dict[int, Binding]:
    """What this dialect keeps beside each of these webhooks (those it has)."""
    if not webhook_ids:
        return {}
    async with db.read() as conn:
        rows = await conn.execute(
            select(repository_webhooks.c.webhook_id, *_BINDING_COLUMNS).where(
                repository_webhooks.c.webhook_id.in_(list(webhook_ids))
            )
        )
        return {row.webhook_id: _binding(cast("Row[Any]", row)) for row in rows}
