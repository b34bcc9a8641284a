"""What the repository dialect answers: its entities, their paths, and HAL resources; and the
models that document each answer, as plain JSON and as HAL (the views build plain dicts)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal

import orjson
from pydantic import Field

from hookd.delivery.chain import Call, Verdict
from hookd.dialects.repository.fields import Restriction
from hookd.dialects.repository.model import (
    STATUS_AND_BODY,
    EventDefinition,
    Repository,
    RepositoryWebhook,
)
from hookd.http.hal import Resource
from hookd.http.openapi import Answer

# --- the documented answers -------------------------------------------------------------------


class RepositoryError(Answer):
    """This dialect's error shape."""

    code: int = Field(description="The HTTP status, or a code of this dialect (240100…)")
    reason: str


class Link(Answer):
    href: str


class RepositoryEntity(Answer):
    id: str
    name: str
    base_uri: str | None = Field(None, description="Given to administrators only")


class RepositoryLinks(Answer):
    self_: Link = Field(alias="self")
    events: Link


class RepositoryEntityHal(RepositoryEntity):
    links: RepositoryLinks = Field(alias="_links")


class EventEntity(Answer):
    id: str
    name: str
    description: str
    blocking: bool = Field(description="A validation hook: triggers wait for its webhooks")


class EventLinks(Answer):
    self_: Link = Field(alias="self")
    repository: Link
    trigger: Link


class EventEntityHal(EventEntity):
    links: EventLinks = Field(alias="_links")


class RepositoryWebhookEntity(Answer):
    """Exactly the specification's fields."""

    apiKey: str | None
    description: str
    enabled: bool
    handleResponse: Literal["NONE", "STATUS", "STATUS_AND_BODY"]
    id: str = Field(json_schema_extra={"format": "uuid"})
    restrictions: list[Restriction]
    retry: bool
    timeout: int = Field(description="Milliseconds")
    uri: str


class WebhookLinks(Answer):
    self_: Link = Field(alias="self")
    event: Link
    repository: Link


class RepositoryWebhookEntityHal(RepositoryWebhookEntity):
    links: WebhookLinks = Field(alias="_links")


class EventWithWebhooks(EventEntity):
    webhooks: list[RepositoryWebhookEntity]


class EmbeddedWebhooks(Answer):
    webhooks: list[RepositoryWebhookEntityHal]


class EventWithWebhooksHal(EventEntityHal):
    embedded: EmbeddedWebhooks = Field(alias="_embedded")


class EventList(Answer):
    events: list[EventEntity]


class EventListLinks(Answer):
    self_: Link = Field(alias="self")
    repository: Link


class EmbeddedEvents(Answer):
    events: list[EventEntityHal]


class EventListHal(Answer):
    links: EventListLinks = Field(alias="_links")
    embedded: EmbeddedEvents = Field(alias="_embedded")


class TriggerLinks(Answer):
    event: Link


class TriggerQueued(Answer):
    """A non-blocking event: stored, its deliveries queued."""

    id: str
    deliveries: int = Field(ge=0)


class TriggerQueuedHal(TriggerQueued):
    links: TriggerLinks = Field(alias="_links")


class ValidationCall(Answer):
    """One validation webhook's answer to a blocking event."""

    webhook: str = Field(json_schema_extra={"format": "uuid"})
    status_code: int | None
    body: Any = Field(
        None, description="Its answer (parsed when JSON); only for handleResponse STATUS_AND_BODY"
    )
    error: str | None = Field(None, description="Why no answer came; absent when one came")
    duration_ms: float
    attempts: int = Field(ge=1)


class TriggerVerdict(Answer):
    """A blocking event: whether every validation webhook allowed it."""

    id: str
    allowed: bool
    results: list[ValidationCall]


class TriggerVerdictHal(TriggerVerdict):
    links: TriggerLinks = Field(alias="_links")


# --- views ------------------------------------------------------------------------------------


