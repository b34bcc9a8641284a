"""Webhooks of both dialects: one list with each one's health, a page per webhook, the forms that
create and edit them, and the actions on them (enable, disable, test, recover, delete)."""

from __future__ import annotations

import time
from typing import Any

from fastapi import APIRouter, Request
from starlette.responses import Response

from hookd.console import changes
from hookd.console.changes import DEVICE, DIALECTS, REPOSITORY, Shown
from hookd.console.forms import (
    DEVICE_CONTROLS,
    Control,
    Filled,
    device_controls,
    moment_value,
    parse_moment,
    posted_values,
    repository_controls,
    shown_values,
)
from hookd.console.render import page
from hookd.console.session import AdminViewer, AnyViewer, Form, Hookd, Viewer, posted, see_other
from hookd.delivery.sender import Result
from hookd.dialects.device import catalogue
from hookd.dialects.repository import store as repository_store
from hookd.domain.errors import InvalidField
from hookd.domain.states import WebhookStatus
from hookd.domain.validation import parse_id
from hookd.http.errors import ApiError
from hookd.http.services import Services
from hookd.store import deliveries as delivery_log
from hookd.store import stats
from hookd.store import webhooks as core_store

router = APIRouter(include_in_schema=False)

PAGE_SIZE = 50
MAX_PAGE = 100_000
# A webhook's health is read from this many of its latest deliveries.
HEALTH_OF_LAST = 50
RECENT_DELIVERIES = 10


async def existing(hookd: Services, raw_id: str) -> Shown:
    webhook_id = parse_id(raw_id)
    found = None if webhook_id is None else await changes.load(hookd.db, webhook_id)
    if found is None:
        raise ApiError(404, f"There is no webhook {raw_id}")
    return found


# --- the list ---------------------------------------------------------------------------------


