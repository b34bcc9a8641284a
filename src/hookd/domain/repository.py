"""The repository dialect (seed 002): repositories, event definitions, webhooks and triggers.

Its webhooks are the one core webhook (`WebhookFields`) seen through the seed's fields:
`enabled` ↔ `status`, `retry` ↔ `max_retries` 3 or 0, `restrictions` ↔ `categories`, and a
subscription to the single topic `<repoId>/<eventId>`. A relative `uri` is stored as given and
resolved into the core `url` the worker sends to.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from typing import Annotated, Any, Literal, TypeVar

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
)

from hookd.domain.device_webhook import check_http_url
from hookd.domain.errors import InvalidField
from hookd.domain.event import check_data, check_event_id
from hookd.domain.webhook import ACTIVE, DISABLED, Webhook, WebhookFields

# The distinct `code`s of this dialect's 404s. The webhook's is fixed by the seed.
WEBHOOK_NOT_FOUND = 240100
EVENT_NOT_FOUND = 240200
REPOSITORY_NOT_FOUND = 240300

# Repository and event ids: URL-unreserved characters only, so they sit in paths and in the
# topic `<repoId>/<eventId>` (at most 201 characters) without escaping or ambiguity.
ID_PATTERN = re.compile(r"[A-Za-z0-9._~-]{1,100}")
ID_RULE = "must be 1 to 100 characters of A-Z a-z 0-9 . _ ~ -"
UUID_PATTERN = re.compile(r"[0-9a-fA-F]{8}-(?:[0-9a-fA-F]{4}-){3}[0-9a-fA-F]{12}")

NONE, STATUS, STATUS_AND_BODY = "NONE", "STATUS", "STATUS_AND_BODY"
SYNCHRONOUS = frozenset({STATUS, STATUS_AND_BODY})
# `retry: true`: a failed call is tried again at most this many times (queued or blocking).
RETRIES = 3
TIMEOUT_DEFAULT_MS = 300
TIMEOUT_MIN_MS = 1
TIMEOUT_MAX_MS = 30_000
MAX_URI_LENGTH = 2000
MAX_CATEGORY_LENGTH = 200
MAX_RESTRICTIONS = 100
MAX_API_KEY_LENGTH = 1000
# Visible ASCII: an API key goes into `Authorization: Bearer <apiKey>` as it is.
API_KEY_PATTERN = re.compile(r"[\x21-\x7E]+")
MAX_WEBHOOKS_PER_EVENT = 1000


@dataclass(slots=True, frozen=True)
class Repository:
    id: str
    name: str
    base_uri: str | None
    created_at: int = 0
    updated_at: int = 0


@dataclass(slots=True, frozen=True)
class EventDefinition:
    repository_id: str
    id: str
    name: str
    description: str
    blocking: bool


def _built_in(entity: str) -> list[tuple[str, str, str, bool]]:
    built = []
    for action, past in (("create", "created"), ("update", "updated"), ("delete", "deleted")):
        built.append(
            (
                f"{entity}.{past}",
                f"{entity.capitalize()} {past}",
                f"A {entity} was {past}.",
                False,
            )
        )
        built.append(
            (
                f"{entity}.before{action}",
                f"Before a {entity} is {past}",
                f"Validation: a {entity} is about to be {past}; any webhook may veto it.",
                True,
            )
        )
    return built


# (id, name, description, blocking): what every repository defines when it is created.
BUILT_IN_EVENTS: tuple[tuple[str, str, str, bool], ...] = tuple(
    _built_in("document") + _built_in("dossier")
)


def topic(repository_id: str, event_id: str) -> str:
    """The core topic a repository event publishes on and its webhooks subscribe to."""
    return f"{repository_id}/{event_id}"


def idempotency_key(repository_id: str, event_id: str, given_id: str) -> str:
    """A trigger's `id` is an idempotency key within its repository event, not across them."""
    digest = hashlib.sha256(f"{topic(repository_id, event_id)}\x00{given_id}".encode()).hexdigest()
    return f"r:{digest}"


