"""Firing a repository event: a non-blocking one is published like any event; a blocking one
calls its validation hooks while the trigger waits.

Enabled `STATUS`/`STATUS_AND_BODY` webhooks whose restrictions admit the trigger's category are
called in creation order (any of them may veto); `NONE` webhooks are queued like any delivery,
concurrently with the chain, and never veto.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from hookd.delivery.chain import Hook, Verdict, run_chain
from hookd.delivery.sender import Sender
from hookd.dialects.repository.fields import TriggerSpec
from hookd.dialects.repository.model import EventDefinition, Repository, RepositoryWebhook, topic
from hookd.domain.webhook import receives
from hookd.publishing import Draft, publish_prepared
from hookd.store.database import Database
from hookd.store.events import NewEvent


def draft(repository: Repository, event: EventDefinition, spec: TriggerSpec) -> Draft:
    """The event a trigger publishes; its `id` is an idempotency key within this repository
    event, not across events."""
    event_topic = topic(repository.id, event.id)
    return Draft(
        type=event.id,
        topic=event_topic,
        data=spec.data,
        id=spec.id,
        id_scope=event_topic,
        category=spec.category,
        context={"repository": repository.id},
    )


@dataclass(slots=True)
class Validation:
    verdict: Verdict
    # The webhooks of the chain, in calling order (the verdict's calls are a prefix of them).
    called: list[RepositoryWebhook]


async def validate(
    db: Database,
    sender: Sender,
    event: NewEvent,
    webhooks: list[RepositoryWebhook],
    now: float,
) -> Validation:
    """Fire a blocking event at its enabled `webhooks` (in creation order): queue the NONE
    ones, call the others, return the verdict."""
    firing = [
        found
        for found in webhooks
        if found.webhook.active and receives(found.webhook.categories, event.category)
    ]
    called = [found for found in firing if found.synchronous]
    hooks = [Hook.of(found.webhook) for found in called]
    queued = frozenset(found.webhook.id for found in firing if not found.synchronous)
    if not queued:
        return Validation(await run_chain(sender, hooks, event.id, event.body), called)
    event.only_webhooks = queued
    publishing = asyncio.create_task(publish_prepared(db, [event], now))
    try:
        return Validation(await run_chain(sender, hooks, event.id, event.body), called)
    finally:
        await publishing
