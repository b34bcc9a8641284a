"""Publishing: store events and fan them out to deliveries, in one transaction."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass

import orjson
from sqlalchemy import insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from hookd.store.database import Database
from hookd.store.schema import deliveries, events, webhook_topics, webhooks

IDEMPOTENCY_WINDOW = 24 * 3600.0

Subscriber = tuple[int, tuple[str, ...]]  # webhook id, the categories it is restricted to


@dataclass(slots=True)
class NewEvent:
    id: str
    topic: str
    body: bytes
    idempotency_key: str | None = None
    category: str | None = None
    # Restrict the fan-out to these webhooks (None: every active subscriber of the topic).
    only_webhooks: frozenset[int] | None = None


@dataclass(slots=True, frozen=True)
class Published:
    id: str
    deliveries: int


async def publish(db: Database, new_events: list[NewEvent], now: float) -> list[Published]:
    """Store `new_events` and one pending delivery per matching active webhook.

    An event whose idempotency key was published within the last 24 h is not stored again:
    the first result is returned for it instead.
    """
    results: list[Published | None] = [None] * len(new_events)
    queued = 0
    async with db.transaction() as conn:
        known = await _recent_keys(conn, new_events, now)
        first_with_key: dict[str, int] = {}
        fresh: list[tuple[int, NewEvent]] = []
        for index, event in enumerate(new_events):
            key = event.idempotency_key
            if key is None:
                fresh.append((index, event))
            elif key in known:
                results[index] = known[key]
            elif key not in first_with_key:
                first_with_key[key] = index
                fresh.append((index, event))

        subscribers = await _subscribers(conn, {event.topic for _, event in fresh})
        targets = [_targets(event, subscribers[event.topic]) for _, event in fresh]
        if fresh:
            inserted = await conn.execute(
                insert(events).returning(events.c.seq, sort_by_parameter_order=True),
                [
                    {
                        "id": event.id,
                        "idempotency_key": event.idempotency_key,
                        "type": event.topic,
                        "body": event.body,
                        "deliveries": len(webhook_ids),
                        "created_at": now,
                    }
                    for (_, event), webhook_ids in zip(fresh, targets, strict=True)
                ],
            )
            rows = [
                {
                    "event_seq": seq,
                    "webhook_id": webhook_id,
                    "state": "pending",
                    "due_at": now,
                    "created_at": now,
                    "updated_at": now,
                }
                for seq, webhook_ids in zip(inserted.scalars().all(), targets, strict=True)
                for webhook_id in webhook_ids
            ]
            if rows:
                await conn.execute(insert(deliveries), rows)
                await db.notify_workers(conn)
                queued = len(rows)
        for (index, event), webhook_ids in zip(fresh, targets, strict=True):
            results[index] = Published(event.id, len(webhook_ids))
    if queued:
        db.wake()
    for index, event in enumerate(new_events):
        if results[index] is None and event.idempotency_key is not None:
            results[index] = results[first_with_key[event.idempotency_key]]
    return [result for result in results if result is not None]


async def _recent_keys(
    conn: AsyncConnection, new_events: list[NewEvent], now: float
) -> dict[str, Published]:
    """What was published within the idempotency window under the keys of `new_events`."""
    keys = {event.idempotency_key for event in new_events if event.idempotency_key}
    if not keys:
        return {}
    # An expired key is released so that it can be used again.
    await conn.execute(
        update(events)
        .where(events.c.idempotency_key.in_(keys), events.c.created_at < now - IDEMPOTENCY_WINDOW)
        .values(idempotency_key=None)
    )
    rows = await conn.execute(
        select(events.c.idempotency_key, events.c.id, events.c.deliveries).where(
            events.c.idempotency_key.in_(keys)
        )
    )
    return {row.idempotency_key: Published(row.id, row.deliveries) for row in rows}


async def _subscribers(conn: AsyncConnection, topics: set[str]) -> dict[str, list[Subscriber]]:
    """Active webhooks per topic, with their category restrictions, in creation order."""
    found: dict[str, list[Subscriber]] = defaultdict(list)
    if not topics:
        return found
    rows = await conn.execute(
        select(webhook_topics.c.topic, webhooks.c.id, webhooks.c.categories)
        .join(webhooks, webhooks.c.id == webhook_topics.c.webhook_id)
        .where(webhook_topics.c.topic.in_(topics), webhooks.c.status == "active")
        .order_by(webhooks.c.id)
    )
    for topic, webhook_id, categories in rows:
        found[topic].append((webhook_id, tuple(orjson.loads(categories)) if categories else ()))
    return found


def _targets(event: NewEvent, subscribers: list[Subscriber]) -> list[int]:
    return [
        webhook_id
        for webhook_id, categories in subscribers
        if (event.only_webhooks is None or webhook_id in event.only_webhooks)
        and (not categories or event.category in categories)
    ]