def check_id(value: str, field: str) -> str:
    if not ID_PATTERN.fullmatch(value):
        raise InvalidField(field, ID_RULE)
    return value


def is_id(value: str) -> bool:
    return ID_PATTERN.fullmatch(value) is not None


def canonical_uuid(value: str) -> str | None:
    """A webhook id as stored (lower case), or None when `value` is no UUID."""
    return value.lower() if UUID_PATTERN.fullmatch(value) else None


def matches_category(categories: tuple[str, ...], category: str | None) -> bool:
    """Whether a webhook restricted to `categories` (none: all) fires for `category`."""
    return not categories or category in categories


# --- URIs -----------------------------------------------------------------------------------


def check_uri(uri: str) -> str:
    """An absolute http(s) URI, or a relative one beginning with a single `/`."""
    if uri.startswith("/"):
        if uri.startswith("//"):
            raise ValueError("must be an absolute http(s) URI or a path beginning with one /")
        if not re.fullmatch(r"/\S*", uri):
            raise ValueError("must not contain whitespace")
        return uri
    try:
        return check_http_url(uri)
    except ValueError:
        raise ValueError(
            "must be an absolute http(s) URI or a relative URI beginning with /"
        ) from None


def check_base_uri(uri: str) -> str:
    """A repository's base URI: absolute http(s), no query or fragment (paths get appended)."""
    check_http_url(uri)
    if "?" in uri or "#" in uri:
        raise ValueError("must not have a query or a fragment")
    return uri


def is_relative(uri: str | None) -> bool:
    return uri is not None and uri.startswith("/")


def join_uri(base: str, relative: str) -> str:
    """`https://h/app` or `https://h/app/` + `/hook` → `https://h/app/hook` (appended, so a base
    with a path keeps it, unlike RFC 3986 resolution)."""
    return base.rstrip("/") + relative


def delivery_url(uri: str, base_uri: str | None, relative_base_url: str | None) -> str:
    """Where a webhook's `uri` is delivered to: as given, or appended to the repository's
    `base_uri`, else to HOOKD_RELATIVE_BASE_URL."""
    if not is_relative(uri):
        return uri
    base = base_uri or relative_base_url
    if base is None:
        raise InvalidField(
            "uri",
            "is relative, but neither the repository's base_uri nor HOOKD_RELATIVE_BASE_URL is set",
        )
    url = join_uri(base, uri)
    if len(url) > MAX_URI_LENGTH:
        raise InvalidField("uri", f"is longer than {MAX_URI_LENGTH} characters once resolved")
    return url


# --- request bodies -------------------------------------------------------------------------

_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_CONTROL_BUT_WHITESPACE = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


def check_line(value: str) -> str:
    if _CONTROL.search(value):
        raise ValueError("must not contain control characters")
    return value


def check_text(value: str) -> str:
    if _CONTROL_BUT_WHITESPACE.search(value):
        raise ValueError("must not contain control characters other than tabs and line breaks")
    return value


# One line (names, URIs, categories) / free text (descriptions).
Line = Annotated[str, AfterValidator(check_line)]
Text = Annotated[str, AfterValidator(check_text)]


class RepositorySpec(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)

    name: Annotated[Line, Field(min_length=1, max_length=200)]
    base_uri: Annotated[Line, Field(min_length=1, max_length=1000)] | None = None

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

    model_config = ConfigDict(extra="forbid", strict=True)

    uri: Annotated[Line, Field(min_length=1, max_length=MAX_URI_LENGTH)]
    description: Annotated[Text, Field(min_length=1, max_length=1000)]
    enabled: bool = False
    handleResponse: Literal["NONE", "STATUS", "STATUS_AND_BODY"]
    retry: bool | None = True
    timeout: Annotated[int, Field(ge=TIMEOUT_MIN_MS, le=TIMEOUT_MAX_MS)] | None = TIMEOUT_DEFAULT_MS
    apiKey: Annotated[str, Field(min_length=1, max_length=MAX_API_KEY_LENGTH)] | None = None
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
    ) -> WebhookFields:
        """The core webhook; a null `retry`/`timeout` takes the default, as if omitted."""
        categories = dict.fromkeys(r.value for r in self.restrictions or ())
        return WebhookFields(
            url=delivery_url(self.uri, repository.base_uri, relative_base_url),
            topics=(topic(repository.id, event_id),),
            secret=None,
            status=ACTIVE if self.enabled else DISABLED,
            timeout_ms=TIMEOUT_DEFAULT_MS if self.timeout is None else self.timeout,
            description=self.description,
            max_retries=0 if self.retry is False else RETRIES,
            uri=self.uri,
            repository_id=repository.id,
            handle_response=self.handleResponse,
            api_key=self.apiKey,
            categories=tuple(categories),
        )


