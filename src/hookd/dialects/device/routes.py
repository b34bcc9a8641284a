"""The device dialect's API under /api/v1: webhooks, publishing, the delivery log, test sends."""

from __future__ import annotations

import time
from typing import Annotated

from fastapi import APIRouter, Path, Query, Request, Response

from hookd import publishing
from hookd.delivery.sender import Attempt
from hookd.dialects.device import catalogue, producers
from hookd.dialects.device.events import EventsToPublish, parse_events, requested_types
from hookd.dialects.device.fields import (
    NAME,
    DeviceWebhookPatch,
    DeviceWebhookSpec,
    RotateSpec,
    SinceSpec,
    parse_rotation,
    parse_since,
    parse_webhook,
    parse_webhook_fields,
    patched_webhook,
)
from hookd.dialects.device.views import (
    DeliveryEntry,
    DeliveryList,
    DeviceWebhook,
    DeviceWebhookList,
    NewSecret,
    Published,
    Queued,
    WebhookTestResult,
    delivery_view,
    webhook_entity,
)
from hookd.domain.api_keys import allows
from hookd.domain.event import delivery_body, new_event_id, rfc3339
from hookd.domain.signing import generate_secret
from hookd.domain.states import DeliveryState
from hookd.domain.validation import parse_id
from hookd.domain.webhook import Webhook
from hookd.http.auth import Admin, AnyProducer, Hookd
from hookd.http.body import read_json, read_json_object, read_optional_json_object
from hookd.http.dialect import Dialect
from hookd.http.errors import ApiError, Error
from hookd.http.openapi import errors, operation
from hookd.http.responses import Json
from hookd.http.services import Services
from hookd.store import deliveries as delivery_log
from hookd.store import webhooks as store
from hookd.store.database import Database

router = APIRouter(prefix="/api/v1")
WEBHOOKS = "device dialect: webhooks"
EVENTS = "device dialect: events and deliveries"

# Ids in paths are read as text, so that one that is no integer ≥ 1 gets this dialect's 400.
ID_SCHEMA = {"type": "integer", "minimum": 1}
Uid = Annotated[
    str, Path(description="The webhook's uid, an integer ≥ 1", json_schema_extra=ID_SCHEMA)
]
DeliveryId = Annotated[
    str, Path(description="The delivery's id, an integer ≥ 1", json_schema_extra=ID_SCHEMA)
]
Limit = Annotated[int, Query(ge=1, le=1000)]
Offset = Annotated[int, Query(ge=0, le=2**31 - 1)]

BAD_REQUEST = {400: 'Wrong JSON body, Wrong webhook uid, or `{"error": "<field>: <why>"}`'}
# What a call can get wrong: the caller (401, 403), the path or query (400), the body (400,
# 413, 415).
ADMIN_READS = errors(Error, (400, 401, 403), descriptions=BAD_REQUEST)
ADMIN_WRITES = errors(Error, (400, 401, 403, 413, 415), descriptions=BAD_REQUEST)


_STATES = tuple(state.value for state in DeliveryState)


def wrong_uid() -> ApiError:
    return ApiError(400, "Wrong webhook uid")


async def device_webhook(db: Database, raw_uid: str) -> Webhook:
    """The device-dialect webhook a path names, or 400 Wrong webhook uid."""
    uid = parse_id(raw_uid)
    webhook = None if uid is None else await store.get_webhook(db, uid, NAME)
    if webhook is None:
        raise wrong_uid()
    return webhook


# --- webhooks ---------------------------------------------------------------------------------


@router.get(
    "/webhooks",
    summary="List webhooks",
    tags=[WEBHOOKS],
    response_model=DeviceWebhookList,
    responses=ADMIN_READS,
    openapi_extra=operation(),
)
async def list_webhooks(_: Admin, hookd: Hookd, limit: Limit = 100, offset: Offset = 0) -> Json:
    found, total = await store.list_webhooks(hookd.db, NAME, limit=limit, offset=offset)
    return Json({"items": [webhook_entity(webhook) for webhook in found], "total": total})


@router.post(
    "/webhooks",
    status_code=201,
    summary="Create a webhook",
    tags=[WEBHOOKS],
    response_model=DeviceWebhook,
    responses=ADMIN_WRITES,
    openapi_extra=operation(body=DeviceWebhookSpec),
)
async def create_webhook(request: Request, _: Admin, hookd: Hookd) -> Json:
    spec = parse_webhook(await read_json_object(request, hookd.settings.max_body_bytes))
    await catalogue.check_subscriptions(hookd.db, spec.event_types, "event_types")
    webhook = await store.create_webhook(hookd.db, NAME, spec.to_fields(secret=generate_secret()))
    return Json(webhook_entity(webhook), status_code=201)


