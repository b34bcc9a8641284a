"""Device dialect (seed 000): webhook management and the event-type catalogue."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, Request, Response

from hookd.api.auth import ADMIN_ONLY, UNAUTHORIZED, Admin, AnyUser, Hookd
from hookd.api.body import read_json_object
from hookd.api.errors import ApiError
from hookd.api.responses import Json
from hookd.domain.device_events import DEVICE_EVENT_TYPES
from hookd.domain.device_webhook import (
    DeviceWebhookSpec,
    device_entity,
    parse_device_webhook,
    patched_device_webhook,
)
from hookd.domain.signing import generate_secret
from hookd.domain.webhook import Webhook
from hookd.store import webhooks as store
from hookd.store.database import Database

router = APIRouter(prefix="/api/v1", tags=["device dialect: webhooks"])

Uid = Annotated[str, Path(description="The webhook's uid, an integer ≥ 1")]
Limit = Annotated[int, Query(ge=1, le=1000)]
Offset = Annotated[int, Query(ge=0, le=2**31 - 1)]

_ENTITY_SCHEMA: dict[str, Any] = {
    **DeviceWebhookSpec.model_json_schema(),
    "title": "Webhook",
}
WEBHOOK_BODY = {
    "requestBody": {"required": True, "content": {"application/json": {"schema": _ENTITY_SCHEMA}}}
}
BAD_REQUEST: dict[int | str, dict[str, Any]] = {
    400: {"description": 'Wrong JSON body, Wrong webhook uid, or `{"error": "<field>: <why>"}`'}
}
ERRORS = {**ADMIN_ONLY, **BAD_REQUEST}


def wrong_uid() -> ApiError:
    return ApiError(400, "Wrong webhook uid")


def parse_uid(raw: str) -> int:
    if not raw.isascii() or not raw.isdigit() or int(raw) < 1 or len(raw) > 18:
        raise wrong_uid()
    return int(raw)


async def device_webhook(db: Database, raw_uid: str) -> Webhook:
    """The device-dialect webhook a path names, or 400 Wrong webhook uid."""
    webhook = await store.get_webhook(db, parse_uid(raw_uid))
    if webhook is None or webhook.public_id is not None:
        raise wrong_uid()
    return webhook


@router.get("/webhooks", summary="List webhooks", responses=ERRORS)
async def list_webhooks(_: Admin, hookd: Hookd, limit: Limit = 100, offset: Offset = 0) -> Json:
    found, total = await store.list_webhooks(hookd.db, limit=limit, offset=offset, device_only=True)
    return Json({"items": [device_entity(webhook) for webhook in found], "total": total})


@router.post(
    "/webhooks",
    status_code=201,
    summary="Create a webhook",
    openapi_extra=WEBHOOK_BODY,
    responses=ERRORS,
)
async def create_webhook(request: Request, _: Admin, hookd: Hookd) -> Json:
    spec = parse_device_webhook(await read_json_object(request))
    webhook = await store.create_webhook(hookd.db, spec.to_fields(secret=generate_secret()))
    return Json(device_entity(webhook), status_code=201)


@router.get("/webhooks/{uid}", summary="Get a webhook", responses=ERRORS)
async def get_webhook(uid: Uid, _: Admin, hookd: Hookd) -> Json:
    return Json(device_entity(await device_webhook(hookd.db, uid)))


@router.put(
    "/webhooks/{uid}",
    summary="Replace a webhook (an omitted secret is kept)",
    openapi_extra=WEBHOOK_BODY,
    responses=ERRORS,
)
async def replace_webhook(uid: Uid, request: Request, _: Admin, hookd: Hookd) -> Json:
    current = await device_webhook(hookd.db, uid)
    spec = parse_device_webhook(await read_json_object(request))
    updated = await store.replace_webhook(hookd.db, current.id, spec.to_fields(current.secret))
    if updated is None:
        raise wrong_uid()
    return Json(device_entity(updated))


@router.patch(
    "/webhooks/{uid}",
    summary="Change some fields of a webhook",
    responses=ERRORS,
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": {**_ENTITY_SCHEMA, "required": []}}},
        }
    },
)
async def patch_webhook(uid: Uid, request: Request, _: Admin, hookd: Hookd) -> Json:
    current = await device_webhook(hookd.db, uid)
    spec = patched_device_webhook(current, await read_json_object(request))
    updated = await store.replace_webhook(hookd.db, current.id, spec.to_fields(current.secret))
    if updated is None:
        raise wrong_uid()
    return Json(device_entity(updated))


@router.delete("/webhooks/{uid}", status_code=204, summary="Delete a webhook", responses=ERRORS)
async def delete_webhook(uid: Uid, _: Admin, hookd: Hookd) -> Response:
    webhook = await device_webhook(hookd.db, uid)
    if not await store.delete_webhook(hookd.db, webhook.id):
        raise wrong_uid()
    return Response(status_code=204)


@router.get("/event-types", summary="The catalogue of device event types", responses=UNAUTHORIZED)
async def event_types(_: AnyUser) -> Json:
    return Json({"items": list(DEVICE_EVENT_TYPES), "total": len(DEVICE_EVENT_TYPES)})
