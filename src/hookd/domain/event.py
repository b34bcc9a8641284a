"""An event as publishers send it, and the body every delivery of it carries."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

import orjson

from hookd.domain.errors import InvalidField

MAX_EVENT_ID_LENGTH = 255


def new_event_id() -> str:
    return f"evt_{uuid.uuid4().hex}"


def rfc3339(timestamp: float) -> str:
    return (
        datetime.fromtimestamp(timestamp, UTC)
        .isoformat(timespec="milliseconds")
        .replace("+00:00", "Z")
    )


def check_event_id(value: object, field: str) -> str | None:
    """A publisher's own event id (its idempotency key), or None when not given."""
    if value is None:
        return None
    if not isinstance(value, str) or not 1 <= len(value) <= MAX_EVENT_ID_LENGTH:
        raise InvalidField(field, f"must be a string of 1 to {MAX_EVENT_ID_LENGTH} characters")
    # It goes out as the `webhook-id` header as it is: HTTP headers carry ASCII only.
    if not (value.isascii() and value.isprintable()):
        raise InvalidField(field, "must hold printable ASCII characters only")
    return value


def check_data(value: object, field: str) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise InvalidField(field, "must be a JSON object")
    return value


def delivery_body(
    event_id: str,
    event_type: str,
    created_at: str,
    data: dict[str, Any],
    *,
    context: Mapping[str, str] | None = None,
    category: str | None = None,
) -> bytes:
    """The JSON body of every delivery of an event, the same for every webhook that receives
    it: `{"id", "type", "created_at", <context…>, "category"?, "data"}`; a dialect may add
    `context` fields (such as the repository an event belongs to)."""
    body: dict[str, Any] = {"id": event_id, "type": event_type, "created_at": created_at}
    if context:
        body.update(context)
    if category is not None:
        body["category"] = category
    body["data"] = data
    return orjson.dumps(body)
