"""The repository dialect's request bodies: repositories, event definitions, webhooks, triggers."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from hookd.dialects.repository.model import (
    API_KEY_PATTERN,
    MAX_API_KEY_LENGTH,
    MAX_CATEGORY_LENGTH,
    MAX_RESTRICTIONS,
    MAX_URI_LENGTH,
    RETRIES,
    TIMEOUT_DEFAULT_MS,
    TIMEOUT_MAX_MS,
    TIMEOUT_MIN_MS,
    Binding,
    Repository,
    check_base_uri,
    check_uri,
    delivery_url,
    topic,
)
from hookd.domain.errors import InvalidField
from hookd.domain.event import MAX_EVENT_ID_LENGTH, check_data, check_event_id
from hookd.domain.states import WebhookStatus
from hookd.domain.validation import LINE_PATTERN, Line, Text, check_line, validated
from hookd.domain.webhook import WebhookFields

# How the documentation describes what the validators below check.
_HTTP = r"[Hh][Tt][Tt][Pp][Ss]?://([^\s/?#@]+@)?[^\s/?#@]+"
BASE_URI_SCHEMA = {"format": "uri", "pattern": rf"^{_HTTP}(/[^\s?#]*)?$"}
URI_SCHEMA = {
    "format": "uri-reference",
    "pattern": rf"^(/([^/\s]\S*)?|{_HTTP}([/?#]\S*)?)$",
    "description": "An absolute http(s) URI, or a path beginning with / that is appended to "
    "the repository's base_uri",
}


class RepositorySpec(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)

    name: Annotated[Line, Field(min_length=1, max_length=200)]
    base_uri: (
        Annotated[Line, Field(min_length=1, max_length=1000, json_schema_extra=BASE_URI_SCHEMA)]
        | None
    ) = None

    @field_validator("base_uri")
    @classmethod
    def _base_uri(cls, value: str | None) -> str | None:
        return None if value is None else check_base_uri(value)


class EventSpec(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)

    name: Annotated[Line, Field(min_length=1, max_length=200)]
    description: Annotated[Text, Field(max_length=1000)] = ""
    blocking: bool = False


class Restriction(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)

    key: Literal["CATEGORY"]
    value: Annotated[Line, Field(min_length=1, max_length=MAX_CATEGORY_LENGTH)]


class RepositoryWebhookSpec(BaseModel):
    """A whole webhook as the repository dialect writes it (create and replace)."""

    model_config = ConfigDict(extra="forbid", strict=True, title="Webhook")

    uri: Annotated[
        Line, Field(min_length=1, max_length=MAX_URI_LENGTH, json_schema_extra=URI_SCHEMA)
    ]
    description: Annotated[Text, Field(min_length=1, max_length=1000)]
    enabled: bool = False
    handleResponse: Literal["NONE", "STATUS", "STATUS_AND_BODY"]
    retry: bool | None = True
    timeout: Annotated[int, Field(ge=TIMEOUT_MIN_MS, le=TIMEOUT_MAX_MS)] | None = TIMEOUT_DEFAULT_MS
    apiKey: (
        Annotated[
            str,
            Field(
                min_length=1,
                max_length=MAX_API_KEY_LENGTH,
                json_schema_extra={"pattern": r"^[\x21-\x7e]+$"},
            ),
        ]
        | None
    ) = None
    restrictions: Annotated[list[Restriction], Field(max_length=MAX_RESTRICTIONS)] | None = None

    @field_validator("uri")
    @classmethod
    def _uri(cls, value: str) -> str:
        return check_uri(value)

    @field_validator("apiKey")
    @classmethod
    def _api_key(cls, value: str | None) -> str | None:
        if value is not None and not API_KEY_PATTERN.fullmatch(value):
            raise ValueError("may hold only visible ASCII characters (no spaces)")
        return value

    def to_fields(
        self, repository: Repository, event_id: str, relative_base_url: str | None
    ) -> tuple[WebhookFields, Binding]:
        """The core webhook and what this dialect keeps beside it; a null `retry`/`timeout`
        takes the default, as if omitted."""
        categories = dict.fromkeys(r.value for r in self.restrictions or ())
        fields = WebhookFields(
            url=delivery_url(self.uri, repository.base_uri, relative_base_url),
            topics=(topic(repository.id, event_id),),
            secret=None,
            status=WebhookStatus.ACTIVE if self.enabled else WebhookStatus.DISABLED,
            timeout_ms=TIMEOUT_DEFAULT_MS if self.timeout is None else self.timeout,
            description=self.description,
            max_retries=0 if self.retry is False else RETRIES,
            bearer_token=self.apiKey,
            categories=tuple(categories),
        )
        return fields, Binding(repository.id, self.uri, self.handleResponse)


@dataclass(slots=True, frozen=True)
class TriggerSpec:
    """`{"category"?, "data"?, "id"?}` (null meaning omitted)."""

    id: str | None
    category: str | None
    data: dict[str, Any]


_TRIGGER_FIELDS = frozenset({"id", "category", "data"})


# Documents a trigger's body; `parse_trigger` checks it.
class TriggerBody(BaseModel):
    """What a trigger may carry; a trigger without a body is `{}`."""

    model_config = ConfigDict(extra="forbid")

    category: Annotated[Line, Field(min_length=1, max_length=MAX_CATEGORY_LENGTH)] | None = Field(
        None, description="Only webhooks restricted to this category (or to none) receive it"
    )
    data: dict[str, Any] | None = None
    id: (
        Annotated[
            str,
            Field(
                min_length=1,
                max_length=MAX_EVENT_ID_LENGTH,
                json_schema_extra={"pattern": LINE_PATTERN},
            ),
        ]
        | None
    ) = Field(None, description="Your id for the event: an idempotency key for 24 h")


def parse_trigger(body: Any) -> TriggerSpec:
    if not isinstance(body, dict):
        raise InvalidField("body", "must be a JSON object")
    unknown = body.keys() - _TRIGGER_FIELDS
    if unknown:
        raise InvalidField(sorted(unknown)[0], "is not a field of a trigger")
    category = body.get("category")
    if category is not None:
        try:
            if not isinstance(category, str) or not 1 <= len(category) <= MAX_CATEGORY_LENGTH:
                raise ValueError
            check_line(category)
        except ValueError:
            raise InvalidField(
                "category",
                f"must be a string of 1 to {MAX_CATEGORY_LENGTH} characters, no control characters",
            ) from None
    return TriggerSpec(
        id=check_event_id(body.get("id"), "id"),
        category=category,
        data=check_data(body.get("data"), "data"),
    )


_READ_ONLY_WEBHOOK_FIELDS = ("id",)


def parse_repository(body: Any) -> RepositorySpec:
    return validated(RepositorySpec, body, "repository")


def parse_event(body: Any) -> EventSpec:
    return validated(EventSpec, body, "event")


def parse_webhook(body: Any) -> RepositoryWebhookSpec:
    """Validate a webhook body; the read-only `id` is ignored when given."""
    if isinstance(body, dict):
        body = {k: v for k, v in body.items() if k not in _READ_ONLY_WEBHOOK_FIELDS}
    return validated(RepositoryWebhookSpec, body, "webhook")
