"""Webhooks and the topics they subscribe to.

The functions taking a connection let a dialect write its own rows about a webhook in the same
transaction as the webhook.
"""

from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from typing import Any

import orjson
from sqlalchemy import Row, case, delete, func, insert, or_, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from hookd.domain.states import Ordering, WebhookHealth, WebhookStatus
from hookd.domain.webhook import Webhook, WebhookFields
from hookd.store.database import Database
from hookd.store.schema import attempts, deliveries, webhook_topics, webhooks


def _columns(db: Database, fields: WebhookFields) -> dict[str, Any]:
    return {
        "url": fields.url,
        "secret": db.secrets.seal(fields.secret),
        "status": fields.status.value,
        "timeout_ms": fields.timeout_ms,
        "headers": fields.headers,
        "description": fields.description,
        "max_retries": fields.max_retries,
        "bearer_token": db.secrets.seal(fields.bearer_token),
        "categories": orjson.dumps(list(fields.categories)).decode() if fields.categories else None,
        "rate_limit": fields.rate_limit,
        "ordering": fields.ordering.value,
    }


def webhook_from_row(db: Database, row: Row[Any], topics: Sequence[str]) -> Webhook:
    """A `webhooks` row (with its topics) as the domain's Webhook."""
    return Webhook(
        id=row.id,
        dialect=row.dialect,
        public_id=row.public_id,
        url=row.url,
        topics=tuple(topics),
        secret=db.secrets.open(row.secret),
        status=WebhookStatus(row.status),
        timeout_ms=row.timeout_ms,
        headers=row.headers,
        description=row.description,
        max_retries=row.max_retries,
        bearer_token=db.secrets.open(row.bearer_token),
        categories=tuple(orjson.loads(row.categories)) if row.categories else (),
        created_at=row.created_at,
        updated_at=row.updated_at,
        disabled_reason=row.disabled_reason,
        rate_limit=row.rate_limit,
        ordering=Ordering(row.ordering),
        health=WebhookHealth.OK if row.probe_at is None else WebhookHealth.SUSPENDED,
        previous_secret=db.secrets.open(row.previous_secret),
        previous_secret_until=row.previous_secret_until,
    )


async def with_topics(
    db: Database, conn: AsyncConnection, rows: Sequence[Row[Any]]
) -> list[Webhook]:
    """`webhooks` rows as Webhooks, their topics read in one query."""
    if not rows:
        return []
    topics: dict[int, list[str]] = defaultdict(list)
    result = await conn.execute(
        select(webhook_topics.c.webhook_id, webhook_topics.c.topic)
        .where(webhook_topics.c.webhook_id.in_([row.id for row in rows]))
        .order_by(webhook_topics.c.webhook_id, webhook_topics.c.position)
    )
    for webhook_id, topic in result:
        topics[webhook_id].append(topic)
    return [webhook_from_row(db, row, topics[row.id]) for row in rows]


async def _write_topics(conn: AsyncConnection, webhook_id: int, topics: Sequence[str]) -> None:
    await conn.execute(delete(webhook_topics).where(webhook_topics.c.webhook_id == webhook_id))
    await conn.execute(
        insert(webhook_topics),
        [
            {"webhook_id": webhook_id, "topic": topic, "position": position}
            for position, topic in enumerate(topics)
        ],
    )


async def insert_webhook(
    db: Database,
    conn: AsyncConnection,
    dialect: str,
    fields: WebhookFields,
    public_id: str | None = None,
) -> Webhook:
    now = int(time.time())
    row = (
        await conn.execute(
            insert(webhooks)
            .values(
                **_columns(db, fields),
                dialect=dialect,
                public_id=public_id,
                created_at=now,
                updated_at=now,
            )
            .returning(*webhooks.c)
        )
    ).one()
    await _write_topics(conn, row.id, fields.topics)
    return webhook_from_row(db, row, fields.topics)


async def create_webhook(
    db: Database, dialect: str, fields: WebhookFields, public_id: str | None = None
) -> Webhook:
    async with db.transaction() as conn:
        return await insert_webhook(db, conn, dialect, fields, public_id)


async def get_webhook(db: Database, webhook_id: int, dialect: str) -> Webhook | None:
    """The webhook with this id, when `dialect` created it."""
    async with db.read() as conn:
        rows = (
            await conn.execute(
                select(webhooks).where(webhooks.c.id == webhook_id, webhooks.c.dialect == dialect)
            )
        ).all()
        found = await with_topics(db, conn, rows)
    return found[0] if found else None


async def list_webhooks(
    db: Database, dialect: str, *, limit: int, offset: int
) -> tuple[list[Webhook], int]:
    """A page of a dialect's webhooks in creation order, and how many there are in all."""
    where = webhooks.c.dialect == dialect
    async with db.read() as conn:
        total = (
            await conn.execute(select(func.count()).select_from(webhooks).where(where))
        ).scalar_one()
        rows = (
            await conn.execute(
                select(webhooks).where(where).order_by(webhooks.c.id).limit(limit).offset(offset)
            )
        ).all()
        return await with_topics(db, conn, rows), total


