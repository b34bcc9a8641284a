"""Publishing: what every dialect does with the events it accepts.

A dialect turns its request into `Draft`s; publishing gives each its id and delivery body,
holds the body to HOOKD_MAX_EVENT_BYTES, stores the events with one pending delivery per
subscribed webhook in one transaction (which wakes the workers), and counts them.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from hookd.delivery import metrics
from hookd.domain.errors import TooLarge
from hookd.domain.event import delivery_body, new_event_id, rfc3339
from hookd.store import events as event_store
from hookd.store.database import Database
from hookd.store.events import NewEvent, Published


@dataclass(slots=True)
class Draft:
    """An event as a dialect accepted it."""

    type: str
    # What webhooks subscribe to; the event type unless the dialect qualifies it.
    topic: str
    data: dict[str, Any] = field(default_factory=dict)
    # The publisher's own id for the event: also its idempotency key.
    id: str | None = None
    # Where a given id is unique, as the dialect sees it: the dialect's name, or (say) one of
    # its events. Keys are scoped to the producer as well (see `idempotency_key`).
    id_scope: str = ""
    category: str | None = None
    # Fields a dialect adds to the delivery body.
    context: Mapping[str, str] | None = None
    # Where the event stood in the request, for naming it in an error.
    field: str = "body"


def idempotency_key(draft: Draft, producer: str) -> str | None:
    """The key under which a publisher's event id is remembered for 24 h: the id within the
    dialect's scope and the `producer`'s account, so that an id used by one producer, or in
    one dialect, never silences another's event."""
    if draft.id is None:
        return None
    scoped = "\x00".join((producer, draft.id_scope, draft.id)).encode()
    return f"k:{hashlib.sha256(scoped).hexdigest()}"


def prepare(
    drafts: Sequence[Draft], now: float, max_event_bytes: int, *, producer: str
) -> list[NewEvent]:
    """Each draft as an event to store: its id, its delivery body within the size limit.
    `producer` names the account publishing (an idempotency key is its own)."""
    created_at = rfc3339(now)
    prepared = []
    for draft in drafts:
        event_id = draft.id or new_event_id()
        body = delivery_body(
            event_id,
            draft.type,
            created_at,
            draft.data,
            context=draft.context,
            category=draft.category,
        )
        if len(body) > max_event_bytes:
            raise TooLarge(draft.field, f"the event is larger than {max_event_bytes} bytes")
        prepared.append(
            NewEvent(
                event_id,
                draft.topic,
                body,
                idempotency_key=idempotency_key(draft, producer),
                category=draft.category,
            )
        )
    return prepared


async def publish_prepared(db: Database, events: list[NewEvent], now: float) -> list[Published]:
    """Store prepared events and queue their deliveries; an event whose idempotency key was
    used within 24 h is not stored again, the first result answers for it."""
    published = await event_store.publish(db, events, now)
    metrics.EVENTS_PUBLISHED.inc(len(events))
    return published


async def publish(
    db: Database, drafts: Sequence[Draft], now: float, max_event_bytes: int, *, producer: str
) -> list[Published]:
    return await publish_prepared(db, prepare(drafts, now, max_event_bytes, producer=producer), now)


def user_producer(user_id: int) -> str:
    """The producer an authenticated user publishes as."""
    return f"user:{user_id}"


def key_producer(key_id: int) -> str:
    """The producer an API key publishes as (its ids are its own, apart from its creator's)."""
    return f"key:{key_id}"
