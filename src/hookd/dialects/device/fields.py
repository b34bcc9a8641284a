"""The device dialect's webhook: its fields, ranges and defaults, as its specification says."""

from __future__ import annotations

import json
import re
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, Strict, field_validator

from hookd.dialects.device.event_types import Subscription
from hookd.domain.api_keys import MAX_NAME_LENGTH as MAX_KEY_NAME_LENGTH
from hookd.domain.errors import InvalidField
from hookd.domain.event_types import MAX_NAME_LENGTH as MAX_EVENT_TYPE_LENGTH
from hookd.domain.event_types import NAME_PATTERN, check_entry, check_name, is_reserved
from hookd.domain.signing import signing_key
from hookd.domain.states import Ordering, WebhookStatus
from hookd.domain.validation import (
    HTTP_URL_SCHEMA,
    LINE_PATTERN,
    Line,
    Text,
    check_http_url,
    check_line,
    validated,
)
from hookd.domain.webhook import Webhook, WebhookFields

# Stored with each webhook this dialect creates.
NAME = "device"

# The specification's token regex, ^[a-zA-Z0-9!#$%&'+-.^_`|~]+$, read as RFC 7230 meant it: its
# `+-.` would also admit a comma, which no HTTP client will send in a header name.
HEADER_NAME = re.compile(r"[a-zA-Z0-9!#$%&'+\-.^_`|~]+")
HEADER_VALUE = re.compile(r"[\x09\x20-\x7E]*")

SYSTEM_HEADERS = frozenset(
    {
        "host",
        "connection",
        "keep-alive",
        "transfer-encoding",
        "upgrade",
        "via",
        "te",
        "trailer",
        "content-length",
        "content-type",
        "authorization",
        "origin",
        "permissions-policy",
        "user-agent",
        "accept",
        "accept-encoding",
        "accept-language",
        "x-forwarded-for",
        "x-forwarded-host",
        "x-forwarded-proto",
        "x-real-ip",
        "forwarded",
        "date",
        "expires",
        "last-modified",
        "cache-control",
        "etag",
        "if-match",
        "if-none-match",
        "access-control-allow-origin",
        "access-control-allow-methods",
        "access-control-allow-headers",
        "access-control-expose-headers",
    }
)
# hookd's own delivery headers: overriding them would break the signature receivers check.
HOOKD_HEADERS = frozenset(
    {
        "webhook-id",
        "webhook-timestamp",
        "webhook-signature",
        "x-hookd-signature-256",
        "x-hookd-attempt",
    }
)

# Beyond the specification's list: headers that would change how the request is framed or
# routed, or carry credentials or cookies of the sender's own (hop-by-hop, proxy and encoding
# headers, cookies). A webhook's own headers are data for its receiver, nothing more.
UNSAFE_HEADERS = frozenset(
    {
        "cookie",
        "cookie2",
        "set-cookie",
        "proxy-authorization",
        "proxy-authenticate",
        "proxy-connection",
        "expect",
        "content-encoding",
        "content-range",
        "content-md5",
        "range",
        "trailers",
        "x-http-method-override",
        "x-http-method",
        "x-method-override",
        "x-original-url",
        "x-rewrite-url",
        "x-forwarded-port",
        "x-forwarded-server",
        "x-forwarded-prefix",
        "x-forwarded-scheme",
        "x-forwarded-ssl",
        "x-client-ip",
        "true-client-ip",
    }
)
# The `headers` string as a whole, and how many headers it may hold.
MAX_HEADERS_LENGTH = 8192
MAX_CUSTOM_HEADERS = 50

READ_ONLY_FIELDS = ("uid", "created_at", "updated_at", "disabled_reason", "health")
# The most `rate_limit` may say (deliveries per second).
MAX_RATE_LIMIT = 100_000


def parse_custom_headers(text: str) -> dict[str, str]:
    """The `headers` field: a string holding a JSON object of header name → value."""
    if len(text) > MAX_HEADERS_LENGTH:
        raise ValueError(f"must hold at most {MAX_HEADERS_LENGTH} characters")
    try:
        pairs = json.loads(text, object_pairs_hook=_pairs)
    except (ValueError, RecursionError):
        raise ValueError("must be a string holding a JSON object") from None
    if not isinstance(pairs, _Pairs):
        raise ValueError("must be a string holding a JSON object")
    if len(pairs) > MAX_CUSTOM_HEADERS:
        raise ValueError(f"must hold at most {MAX_CUSTOM_HEADERS} headers")
    headers: dict[str, str] = {}
    seen: set[str] = set()
    for name, header_value in pairs:
        lowered = name.lower()
        if not HEADER_NAME.fullmatch(name):
            raise ValueError(f"{name!r} is not a valid header name")
        if lowered in SYSTEM_HEADERS:
            raise ValueError(f"{name!r} is a system header and cannot be overridden")
        if lowered in HOOKD_HEADERS:
            raise ValueError(f"{name!r} is set by hookd and cannot be overridden")
        if lowered in UNSAFE_HEADERS:
            raise ValueError(f"{name!r} cannot be set on a webhook's requests")
        if lowered in seen:
            raise ValueError(f"{name!r} is given twice")
        seen.add(lowered)
        if not isinstance(header_value, str):
            raise ValueError(f"the value of {name!r} must be a string")
        if not HEADER_VALUE.fullmatch(header_value):
            raise ValueError(f"the value of {name!r} may hold only printable ASCII and tabs")
        headers[name] = header_value
    return headers


