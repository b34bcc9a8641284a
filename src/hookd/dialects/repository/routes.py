"""The repository dialect's API under /r/: repositories, event definitions, webhooks, triggers.

Bodies are `application/json`, or HAL (`_links`, `_embedded`) with `Accept: application/hal+json`;
an Accept that allows neither gets 406. Errors are `{"code", "reason"}`; asked for HAL, they carry
the `application/hal+json` content type too.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from collections.abc import AsyncIterator, Coroutine
from contextlib import asynccontextmanager
from typing import Annotated, Any

from fastapi import APIRouter, FastAPI, Path, Request, Response
from pydantic import BaseModel
from starlette.background import BackgroundTask

from hookd import publishing
from hookd.delivery.chain import called_event
from hookd.dialects.repository import store
from hookd.dialects.repository.fields import (
    EventSpec,
    RepositorySpec,
    RepositoryWebhookSpec,
    TriggerBody,
    parse_event,
    parse_repository,
    parse_trigger,
    parse_webhook,
)
from hookd.dialects.repository.model import (
    EVENT_NOT_FOUND,
    ID_PATTERN,
    MAX_WEBHOOKS_PER_EVENT,
    NAME,
    REPOSITORY_NOT_FOUND,
    WEBHOOK_NOT_FOUND,
    EventDefinition,
    Repository,
    RepositoryWebhook,
    canonical_uuid,
    check_id,
    is_id,
    topic,
)
from hookd.dialects.repository.store import EventLookup
from hookd.dialects.repository.trigger import draft, validate, validation_of
from hookd.dialects.repository.views import (
    EventEntity,
    EventEntityHal,
    EventList,
    EventListHal,
    EventWithWebhooks,
    EventWithWebhooksHal,
    RepositoryEntity,
    RepositoryEntityHal,
    RepositoryError,
    RepositoryWebhookEntity,
    RepositoryWebhookEntityHal,
    TriggerQueued,
    TriggerQueuedHal,
    TriggerVerdict,
    TriggerVerdictHal,
    event_path,
    event_resource,
    events_resource,
    repository_path,
    repository_resource,
    verdict_view,
    webhook_path,
    webhook_resource,
)
from hookd.http.auth import Admin, AnyUser, Hookd, current_user
from hookd.http.body import read_json, read_optional_json
from hookd.http.dialect import Dialect
from hookd.http.errors import ApiError
from hookd.http.hal import HAL, Negotiated, Resource, negotiated, wants_hal
from hookd.http.limits import trigger_body_limit
from hookd.http.openapi import content, errors, operation
from hookd.http.responses import Json
from hookd.http.services import Services, services
from hookd.store import webhooks as core_store
from hookd.store.accounts import User
from hookd.store.database import Database

log = logging.getLogger("hookd.api")

PREFIX = "/r/"


def error_shape(request: Request, status: int, message: str, code: int) -> Response:
    """`{"code", "reason"}`, as HAL when HAL was asked for."""
    response = Json({"code": code, "reason": message}, status_code=status)
    if wants_hal(request):
        response.headers["content-type"] = HAL
    return response


@asynccontextmanager
async def repository_dialect(app: FastAPI) -> AsyncIterator[None]:
    """At start, relative webhooks of repositories without base_uri follow
    HOOKD_RELATIVE_BASE_URL (it may have changed since the last start)."""
    hookd: Services = app.state.services
    try:
        await store.follow_relative_base_url(hookd.db, hookd.settings.relative_base_url)
    except Exception:
        log.exception("updating relative webhook URLs to HOOKD_RELATIVE_BASE_URL failed")
    yield


router = APIRouter(prefix="/r", tags=["repository dialect"], lifespan=repository_dialect)

_ID = {"pattern": f"^{ID_PATTERN.pattern}$"}
RepoId = Annotated[
    str, Path(alias="repoId", description="The repository's id", json_schema_extra=_ID)
]
EventId = Annotated[str, Path(alias="id", description="The event's id", json_schema_extra=_ID)]
WebHookId = Annotated[
    str,
    Path(
        alias="webHookId",
        description="The webhook's id (a UUID)",
        json_schema_extra={"format": "uuid"},
    ),
]

NOT_FOUND = (
    f"Unknown repository ({REPOSITORY_NOT_FOUND}), event ({EVENT_NOT_FOUND}) "
    f"or webhook ({WEBHOOK_NOT_FOUND})"
)


def _errors(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """Error answers in this dialect's shape, as JSON or (asked for) HAL."""
    return errors(
        RepositoryError,
        statuses,
        media_types=(HAL,),
        descriptions={
            400: '`{"code": 400, "reason": "<field>: <what is wrong>"}`',
            401: 'No or invalid token: `{"code": 401, "reason"}`',
            404: NOT_FOUND,
        },
    )


def _hal(model: type[BaseModel]) -> dict[str, Any]:
    """The HAL form of a success answer (`Accept: application/hal+json`)."""
    return {"content": content(model, (HAL,))}


