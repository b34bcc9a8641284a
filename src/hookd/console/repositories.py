"""The repository dialect's repositories: their events (blocking or not), each event's webhooks
in the order they are called, and the last validation calls with their verdicts."""

from __future__ import annotations

from dataclasses import dataclass, field

from fastapi import APIRouter, Request
from starlette.responses import Response

from hookd.console.render import page
from hookd.console.session import AnyViewer, Hookd
from hookd.dialects.repository import store as repository_store
from hookd.dialects.repository.model import EventDefinition, RepositoryWebhook, is_id
from hookd.domain.states import DeliveryState
from hookd.http.errors import ApiError
from hookd.store import deliveries as delivery_log
from hookd.store.deliveries import Delivery, LogFilter

router = APIRouter(include_in_schema=False)

# Validation calls shown per blocking event.
LAST_CALLS = 10


@dataclass(slots=True)
class Call:
    """One trigger of a blocking event: the validation calls it made, in order."""

    event_id: str
    at: float
    deliveries: list[tuple[RepositoryWebhook, Delivery]] = field(default_factory=list)

    @property
    def allowed(self) -> bool:
        return all(d.state == DeliveryState.SUCCEEDED for _, d in self.deliveries)


@dataclass(slots=True)
class EventView:
    event: EventDefinition
    webhooks: list[RepositoryWebhook]
    calls: list[Call]


@router.get("/repositories")
async def list_repositories(request: Request, looking: AnyViewer, hookd: Hookd) -> Response:
    found = await repository_store.list_repositories(hookd.db)
    return page(request, "repositories.html", viewer=looking, repositories=found)


async def _last_calls(hookd: Hookd, webhooks: list[RepositoryWebhook]) -> list[Call]:
    """The newest triggers that called these validation webhooks (synchronous ones only)."""
    calls: dict[str, Call] = {}
    for found in webhooks:
        if not found.synchronous:
            continue
        log = await delivery_log.search_log(
            hookd.db, LogFilter(webhook_id=found.webhook.id), limit=LAST_CALLS
        )
        for delivery in log.items:
            call = calls.setdefault(delivery.event_id, Call(delivery.event_id, delivery.created_at))
            call.deliveries.append((found, delivery))
    newest = sorted(calls.values(), key=lambda call: call.at, reverse=True)[:LAST_CALLS]
    order = {found.webhook.id: index for index, found in enumerate(webhooks)}
    for call in newest:
        call.deliveries.sort(key=lambda pair: order[pair[0].webhook.id])
    return newest


@router.get("/repositories/{repository_id}")
async def show_repository(
    repository_id: str, request: Request, looking: AnyViewer, hookd: Hookd
) -> Response:
    repository = (
        await repository_store.get_repository(hookd.db, repository_id)
        if is_id(repository_id)
        else None
    )
    if repository is None:
        raise ApiError(404, f"There is no repository {repository_id!r}")
    events = await repository_store.list_events(hookd.db, repository.id)
    views = []
    for event in events:
        webhooks = await repository_store.event_webhooks(hookd.db, repository.id, event.id)
        calls = await _last_calls(hookd, webhooks) if event.blocking else []
        views.append(EventView(event, webhooks, calls))
    return page(
        request,
        "repository.html",
        viewer=looking,
        repository=repository,
        events=views,
    )