class _Pairs(list[tuple[str, object]]):
    """A JSON object's members in order, repeats kept, so that a repeated name can be refused."""


def _pairs(members: list[tuple[str, object]]) -> _Pairs:
    return _Pairs(members)


# How the documentation describes the fields whose rules pydantic does not check itself.
URL = Field(min_length=4, max_length=2000, json_schema_extra=HTTP_URL_SCHEMA)
SECRET = Field(
    min_length=16,
    max_length=128,
    json_schema_extra={"pattern": LINE_PATTERN},
    description="Signs every delivery (HMAC-SHA256); generated (`whsec_…`) when omitted",
)
HEADERS = Field(
    description="Headers sent with every delivery: a JSON object held in a string, such as "
    '`"{\\"X-Tenant\\": \\"acme\\"}"`',
    json_schema_extra={
        "contentMediaType": "application/json",
        "contentSchema": {"type": "object", "additionalProperties": {"type": "string"}},
    },
)
EVENT_TYPES = Field(
    min_length=1,
    json_schema_extra={"uniqueItems": True},
    description="Event types of the catalogue (`GET /api/v1/event-types`) or wildcards over a "
    "prefix (`log.*`: every type under `log.`, present and future), none repeated",
)


class DeviceWebhookSpec(BaseModel):
    """A whole webhook as the device dialect writes it (create and replace)."""

    model_config = ConfigDict(extra="forbid", strict=True, title="Webhook")

    url: Annotated[str, URL]
    secret: Annotated[str, SECRET] | None = None
    status: Annotated[WebhookStatus, Strict(False)] = WebhookStatus.ACTIVE
    timeout: Annotated[int, Field(ge=1000, le=30000)] = 10_000
    headers: Annotated[str, HEADERS] = "{}"
    description: Annotated[Text, Field(max_length=1000)] = ""
    event_types: Annotated[list[Subscription], EVENT_TYPES]
    max_retries: Annotated[int, Field(ge=0, le=5)] = 3
    rate_limit: (
        Annotated[
            int,
            Field(
                ge=1,
                le=MAX_RATE_LIMIT,
                description="Deliveries per second at most, all workers together; null: none",
            ),
        ]
        | None
    ) = None
    ordering: Annotated[
        Ordering,
        Strict(False),
        Field(description="`fifo`: one delivery at a time, strictly in publish order"),
    ] = Ordering.NONE

    @field_validator("url")
    @classmethod
    def _url(cls, value: str) -> str:
        return check_http_url(value)

    @field_validator("secret")
    @classmethod
    def _secret(cls, value: str | None) -> str | None:
        if value is not None:
            check_line(value)
            signing_key(value)
        return value

    @field_validator("headers")
    @classmethod
    def _headers(cls, value: str) -> str:
        parse_custom_headers(value)
        return value

    @field_validator("event_types")
    @classmethod
    def _event_types(cls, value: list[str]) -> list[str]:
        for entry in value:
            check_entry(entry)
        if len(set(value)) != len(value):
            raise ValueError("must not repeat an event type")
        return value

    def to_fields(self, secret: str | None) -> WebhookFields:
        return WebhookFields(
            url=self.url,
            topics=tuple(self.event_types),
            secret=self.secret or secret,
            status=self.status,
            timeout_ms=self.timeout,
            headers=self.headers,
            description=self.description,
            max_retries=self.max_retries,
            rate_limit=self.rate_limit,
            ordering=self.ordering,
        )


def _changes_only(schema: dict[str, Any]) -> None:
    """A change names only the fields it changes: none is required, none has a default."""
    schema.pop("required", None)
    for field in schema.get("properties", {}).values():
        field.pop("default", None)


# Documents a PATCH body; a change is checked by merging it into the webhook (`patched_webhook`).
class DeviceWebhookPatch(DeviceWebhookSpec):
    """The fields of a webhook to change, each as in a whole webhook."""

    model_config = ConfigDict(title="Webhook changes", json_schema_extra=_changes_only)


