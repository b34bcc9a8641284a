"""Webhooks and the topics they subscribe to."""

from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import Sequence
from typing import Any

import orjson
from sqlalchemy import Row, delete, func, insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from hookd.domain.webhook import Webhook, WebhookFields
from hookd.store.database import Database
from hookd.store.schema import attempts, deliveries, webhook_topics, webhooks
from hookd.store.secret_box import SEALED_PREFIX


def _columns(db: Database, fields: WebhookFields) -> dict[str, Any]:
    return {
        "url": fields.url,
        "secret": db.secrets.seal(fields.secret),
        "status": fields.status,
        "timeout_ms": fields.timeout_ms,
        "headers": fields.headers,
        "description": fields.description,
        "max_retries": fields.max_retries,
        "uri": fields.uri,
        "repository_id": fields.repository_id,
        "handle_response": fields.handle_response,
        "api_key": db.secrets.seal(fields.api_key),
        "categories": orjson.dumps(list(fields.categories)).decode() if fields.categories else None,
    }


def webhook_from_row(db: Database, row: Row[Any], topics: Sequence[str]) -> Webhook:
    """A `webhooks` row (with its topics) as the domain's Webhook."""
    return Webhook(
        id=row.id,
        public_id=row.public_id,
        url=row.url,
        topics=tuple(topics),
        secret=db.secrets.open(row.secret),
        status=row.status,
        timeout_ms=row.timeout_ms,
        headers=row.headers,
        description=row.description,
        max_retries=row.max_retries,
        uri=row.uri,
        repository_id=row.repository_id,
        handle_response=row.handle_response,
        api_key=db.secrets.open(row.api_key),
        categories=tuple(orjson.loads(row.categories)) if row.categories else (),
        created_at=row.created_at,
        updated_at=row.updated_at,
        disabled_reason=row.disabled_reason,
    )


async def _with_topics(
    db: Database, conn: AsyncConnection, rows: Sequence[Row[Any]]
) -> list[Webhook]:
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


async def create_webhook(
    db: Database, fields: WebhookFields, public_id: str | None = None
) -> Webhook:
    now = int(time.time())
    async with db.transaction() as conn:
        row = (
            await conn.execute(
                insert(webhooks)
                .values(**_columns(db, fields), public_id=public_id, created_at=now, updated_at=now)
                .returning(*webhooks.c)
            )
        ).one()
        await _write_topics(conn, row.id, fields.topics)
    return webhook_from_row(db, row, fields.topics)


async def get_webhook(db: Database, webhook_id: int) -> Webhook | None:
    async with db.read() as conn:
        rows = (await conn.execute(select(webhooks).where(webhooks.c.id == webhook_id))).all()
        found = await _with_topics(db, conn, rows)
    return found[0] if found else None


async def get_webhook_by_public_id(db: Database, public_id: str) -> Webhook | None:
    async with db.read() as conn:
        rows = (await conn.execute(select(webhooks).where(webhooks.c.public_id == public_id))).all()
        found = await _with_topics(db, conn, rows)
    return found[0] if found else None


async def list_webhooks(
    db: Database,
    *,
    limit: int,
    offset: int,
    device_only: bool = False,
    topic: str | None = None,
) -> tuple[list[Webhook], int]:
    """A page of webhooks in creation order, and how many there are in all."""
    query = select(webhooks)
    if device_only:
        query = query.where(webhooks.c.public_id.is_(None))
    if topic is not None:
        query = query.where(
            webhooks.c.id.in_(
                select(webhook_topics.c.webhook_id).where(webhook_topics.c.topic == topic)
            )
        )
    async with db.read() as conn:
        total = (
            await conn.execute(select(func.count()).select_from(query.subquery()))
        ).scalar_one()
        rows = (await conn.execute(query.order_by(webhooks.c.id).limit(limit).offset(offset))).all()
        return await _with_topics(db, conn, rows), total


async def replace_webhook(db: Database, webhook_id: int, fields: WebhookFields) -> Webhook | None:
    """Write all of `fields`; re-enabling a webhook clears why hookd had disabled it."""
    async with db.transaction() as conn:
        row = (
            await conn.execute(
                update(webhooks)
                .where(webhooks.c.id == webhook_id)
                .values(
                    **_columns(db, fields),
                    updated_at=int(time.time()),
                    disabled_reason=None
                    if fields.status == "active"
                    else webhooks.c.disabled_reason,
                    failing_since=None if fields.status == "active" else webhooks.c.failing_since,
                )
                .returning(*webhooks.c)
            )
        ).first()
        if row is None:
            return None
        await _write_topics(conn, webhook_id, fields.topics)
    return webhook_from_row(db, row, fields.topics)


async def delete_webhook(db: Database, webhook_id: int) -> bool:
    """Delete a webhook with its delivery log."""
    async with db.transaction() as conn:
        ids = select(deliveries.c.id).where(deliveries.c.webhook_id == webhook_id)
        await conn.execute(delete(attempts).where(attempts.c.delivery_id.in_(ids)))
        await conn.execute(delete(deliveries).where(deliveries.c.webhook_id == webhook_id))
        result = await conn.execute(delete(webhooks).where(webhooks.c.id == webhook_id))
    return bool(result.rowcount)


async def check_sealed_secrets(db: Database) -> None:
    """Raise SecretKeyError unless the configured key opens the secrets sealed in the store."""
    sealed = f"{SEALED_PREFIX}%"
    async with db.read() as conn:
        row = (
            await conn.execute(
                select(webhooks.c.secret, webhooks.c.api_key)
                .where(webhooks.c.secret.like(sealed) | webhooks.c.api_key.like(sealed))
                .limit(1)
            )
        ).first()
    if row is not None:
        db.secrets.open(row.secret)
        db.secrets.open(row.api_key)
