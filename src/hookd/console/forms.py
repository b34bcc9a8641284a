"""The webhook forms of both dialects: their controls, and how a posted form becomes the body the
dialect's own parser checks.

Each control is named after the dialect's field, so the dialect's error for a field (`timeout:
must be between 1000 and 30000`) lands next to the control of that name. A field the dialect
gains is one more `Control` here.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any

from hookd.console.session import Form
from hookd.dialects.device.event_types import EVENT_TYPES
from hookd.dialects.repository.model import (
    NONE,
    STATUS,
    STATUS_AND_BODY,
    TIMEOUT_DEFAULT_MS,
    EventDefinition,
)
from hookd.domain.errors import InvalidField
from hookd.domain.states import WebhookStatus

_INTEGER = re.compile(r"[+-]?\d{1,18}")


@dataclass(frozen=True, slots=True)
class Control:
    """One control of a form: `name` is the dialect's field."""

    name: str
    label: str
    # text | url | number | textarea | select | checkbox | checkboxes | secret | categories
    kind: str
    help: str = ""
    options: tuple[tuple[str, str], ...] = ()
    # Options in groups (label, options), for a select.
    groups: tuple[tuple[str, tuple[tuple[str, str], ...]], ...] = ()
    # Shown on creation only (a field the dialect does not let change), and read by the console
    # itself: not part of the dialect's body (the repository webhook's event is in its path).
    on_create_only: bool = False
    # For a number: the unit, said after the control.
    unit: str = ""
    # What an empty text means to the dialect (None: the empty text itself).
    when_empty: str | None = None


DEVICE_CONTROLS: tuple[Control, ...] = (
    Control("url", "URL", "url", "Where hookd sends each event: an http or https URL."),
    Control("description", "Description", "textarea", "Up to 1000 characters."),
    Control(
        "event_types",
        "Event types",
        "checkboxes",
        "The events this webhook receives: at least one.",
        options=tuple((name, name) for name in EVENT_TYPES),
    ),
    Control(
        "status",
        "Status",
        "select",
        options=tuple((status.value, status.value.capitalize()) for status in WebhookStatus),
    ),
    Control("timeout", "Timeout", "number", "1000 to 30000 ms; default 10000.", unit="ms"),
    Control("max_retries", "Retries", "number", "Retries after a failed attempt: 0 to 5."),
    Control(
        "headers",
        "Extra headers",
        "textarea",
        'A JSON object of header name → value sent with every delivery, e.g. {"X-Team": "doors"}.',
        when_empty="{}",
    ),
    Control(
        "secret",
        "Signing secret",
        "secret",
        "16 to 128 characters. Leave empty to generate one (or, when editing, to keep it).",
    ),
)


def device_controls(event_types: Sequence[str]) -> tuple[Control, ...]:
    """The device dialect's webhook form offering `event_types` (the catalogue's, and whatever
    else the webhook lists, such as wildcards, so that saving keeps them)."""
    options = tuple((name, name) for name in event_types)
    return tuple(
        replace(control, options=options) if control.name == "event_types" else control
        for control in DEVICE_CONTROLS
    )