@dataclass(slots=True, frozen=True)
class TriggerSpec:
    id: str | None
    category: str | None
    data: dict[str, Any]


_TRIGGER_FIELDS = frozenset({"id", "category", "data"})


def parse_trigger(body: Any) -> TriggerSpec:
    """`{"category"?, "data"?, "id"?}` (null meaning omitted)."""
    if not isinstance(body, dict):
        raise InvalidField("body", "must be a JSON object")
    unknown = body.keys() - _TRIGGER_FIELDS
    if unknown:
        raise InvalidField(sorted(unknown)[0], "is not a field of a trigger")
    category = body.get("category")
    if category is not None and (
        not isinstance(category, str)
        or not 1 <= len(category) <= MAX_CATEGORY_LENGTH
        or _CONTROL.search(category)
    ):
        raise InvalidField(
            "category",
            f"must be a string of 1 to {MAX_CATEGORY_LENGTH} characters, no control characters",
        )
    return TriggerSpec(
        id=check_event_id(body.get("id"), "id"),
        category=category,
        data=check_data(body.get("data"), "data"),
    )


_READ_ONLY_WEBHOOK_FIELDS = ("id",)
_Model = TypeVar("_Model", bound=BaseModel)


def parse_repository(body: Any) -> RepositorySpec:
    return _validate(RepositorySpec, body, "repository")


def parse_event(body: Any) -> EventSpec:
    return _validate(EventSpec, body, "event")


def parse_repository_webhook(body: Any) -> RepositoryWebhookSpec:
    """Validate a webhook body; the read-only `id` is ignored when given."""
    if isinstance(body, dict):
        body = {k: v for k, v in body.items() if k not in _READ_ONLY_WEBHOOK_FIELDS}
    return _validate(RepositoryWebhookSpec, body, "webhook")


def _validate(model: type[_Model], body: Any, what: str) -> _Model:
    if not isinstance(body, dict):
        raise InvalidField("body", "must be a JSON object")
    try:
        return model.model_validate(body)
    except ValidationError as exc:
        raise _invalid_field(exc, what) from None


_MESSAGES = {
    "missing": "is required",
    "string_type": "must be a string",
    "bool_type": "must be true or false",
    "int_type": "must be an integer",
    "list_type": "must be a list",
    "model_type": "must be an object",
    "model_attributes_type": "must be an object",
}


def _invalid_field(exc: ValidationError, what: str) -> InvalidField:
    """The first error as `<field>: <what is wrong>` (`restrictions.0.key: ...` for nested)."""
    error = exc.errors()[0]
    location = [str(part) for part in error["loc"]]
    kind = error["type"]
    ctx = error.get("ctx") or {}
    if location[:1] == ["restrictions"] and len(location) >= 3:
        what = "restriction"
    if kind == "extra_forbidden":
        message = f"is not a field of {'an' if what[0] in 'aeiou' else 'a'} {what}"
    elif kind == "literal_error":
        message = f"must be {ctx.get('expected')}"
    elif kind in ("string_too_short", "too_short"):
        message = "must not be empty"
    elif kind in ("string_too_long", "too_long"):
        unit = "characters" if isinstance(error.get("input"), str) else "items"
        message = f"must hold at most {ctx.get('max_length')} {unit}"
    elif kind in ("greater_than_equal", "less_than_equal"):
        message = f"must be between {TIMEOUT_MIN_MS} and {TIMEOUT_MAX_MS} (milliseconds)"
    elif kind in _MESSAGES:
        message = _MESSAGES[kind]
    else:
        message = error["msg"].removeprefix("Value error, ")
    return InvalidField(".".join(location) or "body", message)


