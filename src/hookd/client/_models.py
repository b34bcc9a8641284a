"""The client's types: answers as pydantic models, request bodies as TypedDicts.

Each names the component of hookd's OpenAPI document it stands for (`COMPONENTS`); a test
compares them field by field with the document, so that client and server cannot drift apart.
"""

from __future__ import annotations

from typing import Any, Literal, NotRequired

from pydantic import BaseModel, ConfigDict

# pydantic reads TypedDicts (the comparison with the OpenAPI document) only from here before 3.12.
from typing_extensions import TypedDict

from hookd.domain.states import DeliveryState, Ordering, WebhookHealth, WebhookStatus


class Model(BaseModel):
    # An answer with a field this client does not know still parses (a newer server).
    model_config = ConfigDict(extra="ignore", frozen=True)


# --- hookd's own ------------------------------------------------------------------------------


class Login(Model):
    token: str
    account_type: Literal["admin", "user"]


class DeviceErrorBody(Model):
    """The device dialect's (and hookd's own) error body."""

    error: str


class Credentials(TypedDict):
    username: str
    password: str


# --- the device dialect -----------------------------------------------------------------------


class Webhook(Model):
    """A device-dialect webhook."""

    uid: int
    url: str
    secret: str | None
    status: WebhookStatus
    timeout: int
    headers: str
    description: str
    event_types: list[str]
    max_retries: int
    rate_limit: int | None
    ordering: Ordering
    health: WebhookHealth
    disabled_reason: str | None
    created_at: int
    updated_at: int


class WebhookList(Model):
    items: list[Webhook]
    total: int


class WebhookSpec(TypedDict):
    """A whole device webhook (create, replace); omitted fields take the server's defaults."""

    url: str
    event_types: list[str]
    secret: NotRequired[str | None]
    status: NotRequired[WebhookStatus]
    timeout: NotRequired[int]
    headers: NotRequired[str]
    description: NotRequired[str]
    max_retries: NotRequired[int]
    rate_limit: NotRequired[int | None]
    ordering: NotRequired[Ordering]


class WebhookChanges(TypedDict, total=False):
    """The fields of a device webhook to change (patch)."""

    url: str
    event_types: list[str]
    secret: str | None
    status: WebhookStatus
    timeout: int
    headers: str
    description: str
    max_retries: int
    rate_limit: int | None
    ordering: Ordering


class RotateSpec(TypedDict, total=False):
    secret: str | None


class SinceSpec(TypedDict):
    since: float


class NewSecret(Model):
    secret: str


class Queued(Model):
    queued: int


class TestResult(Model):
    """What came back from a test send (`error` when nothing did)."""

    __test__ = False  # not a pytest test class

    status_code: int | None
    duration_ms: float
    response_body: str | None
    error: str | None


class EventTypeList(Model):
    items: list[str]
    total: int


class EventType(Model):
    """A type an administrator added to the catalogue."""

    name: str
    description: str
    created_at: int


class EventTypeSpec(TypedDict):
    name: str
    description: NotRequired[str]


class ApiKey(Model):
    """A producer's API key, as listed: its first characters (`prefix`), never the key."""

    id: int
    name: str
    prefix: str
    event_types: list[str] | None  # the types (or wildcards) it may publish; None: any
    created_at: int


class NewApiKey(Model):
    """A new API key: `key` is shown this once; give it as a client's `token` to publish."""

    id: int
    name: str
    key: str
    event_types: list[str] | None
    created_at: int


class ApiKeyList(Model):
    items: list[ApiKey]
    total: int


class ApiKeySpec(TypedDict):
    name: str
    event_types: NotRequired[list[str] | None]


class Event(TypedDict):
    """One event to publish."""

    type: str
    data: NotRequired[dict[str, Any] | None]
    id: NotRequired[str | None]


class Published(Model):
    ids: list[str]
    deliveries: int


class Attempt(Model):
    number: int
    started_at: float
    duration_ms: float
    status_code: int | None
    response_body: str | None
    error: str | None


class Delivery(Model):
    id: int
    webhook_uid: int
    event_id: str
    event_type: str
    status: DeliveryState
    attempt_count: int
    next_attempt_at: float | None
    created_at: float
    updated_at: float
    last_status_code: int | None
    last_error: str | None
    attempts: list[Attempt]


