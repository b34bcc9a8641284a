"""The device dialect's catalogue of event types, in the order of its specification."""

from __future__ import annotations

import re
from typing import Annotated

from pydantic import WithJsonSchema

from hookd.domain.event_types import MAX_NAME_LENGTH, NAME_PATTERN, WILDCARD_PATTERN
from hookd.domain.operational import OPERATIONAL_EVENT_TYPES, RESERVED_PREFIX

EVENT_TYPES: tuple[str, ...] = (
    "log.access_denied_by_not_valid_identifier",
    "log.access_denied_by_not_valid_face_identifier",
    "log.access_denied_by_not_valid_input_code",
    "log.access_denied_by_remote_server_api_call",
    "log.access_denied_by_unknown_card",
    "log.access_granted_by_api_call",
    "log.access_granted_by_call_host",
    "log.access_granted_by_master_code",
    "log.access_granted_by_remote_server_api_call",
    "log.access_granted_by_valid_identifier",
    "log.door_was_closed",
    "log.door_sensor_was_closed",
    "log.door_was_opened",
    "log.door_sensor_was_opened",
    "log.emergency_lock_is_opened",
    "log.lock_is_opened_to_long",
    "log.lock_was_opened_by_exit_btn",
    "log.lock_was_opened_by_free_access_button",
    "log.incoming_call",
    "log.outgoing_call",
    "log.outgoing_call_missed",
    "log.device_booted",
    "log.sip_registration_lost",
    "log.outgoing_call_web",
    "log.incorrect_login_api_call",
    "log.incorrect_login_gui_settings",
    "log.successful_login_api_call",
    "log.successful_login_gui_settings",
    "log.door_was_not_closed_too_long",
    "log.tamper_event",
    "log.multi_access_granted",
    "log.identifiers_without_linkage_to_user_access_denied",
    "log.multi_access_denied",
    "log.access_denied_by_unknown_qr",
    "log.access_denied_unknown_identifier",
    "log.lift_call_success",
    "log.lift_call_error",
    "log.lift_module_access_error",
    "log.access_granted_by_shared_identifier",
    "log.access_denied_by_not_valid_shared_identifier",
    "log.bond_lift_request",
)

# The built-in types a producer may publish.
KNOWN_EVENT_TYPES: frozenset[str] = frozenset(EVENT_TYPES)

# What a webhook may subscribe to without adding types: the device's types and hookd's own.
# Built in, and undeletable; an administrator adds more (`POST /api/v1/event-types`).
SUBSCRIBABLE_EVENT_TYPES: tuple[str, ...] = (*EVENT_TYPES, *OPERATIONAL_EVENT_TYPES)
BUILT_IN: frozenset[str] = frozenset(SUBSCRIBABLE_EVENT_TYPES)

_LENGTH = {"type": "string", "maxLength": MAX_NAME_LENGTH}
_BUILT_IN_SCHEMA = {"type": "string", "enum": list(SUBSCRIBABLE_EVENT_TYPES)}
_CUSTOM_SCHEMA = {
    **_LENGTH,
    "pattern": f"^{NAME_PATTERN}$",
    "description": "A type added with `POST /api/v1/event-types`",
}
_WILDCARD_SCHEMA = {
    **_LENGTH,
    "pattern": f"^{WILDCARD_PATTERN}$",
    "description": "Every type under a prefix, present and future (`log.*`)",
}

# An event type of the catalogue: built in, or added by an administrator.
EventTypeName = Annotated[
    str,
    WithJsonSchema({"anyOf": [_BUILT_IN_SCHEMA, _CUSTOM_SCHEMA], "title": "DeviceEventType"}),
]

# What a webhook (or an API key) lists: a type of the catalogue, or a wildcard.
Subscription = Annotated[
    str,
    WithJsonSchema(
        {
            "anyOf": [_BUILT_IN_SCHEMA, _CUSTOM_SCHEMA, _WILDCARD_SCHEMA],
            "title": "DeviceSubscription",
        }
    ),
]

# An event type a producer publishes: the device's own, or one added (never hookd's own).
PublishableEventType = Annotated[
    str,
    WithJsonSchema(
        {
            "anyOf": [
                {"type": "string", "enum": list(EVENT_TYPES)},
                {**_CUSTOM_SCHEMA, "pattern": f"^(?!{re.escape(RESERVED_PREFIX)}){NAME_PATTERN}$"},
            ],
            "title": "PublishableEventType",
        }
    ),
]
