"""What the device dialect answers: its webhook entity and the delivery log."""

from __future__ import annotations

from typing import Any

from hookd.domain.webhook import Webhook
from hookd.store.deliveries import Delivery


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
