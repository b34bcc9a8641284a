"""What the device dialect answers: its webhook entity and the delivery log, and the models
that document each answer (the views build plain dicts; the models say what they hold)."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import Field

from hookd.dialects.device.event_types import EventTypeName, Subscription
from hookd.domain.states import DeliveryState, Ordering, WebhookHealth, WebhookStatus
from hookd.domain.validation import HTTP_URL_SCHEMA
from hookd.domain.webhook import Webhook
from hookd.http.openapi import Answer
from hookd.store.api_keys import ApiKey
from hookd.store.deliveries import Delivery
from hookd.store.event_types import CustomEventType

Id = Annotated[int, Field(ge=1)]
UnixSeconds = Annotated[int, Field(description="Unix seconds")]


class DeviceWebhook(Answer):
    """The specification's webhook entity, plus `uid` (and the reason when hookd disabled it)."""

    uid: Id
    url: Annotated[str, Field(json_schema_extra=HTTP_URL_SCHEMA)]
    secret: str | None
    status: WebhookStatus
    timeout: int = Field(description="Milliseconds")
    headers: str = Field(description="A JSON object of header name → value, held in a string")
    description: str
    event_types: list[Subscription]
    max_retries: int
    rate_limit: int | None = Field(
        description="Deliveries per second at most, all workers together; null: none"
    )
    ordering: Ordering = Field(description="`fifo`: one at a time, strictly in publish order")
    health: WebhookHealth = Field(
        description="`suspended` while every attempt fails: one probe at a time until one succeeds"
    )
    disabled_reason: str | None = Field(
        description="Why hookd disabled the webhook (auto-disable, 410 Gone); null otherwise"
    )
    created_at: UnixSeconds
    updated_at: UnixSeconds


class NewSecret(Answer):
    """The webhook's new secret; the previous one keeps signing for HOOKD_SECRET_GRACE."""

    secret: str


class Queued(Answer):
    """How many deliveries were queued."""

    queued: int = Field(ge=0)


class DeviceWebhookList(Answer):
    items: list[DeviceWebhook]
    total: int = Field(ge=0, description="How many there are in all")


class WebhookTestResult(Answer):
    """What came back from a test send (`error` when nothing did)."""

    status_code: int | None
    duration_ms: float
    response_body: str | None
    error: str | None


class EventTypeList(Answer):
    """The catalogue: the built-in types in their order, then those added, oldest first."""

    items: list[EventTypeName]
    total: int = Field(ge=0)


class EventType(Answer):
    """A type an administrator added to the catalogue."""

    name: EventTypeName
    description: str
    created_at: UnixSeconds


class ApiKeyEntry(Answer):
    """A producer's API key, as listed: its first characters, never the key."""

    id: Id
    name: str
    prefix: str = Field(description="The key's first characters, to tell keys apart")
    event_types: list[Subscription] | None = Field(
        description="The types (or wildcards) it may publish; null: any"
    )
    created_at: UnixSeconds


class NewApiKey(Answer):
    """A new API key: `key` is shown this once (hookd keeps only a digest of it)."""

    id: Id
    name: str
    key: str = Field(description="Send it as `Authorization: Bearer <key>` to publish events")
    event_types: list[Subscription] | None = Field(
        description="The types (or wildcards) it may publish; null: any"
    )
    created_at: UnixSeconds


class ApiKeyList(Answer):
    items: list[ApiKeyEntry]
    total: int = Field(ge=0)


class Published(Answer):
    """The ids of the events stored, and how many deliveries were queued for them."""

    ids: list[str]
    deliveries: int = Field(ge=0)


class AttemptEntry(Answer):
    number: int = Field(ge=1)
    started_at: float = Field(description="Unix seconds")
    duration_ms: float
    status_code: int | None
    response_body: str | None = Field(description="The first 4 KiB of the answer")
    error: str | None


class DeliveryEntry(Answer):
    """A delivery of an event to a webhook, with its attempts."""

    id: Id
    webhook_uid: Id
    event_id: str
    event_type: str
    status: DeliveryState
    attempt_count: int = Field(ge=0)
    next_attempt_at: float | None = Field(description="Unix seconds; null once finished")
    created_at: float = Field(description="Unix seconds")
    updated_at: float = Field(description="Unix seconds")
    last_status_code: int | None
    last_error: str | None
    attempts: list[AttemptEntry]


class DeliveryList(Answer):
    items: list[DeliveryEntry]
    total: int = Field(ge=0)


def webhook_entity(webhook: Webhook) -> dict[str, Any]:
    """The specification's webhook entity, plus `uid` and the delivery controls (`rate_limit`,
    `ordering`, and read-only `health` and `disabled_reason`)."""
    entity: dict[str, Any] = {
        "uid": webhook.id,
        "url": webhook.url,
        "secret": webhook.secret,
        "status": webhook.status.value,
        "timeout": webhook.timeout_ms,
        "headers": webhook.headers,
        "description": webhook.description,
        "event_types": list(webhook.topics),
        "max_retries": webhook.max_retries,
        "rate_limit": webhook.rate_limit,
        "ordering": webhook.ordering.value,
        "health": webhook.health.value,
        "disabled_reason": webhook.disabled_reason,
        "created_at": webhook.created_at,
        "updated_at": webhook.updated_at,
    }
    return entity


def delivery_view(delivery: Delivery) -> dict[str, Any]:
    return {
        "id": delivery.id,
        "webhook_uid": delivery.webhook_id,
        "event_id": delivery.event_id,
        "event_type": delivery.event_type,
        "status": delivery.state.value,
        "attempt_count": delivery.attempts,
        "next_attempt_at": delivery.next_attempt_at,
        "created_at": delivery.created_at,
        "updated_at": delivery.updated_at,
        "last_status_code": delivery.last_status_code,
        "last_error": delivery.last_error,
        "attempts": [
            {
                "number": attempt.number,
                "started_at": attempt.started_at,
                "duration_ms": round(attempt.duration_ms, 3),
                "status_code": attempt.status_code,
                "response_body": attempt.response_body,
                "error": attempt.error,
            }
            for attempt in delivery.attempt_log
        ],
    }


def api_key_entry(key: ApiKey) -> dict[str, Any]:
    return {
        "id": key.id,
        "name": key.name,
        "prefix": key.prefix,
        "event_types": None if key.event_types is None else list(key.event_types),
        "created_at": key.created_at,
    }


def event_type_view(found: CustomEventType) -> dict[str, Any]:
    return {"name": found.name, "description": found.description, "created_at": found.created_at}
