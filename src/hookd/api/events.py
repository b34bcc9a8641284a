"""Publishing events, the delivery log, manual retries and test sends (device dialect paths)."""

from __future__ import annotations

import time
from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, Request

from hookd.api.auth import ADMIN_ONLY, UNAUTHORIZED, Admin, AnyUser, Hookd
from hookd.api.body import read_json
from hookd.api.device import BAD_REQUEST, Limit, Offset, Uid, device_webhook
from hookd.api.errors import ApiError
from hookd.api.responses import Json
from hookd.delivery import metrics
from hookd.delivery.sender import Attempt
from hookd.domain.device_events import DEVICE_EVENT_TYPE_SET
from hookd.domain.event import (
    MAX_EVENTS_PER_REQUEST,
    delivery_body,
    new_event_id,
    parse_device_events,
    rfc3339,
)
from hookd.store import deliveries as delivery_log
from hookd.store.deliveries import Delivery
from hookd.store.events import NewEvent, publish

router = APIRouter(prefix="/api/v1", tags=["device dialect: events and deliveries"])

STATES = ("pending", "delivering", "retrying", "succeeded", "failed")
# A whole publish request may hold many events; each event is held to HOOKD_MAX_EVENT_BYTES.
REQUEST_LIMIT = 32 * 1024 * 1024

_EVENT_SCHEMA = {
    "type": "object",
    "required": ["type"],
    "properties": {
        "type": {"type": "string", "description": "A device event type (GET /api/v1/event-types)"},
        "data": {"type": "object"},
        "id": {
            "type": "string",
            "maxLength": 255,
            "description": "Your id for the event: an idempotency key for 24 h",
        },
    },
}
PUBLISH_BODY = {
    "requestBody": {
        "required": True,
        "content": {
            "application/json": {
                "schema": {
                    "oneOf": [
                        _EVENT_SCHEMA,
                        {
                            "type": "array",
                            "items": _EVENT_SCHEMA,
                            "minItems": 1,
                            "maxItems": MAX_EVENTS_PER_REQUEST,
                        },
                    ]
                }
            }
        },
    }
}


@router.post(
    "/events",
    status_code=202,
    summary="Publish one event or an array of up to 1000",
    openapi_extra=PUBLISH_BODY,
    responses={
        **UNAUTHORIZED,
        **BAD_REQUEST,
        202: {"description": '`{"ids": [...], "deliveries": N}`: stored, deliveries queued'},
        413: {"description": "An event (or the request) is too large"},
    },
)
async def publish_events(request: Request, _: AnyUser, hookd: Hookd) -> Json:
    parsed = parse_device_events(await read_json(request, REQUEST_LIMIT), DEVICE_EVENT_TYPE_SET)
    now = time.time()
    created_at = rfc3339(now)
    limit = hookd.settings.max_event_bytes
    new_events = []
    for index, (given_id, event_type, data) in enumerate(parsed):
        event_id = given_id or new_event_id()
        body = delivery_body(event_id, event_type, created_at, data)
        if len(body) > limit:
            raise ApiError(413, f"[{index}]: the event is larger than {limit} bytes")
        new_events.append(NewEvent(event_id, event_type, body, idempotency_key=given_id))
    published = await publish(hookd.db, new_events, now)
    metrics.EVENTS_PUBLISHED.inc(len(new_events))
    return Json(
        {"ids": [p.id for p in published], "deliveries": sum(p.deliveries for p in published)},
        status_code=202,
    )


def delivery_view(delivery: Delivery) -> dict[str, Any]:
    return {
        "id": delivery.id,
        "webhook_uid": delivery.webhook_id,
        "event_id": delivery.event_id,
        "event_type": delivery.event_type,
        "status": delivery.state,
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


@router.get(
    "/webhooks/{uid}/deliveries",
    summary="The delivery log of a webhook, newest first, with each delivery's attempts",
    responses={**ADMIN_ONLY, **BAD_REQUEST},
)
async def list_deliveries(
    uid: Uid,
    _: Admin,
    hookd: Hookd,
    status: Annotated[str | None, Query(description=" | ".join(STATES))] = None,
    limit: Limit = 100,
    offset: Offset = 0,
) -> Json:
    webhook = await device_webhook(hookd.db, uid)
    if status is not None and status not in STATES:
        raise ApiError(400, f"status: must be one of {', '.join(STATES)}")
    found, total = await delivery_log.list_deliveries(
        hookd.db, webhook.id, state=status, limit=limit, offset=offset
    )
    return Json({"items": [delivery_view(d) for d in found], "total": total})


@router.post(
    "/deliveries/{delivery_id}/retry",
    status_code=202,
    summary="Re-queue a delivery, whatever its state",
    responses={**ADMIN_ONLY, 400: {"description": "Wrong delivery id"}},
)
async def retry_delivery(
    delivery_id: Annotated[str, Path(description="The delivery's id")], _: Admin, hookd: Hookd
) -> Json:
    if not delivery_id.isascii() or not delivery_id.isdigit() or len(delivery_id) > 18:
        raise ApiError(400, "Wrong delivery id")
    delivery = await delivery_log.requeue(hookd.db, int(delivery_id), time.time())
    if delivery is None:
        raise ApiError(400, "Wrong delivery id")
    return Json(delivery_view(delivery), status_code=202)


@router.post(
    "/webhooks/{uid}/test",
    summary="Send a test event to the webhook now and return what came back",
    responses={
        **ADMIN_ONLY,
        **BAD_REQUEST,
        200: {"description": '`{"status_code", "duration_ms", "response_body", "error"}`'},
    },
)
async def test_webhook(uid: Uid, _: Admin, hookd: Hookd) -> Json:
    webhook = await device_webhook(hookd.db, uid)
    event_id = new_event_id()
    body = delivery_body(event_id, "hookd.test", rfc3339(time.time()), {"test": True})
    result = await hookd.sender.send(
        Attempt(
            url=webhook.url,
            body=body,
            event_id=event_id,
            number=1,
            timeout_ms=webhook.timeout_ms,
            secret=webhook.secret,
            headers=webhook.headers,
        )
    )
    return Json(
        {
            "status_code": result.status_code,
            "duration_ms": round(result.duration_ms, 3),
            "response_body": result.body,
            "error": result.error,
        }
    )