class DeliveryList(Model):
    items: list[Delivery]
    total: int


# --- the repository dialect -------------------------------------------------------------------

HandleResponse = Literal["NONE", "STATUS", "STATUS_AND_BODY"]


class RepositoryErrorBody(Model):
    """The repository dialect's error body."""

    code: int
    reason: str


class Repository(Model):
    id: str
    name: str
    base_uri: str | None = None  # given to administrators only


class RepositorySpec(TypedDict):
    name: str
    base_uri: NotRequired[str | None]


class EventDefinition(Model):
    id: str
    name: str
    description: str
    blocking: bool


class EventSpec(TypedDict):
    name: str
    description: NotRequired[str]
    blocking: NotRequired[bool]


class EventList(Model):
    events: list[EventDefinition]


class Restriction(Model):
    key: Literal["CATEGORY"]
    value: str


class RestrictionSpec(TypedDict):
    key: Literal["CATEGORY"]
    value: str


class RepositoryWebhook(Model):
    apiKey: str | None
    description: str
    enabled: bool
    handleResponse: HandleResponse
    id: str
    restrictions: list[Restriction]
    retry: bool
    timeout: int
    uri: str


class RepositoryWebhookSpec(TypedDict):
    """A whole repository webhook (create, replace), with the API's own field names."""

    uri: str
    description: str
    handleResponse: HandleResponse
    enabled: NotRequired[bool]
    retry: NotRequired[bool | None]
    timeout: NotRequired[int | None]
    apiKey: NotRequired[str | None]
    restrictions: NotRequired[list[RestrictionSpec] | None]


class EventWithWebhooks(EventDefinition):
    webhooks: list[RepositoryWebhook]


class TriggerSpec(TypedDict, total=False):
    category: str | None
    data: dict[str, Any] | None
    id: str | None


class TriggerQueued(Model):
    """A non-blocking event was stored and its deliveries queued."""

    id: str
    deliveries: int


class ValidationCall(Model):
    """One validation webhook's answer to a blocking event."""

    webhook: str
    status_code: int | None
    body: Any = None  # only for handleResponse STATUS_AND_BODY
    error: str | None = None  # absent when an answer came
    duration_ms: float
    attempts: int


class TriggerVerdict(Model):
    """A blocking event: whether every validation webhook allowed it, and what each answered."""

    id: str
    allowed: bool
    results: list[ValidationCall]


# The component of hookd's OpenAPI document each type stands for.
COMPONENTS: dict[type[Any], str] = {
    Login: "LoginAnswer",
    Credentials: "Credentials",
    DeviceErrorBody: "Error",
    Webhook: "DeviceWebhook",
    WebhookList: "DeviceWebhookList",
    WebhookSpec: "DeviceWebhookSpec",
    WebhookChanges: "DeviceWebhookPatch",
    RotateSpec: "RotateSpec",
    SinceSpec: "SinceSpec",
    NewSecret: "NewSecret",
    Queued: "Queued",
    TestResult: "WebhookTestResult",
    EventTypeList: "EventTypeList",
    EventType: "EventType",
    EventTypeSpec: "EventTypeSpec",
    ApiKey: "ApiKeyEntry",
    NewApiKey: "NewApiKey",
    ApiKeyList: "ApiKeyList",
    ApiKeySpec: "ApiKeySpec",
    Event: "EventToPublish",
    Published: "Published",
    Attempt: "AttemptEntry",
    Delivery: "DeliveryEntry",
    DeliveryList: "DeliveryList",
    RepositoryErrorBody: "RepositoryError",
    Repository: "RepositoryEntity",
    RepositorySpec: "RepositorySpec",
    EventDefinition: "EventEntity",
    EventSpec: "EventSpec",
    EventList: "EventList",
    Restriction: "Restriction",
    RestrictionSpec: "Restriction",
    RepositoryWebhook: "RepositoryWebhookEntity",
    RepositoryWebhookSpec: "RepositoryWebhookSpec",
    EventWithWebhooks: "EventWithWebhooks",
    TriggerSpec: "TriggerBody",
    TriggerQueued: "TriggerQueued",
    ValidationCall: "ValidationCall",
    TriggerVerdict: "TriggerVerdict",
}
