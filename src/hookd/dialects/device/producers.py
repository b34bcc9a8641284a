"""What producers need from the device dialect: API keys to publish with, and a catalogue of
event types that administrators extend with their own."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Request, Response

from hookd.dialects.device import catalogue
from hookd.dialects.device.event_types import BUILT_IN
from hookd.dialects.device.fields import (
    ApiKeySpec,
    EventTypeSpec,
    parse_api_key,
    parse_event_type,
)
from hookd.dialects.device.views import (
    ApiKeyList,
    EventType,
    EventTypeList,
    NewApiKey,
    api_key_entry,
    event_type_view,
)
from hookd.domain.api_keys import displayed, new_api_key
from hookd.domain.event_types import could_be_added
from hookd.domain.validation import parse_id
from hookd.http.auth import Admin, AnyUser, Hookd, forget_api_key
from hookd.http.body import read_json_object
from hookd.http.errors import ApiError, Error
from hookd.http.openapi import errors, operation
from hookd.http.responses import Json
from hookd.store import api_keys as key_store
from hookd.store import event_types as type_store

# Under the dialect's router (/api/v1).
router = APIRouter()
PRODUCERS = "device dialect: producers"

KeyId = Annotated[
    str,
    Path(
        description="The key's id, an integer ≥ 1",
        json_schema_extra={"type": "integer", "minimum": 1},
    ),
]
TypeName = Annotated[str, Path(description="The name of a type added to the catalogue")]

BAD_BODY = {400: 'Wrong JSON body, or `{"error": "<field>: <why>"}`'}


# --- API keys ---------------------------------------------------------------------------------


@router.post(
    "/api-keys",
    status_code=201,
    summary="Create an API key for a producer: it may only publish (the types listed, if any)",
    tags=[PRODUCERS],
    response_model=NewApiKey,
    responses=errors(Error, (400, 401, 403, 413, 415), descriptions=BAD_BODY),
    openapi_extra=operation(body=ApiKeySpec),
)
async def create_api_key(request: Request, _: Admin, hookd: Hookd) -> Json:
    spec = parse_api_key(await read_json_object(request, hookd.settings.max_body_bytes))
    if spec.event_types is not None:
        await catalogue.check_publishable(hookd.db, spec.event_types, "event_types")
    key, digest = new_api_key()
    created = await key_store.create_api_key(
        hookd.db, spec.name, displayed(key), digest, spec.event_types
    )
    return Json(
        {
            "id": created.id,
            "name": created.name,
            "key": key,
            "event_types": spec.event_types,
            "created_at": created.created_at,
        },
        status_code=201,
    )


@router.get(
    "/api-keys",
    summary="List the API keys (never the keys themselves)",
    tags=[PRODUCERS],
    response_model=ApiKeyList,
    responses=errors(Error, (401, 403)),
    openapi_extra=operation(),
)
async def list_api_keys(_: Admin, hookd: Hookd) -> Json:
    found = await key_store.list_api_keys(hookd.db)
    return Json({"items": [api_key_entry(key) for key in found], "total": len(found)})


@router.delete(
    "/api-keys/{key_id}",
    status_code=204,
    summary="Revoke an API key: it gets 401 from then on",
    tags=[PRODUCERS],
    responses=errors(Error, (400, 401, 403, 404), descriptions={400: "Wrong API key id"}),
    openapi_extra=operation(),
)
async def revoke_api_key(key_id: KeyId, _: Admin, hookd: Hookd) -> Response:
    number = parse_id(key_id)
    if number is None:
        raise ApiError(400, "Wrong API key id")
    digest = await key_store.revoke_api_key(hookd.db, number)
    if digest is None:
        raise ApiError(404, "No such API key")
    forget_api_key(hookd, digest)
    return Response(status_code=204)


# --- the catalogue of event types -------------------------------------------------------------


@router.get(
    "/event-types",
    summary="The catalogue of event types: the built-in ones, then those added",
    tags=[PRODUCERS],
    response_model=EventTypeList,
    responses=errors(Error, (401,)),
    openapi_extra=operation(),
)
async def event_types(_: AnyUser, hookd: Hookd) -> Json:
    names = await catalogue.names(hookd.db)
    return Json({"items": names, "total": len(names)})


@router.post(
    "/event-types",
    status_code=201,
    summary="Add an event type to the catalogue",
    tags=[PRODUCERS],
    response_model=EventType,
    responses=errors(
        Error,
        (400, 401, 403, 409, 413, 415),
        descriptions={**BAD_BODY, 409: "The catalogue holds a type of that name already"},
    ),
    openapi_extra=operation(body=EventTypeSpec),
)
async def add_event_type(request: Request, _: Admin, hookd: Hookd) -> Json:
    spec = parse_event_type(await read_json_object(request, hookd.settings.max_body_bytes))
    if spec.name in BUILT_IN:
        raise _exists(spec.name)
    try:
        added = await type_store.create_event_type(hookd.db, spec.name, spec.description)
    except type_store.EventTypeExists:
        raise _exists(spec.name) from None
    return Json(event_type_view(added), status_code=201)


def _exists(name: str) -> ApiError:
    return ApiError(409, f"name: the event type {name!r} exists already")


@router.delete(
    "/event-types/{name}",
    status_code=204,
    summary="Remove an added event type (not while a webhook lists it by name)",
    tags=[PRODUCERS],
    responses=errors(
        Error,
        (400, 401, 403, 404, 409),
        descriptions={
            400: "A built-in type, which cannot be removed",
            404: "No such type in the catalogue",
            409: "Webhooks list the type by name: change them first",
        },
    ),
    openapi_extra=operation(),
)
async def remove_event_type(name: TypeName, _: Admin, hookd: Hookd) -> Response:
    if name in BUILT_IN:
        raise ApiError(400, f"{name!r} is a built-in event type and cannot be removed")
    if not could_be_added(name):
        raise ApiError(404, f"No event type {name!r}")
    outcome, webhooks = await type_store.delete_event_type(hookd.db, name)
    if outcome is type_store.Deletion.UNKNOWN:
        raise ApiError(404, f"No event type {name!r}")
    if outcome is type_store.Deletion.IN_USE:
        listed = "1 webhook lists" if webhooks == 1 else f"{webhooks} webhooks list"
        raise ApiError(409, f"{listed} {name!r}: remove it from them first")
    return Response(status_code=204)
