"""An event as publishers send it, and the body every delivery of it carries."""

from __future__ import annotations

import uuid
from collections.abc import Collection
from datetime import UTC, datetime
from typing import Any

import orjson

from hookd.domain.errors import InvalidField

MAX_EVENTS_PER_REQUEST = 1000
MAX_EVENT_ID_LENGTH = 255
_EVENT_FIELDS = frozenset({"type", "data", "id"})


def new_event_id() -> str:
    return f"evt_{uuid.uuid4().hex}"


def rfc3339(timestamp: float) -> str:
    return (
        datetime.fromtimestamp(timestamp, UTC)
        .isoformat(timespec="milliseconds")
        .replace("+00:00", "Z")
    )


def check_event_id(value: object, field: str) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str) or not 1 <= len(value) <= MAX_EVENT_ID_LENGTH:
        raise InvalidField(field, f"must be a string of 1 to {MAX_EVENT_ID_LENGTH} characters")
    if not value.isprintable():
        raise InvalidField(field, "must hold printable characters only")
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
    repository: str | None = None,
    category: str | None = None,
) -> bytes:
    """The JSON body of CONTRACT §5, the same for every webhook that receives the event."""
    body: dict[str, Any] = {"id": event_id, "type": event_type, "created_at": created_at}
    if repository is not None:
        body["repository"] = repository
    if category is not None:
        body["category"] = category
    body["data"] = data
    return orjson.dumps(body)


def parse_device_events(
    payload: Any, known_types: Collection[str]
) -> list[tuple[str | None, str, dict[str, Any]]]:
    """`{"type", "data"?, "id"?}` or a list of up to 1000 of them → (id, type, data) triples."""
    single = isinstance(payload, dict)
    items = [payload] if single else payload
    if not isinstance(items, list):
        raise InvalidField("body", "must be an event object or a JSON array of events")
    if not 1 <= len(items) <= MAX_EVENTS_PER_REQUEST:
        raise InvalidField("body", f"must hold 1 to {MAX_EVENTS_PER_REQUEST} events")
    parsed = []
    for index, item in enumerate(items):
        prefix = "" if single else f"[{index}]."
        if not isinstance(item, dict):
            raise InvalidField(f"[{index}]", "must be an event object")
        unknown = item.keys() - _EVENT_FIELDS
        if unknown:
            raise InvalidField(f"{prefix}{sorted(unknown)[0]}", "is not a field of an event")
        event_type = item.get("type")
        if not isinstance(event_type, str):
            raise InvalidField(f"{prefix}type", "is required and must be a string")
        if event_type not in known_types:
            raise InvalidField(f"{prefix}type", f"{event_type!r} is not a known event type")
        parsed.append(
            (
                check_event_id(item.get("id"), f"{prefix}id"),
                event_type,
                check_data(item.get("data"), f"{prefix}data"),
            )
        )
    return parsed