def _created(json_model: type[BaseModel], hal_model: type[BaseModel]) -> dict[str, Any]:
    return {
        "model": json_model,
        "description": "Created",
        "headers": {"Location": {"description": "Its path", "schema": {"type": "string"}}},
        **_hal(hal_model),
    }


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
) -> tuple[Repository, EventDefinition, RepositoryWebhook]:
    """The webhook a path names; one of another event or repository is not found either."""
    repository, event = await existing_event(db, repository_id, event_id)
    public_id = canonical_uuid(webhook_id)
    found = None if public_id is None else await store.get_webhook(db, public_id)
    if found is None or found.webhook.topics != (topic(repository.id, event.id),):
        raise webhook_not_found(webhook_id)
    return repository, event, found


# --- repositories and event definitions -------------------------------------------------------


@router.put(
    "/{repoId}",
    summary="Create or update a repository",
    response_model=RepositoryEntity,
    responses={
        200: _hal(RepositoryEntityHal),
        201: _created(RepositoryEntity, RepositoryEntityHal),
        **_errors(400, 401, 403, 406, 413, 415),
    },
    openapi_extra=operation(body=RepositorySpec),
)
async def put_repository(
    repository_id: RepoId, request: Request, _: Admin, hookd: Hookd, view: Negotiated
) -> Response:
    check_id(repository_id, "repoId")
    spec = parse_repository(await read_json(request, hookd.settings.max_body_bytes))
    repository, created = await store.put_repository(
        hookd.db, repository_id, spec.name, spec.base_uri, hookd.settings.relative_base_url
    )
    if created:
        headers = {"Location": repository_path(repository.id)}
        return view.render(repository_resource(repository), 201, headers)
    return view.render(repository_resource(repository))


@router.get(
    "/{repoId}",
    summary="Get a repository",
    response_model=RepositoryEntity,
    responses={200: _hal(RepositoryEntityHal), **_errors(401, 404, 406)},
    openapi_extra=operation(),
)
async def get_repository(
    repository_id: RepoId, user: AnyUser, hookd: Hookd, view: Negotiated
) -> Response:
    repository = await existing_repository(hookd.db, repository_id)
    return view.render(repository_resource(repository, detailed=user.role == "admin"))