def repository_controls(events: list[EventDefinition]) -> tuple[Control, ...]:
    """The repository dialect's webhook form; `events` are those a new webhook may hang on."""
    by_repository: dict[str, list[tuple[str, str]]] = {}
    for event in events:
        kind = "blocking" if event.blocking else "non-blocking"
        by_repository.setdefault(event.repository_id, []).append(
            (f"{event.repository_id}/{event.id}", f"{event.id} ({kind})")
        )
    return (
        Control(
            "event",
            "Event",
            "select",
            "The repository event that fires this webhook.",
            groups=tuple((repo, tuple(options)) for repo, options in by_repository.items()),
            on_create_only=True,
        ),
        Control(
            "uri",
            "URI",
            "text",
            "An absolute http(s) URI, or a path beginning with / that is appended to the "
            "repository's base URI.",
        ),
        Control("description", "Description", "textarea", "Required; up to 1000 characters."),
        Control("enabled", "Enabled", "checkbox"),
        Control(
            "handleResponse",
            "Answers",
            "select",
            "For a blocking event: STATUS and STATUS_AND_BODY are called while the trigger "
            "waits and may veto it; NONE is queued and never vetoes.",
            options=(
                (NONE, "NONE: queued, never vetoes"),
                (STATUS, "STATUS: called, its status may veto"),
                (STATUS_AND_BODY, "STATUS_AND_BODY: called, status and body reported"),
            ),
        ),
        Control("retry", "Retry failed calls", "checkbox", "Up to three more times."),
        Control(
            "timeout",
            "Timeout",
            "number",
            f"1 to 30000 ms; default {TIMEOUT_DEFAULT_MS}.",
            unit="ms",
        ),
        Control(
            "apiKey",
            "API key",
            "secret",
            "Sent as Authorization: Bearer <key>. Leave empty for none (or, when editing, to "
            "keep the current one).",
        ),
        Control(
            "restrictions",
            "Categories",
            "categories",
            "Comma-separated. Only triggers of one of these categories fire the webhook; "
            "empty: all of them.",
        ),
    )


@dataclass(slots=True)
class Filled:
    """A form as shown: each control's value, and the errors to show next to them."""

    values: dict[str, Any] = field(default_factory=dict)
    errors: dict[str, str] = field(default_factory=dict)
    # An error that belongs to no control.
    general: str | None = None

    def fail(self, error: InvalidField, controls: tuple[Control, ...]) -> None:
        name = re.split(r"[.\[]", error.field, maxsplit=1)[0]
        if any(control.name == name for control in controls):
            self.errors[name] = error.message
        else:
            self.general = str(error)


def shown_values(entity: dict[str, Any]) -> dict[str, Any]:
    """A dialect's webhook entity as the form's values (secrets are never put in a form)."""
    values = dict(entity)
    restrictions = values.get("restrictions")
    if isinstance(restrictions, list):
        values["restrictions"] = ", ".join(str(r.get("value", "")) for r in restrictions)
    values.pop("secret", None)
    values.pop("apiKey", None)
    return values


def posted_values(form: Form, controls: tuple[Control, ...]) -> dict[str, Any]:
    """The posted form as it is shown again (after an error)."""
    values: dict[str, Any] = {}
    for control in controls:
        if control.kind == "checkboxes":
            values[control.name] = form.all(control.name)
        elif control.kind == "checkbox":
            values[control.name] = form.has(control.name)
        elif control.kind != "secret":
            values[control.name] = form.get(control.name)
    return values


def body_of(form: Form, controls: tuple[Control, ...]) -> dict[str, Any]:
    """The dialect's JSON body for a posted form: an empty number or secret is left out (the
    dialect's default, or the current secret, applies); a number that is not one is passed as
    text, so that the dialect says what is wrong with it."""
    body: dict[str, Any] = {}
    for control in controls:
        if control.on_create_only:
            continue
        value = form.get(control.name).strip()
        if control.kind == "checkboxes":
            body[control.name] = form.all(control.name)
        elif control.kind == "checkbox":
            body[control.name] = form.has(control.name)
        elif control.kind == "number":
            if value:
                body[control.name] = int(value) if _INTEGER.fullmatch(value) else value
        elif control.kind == "secret":
            if value:
                body[control.name] = value
        elif control.kind == "categories":
            categories = [part.strip() for part in re.split(r"[,\n]", value) if part.strip()]
            body[control.name] = [{"key": "CATEGORY", "value": c} for c in categories]
        elif not value and control.when_empty is not None:
            body[control.name] = control.when_empty
        elif control.kind == "textarea":
            body[control.name] = form.get(control.name)
        else:
            body[control.name] = value
    return body


def parse_moment(text: str) -> float | None:
    """A `datetime-local` value (read as UTC) or an ISO 8601 time; None when empty."""
    text = text.strip()
    if not text:
        return None
    moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.timestamp()


def moment_value(timestamp: float) -> str:
    """A time as a `datetime-local` control shows it (UTC)."""
    return datetime.fromtimestamp(timestamp, UTC).strftime("%Y-%m-%dT%H:%M")