def parse_webhook(body: Any) -> DeviceWebhookSpec:
    """Validate a webhook body; raise InvalidField naming the first bad field."""
    if isinstance(body, dict):
        body = {key: value for key, value in body.items() if key not in READ_ONLY_FIELDS}
    return validated(DeviceWebhookSpec, body, "webhook")


def patched_webhook(current: Webhook, patch: Any) -> DeviceWebhookSpec:
    """The webhook `current` with the fields of `patch` changed, validated as a whole."""
    if not isinstance(patch, dict):
        raise InvalidField("body", "must be a JSON object")
    merged: dict[str, Any] = {
        "url": current.url,
        "secret": current.secret,
        "status": current.status.value,
        "timeout": current.timeout_ms,
        "headers": current.headers,
        "description": current.description,
        "event_types": list(current.topics),
        "max_retries": current.max_retries,
        "rate_limit": current.rate_limit,
        "ordering": current.ordering.value,
    }
    merged.update(patch)
    return parse_webhook(merged)


# The latest `since` accepted (Unix seconds, the year 5138): beyond it a number is a mistake.
MAX_SINCE = 100_000_000_000


class RotateSpec(BaseModel):
    """`POST …/secret/rotate`: the new secret, or none for a generated one."""

    model_config = ConfigDict(extra="forbid", strict=True, title="SecretRotation")

    secret: Annotated[str, Field(min_length=16, max_length=128)] | None = None

    @field_validator("secret")
    @classmethod
    def _secret(cls, value: str | None) -> str | None:
        return DeviceWebhookSpec._secret(value)


class SinceSpec(BaseModel):
    """`POST …/replay` and `…/recover`: from when."""

    model_config = ConfigDict(extra="forbid", strict=True, title="Since")

    since: Annotated[
        float, Strict(False), Field(description="Unix seconds", json_schema_extra={"minimum": 0})
    ]

    @field_validator("since", mode="before")
    @classmethod
    def _since(cls, value: Any) -> float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ValueError("must be a number of Unix seconds")
        if not 0 <= value <= MAX_SINCE:
            raise ValueError(f"must be between 0 and {MAX_SINCE}")
        return float(value)


def parse_rotation(body: Any) -> str | None:
    """The secret a rotation asks for (None: generate one)."""
    return validated(RotateSpec, body, "secret rotation").secret


def parse_since(body: Any) -> float:
    return float(validated(SinceSpec, body, "request").since)


def parse_webhook_fields(current: Webhook, secret: str) -> WebhookFields:
    """`current` as it is, with a new secret."""
    return patched_webhook(current, {"secret": secret}).to_fields(secret)


# How many entries an API key's `event_types` may hold.
MAX_KEY_EVENT_TYPES = 100


class EventTypeSpec(BaseModel):
    """`POST /api/v1/event-types`: a type to add to the catalogue."""

    model_config = ConfigDict(extra="forbid", strict=True, title="EventTypeSpec")

    name: Annotated[
        str,
        Field(
            max_length=MAX_EVENT_TYPE_LENGTH,
            json_schema_extra={"pattern": f"^{NAME_PATTERN}$"},
            description="Dotted lowercase segments (`order.created`), not under `hookd.`",
        ),
    ]
    description: Annotated[Text, Field(max_length=1000)] = ""

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        return check_name(value)


class ApiKeySpec(BaseModel):
    """`POST /api/v1/api-keys`: a producer's key, for publishing (only the types listed)."""

    model_config = ConfigDict(extra="forbid", strict=True, title="ApiKeySpec")

    name: Annotated[Line, Field(min_length=1, max_length=MAX_KEY_NAME_LENGTH)]
    event_types: (
        Annotated[
            list[Subscription],
            Field(
                min_length=1,
                max_length=MAX_KEY_EVENT_TYPES,
                json_schema_extra={"uniqueItems": True},
                description="The types (or wildcards, `order.*`) the key may publish; "
                "omitted or null: any",
            ),
        ]
        | None
    ) = None

    @field_validator("event_types")
    @classmethod
    def _event_types(cls, value: list[str] | None) -> list[str] | None:
        for entry in value or ():
            check_entry(entry)
            if is_reserved(entry):
                raise ValueError(f"{entry!r} is hookd's own: no producer publishes it")
        if value is not None and len(set(value)) != len(value):
            raise ValueError("must not repeat an event type")
        return value


def parse_event_type(body: Any) -> EventTypeSpec:
    return validated(EventTypeSpec, body, "event type")


def parse_api_key(body: Any) -> ApiKeySpec:
    return validated(ApiKeySpec, body, "key")