@router.get(
    "/{repoId}/events",
    summary="The repository's event definitions",
    response_model=EventList,
    responses={200: _hal(EventListHal), **_errors(401, 404, 406)},
    openapi_extra=operation(),
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
    response_model=EventEntity,
    responses={
        200: _hal(EventEntityHal),
        201: _created(EventEntity, EventEntityHal),
        **_errors(400, 401, 403, 404, 406, 413, 415),
    },
    openapi_extra=operation(body=EventSpec),
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
    spec = parse_event(await read_json(request, hookd.settings.max_body_bytes))
    event, created = await store.put_event(
        hookd.db, repository.id, event_id, spec.name, spec.description, spec.blocking
    )
    if created:
        headers = {"Location": event_path(repository.id, event.id)}
        return view.render(event_resource(event), 201, headers)
    return view.render(event_resource(event))


@router.get(
    "/{repoId}/events/{id}",
    summary="An event with its webhooks",
    response_model=EventWithWebhooks,
    responses={200: _hal(EventWithWebhooksHal), **_errors(401, 403, 404, 406)},
    openapi_extra=operation(),
)
async def get_event(
    repository_id: RepoId, event_id: EventId, _: Admin, hookd: Hookd, view: Negotiated
) -> Response:
    repository, event = await existing_event(hookd.db, repository_id, event_id)
    webhooks = await store.event_webhooks(hookd.db, repository.id, event.id)
    return view.render(event_resource(event, webhooks))


# --- webhooks ---------------------------------------------------------------------------------


@router.post(
    "/{repoId}/events/{id}",
    status_code=201,
    summary="Create a webhook on the event",
    response_model=RepositoryWebhookEntity,
    responses={
        201: _created(RepositoryWebhookEntity, RepositoryWebhookEntityHal),
        **_errors(400, 401, 403, 404, 406, 413, 415),
    },
    openapi_extra=operation(body=RepositoryWebhookSpec),
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
    spec = parse_webhook(await read_json(request, hookd.settings.max_body_bytes))
    fields, binding = spec.to_fields(repository, event.id, hookd.settings.relative_base_url)
    if await store.count_event_webhooks(hookd.db, repository.id, event.id) >= (
        MAX_WEBHOOKS_PER_EVENT
    ):
        raise ApiError(400, f"id: the event has the maximum of {MAX_WEBHOOKS_PER_EVENT} webhooks")
    created = await store.create_webhook(hookd.db, fields, binding, public_id=str(uuid.uuid4()))
    location = webhook_path(repository.id, event.id, created.webhook.public_id or "")
    return view.render(
        webhook_resource(repository.id, event.id, created), 201, {"Location": location}
    )


@router.get(
    "/{repoId}/events/{id}/{webHookId}",
    summary="Get a webhook",
    response_model=RepositoryWebhookEntity,
    responses={200: _hal(RepositoryWebhookEntityHal), **_errors(401, 403, 404, 406)},
    openapi_extra=operation(),
)
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
    response_model=RepositoryWebhookEntity,
    responses={
        200: _hal(RepositoryWebhookEntityHal),
        **_errors(400, 401, 403, 404, 406, 413, 415),
    },
    openapi_extra=operation(body=RepositoryWebhookSpec),
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
    spec = parse_webhook(await read_json(request, hookd.settings.max_body_bytes))
    fields, binding = spec.to_fields(repository, event.id, hookd.settings.relative_base_url)
    updated = await store.replace_webhook(hookd.db, current.webhook.id, fields, binding)
    if updated is None:
        raise webhook_not_found(webhook_id)
    return view.render(webhook_resource(repository.id, event.id, updated))


@router.delete(
    "/{repoId}/events/{id}/{webHookId}",
    status_code=204,
    summary="Delete a webhook",
    responses=_errors(401, 403, 404),
    openapi_extra=operation(),
)
async def delete_webhook(
    repository_id: RepoId, event_id: EventId, webhook_id: WebHookId, _: Admin, hookd: Hookd
) -> Response:
    *__, found = await existing_webhook(hookd.db, repository_id, event_id, webhook_id)
    if not await core_store.delete_webhook(hookd.db, found.webhook.id):
        raise webhook_not_found(webhook_id)
    return Response(status_code=204)


# --- triggering -------------------------------------------------------------------------------


async def authorized_event(
    request: Request, hookd: Services, repository_id: str, event_id: str
) -> tuple[User, EventLookup]:
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
    return user, found


@router.post(
    "/{repoId}/events/{id}/trigger",
    summary="Fire the event",
    description=(
        "Non-blocking event: 202 `{id, deliveries}`, deliveries queued. Blocking event: the call "
        "waits for the validation webhooks and answers 200 `{id, allowed, results}`."
    ),
    response_model=TriggerVerdict,
    response_description="Blocking event: whether the validation webhooks allowed it",
    responses={
        200: _hal(TriggerVerdictHal),
        202: {
            "model": TriggerQueued,
            "description": "Non-blocking event: stored, its deliveries queued",
            **_hal(TriggerQueuedHal),
        },
        **_errors(400, 401, 404, 406, 413, 415),
    },
    openapi_extra=operation(body=TriggerBody, body_required=False),
)
async def trigger(repository_id: RepoId, event_id: EventId, request: Request) -> Response:
    # The hot path: no synchronous dependencies (each would cost a thread-pool hop).
    hookd = await services(request)
    user, found = await authorized_event(request, hookd, repository_id, event_id)
    view = await negotiated(request)
    repository, event = found.repository, found.event
    assert event is not None
    spec = parse_trigger(await read_optional_json(request, trigger_body_limit(hookd.settings)))
    now = time.time()
    [fired] = publishing.prepare(
        [draft(repository, event, spec)],
        now,
        hookd.settings.max_event_bytes,
        producer=publishing.user_producer(user.id),
    )
    links = {"event": event_path(repository.id, event.id)}
    if not event.blocking:
        [published] = await publishing.publish_prepared(hookd.db, [fired], now)
        return view.render(
            Resource({"id": published.id, "deliveries": published.deliveries}, links), 202
        )
    validation = validation_of(found.webhooks, fired)
    if not await _unless_caller_leaves(
        request, validate(hookd.db, hookd.validator, repository, fired, validation, now)
    ):
        # Nobody is waiting for an answer: stop calling, but log what was called.
        entry = called_event(validation.verdict, fired.id, fired.topic, fired.body, now)
        await hookd.call_log.record(entry)
        return Response(status_code=499)
    entry = called_event(validation.verdict, fired.id, fired.topic, fired.body, now)
    recording = BackgroundTask(hookd.call_log.record, entry)
    answer = verdict_view(
        validation.verdict, fired.id, validation.called, detailed=user.role == "admin"
    )
    return view.render(Resource(answer, links), background=recording)


async def _unless_caller_leaves(request: Request, work: Coroutine[Any, Any, Any]) -> bool:
    """Run `work` unless the client disconnects first (then `work` is cancelled): whether it
    ran to its end."""
    running = asyncio.create_task(work)
    leaving = asyncio.create_task(_caller_left(request))
    try:
        await asyncio.wait((running, leaving), return_when=asyncio.FIRST_COMPLETED)
    finally:
        leaving.cancel()
        if not running.done():
            running.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await running
    return not running.cancelled()


async def _caller_left(request: Request) -> None:
    """Returns when the client has disconnected (its body is read already)."""
    while (await request.receive())["type"] != "http.disconnect":
        pass


REPOSITORY = Dialect(name=NAME, router=router, path_prefix=PREFIX, error_shape=error_shape)