@router.get("/webhooks")
async def list_webhooks(request: Request, looking: AnyViewer, hookd: Hookd) -> Response:
    params = request.query_params
    dialect = params.get("dialect") if params.get("dialect") in DIALECTS else None
    status_value = params.get("status", "")
    status = WebhookStatus(status_value) if status_value in set(WebhookStatus) else None
    repository_id = params.get("repository", "").strip() or None
    event_type = params.get("type", "").strip() or None
    text = params.get("q", "").strip() or None
    raw_page = params.get("page", "")
    page_number = int(raw_page) if raw_page.isascii() and raw_page.isdigit() else 1
    page_number = min(max(page_number, 1), MAX_PAGE)

    repositories = await repository_store.list_repositories(hookd.db)
    events = await repository_store.all_events(hookd.db)
    topics: list[str] | None = None
    if repository_id is not None or event_type is not None:
        topics = [
            f"{event.repository_id}/{event.id}"
            for event in events
            if repository_id in (None, event.repository_id) and event_type in (None, event.id)
        ]
        if repository_id is None and event_type is not None:
            topics.append(event_type)  # a device event type is its own topic
    found, total = await core_store.search_webhooks(
        hookd.db,
        dialect=dialect,
        status=status,
        topics=topics,
        text=text,
        limit=PAGE_SIZE,
        offset=(page_number - 1) * PAGE_SIZE,
    )
    listed = await changes.shown(hookd.db, found)
    health = await stats.webhook_health(hookd.db, [w.id for w in listed], HEALTH_OF_LAST)
    return page(
        request,
        "webhooks.html",
        viewer=looking,
        listed=listed,
        health=health,
        total=total,
        page_number=page_number,
        pages=max((total + PAGE_SIZE - 1) // PAGE_SIZE, 1),
        repositories=[repository for repository, _ in repositories],
        event_names=sorted({event.id for event in events}),
        filters={
            "dialect": dialect or "",
            "status": status.value if status else "",
            "repository": repository_id or "",
            "type": event_type or "",
            "q": text or "",
        },
        health_of_last=HEALTH_OF_LAST,
        notice=params.get("notice"),
    )


# --- one webhook ------------------------------------------------------------------------------


async def _webhook_page(
    request: Request,
    looking: Viewer,
    hookd: Services,
    current: Shown,
    *,
    status: int = 200,
    test: Result | None = None,
    recover_error: str | None = None,
) -> Response:
    health = await stats.webhook_health(hookd.db, [current.id], HEALTH_OF_LAST)
    recent = await delivery_log.search_log(
        hookd.db, delivery_log.LogFilter(webhook_id=current.id), limit=RECENT_DELIVERIES
    )
    entity = current.entity()
    secrets = {name: entity.pop(name) for name in changes.SECRET_FIELDS if name in entity}
    return page(
        request,
        "webhook.html",
        status,
        viewer=looking,
        current=current,
        entity=entity,
        secrets=secrets if looking.is_admin else {name: None for name in secrets},
        labels=_labels(current),
        units=_units(current),
        health=health[current.id],
        health_of_last=HEALTH_OF_LAST,
        recent=recent.items,
        test=test,
        since_default=moment_value(time.time() - 24 * 3600),
        recover_error=recover_error,
        notice=request.query_params.get("notice"),
        queued=request.query_params.get("queued"),
    )


def _controls_of(current: Shown) -> tuple[Control, ...]:
    return DEVICE_CONTROLS if current.binding is None else repository_controls([])


def _labels(current: Shown) -> dict[str, str]:
    labels = {"created_at": "Created", "updated_at": "Last changed"}
    return labels | {control.name: control.label for control in _controls_of(current)}


def _units(current: Shown) -> dict[str, str]:
    return {control.name: control.unit for control in _controls_of(current) if control.unit}


@router.get("/webhooks/{webhook_id}")
async def show_webhook(
    webhook_id: str, request: Request, looking: AnyViewer, hookd: Hookd
) -> Response:
    return await _webhook_page(request, looking, hookd, await existing(hookd, webhook_id))


@router.post("/webhooks/{webhook_id}/test")
async def test_webhook(
    webhook_id: str, request: Request, looking: AdminViewer, hookd: Hookd
) -> Response:
    current = await existing(hookd, webhook_id)
    await posted(request, looking)
    result = await changes.send_test(hookd, current.webhook)
    return await _webhook_page(request, looking, hookd, current, test=result)


@router.post("/webhooks/{webhook_id}/enable")
async def enable_webhook(
    webhook_id: str, request: Request, looking: AdminViewer, hookd: Hookd
) -> Response:
    return await _set_active(webhook_id, request, looking, hookd, active=True)


@router.post("/webhooks/{webhook_id}/disable")
async def disable_webhook(
    webhook_id: str, request: Request, looking: AdminViewer, hookd: Hookd
) -> Response:
    return await _set_active(webhook_id, request, looking, hookd, active=False)


async def _set_active(
    webhook_id: str, request: Request, looking: Viewer, hookd: Services, *, active: bool
) -> Response:
    current = await existing(hookd, webhook_id)
    await posted(request, looking)
    await changes.set_active(hookd, current, active)
    return see_other(f"/webhooks/{current.id}?notice={'switched-on' if active else 'switched-off'}")


@router.post("/webhooks/{webhook_id}/recover")
async def recover_webhook(
    webhook_id: str, request: Request, looking: AdminViewer, hookd: Hookd
) -> Response:
    current = await existing(hookd, webhook_id)
    form = await posted(request, looking)
    try:
        since = parse_moment(form.get("since"))
        if since is None:
            raise ValueError
    except ValueError:
        return await _webhook_page(
            request,
            looking,
            hookd,
            current,
            status=400,
            recover_error="Give a date and time, such as 2026-12-01T09:30 (UTC).",
        )
    queued = await delivery_log.recover(hookd.db, current.id, since, time.time())
    return see_other(f"/webhooks/{current.id}?notice=recovered&queued={queued}")


@router.get("/webhooks/{webhook_id}/delete")
async def confirm_delete(
    webhook_id: str, request: Request, looking: AdminViewer, hookd: Hookd
) -> Response:
    current = await existing(hookd, webhook_id)
    return page(request, "webhook_delete.html", viewer=looking, current=current)


@router.post("/webhooks/{webhook_id}/delete")
async def delete_webhook(
    webhook_id: str, request: Request, looking: AdminViewer, hookd: Hookd
) -> Response:
    current = await existing(hookd, webhook_id)
    await posted(request, looking)
    await core_store.delete_webhook(hookd.db, current.id)
    return see_other("/webhooks?notice=deleted")


# --- creating and editing ---------------------------------------------------------------------


async def _controls(
    hookd: Services, dialect: str, *, creating: bool, current: Shown | None = None
) -> tuple[Control, ...]:
    if dialect == DEVICE:
        names = await catalogue.names(hookd.db)
        listed = current.webhook.topics if current is not None else ()
        return device_controls([*names, *(entry for entry in listed if entry not in names)])
    controls = repository_controls(await repository_store.all_events(hookd.db))
    return controls if creating else tuple(c for c in controls if not c.on_create_only)


def _form_page(
    request: Request,
    looking: Viewer,
    dialect: str,
    controls: tuple[Control, ...],
    filled: Filled,
    *,
    current: Shown | None = None,
    status: int = 200,
) -> Response:
    return page(
        request,
        "webhook_form.html",
        status,
        viewer=looking,
        dialect=dialect,
        controls=controls,
        filled=filled,
        current=current,
    )


_NEW_DEVICE: dict[str, Any] = {
    "status": WebhookStatus.ACTIVE.value,
    "timeout": 10_000,
    "max_retries": 3,
    "headers": "",
    "event_types": [],
}
_NEW_REPOSITORY: dict[str, Any] = {"enabled": True, "retry": True, "handleResponse": "NONE"}


@router.get("/webhooks/new/{dialect}")
async def new_webhook(
    dialect: str, request: Request, looking: AdminViewer, hookd: Hookd
) -> Response:
    if dialect not in DIALECTS:
        raise ApiError(404, f"There is no dialect {dialect!r}")
    controls = await _controls(hookd, dialect, creating=True)
    values = dict(_NEW_DEVICE if dialect == DEVICE else _NEW_REPOSITORY)
    if dialect == REPOSITORY:
        values["event"] = request.query_params.get("event", "")
        values["timeout"] = ""
    return _form_page(request, looking, dialect, controls, Filled(values))


@router.post("/webhooks/new/{dialect}")
async def create_webhook(
    dialect: str, request: Request, looking: AdminViewer, hookd: Hookd
) -> Response:
    if dialect not in DIALECTS:
        raise ApiError(404, f"There is no dialect {dialect!r}")
    form = await posted(request, looking)
    controls = await _controls(hookd, dialect, creating=True)
    try:
        if dialect == DEVICE:
            created = await changes.create_device(hookd, form)
        else:
            created = await changes.create_repository(hookd, form, controls)
    except InvalidField as error:
        return _refused(request, looking, dialect, controls, form, error)
    return see_other(f"/webhooks/{created.id}?notice=created")


def _refused(
    request: Request,
    looking: Viewer,
    dialect: str,
    controls: tuple[Control, ...],
    form: Form,
    error: InvalidField,
    current: Shown | None = None,
) -> Response:
    filled = Filled(posted_values(form, controls))
    filled.fail(error, controls)
    return _form_page(request, looking, dialect, controls, filled, current=current, status=400)


@router.get("/webhooks/{webhook_id}/edit")
async def edit_webhook(
    webhook_id: str, request: Request, looking: AdminViewer, hookd: Hookd
) -> Response:
    current = await existing(hookd, webhook_id)
    controls = await _controls(hookd, current.dialect, creating=False, current=current)
    filled = Filled(shown_values(current.entity()))
    return _form_page(request, looking, current.dialect, controls, filled, current=current)


@router.post("/webhooks/{webhook_id}/edit")
async def save_webhook(
    webhook_id: str, request: Request, looking: AdminViewer, hookd: Hookd
) -> Response:
    current = await existing(hookd, webhook_id)
    form = await posted(request, looking)
    controls = await _controls(hookd, current.dialect, creating=False, current=current)
    try:
        await changes.replace(hookd, current, form, controls)
    except InvalidField as error:
        return _refused(request, looking, current.dialect, controls, form, error, current)
    return see_other(f"/webhooks/{current.id}?notice=saved")
