"""Repository dialect (seed 002), under /r/: repositories, event definitions, webhooks, triggers.

Bodies are `application/json`, or HAL (`_links`, `_embedded`) with `Accept: application/hal+json`;
an Accept that allows neither gets 406. Errors are `{"code", "reason"}` (see api.errors); asked
for HAL, they carry the `application/hal+json` content type too.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import AsyncIterator, Callable, Coroutine
from contextlib import asynccontextmanager
from dataclasses import dataclass
from functools import lru_cache
from typing import Annotated, Any

from fastapi import APIRouter, Depends, FastAPI, Path, Request, Response
from fastapi.routing import APIRoute
from starlette.background import BackgroundTask

from hookd.api.auth import Admin, AnyUser, Hookd, current_user
from hookd.api.body import read_json
from hookd.api.errors import ApiError, error_response
from hookd.api.responses import Json
from hookd.api.services import Services, services
from hookd.delivery import blocking, metrics
from hookd.domain.errors import InvalidField
from hookd.domain.event import delivery_body, new_event_id, rfc3339
from hookd.domain.repository import (
    EVENT_NOT_FOUND,
    MAX_WEBHOOKS_PER_EVENT,
    REPOSITORY_NOT_FOUND,
    WEBHOOK_NOT_FOUND,
    EventDefinition,
    Repository,
    RepositoryWebhookSpec,
    Resource,
    canonical_uuid,
    check_id,
    event_path,
    event_resource,
    events_resource,
    idempotency_key,
    is_id,
    parse_event,
    parse_repository,
    parse_repository_webhook,
    parse_trigger,
    repository_path,
    repository_resource,
    topic,
    webhook_path,
    webhook_resource,
)
from hookd.domain.webhook import Webhook
from hookd.store import repositories as store
from hookd.store import webhooks as webhook_store
from hookd.store.database import Database
from hookd.store.events import NewEvent, publish
from hookd.store.repositories import EventLookup

log = logging.getLogger("hookd.api")

JSON = "application/json"
HAL = "application/hal+json"


# --- content negotiation ----------------------------------------------------------------------


@lru_cache(maxsize=512)
def negotiate(accept: str | None) -> str | None:
    """The media type to answer with for an Accept header; None when it allows neither.

    Plain JSON unless `application/hal+json` is named and weighted at least as high as JSON;
    wildcards (`*/*`, `application/*`) alone mean plain JSON.
    """
    if accept is None or not accept.strip():
        return JSON
    # For each candidate: (specificity of the most specific matching range, its q).
    best = {JSON: (0, 0.0), HAL: (0, 0.0)}
    for item in accept.split(","):
        media_range, *params = (part.strip() for part in item.split(";"))
        media_range = media_range.lower()
        q = 1.0
        for param in params:
            name, _, value = param.partition("=")
            if name.strip().lower() == "q":
                try:
                    q = min(max(float(value), 0.0), 1.0)
                except ValueError:
                    q = 0.0
        for candidate in best:
            if media_range == candidate:
                specificity = 3
            elif media_range == "application/*":
                specificity = 2
            elif media_range == "*/*":
                specificity = 1
            else:
                continue
            if specificity > best[candidate][0]:
                best[candidate] = (specificity, q)
    json_q, hal_q = best[JSON][1], best[HAL][1]
    if hal_q > 0 and (hal_q > json_q or (hal_q == json_q and best[HAL][0] == 3)):
        return HAL
    return JSON if json_q > 0 else None


@dataclass(slots=True, frozen=True)
class View:
    """How this request's answers are rendered."""

    media_type: str

    def render(
        self,
        resource: Resource,
        status: int = 200,
        headers: dict[str, str] | None = None,
        background: BackgroundTask | None = None,
    ) -> Json:
        body = resource.hal() if self.media_type == HAL else resource.json()
        return Json(
            body,
            status_code=status,
            headers=headers,
            media_type=self.media_type,
            background=background,
        )


_VIEWS = {JSON: View(JSON), HAL: View(HAL)}


async def negotiated(request: Request) -> View:
    # async: FastAPI would run a plain function in its thread pool, a hop per request.
    media_type = negotiate(request.headers.get("accept"))
    if media_type is None:
        raise ApiError(406, f"Accept: this resource is available as {JSON} or {HAL} only")
    return _VIEWS[media_type]


Negotiated = Annotated[View, Depends(negotiated)]