# --- what the dialect answers -----------------------------------------------------------------


def webhook_entity(webhook: Webhook) -> dict[str, Any]:
    """Exactly the seed's fields, in its order."""
    return {
        "apiKey": webhook.api_key,
        "description": webhook.description,
        "enabled": webhook.status == ACTIVE,
        "handleResponse": webhook.handle_response,
        "id": webhook.public_id,
        "restrictions": [{"key": "CATEGORY", "value": value} for value in webhook.categories],
        "retry": webhook.max_retries > 0,
        "timeout": webhook.timeout_ms,
        "uri": webhook.uri,
    }


def event_entity(event: EventDefinition) -> dict[str, Any]:
    return {
        "id": event.id,
        "name": event.name,
        "description": event.description,
        "blocking": event.blocking,
    }


def repository_entity(repository: Repository) -> dict[str, Any]:
    return {"id": repository.id, "name": repository.name, "base_uri": repository.base_uri}


def repository_path(repository_id: str) -> str:
    return f"/r/{repository_id}"


def events_path(repository_id: str) -> str:
    return f"/r/{repository_id}/events"


def event_path(repository_id: str, event_id: str) -> str:
    return f"/r/{repository_id}/events/{event_id}"


def trigger_path(repository_id: str, event_id: str) -> str:
    return f"{event_path(repository_id, event_id)}/trigger"


def webhook_path(repository_id: str, event_id: str, webhook_id: str) -> str:
    return f"{event_path(repository_id, event_id)}/{webhook_id}"


@dataclass(slots=True)
class Resource:
    """A body with its links and embedded collections, rendered as plain JSON or as HAL."""

    body: dict[str, Any]
    links: dict[str, str] = field(default_factory=dict)
    embedded: dict[str, list[Resource]] = field(default_factory=dict)

    def json(self) -> dict[str, Any]:
        """Plain JSON: embedded collections become ordinary lists, links are left out."""
        rendered = dict(self.body)
        for name, items in self.embedded.items():
            rendered[name] = [item.json() for item in items]
        return rendered

    def hal(self) -> dict[str, Any]:
        """HAL: the body plus `_links` (each `{"href"}`) and `_embedded`."""
        rendered = dict(self.body)
        rendered["_links"] = {name: {"href": href} for name, href in self.links.items()}
        if self.embedded:
            rendered["_embedded"] = {
                name: [item.hal() for item in items] for name, items in self.embedded.items()
            }
        return rendered


def repository_resource(repository: Repository) -> Resource:
    return Resource(
        repository_entity(repository),
        {"self": repository_path(repository.id), "events": events_path(repository.id)},
    )


def event_resource(event: EventDefinition, webhooks: list[Webhook] | None = None) -> Resource:
    """An event definition; with `webhooks`, its webhooks embedded (`webhooks` in plain JSON)."""
    repo, eid = event.repository_id, event.id
    resource = Resource(
        event_entity(event),
        {
            "self": event_path(repo, eid),
            "repository": repository_path(repo),
            "trigger": trigger_path(repo, eid),
        },
    )
    if webhooks is not None:
        resource.embedded["webhooks"] = [webhook_resource(repo, eid, w) for w in webhooks]
    return resource


def events_resource(repository_id: str, events: list[EventDefinition]) -> Resource:
    return Resource(
        {},
        {"self": events_path(repository_id), "repository": repository_path(repository_id)},
        {"events": [event_resource(event) for event in events]},
    )


def webhook_resource(repository_id: str, event_id: str, webhook: Webhook) -> Resource:
    return Resource(
        webhook_entity(webhook),
        {
            "self": webhook_path(repository_id, event_id, webhook.public_id or ""),
            "event": event_path(repository_id, event_id),
            "repository": repository_path(repository_id),
        },
    )
