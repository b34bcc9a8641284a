"""The delivery log: search it, page through it (by cursor, so a deep page costs what the first
does), watch it live, open a delivery with its attempts, and send one again."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import orjson
from fastapi import APIRouter, Request
from starlette.datastructures import QueryParams
from starlette.responses import Response

from hookd.console import changes
from hookd.console.changes import Shown
from hookd.console.forms import moment_value, parse_moment
from hookd.console.render import page
from hookd.console.session import AdminViewer, AnyViewer, Hookd, Viewer, posted, see_other
from hookd.delivery.sender import Attempt, request_headers
from hookd.dialects.device.event_types import EVENT_TYPES
from hookd.dialects.repository import store as repository_store
from hookd.domain.states import DeliveryState
from hookd.domain.validation import parse_id
from hookd.http.errors import ApiError
from hookd.http.services import Services
from hookd.store import deliveries as delivery_log
from hookd.store import webhooks as core_store
from hookd.store.deliveries import AttemptRecord, Delivery, LogFilter

router = APIRouter(include_in_schema=False)

PAGE_SIZE = 50
MASK = "••••••••"
# Headers whose values prove who sent a delivery: never shown.
SIGNED_HEADERS = {
    "webhook-signature": "v1,",
    "x-hookd-signature-256": "sha256=",
    "authorization": "Bearer ",
}


@dataclass(slots=True)
class Search:
    """The log's filters as the page's form holds them, and as the store reads them."""

    values: dict[str, str]
    where: LogFilter
    errors: dict[str, str]


def search_of(params: QueryParams) -> Search:
    values = {
        name: params.get(name, "").strip()
        for name in ("webhook", "state", "type", "event", "from", "until")
    }
    errors: dict[str, str] = {}
    webhook_id = None
    if values["webhook"]:
        webhook_id = parse_id(values["webhook"])
        if webhook_id is None:
            errors["webhook"] = "a webhook's number, such as 12"
    state = None
    if values["state"]:
        if values["state"] in set(DeliveryState):
            state = DeliveryState(values["state"])
        else:
            errors["state"] = "choose a state from the list"
    moments: dict[str, float | None] = {}
    for name in ("from", "until"):
        try:
            moments[name] = parse_moment(values[name])
        except ValueError:
            moments[name] = None
            errors[name] = "a date and time such as 2026-12-01T09:30 (UTC)"
    where = LogFilter(
        webhook_id=webhook_id,
        state=state,
        event_type=values["type"] or None,
        event_id=values["event"] or None,
        created_from=moments["from"],
        created_until=moments["until"],
    )
    return Search(values, where, errors)


def _cursor(params: QueryParams, name: str) -> int | None:
    raw = params.get(name)
    return None if raw is None else parse_id(raw)


async def _webhooks_of(hookd: Services, items: list[Delivery]) -> dict[int, Shown]:
    found = await core_store.webhooks_by_id(hookd.db, {d.webhook_id for d in items})
    return {shown.id: shown for shown in await changes.shown(hookd.db, list(found.values()))}


async def _event_types(hookd: Services) -> list[str]:
    events = await repository_store.all_events(hookd.db)
    return [*EVENT_TYPES, *(f"{event.repository_id}/{event.id}" for event in events)]


@router.get("/deliveries")
async def deliveries(request: Request, looking: AnyViewer, hookd: Hookd) -> Response:
    search = search_of(request.query_params)
    before = _cursor(request.query_params, "before")
    after = _cursor(request.query_params, "after")
    log = delivery_log.LogPage([], None, None)
    if not search.errors:
        log = await delivery_log.search_log(
            hookd.db, search.where, limit=PAGE_SIZE, before=before, after=after
        )
    webhook = None
    if search.where.webhook_id is not None:
        webhook = await changes.load(hookd.db, search.where.webhook_id)
    return page(
        request,
        "deliveries.html",
        400 if search.errors else 200,
        viewer=looking,
        search=search,
        log=log,
        webhooks=await _webhooks_of(hookd, log.items),
        webhook=webhook,
        first_page=before is None and after is None,
        event_types=await _event_types(hookd),
        since_default=moment_value(time.time() - 24 * 3600),
    )


@router.get("/deliveries/rows")
async def newest_rows(request: Request, looking: AnyViewer, hookd: Hookd) -> Response:
    """The first page's rows, for the live view's refresh."""
    search = search_of(request.query_params)
    if search.errors:
        raise ApiError(400, "Wrong filters")
    log = await delivery_log.search_log(hookd.db, search.where, limit=PAGE_SIZE)
    return page(
        request,
        "delivery_rows.html",
        viewer=looking,
        log=log,
        webhooks=await _webhooks_of(hookd, log.items),
    )


# --- one delivery -----------------------------------------------------------------------------


def sent_headers(
    webhook: Shown | None, delivery: Delivery, attempt: AttemptRecord, looking: Viewer
) -> list[tuple[str, str]]:
    """The headers this attempt was sent with, rebuilt from the webhook as it is now (hookd
    does not store them): signatures and credentials masked, and for a user the webhook's own
    header values too."""
    if webhook is None:
        return []
    found = webhook.webhook
    headers = request_headers(
        Attempt(
            url=found.url,
            body=b"",
            event_id=delivery.event_id,
            number=attempt.number,
            timeout_ms=found.timeout_ms,
            secret=found.secret,
            headers=found.headers,
            bearer_token=found.bearer_token,
        ),
        int(attempt.started_at),
    )
    own = {name.lower() for name in orjson.loads(found.headers or "{}")}
    shown = []
    for name, value in headers.items():
        prefix = SIGNED_HEADERS.get(name.lower())
        if prefix is not None:
            value = prefix + MASK
        elif name.lower() in own and not looking.is_admin:
            value = MASK
        shown.append((name, value))
    return shown


def pretty(body: bytes | str | None) -> str | None:
    """A body as shown: indented when it is JSON."""
    if body is None:
        return None
    try:
        return orjson.dumps(orjson.loads(body), option=orjson.OPT_INDENT_2).decode()
    except orjson.JSONDecodeError:
        return body.decode("utf-8", "replace") if isinstance(body, bytes) else body


@router.get("/deliveries/{delivery_id}")
async def show_delivery(
    delivery_id: str, request: Request, looking: AnyViewer, hookd: Hookd
) -> Response:
    number = parse_id(delivery_id)
    detail = None if number is None else await delivery_log.delivery_detail(hookd.db, number)
    if detail is None:
        raise ApiError(404, f"There is no delivery {delivery_id}")
    delivery = detail.delivery
    webhook = await changes.load(hookd.db, delivery.webhook_id)
    attempts: list[dict[str, Any]] = [
        {
            "record": attempt,
            "headers": sent_headers(webhook, delivery, attempt, looking),
            "answer": pretty(attempt.response_body),
        }
        for attempt in reversed(delivery.attempt_log)
    ]
    return page(
        request,
        "delivery.html",
        viewer=looking,
        delivery=delivery,
        webhook=webhook,
        event_body=pretty(detail.event_body),
        attempts=attempts,
        notice=request.query_params.get("notice"),
    )


@router.post("/deliveries/{delivery_id}/retry")
async def retry_delivery(
    delivery_id: str, request: Request, looking: AdminViewer, hookd: Hookd
) -> Response:
    number = parse_id(delivery_id)
    await posted(request, looking)
    found = None if number is None else await delivery_log.requeue(hookd.db, number, time.time())
    if found is None:
        raise ApiError(404, f"There is no delivery {delivery_id}")
    return see_other(f"/deliveries/{found.id}?notice=retried")