def webhook_entity(found: RepositoryWebhook) -> dict[str, Any]:
    """Exactly the specification's fields, in its order."""
    webhook, binding = found.webhook, found.binding
    return {
        "apiKey": webhook.bearer_token,
        "description": webhook.description,
        "enabled": webhook.active,
        "handleResponse": binding.handle_response,
        "id": webhook.public_id,
        "restrictions": [{"key": "CATEGORY", "value": value} for value in webhook.categories],
        "retry": webhook.max_retries > 0,
        "timeout": webhook.timeout_ms,
        "uri": binding.uri,
    }


def event_entity(event: EventDefinition) -> dict[str, Any]:
    return {
        "id": event.id,
        "name": event.name,
        "description": event.description,
        "blocking": event.blocking,
    }


def repository_entity(repository: Repository, *, detailed: bool = True) -> dict[str, Any]:
    """A repository; its `base_uri` (an address inside the network, often) only `detailed`,
    for administrators."""
    entity: dict[str, Any] = {"id": repository.id, "name": repository.name}
    if detailed:
        entity["base_uri"] = repository.base_uri
    return entity


def repository_path(repository_id: str) -> str:
    return f"/r/{repository_id}"


def events_path(repository_id: str) -> str:
    return f"/r/{repository_id}/events"


def event_path(repository_id: str, event_id: str) -> str:
    return f"/r/{repository_id}/events/{event_id}"


def trigger_path(repository_id: str, event_id: str) -> str:
    return f"{event_path(repository_id, event_id)}/trigger"


def webhook_path(repository_id: str, event_id: str, webhook_id: str) -> str:
    return f"{event_path(repository_id, event_id)}/{webhook_id}"


def repository_resource(repository: Repository, *, detailed: bool = True) -> Resource:
    return Resource(
        repository_entity(repository, detailed=detailed),
        {"self": repository_path(repository.id), "events": events_path(repository.id)},
    )


def event_resource(
    event: EventDefinition, webhooks: Sequence[RepositoryWebhook] | None = None
) -> Resource:
    """An event definition; with `webhooks`, its webhooks embedded (`webhooks` in plain JSON)."""
    repo, eid = event.repository_id, event.id
    resource = Resource(
        event_entity(event),
        {
            "self": event_path(repo, eid),
            "repository": repository_path(repo),
            "trigger": trigger_path(repo, eid),
        },
    )
    if webhooks is not None:
        resource.embedded["webhooks"] = [webhook_resource(repo, eid, w) for w in webhooks]
    return resource


def events_resource(repository_id: str, events: list[EventDefinition]) -> Resource:
    return Resource(
        {},
        {"self": events_path(repository_id), "repository": repository_path(repository_id)},
        {"events": [event_resource(event) for event in events]},
    )


def webhook_resource(repository_id: str, event_id: str, found: RepositoryWebhook) -> Resource:
    return Resource(
        webhook_entity(found),
        {
            "self": webhook_path(repository_id, event_id, found.webhook.public_id or ""),
            "event": event_path(repository_id, event_id),
            "repository": repository_path(repository_id),
        },
    )


def response_body(text: str | None) -> Any:
    """A receiver's answer: parsed when it is JSON, else the text (None when none came)."""
    if text is None:
        return None
    try:
        return orjson.loads(text)
    except orjson.JSONDecodeError:
        return text


def call_result(call: Call, called: RepositoryWebhook, *, detailed: bool) -> dict[str, Any]:
    """One validation call as the trigger's answer lists it; an error names addresses (what
    the SSRF guard refused, where a connection failed) only `detailed`, for administrators."""
    last = call.last
    view: dict[str, Any] = {"webhook": called.webhook.public_id, "status_code": last.status_code}
    if called.binding.handle_response == STATUS_AND_BODY:
        view["body"] = response_body(last.body)
    if last.error is not None:
        view["error"] = last.error if detailed else last.public_error
    view["duration_ms"] = round(call.duration_ms, 3)
    view["attempts"] = len(call.tries)
    return view


def verdict_view(
    verdict: Verdict, event_id: str, called: Sequence[RepositoryWebhook], *, detailed: bool
) -> dict[str, Any]:
    """`{"id", "allowed", "results"}`: `called` are the webhooks of the chain, in its order."""
    return {
        "id": event_id,
        "allowed": verdict.allowed,
        "results": [
            call_result(call, hook, detailed=detailed)
            for call, hook in zip(verdict.calls, called, strict=False)
        ],
    }
