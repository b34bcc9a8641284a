"""Publishing in the device dialect: one event `{"type", "data"?, "id"?}` or an array of them."""

from __future__ import annotations

from collections.abc import Collection
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, RootModel

from hookd.dialects.device.event_types import PublishableEventType
from hookd.domain.errors import InvalidField
from hookd.domain.event import MAX_EVENT_ID_LENGTH, check_data, check_event_id
from hookd.domain.validation import LINE_PATTERN
from hookd.publishing import Draft

MAX_EVENTS_PER_REQUEST = 1000
# Where a device event id is unique (besides its producer): this dialect.
DIALECT_SCOPE = "device"
_EVENT_FIELDS = frozenset({"type", "data", "id"})


# Documents a publish request's body; `parse_events` checks it.
class EventToPublish(BaseModel):
    """One event, as a publisher sends it."""

    model_config = ConfigDict(extra="forbid")

    type: PublishableEventType
    data: dict[str, Any] | None = Field(None, description="Delivered as the event's `data`")
    id: (
        Annotated[
            str,
            Field(
                min_length=1,
                max_length=MAX_EVENT_ID_LENGTH,
                json_schema_extra={"pattern": LINE_PATTERN},
                description="Your id for the event: an idempotency key for 24 h",
            ),
        ]
        | None
    ) = None


class EventsToPublish(
    RootModel[
        EventToPublish
        | Annotated[list[EventToPublish], Field(min_length=1, max_length=MAX_EVENTS_PER_REQUEST)]
    ]
):
    """One event, or a JSON array of 1 to 1000."""


def requested_types(payload: Any) -> list[str]:
    """The types a publish request names, read before it is checked (so that the types added
    to the catalogue can be looked up at once); what is not an event is left to `parse_events`."""
    items = [payload] if isinstance(payload, dict) else payload
    if not isinstance(items, list) or len(items) > MAX_EVENTS_PER_REQUEST:
        return []
    found = (item.get("type") for item in items if isinstance(item, dict))
    return [event_type for event_type in found if isinstance(event_type, str)]


def parse_events(payload: Any, known_types: Collection[str]) -> list[Draft]:
    """A publish request's body as drafts; InvalidField names the first bad field
    (`type`, or `[3].type` in an array)."""
    single = isinstance(payload, dict)
    items = [payload] if single else payload
    if not isinstance(items, list):
        raise InvalidField("body", "must be an event object or a JSON array of events")
    if not 1 <= len(items) <= MAX_EVENTS_PER_REQUEST:
        raise InvalidField("body", f"must hold 1 to {MAX_EVENTS_PER_REQUEST} events")
    drafts = []
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
        drafts.append(
            Draft(
                type=event_type,
                topic=event_type,
                data=check_data(item.get("data"), f"{prefix}data"),
                id=check_event_id(item.get("id"), f"{prefix}id"),
                id_scope=DIALECT_SCOPE,
                field=f"[{index}]",
            )
        )
    return drafts