@dataclass(slots=True, frozen=True)
class Rotation:
    """The secret a change replaces, and until when deliveries are signed with it too."""

    previous_secret: str | None
    until: float


async def update_webhook(
    db: Database,
    conn: AsyncConnection,
    webhook_id: int,
    fields: WebhookFields,
    rotation: Rotation | None = None,
) -> Webhook | None:
    """Write all of `fields`; re-enabling a webhook clears why hookd had disabled it, and a new
    URL or status ends a suspension. With `rotation` the secret is a rotated one."""
    active = fields.status == WebhookStatus.ACTIVE
    fresh_start = or_(webhooks.c.url != fields.url, webhooks.c.status != fields.status.value)
    rotated = {}
    if rotation is not None:
        rotated = {
            "previous_secret": db.secrets.seal(rotation.previous_secret),
            "previous_secret_until": rotation.until if rotation.previous_secret else None,
        }
    row = (
        await conn.execute(
            update(webhooks)
            .where(webhooks.c.id == webhook_id)
            .values(
                **_columns(db, fields),
                **rotated,
                updated_at=int(time.time()),
                disabled_reason=None if active else webhooks.c.disabled_reason,
                failing_since=None if active else webhooks.c.failing_since,
                failures=case((fresh_start, 0), else_=webhooks.c.failures),
                probe_at=case((fresh_start, None), else_=webhooks.c.probe_at),
            )
            .returning(*webhooks.c)
        )
    ).first()
    if row is None:
        return None
    await _write_topics(conn, webhook_id, fields.topics)
    return webhook_from_row(db, row, fields.topics)


async def replace_webhook(
    db: Database, webhook_id: int, fields: WebhookFields, rotation: Rotation | None = None
) -> Webhook | None:
    async with db.transaction() as conn:
        return await update_webhook(db, conn, webhook_id, fields, rotation)


async def delete_webhook(db: Database, webhook_id: int) -> bool:
    """Delete a webhook with its delivery log (and, by their foreign keys, the rows a dialect
    keeps about it)."""
    async with db.transaction() as conn:
        ids = select(deliveries.c.id).where(deliveries.c.webhook_id == webhook_id)
        await conn.execute(delete(attempts).where(attempts.c.delivery_id.in_(ids)))
        await conn.execute(delete(deliveries).where(deliveries.c.webhook_id == webhook_id))
        result = await conn.execute(delete(webhooks).where(webhooks.c.id == webhook_id))
    return bool(result.rowcount)


async def search_webhooks(
    db: Database,
    *,
    dialect: str | None = None,
    status: WebhookStatus | None = None,
    topics: Collection[str] | None = None,
    text: str | None = None,
    limit: int,
    offset: int,
) -> tuple[list[Webhook], int]:
    """Webhooks of every dialect in creation order: those of `dialect`, in `status`, subscribed
    to any of `topics`, whose URL, description or public id holds `text` (any case); and how
    many match in all."""
    where: list[Any] = []
    if dialect is not None:
        where.append(webhooks.c.dialect == dialect)
    if status is not None:
        where.append(webhooks.c.status == status.value)
    if topics is not None:
        where.append(
            webhooks.c.id.in_(
                select(webhook_topics.c.webhook_id).where(webhook_topics.c.topic.in_(topics))
            )
        )
    if text:
        where.append(
            webhooks.c.url.icontains(text, autoescape=True)
            | webhooks.c.description.icontains(text, autoescape=True)
            | (webhooks.c.public_id == text.lower())
        )
    async with db.read() as conn:
        total = (
            await conn.execute(select(func.count()).select_from(webhooks).where(*where))
        ).scalar_one()
        rows = (
            await conn.execute(
                select(webhooks).where(*where).order_by(webhooks.c.id).limit(limit).offset(offset)
            )
        ).all()
        return await with_topics(db, conn, rows), total


async def get_any_webhook(db: Database, webhook_id: int) -> Webhook | None:
    """The webhook with this id, whichever dialect created it."""
    async with db.read() as conn:
        rows = (await conn.execute(select(webhooks).where(webhooks.c.id == webhook_id))).all()
        found = await with_topics(db, conn, rows)
    return found[0] if found else None


async def webhooks_by_id(db: Database, webhook_ids: Collection[int]) -> dict[int, Webhook]:
    if not webhook_ids:
        return {}
    async with db.read() as conn:
        rows = (
            await conn.execute(select(webhooks).where(webhooks.c.id.in_(list(webhook_ids))))
        ).all()
        return {webhook.id: webhook for webhook in await with_topics(db, conn, rows)}


async def disabled_since(db: Database, since: float) -> list[Webhook]:
    """Webhooks hookd disabled itself (they carry the reason) and not changed since `since`."""
    async with db.read() as conn:
        rows = (
            await conn.execute(
                select(webhooks)
                .where(
                    webhooks.c.status == WebhookStatus.DISABLED.value,
                    webhooks.c.disabled_reason.is_not(None),
                    webhooks.c.updated_at >= int(since),
                )
                .order_by(webhooks.c.updated_at.desc())
                .limit(100)
            )
        ).all()
        return await with_topics(db, conn, rows)