@router.get(
    "/webhooks/{uid}",
    summary="Get a webhook",
    tags=[WEBHOOKS],
    response_model=DeviceWebhook,
    responses=ADMIN_READS,
    openapi_extra=operation(),
)
async def get_webhook(uid: Uid, _: Admin, hookd: Hookd) -> Json:
    return Json(webhook_entity(await device_webhook(hookd.db, uid)))


@router.put(
    "/webhooks/{uid}",
    summary="Replace a webhook (an omitted secret is kept)",
    tags=[WEBHOOKS],
    response_model=DeviceWebhook,
    responses=ADMIN_WRITES,
    openapi_extra=operation(body=DeviceWebhookSpec),
)
async def replace_webhook(uid: Uid, request: Request, _: Admin, hookd: Hookd) -> Json:
    current = await device_webhook(hookd.db, uid)
    spec = parse_webhook(await read_json_object(request, hookd.settings.max_body_bytes))
    await catalogue.check_subscriptions(hookd.db, spec.event_types, "event_types")
    fields = spec.to_fields(current.secret)
    updated = await store.replace_webhook(
        hookd.db, current.id, fields, _rotation(hookd, current, fields.secret)
    )
    if updated is None:
        raise wrong_uid()
    return Json(webhook_entity(updated))


@router.patch(
    "/webhooks/{uid}",
    summary="Change some fields of a webhook",
    tags=[WEBHOOKS],
    response_model=DeviceWebhook,
    responses=ADMIN_WRITES,
    openapi_extra=operation(body=DeviceWebhookPatch),
)
async def patch_webhook(uid: Uid, request: Request, _: Admin, hookd: Hookd) -> Json:
    current = await device_webhook(hookd.db, uid)
    spec = patched_webhook(current, await read_json_object(request, hookd.settings.max_body_bytes))
    await catalogue.check_subscriptions(hookd.db, spec.event_types, "event_types")
    fields = spec.to_fields(current.secret)
    updated = await store.replace_webhook(
        hookd.db, current.id, fields, _rotation(hookd, current, fields.secret)
    )
    if updated is None:
        raise wrong_uid()
    return Json(webhook_entity(updated))


def _rotation(hookd: Services, current: Webhook, secret: str | None) -> store.Rotation | None:
    """A changed secret is a rotation: the old one keeps signing for the grace period."""
    if secret == current.secret:
        return None
    return store.Rotation(current.secret, time.time() + hookd.settings.secret_grace)


@router.post(
    "/webhooks/{uid}/secret/rotate",
    summary="Give the webhook a new secret; the old one keeps signing for HOOKD_SECRET_GRACE",
    tags=[WEBHOOKS],
    response_model=NewSecret,
    responses=ADMIN_WRITES,
    openapi_extra=operation(body=RotateSpec, body_required=False),
)
async def rotate_secret(uid: Uid, request: Request, _: Admin, hookd: Hookd) -> Json:
    current = await device_webhook(hookd.db, uid)
    given = parse_rotation(await read_optional_json_object(request, hookd.settings.max_body_bytes))
    secret = given or generate_secret()
    fields = parse_webhook_fields(current, secret)
    updated = await store.replace_webhook(
        hookd.db, current.id, fields, _rotation(hookd, current, secret)
    )
    if updated is None:
        raise wrong_uid()
    return Json({"secret": secret})


@router.post(
    "/webhooks/{uid}/replay",
    status_code=202,
    summary="Queue every stored event of the webhook's types since a time that it has not "
    "received successfully",
    tags=[WEBHOOKS],
    response_model=Queued,
    responses=ADMIN_WRITES,
    openapi_extra=operation(body=SinceSpec),
)
async def replay_webhook(uid: Uid, request: Request, _: Admin, hookd: Hookd) -> Json:
    webhook = await device_webhook(hookd.db, uid)
    since = parse_since(await read_json_object(request, hookd.settings.max_body_bytes))
    queued = await delivery_log.replay(hookd.db, webhook.id, webhook.topics, since, time.time())
    return Json({"queued": queued}, status_code=202)