class RepositoryRoute(APIRoute):
    """Renders this dialect's errors with the HAL content type when HAL was asked for."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def route(request: Request) -> Response:
            try:
                return await handler(request)
            except (ApiError, InvalidField) as exc:
                if negotiate(request.headers.get("accept")) != HAL:
                    raise
                if isinstance(exc, ApiError):
                    response = error_response(request, exc.status, exc.message, exc.code)
                else:
                    response = error_response(request, 400, str(exc))
                response.headers["content-type"] = HAL
                return response

        return route


@asynccontextmanager
async def repository_dialect(app: FastAPI) -> AsyncIterator[None]:
    """Starts with the app: the validation call log; relative webhooks of repositories without
    base_uri follow HOOKD_RELATIVE_BASE_URL (it may have changed since the last start)."""
    hookd = app.state.services
    call_log = app.state.call_log = blocking.CallLog(hookd.db)
    try:
        await store.follow_relative_base_url(hookd.db, hookd.settings.relative_base_url)
    except Exception:
        log.exception("updating relative webhook URLs to HOOKD_RELATIVE_BASE_URL failed")
    try:
        yield
    finally:
        await call_log.flush()


router = APIRouter(
    prefix="/r",
    tags=["repository dialect"],
    route_class=RepositoryRoute,
    lifespan=repository_dialect,
)

RepoId = Annotated[str, Path(alias="repoId", description="The repository's id")]
EventId = Annotated[str, Path(alias="id", description="The event's id")]
WebHookId = Annotated[str, Path(alias="webHookId", description="The webhook's id (a UUID)")]

_ERRORS: dict[int | str, dict[str, Any]] = {
    401: {"description": 'No or invalid token: `{"code": 401, "reason"}`'},
    406: {"description": "Accept allows neither application/json nor application/hal+json"},
}
_ADMIN_ERRORS: dict[int | str, dict[str, Any]] = {
    **_ERRORS,
    400: {"description": '`{"code": 400, "reason": "<field>: <what is wrong>"}`'},
    403: {"description": "Administrator rights required"},
    404: {
        "description": f"Unknown repository ({REPOSITORY_NOT_FOUND}), event ({EVENT_NOT_FOUND}) "
        f"or webhook ({WEBHOOK_NOT_FOUND})"
    },
}


def _body(schema: dict[str, Any]) -> dict[str, Any]:
    return {"requestBody": {"required": True, "content": {"application/json": {"schema": schema}}}}


_WEBHOOK_BODY = _body({**RepositoryWebhookSpec.model_json_schema(), "title": "Webhook"})


# --- lookups ----------------------------------------------------------------------------------


def repository_not_found(repository_id: str) -> ApiError:
    return ApiError(404, f"Repository {repository_id!r} not found", REPOSITORY_NOT_FOUND)


def event_not_found(event_id: str) -> ApiError:
    return ApiError(404, f"Event {event_id!r} not found", EVENT_NOT_FOUND)


def webhook_not_found(webhook_id: str) -> ApiError:
    return ApiError(404, f"Webhook {webhook_id!r} not found", WEBHOOK_NOT_FOUND)


async def existing_repository(db: Database, repository_id: str) -> Repository:
    found = await store.get_repository(db, repository_id) if is_id(repository_id) else None
    if found is None:
        raise repository_not_found(repository_id)
    return found


async def existing_event(
    db: Database, repository_id: str, event_id: str
) -> tuple[Repository, EventDefinition]:
    found = await found_event(db, repository_id, event_id)
    assert found.event is not None
    return found.repository, found.event


async def found_event(
    db: Database, repository_id: str, event_id: str, *, targets: bool = False
) -> EventLookup:
    """The event a path names (with a blocking event's webhooks if `targets`), or a 404."""
    found = None
    if is_id(repository_id):
        found = await store.find_event(db, repository_id, event_id, targets=targets)
    if found is None:
        raise repository_not_found(repository_id)
    if found.event is None:
        raise event_not_found(event_id)
    return found


async def existing_webhook(
    db: Database, repository_id: str, event_id: str, webhook_id: str
) -> tuple[Repository, EventDefinition, Webhook]:
    """The webhook a path names; one of another event or repository is not found either."""
    repository, event = await existing_event(db, repository_id, event_id)
    public_id = canonical_uuid(webhook_id)
    webhook = None
    if public_id is not None:
        webhook = await webhook_store.get_webhook_by_public_id(db, public_id)
    if webhook is None or webhook.topics != (topic(repository.id, event.id),):
        raise webhook_not_found(webhook_id)
    return repository, event, webhook


async def event_webhooks(db: Database, repository_id: str, event_id: str) -> list[Webhook]:
    found, _ = await webhook_store.list_webhooks(
        db, limit=MAX_WEBHOOKS_PER_EVENT, offset=0, topic=topic(repository_id, event_id)
    )
    return found


# --- repositories and event definitions -------------------------------------------------------


@router.put(
    "/{repoId}",
    summary="Create or update a repository",
    responses={**_ADMIN_ERRORS, 201: {"description": "Created"}},
    openapi_extra=_body(
        {
            "type": "object",
            "required": ["name"],
            "properties": {"name": {"type": "string"}, "base_uri": {"type": "string"}},
        }
    ),
)
async def put_repository(
    repository_id: RepoId, request: Request, _: Admin, hookd: Hookd, view: Negotiated
) -> Response:
    check_id(repository_id, "repoId")
    spec = parse_repository(await read_json(request))
    repository, created = await store.put_repository(
        hookd.db, repository_id, spec.name, spec.base_uri, hookd.settings.relative_base_url
    )
    if created:
        headers = {"Location": repository_path(repository.id)}
        return view.render(repository_resource(repository), 201, headers)
    return view.render(repository_resource(repository))


@router.get("/{repoId}", summary="Get a repository", responses=_ADMIN_ERRORS)
async def get_repository(
    repository_id: RepoId, _: AnyUser, hookd: Hookd, view: Negotiated
) -> Response:
    return view.render(repository_resource(await existing_repository(hookd.db, repository_id)))


@router.get(
    "/{repoId}/events", summary="The repository's event definitions", responses=_ADMIN_ERRORS
)
async def list_events(
    repository_id: RepoId, _: AnyUser, hookd: Hookd, view: Negotiated
) -> Response:
    repository = await existing_repository(hookd.db, repository_id)
    events = await store.list_events(hookd.db, repository.id)
    return view.render(events_resource(repository.id, events))


@router.put(
    "/{repoId}/events/{id}",
    summary="Define or change an event",
    responses={**_ADMIN_ERRORS, 201: {"description": "Created"}},
    openapi_extra=_body(
        {
            "type": "object",
            "required": ["name"],
            "properties": {
                "name": {"type": "string"},
                "description": {"type": "string"},
                "blocking": {"type": "boolean", "default": False},
            },
        }
    ),
)
async def put_event(
    repository_id: RepoId,
    event_id: EventId,
    request: Request,
    _: Admin,
    hookd: Hookd,
    view: Negotiated,
) -> Response:
    repository = await existing_repository(hookd.db, repository_id)
    check_id(event_id, "id")
    spec = parse_event(await read_json(request))
    event, created = await store.put_event(
        hookd.db, repository.id, event_id, spec.name, spec.description, spec.blocking
    )
    if created:
        headers = {"Location": event_path(repository.id, event.id)}
        return view.render(event_resource(event), 201, headers)
    return view.render(event_resource(event))


@router.get("/{repoId}/events/{id}", summary="An event with its webhooks", responses=_ADMIN_ERRORS)
async def get_event(
    repository_id: RepoId, event_id: EventId, _: Admin, hookd: Hookd, view: Negotiated
) -> Response:
    repository, event = await existing_event(hookd.db, repository_id, event_id)
    webhooks = await event_webhooks(hookd.db, repository.id, event.id)
    return view.render(event_resource(event, webhooks))


# --- webhooks ---------------------------------------------------------------------------------


@router.post(
    "/{repoId}/events/{id}",
    status_code=201,
    summary="Create a webhook on the event",
    responses=_ADMIN_ERRORS,
    openapi_extra=_WEBHOOK_BODY,
)
async def create_webhook(
    repository_id: RepoId,
    event_id: EventId,
    request: Request,
    _: Admin,
    hookd: Hookd,
    view: Negotiated,
) -> Response:
    repository, event = await existing_event(hookd.db, repository_id, event_id)
    spec = parse_repository_webhook(await read_json(request))
    fields = spec.to_fields(repository, event.id, hookd.settings.relative_base_url)
    __, count = await webhook_store.list_webhooks(
        hookd.db, limit=1, offset=0, topic=fields.topics[0]
    )
    if count >= MAX_WEBHOOKS_PER_EVENT:
        raise ApiError(400, f"id: the event has the maximum of {MAX_WEBHOOKS_PER_EVENT} webhooks")
    webhook = await webhook_store.create_webhook(hookd.db, fields, public_id=str(uuid.uuid4()))
    location = webhook_path(repository.id, event.id, webhook.public_id or "")
    return view.render(
        webhook_resource(repository.id, event.id, webhook), 201, {"Location": location}
    )


@router.get("/{repoId}/events/{id}/{webHookId}", summary="Get a webhook", responses=_ADMIN_ERRORS)
async def get_webhook(
    repository_id: RepoId,
    event_id: EventId,
    webhook_id: WebHookId,
    _: Admin,
    hookd: Hookd,
    view: Negotiated,
) -> Response:
    repository, event, webhook = await existing_webhook(
        hookd.db, repository_id, event_id, webhook_id
    )
    return view.render(webhook_resource(repository.id, event.id, webhook))


@router.put(
    "/{repoId}/events/{id}/{webHookId}",
    summary="Replace a webhook",
    responses=_ADMIN_ERRORS,
    openapi_extra=_WEBHOOK_BODY,
)
async def replace_webhook(
    repository_id: RepoId,
    event_id: EventId,
    webhook_id: WebHookId,
    request: Request,
    _: Admin,
    hookd: Hookd,
    view: Negotiated,
) -> Response:
    repository, event, current = await existing_webhook(
        hookd.db, repository_id, event_id, webhook_id
    )
    spec = parse_repository_webhook(await read_json(request))
    fields = spec.to_fields(repository, event.id, hookd.settings.relative_base_url)
    updated = await webhook_store.replace_webhook(hookd.db, current.id, fields)
    if updated is None:
        raise webhook_not_found(webhook_id)
    return view.render(webhook_resource(repository.id, event.id, updated))


@router.delete(
    "/{repoId}/events/{id}/{webHookId}",
    status_code=204,
    summary="Delete a webhook",
    responses=_ADMIN_ERRORS,
)
async def delete_webhook(
    repository_id: RepoId, event_id: EventId, webhook_id: WebHookId, _: Admin, hookd: Hookd
) -> Response:
    *__, webhook = await existing_webhook(hookd.db, repository_id, event_id, webhook_id)
    if not await webhook_store.delete_webhook(hookd.db, webhook.id):
        raise webhook_not_found(webhook_id)
    return Response(status_code=204)


# --- triggering -------------------------------------------------------------------------------


async def authorized_event(
    request: Request, hookd: Services, repository_id: str, event_id: str
) -> EventLookup:
    """Any user's token, and the event with its validation targets. Both are looked up side by
    side (the trigger is latency-critical); a bad token is a 401 whatever the path names."""
    user, found = await asyncio.gather(
        current_user(request, hookd),
        found_event(hookd.db, repository_id, event_id, targets=True),
        return_exceptions=True,
    )
    if isinstance(user, BaseException):
        raise user
    if isinstance(found, BaseException):
        raise found
    return found


async def _trigger_body(request: Request) -> Any:
    """A trigger may come without a body (as `curl -X POST` sends it): that is `{}`."""
    headers = request.headers
    if "transfer-encoding" not in headers and headers.get("content-length", "0") == "0":
        return {}
    return await read_json(request)


@router.post(
    "/{repoId}/events/{id}/trigger",
    summary="Fire the event",
    description=(
        "Non-blocking event: 202 `{id, deliveries}`, deliveries queued. Blocking event: the call "
        "waits for the validation webhooks and answers 200 `{id, allowed, results}`."
    ),
    responses={
        **_ERRORS,
        200: {"description": "Blocking event: `{id, allowed, results}`"},
        202: {"description": "Non-blocking event: `{id, deliveries}`"},
        400: {"description": '`{"code": 400, "reason": "<field>: <what is wrong>"}`'},
        404: {"description": "Unknown repository or event"},
    },
    openapi_extra=_body(
        {
            "type": "object",
            "properties": {
                "category": {"type": "string"},
                "data": {"type": "object"},
                "id": {"type": "string", "description": "Idempotency key for 24 h"},
            },
        }
    ),
)
async def trigger(repository_id: RepoId, event_id: EventId, request: Request) -> Response:
    # The hot path: no synchronous dependencies (each would cost a thread-pool hop).
    hookd = await services(request)
    found = await authorized_event(request, hookd, repository_id, event_id)
    view = await negotiated(request)
    repository, event = found.repository, found.event
    assert event is not None
    spec = parse_trigger(await _trigger_body(request))
    now = time.time()
    fired_id = spec.id or new_event_id()
    body = delivery_body(
        fired_id,
        event.id,
        rfc3339(now),
        spec.data,
        repository=repository.id,
        category=spec.category,
    )
    if len(body) > hookd.settings.max_event_bytes:
        raise ApiError(
            413, f"body: the event is larger than {hookd.settings.max_event_bytes} bytes"
        )
    fired = NewEvent(
        fired_id,
        topic(repository.id, event.id),
        body,
        idempotency_key=None
        if spec.id is None
        else idempotency_key(repository.id, event.id, spec.id),
        category=spec.category,
    )
    links = {"event": event_path(repository.id, event.id)}
    if not event.blocking:
        [published] = await publish(hookd.db, [fired], now)
        metrics.EVENTS_PUBLISHED.inc()
        return view.render(
            Resource({"id": published.id, "deliveries": published.deliveries}, links), 202
        )
    verdict = await blocking.validate(hookd.db, hookd.sender, fired, found.webhooks, now)
    call_log: blocking.CallLog = request.app.state.call_log
    recording = BackgroundTask(call_log.record, verdict, fired, now)
    return view.render(Resource(verdict.view(fired.id), links), background=recording)
