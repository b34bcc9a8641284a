"""The repository dialect's concepts: repositories, their event definitions, and what its webhooks
add to the core webhook.

A repository webhook is a core webhook seen through this dialect's fields: `enabled` ↔ status,
`retry` ↔ `max_retries` 3 or 0, `restrictions` ↔ categories, `apiKey` ↔ the bearer token, and
a subscription to the single topic `<repoId>/<eventId>`. Its `uri` is kept as given (a relative
one resolved into the core `url` the worker sends to) in a `Binding`, with its repository and how
its answers are handled.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from hookd.domain.errors import InvalidField
from hookd.domain.validation import check_http_url
from hookd.domain.webhook import Webhook

# Stored with each webhook this dialect creates.
NAME = "repository"

# The distinct `code`s of this dialect's 404s. The webhook's is fixed by the specification.
WEBHOOK_NOT_FOUND = 240100
EVENT_NOT_FOUND = 240200
REPOSITORY_NOT_FOUND = 240300

# Repository and event ids: URL-unreserved characters only, so they sit in paths and in the
# topic `<repoId>/<eventId>` (at most 201 characters) without escaping or ambiguity.
ID_PATTERN = re.compile(r"[A-Za-z0-9._~-]{1,100}")
ID_RULE = "must be 1 to 100 characters of A-Z a-z 0-9 . _ ~ -"
UUID_PATTERN = re.compile(r"[0-9a-fA-F]{8}-(?:[0-9a-fA-F]{4}-){3}[0-9a-fA-F]{12}")

NONE, STATUS, STATUS_AND_BODY = "NONE", "STATUS", "STATUS_AND_BODY"
# Webhooks whose answers are awaited (and may veto a blocking event).
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


@dataclass(slots=True, frozen=True)
class Binding:
    """What a repository webhook keeps beside its core webhook."""

    repository_id: str
    uri: str
    handle_response: str


@dataclass(slots=True)
class RepositoryWebhook:
    webhook: Webhook
    binding: Binding

    @property
    def synchronous(self) -> bool:
        return self.binding.handle_response in SYNCHRONOUS


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


def check_id(value: str, field: str) -> str:
    if not ID_PATTERN.fullmatch(value):
        raise InvalidField(field, ID_RULE)
    return value


def is_id(value: str) -> bool:
    return ID_PATTERN.fullmatch(value) is not None


def canonical_uuid(value: str) -> str | None:
    """A webhook id as stored (lower case), or None when `value` is no UUID."""
    return value.lower() if UUID_PATTERN.fullmatch(value) else None


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