@router.post(
    "/webhooks/{uid}/recover",
    status_code=202,
    summary="Send every failed delivery of the webhook since a time again",
    tags=[WEBHOOKS],
    response_model=Queued,
    responses=ADMIN_WRITES,
    openapi_extra=operation(body=SinceSpec),
)
async def recover_webhook(uid: Uid, request: Request, _: Admin, hookd: Hookd) -> Json:
    webhook = await device_webhook(hookd.db, uid)
    since = parse_since(await read_json_object(request, hookd.settings.max_body_bytes))
    queued = await delivery_log.recover(hookd.db, webhook.id, since, time.time())
    return Json({"queued": queued}, status_code=202)


@router.delete(
    "/webhooks/{uid}",
    status_code=204,
    summary="Delete a webhook",
    tags=[WEBHOOKS],
    responses=ADMIN_READS,
    openapi_extra=operation(),
)
async def delete_webhook(uid: Uid, _: Admin, hookd: Hookd) -> Response:
    webhook = await device_webhook(hookd.db, uid)
    if not await store.delete_webhook(hookd.db, webhook.id):
        raise wrong_uid()
    return Response(status_code=204)


@router.post(
    "/webhooks/{uid}/test",
    summary="Send a test event to the webhook now and return what came back",
    tags=[WEBHOOKS],
    response_model=WebhookTestResult,
    responses=ADMIN_READS,
    openapi_extra=operation(),
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


# --- events -----------------------------------------------------------------------------------


@router.post(
    "/events",
    status_code=202,
    summary="Publish one event or an array of up to 1000",
    tags=[EVENTS],
    response_model=Published,
    response_description="Stored, and a delivery queued for every subscribed webhook",
    responses=errors(
        Error,
        (400, 401, 403, 413, 415),
        descriptions={
            **BAD_REQUEST,
            403: "An API key sent an event type it may not publish",
            413: "An event (or the request) is too large",
        },
    ),
    openapi_extra=operation(body=EventsToPublish, api_key=True),
)
async def publish_events(request: Request, producer: AnyProducer, hookd: Hookd) -> Json:
    # A whole request is held to HOOKD_MAX_PUBLISH_BYTES as it streams in, before it is parsed;
    # each event then to HOOKD_MAX_EVENT_BYTES.
    body = await read_json(request, hookd.settings.max_publish_bytes)
    drafts = parse_events(body, await catalogue.publishable(hookd.db, requested_types(body)))
    for draft in drafts:
        if not allows(producer.event_types, draft.type):
            raise ApiError(403, f"This API key may not publish {draft.type!r}")
    published = await publishing.publish(
        hookd.db, drafts, time.time(), hookd.settings.max_event_bytes, producer=producer.name
    )
    return Json(
        {"ids": [p.id for p in published], "deliveries": sum(p.deliveries for p in published)},
        status_code=202,
    )


# --- the delivery log -------------------------------------------------------------------------


@router.get(
    "/webhooks/{uid}/deliveries",
    summary="The delivery log of a webhook, newest first, with each delivery's attempts",
    tags=[EVENTS],
    response_model=DeliveryList,
    responses=ADMIN_READS,
    openapi_extra=operation(),
)
async def list_deliveries(
    uid: Uid,
    _: Admin,
    hookd: Hookd,
    status: Annotated[
        str | None,
        Query(description="Only deliveries in this state", json_schema_extra={"enum": _STATES}),
    ] = None,
    limit: Limit = 100,
    offset: Offset = 0,
) -> Json:
    webhook = await device_webhook(hookd.db, uid)
    if status is not None and status not in _STATES:
        raise ApiError(400, f"status: must be one of {', '.join(_STATES)}")
    found, total = await delivery_log.list_deliveries(
        hookd.db,
        webhook.id,
        state=None if status is None else DeliveryState(status),
        limit=limit,
        offset=offset,
    )
    return Json({"items": [delivery_view(d) for d in found], "total": total})


@router.post(
    "/deliveries/{delivery_id}/retry",
    status_code=202,
    summary="Re-queue a delivery, whatever its state",
    tags=[EVENTS],
    response_model=DeliveryEntry,
    responses=errors(Error, (400, 401, 403), descriptions={400: "Wrong delivery id"}),
    openapi_extra=operation(),
)
async def retry_delivery(delivery_id: DeliveryId, _: Admin, hookd: Hookd) -> Json:
    number = parse_id(delivery_id)
    delivery = None if number is None else await delivery_log.requeue(hookd.db, number, time.time())
    if delivery is None:
        raise ApiError(400, "Wrong delivery id")
    return Json(delivery_view(delivery), status_code=202)


router.include_router(producers.router)

DEVICE = Dialect(name=NAME, router=router)
