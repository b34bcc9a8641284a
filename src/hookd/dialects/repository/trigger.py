"""Firing a repository event: a non-blocking one is published like any event; a blocking one
calls its validation hooks while the trigger waits.

Enabled `STATUS`/`STATUS_AND_BODY` webhooks whose restrictions admit the trigger's category are
called in creation order (any of them may veto); `NONE` webhooks are queued like any delivery,
concurrently with the chain, and never veto.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

from hookd.delivery.chain import Chain, Hook, Validator, Verdict
from hookd.dialects.repository.fields import TriggerSpec
from hookd.dialects.repository.model import (
    NAME,
    EventDefinition,
    Repository,
    RepositoryWebhook,
    topic,
)
from hookd.domain.webhook import receives
from hookd.publishing import Draft, publish_prepared
from hookd.store.database import Database
from hookd.store.events import NewEvent


def draft(repository: Repository, event: EventDefinition, spec: TriggerSpec) -> Draft:
    """The event a trigger publishes; its `id` is an idempotency key within this repository
    event, not across events (nor dialects)."""
    event_topic = topic(repository.id, event.id)
    return Draft(
        type=event.id,
        topic=event_topic,
        data=spec.data,
        id=spec.id,
        id_scope=f"{NAME}\x00{event_topic}",
        category=spec.category,
        context={"repository": repository.id},
    )


@dataclass(slots=True)
class Validation:
    """A blocking event's validation: the webhooks of its chain in calling order, and the
    chain's calls as they are made (a prefix of them; all of them, once it is done)."""

    called: list[RepositoryWebhook]
    chain: Chain = field(default_factory=Chain)

    @property
    def verdict(self) -> Verdict:
        return self.chain.verdict if self.called else Verdict(True, [])


def validation_of(webhooks: list[RepositoryWebhook], event: NewEvent) -> Validation:
    """Which of a blocking event's `webhooks` fire for `event`: the enabled ones its category
    reaches, the synchronous ones called (in creation order), the others queued."""
    firing = [
        found
        for found in webhooks
        if found.webhook.active and receives(found.webhook.categories, event.category)
    ]
    queued = frozenset(found.webhook.id for found in firing if not found.synchronous)
    event.only_webhooks = queued or None
    return Validation([found for found in firing if found.synchronous])


async def validate(
    db: Database,
    validator: Validator,
    repository: Repository,
    event: NewEvent,
    validation: Validation,
    now: float,
) -> Verdict:
    """Fire a blocking event: queue its NONE webhooks, call the others into `validation`."""
    hooks = [Hook.of(found.webhook) for found in validation.called]
    run = validator.run(repository.id, hooks, event.id, event.body, validation.chain)
    if event.only_webhooks is None:
        return await run
    publishing = asyncio.create_task(publish_prepared(db, [event], now))
    try:
        return await run
    finally:
        await asyncio.shield(publishing)
