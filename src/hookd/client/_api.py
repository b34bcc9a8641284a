"""What every call does, free of I/O: the request it sends and how its answer is read.

Each call is a generator (a *flow*) that yields the `httpx.Request`s to send and is sent back
their responses; it returns the parsed answer or raises a `HookdError`. `Client` runs flows
over a blocking httpx client, `AsyncClient` over an asynchronous one: the only difference
between them is how a request is sent.
"""

from __future__ import annotations

from collections.abc import Generator, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar
from urllib.parse import quote

import httpx
import orjson
from pydantic import BaseModel

from hookd.client._errors import HookdError, error_of
from hookd.client._models import (
    ApiKeyList,
    ApiKeySpec,
    Credentials,
    DeliveryList,
    EventDefinition,
    EventList,
    EventSpec,
    EventType,
    EventTypeList,
    EventTypeSpec,
    EventWithWebhooks,
    Login,
    NewApiKey,
    NewSecret,
    Published,
    Queued,
    Repository,
    RepositorySpec,
    RepositoryWebhook,
    RepositoryWebhookSpec,
    RotateSpec,
    SinceSpec,
    TestResult,
    TriggerQueued,
    TriggerSpec,
    TriggerVerdict,
    Webhook,
    WebhookChanges,
    WebhookList,
    WebhookSpec,
)
from hookd.client._models import Delivery as DeliveryModel
from hookd.client._models import Event as EventBody

T = TypeVar("T")
Flow = Generator[httpx.Request, httpx.Response, T]

# The API's own limits on one publish request (HOOKD_MAX_PUBLISH_BYTES's default).
MAX_EVENTS_PER_REQUEST = 1000
MAX_PUBLISH_BYTES = 4 * 1024 * 1024
JSON = "application/json"


@dataclass(frozen=True, slots=True)
class Endpoint:
    """One operation of the API: its method and path (as the OpenAPI document writes it), the
    type of its JSON body (`batch`: an array of them), and the model of each success answer
    (None: no body)."""

    method: str
    path: str
    answers: Mapping[int, type[BaseModel] | None]
    body: type[Any] | None = None
    batch: bool = False
    secured: bool = True
    query: tuple[str, ...] = ()


LOGIN = Endpoint("POST", "/api/v1/login", {200: Login}, Credentials, secured=False)
LOGOUT = Endpoint("POST", "/api/v1/logout", {204: None})
LIST_WEBHOOKS = Endpoint("GET", "/api/v1/webhooks", {200: WebhookList}, query=("limit", "offset"))
CREATE_WEBHOOK = Endpoint("POST", "/api/v1/webhooks", {201: Webhook}, WebhookSpec)
GET_WEBHOOK = Endpoint("GET", "/api/v1/webhooks/{uid}", {200: Webhook})
REPLACE_WEBHOOK = Endpoint("PUT", "/api/v1/webhooks/{uid}", {200: Webhook}, WebhookSpec)
PATCH_WEBHOOK = Endpoint("PATCH", "/api/v1/webhooks/{uid}", {200: Webhook}, WebhookChanges)
DELETE_WEBHOOK = Endpoint("DELETE", "/api/v1/webhooks/{uid}", {204: None})
TEST_WEBHOOK = Endpoint("POST", "/api/v1/webhooks/{uid}/test", {200: TestResult})
ROTATE_SECRET = Endpoint(
    "POST", "/api/v1/webhooks/{uid}/secret/rotate", {200: NewSecret}, RotateSpec
)
REPLAY = Endpoint("POST", "/api/v1/webhooks/{uid}/replay", {202: Queued}, SinceSpec)
RECOVER = Endpoint("POST", "/api/v1/webhooks/{uid}/recover", {202: Queued}, SinceSpec)
EVENT_TYPES = Endpoint("GET", "/api/v1/event-types", {200: EventTypeList})
CREATE_EVENT_TYPE = Endpoint("POST", "/api/v1/event-types", {201: EventType}, EventTypeSpec)
DELETE_EVENT_TYPE = Endpoint("DELETE", "/api/v1/event-types/{name}", {204: None})
CREATE_API_KEY = Endpoint("POST", "/api/v1/api-keys", {201: NewApiKey}, ApiKeySpec)
LIST_API_KEYS = Endpoint("GET", "/api/v1/api-keys", {200: ApiKeyList})
DELETE_API_KEY = Endpoint("DELETE", "/api/v1/api-keys/{key_id}", {204: None})
PUBLISH = Endpoint("POST", "/api/v1/events", {202: Published}, EventBody, batch=True)
LIST_DELIVERIES = Endpoint(
    "GET",
    "/api/v1/webhooks/{uid}/deliveries",
    {200: DeliveryList},
    query=("status", "limit", "offset"),
)
RETRY_DELIVERY = Endpoint("POST", "/api/v1/deliveries/{delivery_id}/retry", {202: DeliveryModel})

PUT_REPOSITORY = Endpoint("PUT", "/r/{repoId}", {200: Repository, 201: Repository}, RepositorySpec)
GET_REPOSITORY = Endpoint("GET", "/r/{repoId}", {200: Repository})
LIST_EVENTS = Endpoint("GET", "/r/{repoId}/events", {200: EventList})
PUT_EVENT = Endpoint(
    "PUT", "/r/{repoId}/events/{id}", {200: EventDefinition, 201: EventDefinition}, EventSpec
)
GET_EVENT = Endpoint("GET", "/r/{repoId}/events/{id}", {200: EventWithWebhooks})
CREATE_REPOSITORY_WEBHOOK = Endpoint(
    "POST", "/r/{repoId}/events/{id}", {201: RepositoryWebhook}, RepositoryWebhookSpec
)
GET_REPOSITORY_WEBHOOK = Endpoint(
    "GET", "/r/{repoId}/events/{id}/{webHookId}", {200: RepositoryWebhook}
)
REPLACE_REPOSITORY_WEBHOOK = Endpoint(
    "PUT", "/r/{repoId}/events/{id}/{webHookId}", {200: RepositoryWebhook}, RepositoryWebhookSpec
)
DELETE_REPOSITORY_WEBHOOK = Endpoint("DELETE", "/r/{repoId}/events/{id}/{webHookId}", {204: None})
TRIGGER = Endpoint(
    "POST",
    "/r/{repoId}/events/{id}/trigger",
    {200: TriggerVerdict, 202: TriggerQueued},
    TriggerSpec,
)

ENDPOINTS: tuple[Endpoint, ...] = tuple(
    value for value in list(globals().values()) if isinstance(value, Endpoint)
)


def encode(body: Any) -> bytes:
    return orjson.dumps(body)


@dataclass(slots=True)
class Api:
    """The state a client keeps (where hookd is, the token, the credentials to log in again
    with) and a flow for each call."""

    base_url: str
    token: str | None = None
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    max_publish_bytes: int = MAX_PUBLISH_BYTES
    max_events_per_request: int = MAX_EVENTS_PER_REQUEST

    def __post_init__(self) -> None:
        self.base_url = self.base_url.rstrip("/")
        if (self.username is None) != (self.password is None):
            raise ValueError("give both username and password, or neither")
        if not 1 <= self.max_events_per_request <= MAX_EVENTS_PER_REQUEST:
            raise ValueError(f"max_events_per_request: must be 1 to {MAX_EVENTS_PER_REQUEST}")
        if self.max_publish_bytes < 2:
            raise ValueError("max_publish_bytes: must be at least 2")

    # --- the machinery ---------------------------------------------------------------------

    def _request(
        self,
        endpoint: Endpoint,
        path: Mapping[str, str | int] | None = None,
        *,
        body: bytes | None = None,
        params: Mapping[str, str | int] | None = None,
    ) -> httpx.Request:
        unknown = set(params or ()) - set(endpoint.query)
        if unknown:
            raise ValueError(f"{endpoint.path} takes no {', '.join(sorted(unknown))} parameter")
        where = endpoint.path.format_map(
            {name: quote(str(value), safe="") for name, value in (path or {}).items()}
        )
        headers = {"Accept": JSON}
        if body is not None:
            headers["Content-Type"] = JSON
        if endpoint.secured and self.token is not None:
            headers["Authorization"] = f"Bearer {self.token}"
        return httpx.Request(
            endpoint.method, self.base_url + where, params=params, headers=headers, content=body
        )

    def _call(
        self,
        endpoint: Endpoint,
        path: Mapping[str, str | int] | None = None,
        *,
        body: Any = None,
        content: bytes | None = None,
        params: Mapping[str, str | int] | None = None,
    ) -> Flow[Any]:
        """Send one call and parse its answer. Given credentials, log in first when there is no
        token yet, and once more when the token is refused (it expired)."""
        if content is None and body is not None:
            content = encode(body)
        can_log_in = endpoint.secured and self.username is not None
        if can_log_in and self.token is None:
            yield from self._log_in()
            can_log_in = False
        response = yield self._request(endpoint, path, body=content, params=params)
        if response.status_code == 401 and can_log_in:
            yield from self._log_in()
            response = yield self._request(endpoint, path, body=content, params=params)
        return answer(endpoint, response)

    def _log_in(self) -> Flow[Login]:
        assert self.username is not None and self.password is not None
        return (yield from self.login(self.username, self.password))

    # --- hookd's own -----------------------------------------------------------------------

    def login(self, username: str, password: str) -> Flow[Login]:
        credentials: Credentials = {"username": username, "password": password}
        answered: Login = yield from self._call(LOGIN, body=credentials)
        self.token = answered.token
        self.username, self.password = username, password
        return answered

    def logout(self) -> Flow[None]:
        if self.token is not None:
            yield from self._call(LOGOUT)
        self.token = None
        self.username = self.password = None

    # --- the device dialect: webhooks ------------------------------------------------------

    def list_webhooks(self, limit: int = 100, offset: int = 0) -> Flow[WebhookList]:
        return (yield from self._call(LIST_WEBHOOKS, params={"limit": limit, "offset": offset}))

    def create_webhook(self, spec: WebhookSpec) -> Flow[Webhook]:
        return (yield from self._call(CREATE_WEBHOOK, body=spec))

    def get_webhook(self, uid: int) -> Flow[Webhook]:
        return (yield from self._call(GET_WEBHOOK, {"uid": uid}))

    def replace_webhook(self, uid: int, spec: WebhookSpec) -> Flow[Webhook]:
        return (yield from self._call(REPLACE_WEBHOOK, {"uid": uid}, body=spec))

    def patch_webhook(self, uid: int, changes: WebhookChanges) -> Flow[Webhook]:
        return (yield from self._call(PATCH_WEBHOOK, {"uid": uid}, body=changes))

    def delete_webhook(self, uid: int) -> Flow[None]:
        return (yield from self._call(DELETE_WEBHOOK, {"uid": uid}))

    def test_webhook(self, uid: int) -> Flow[TestResult]:
        return (yield from self._call(TEST_WEBHOOK, {"uid": uid}))

    def rotate_secret(self, uid: int, secret: str | None = None) -> Flow[NewSecret]:
        body: RotateSpec = {} if secret is None else {"secret": secret}
        return (yield from self._call(ROTATE_SECRET, {"uid": uid}, body=body))

    def replay(self, uid: int, since: float) -> Flow[Queued]:
        body: SinceSpec = {"since": since}
        return (yield from self._call(REPLAY, {"uid": uid}, body=body))

    def recover(self, uid: int, since: float) -> Flow[Queued]:
        body: SinceSpec = {"since": since}
        return (yield from self._call(RECOVER, {"uid": uid}, body=body))

    # --- the device dialect: producers ------------------------------------------------------

    def create_api_key(self, name: str, event_types: list[str] | None = None) -> Flow[NewApiKey]:
        body: ApiKeySpec = {"name": name}
        if event_types is not None:
            body["event_types"] = event_types
        return (yield from self._call(CREATE_API_KEY, body=body))

    def list_api_keys(self) -> Flow[ApiKeyList]:
        return (yield from self._call(LIST_API_KEYS))

    def delete_api_key(self, id: int) -> Flow[None]:
        return (yield from self._call(DELETE_API_KEY, {"key_id": id}))

    def create_event_type(self, name: str, description: str | None = None) -> Flow[EventType]:
        body: EventTypeSpec = {"name": name}
        if description is not None:
            body["description"] = description
        return (yield from self._call(CREATE_EVENT_TYPE, body=body))

    def delete_event_type(self, name: str) -> Flow[None]:
        return (yield from self._call(DELETE_EVENT_TYPE, {"name": name}))

    # --- the device dialect: events and deliveries -----------------------------------------

    def event_types(self) -> Flow[EventTypeList]:
        return (yield from self._call(EVENT_TYPES))

    def publish(self, events: Iterable[EventBody]) -> Flow[Published]:
        """Every event, in as few requests as the API's limits allow, in order. When a request
        fails, the error's `published` holds what the requests before it stored."""
        ids: list[str] = []
        deliveries = 0
        for batch in batches(events, self.max_events_per_request, self.max_publish_bytes):
            try:
                stored: Published = yield from self._call(PUBLISH, content=batch)
            except HookdError as error:
                error.published = Published(ids=ids, deliveries=deliveries)
                raise
            ids.extend(stored.ids)
            deliveries += stored.deliveries
        return Published(ids=ids, deliveries=deliveries)

    def list_deliveries(
        self, uid: int, *, status: str | None = None, limit: int = 100, offset: int = 0
    ) -> Flow[DeliveryList]:
        params: dict[str, str | int] = {"limit": limit, "offset": offset}
        if status is not None:
            params["status"] = str(status)
        return (yield from self._call(LIST_DELIVERIES, {"uid": uid}, params=params))

    def retry_delivery(self, delivery_id: int) -> Flow[DeliveryModel]:
        return (yield from self._call(RETRY_DELIVERY, {"delivery_id": delivery_id}))

    # --- the repository dialect ------------------------------------------------------------

    def put_repository(
        self, repository_id: str, name: str, base_uri: str | None = None
    ) -> Flow[Repository]:
        body: RepositorySpec = {"name": name, "base_uri": base_uri}
        return (yield from self._call(PUT_REPOSITORY, {"repoId": repository_id}, body=body))

    def get_repository(self, repository_id: str) -> Flow[Repository]:
        return (yield from self._call(GET_REPOSITORY, {"repoId": repository_id}))

    def list_events(self, repository_id: str) -> Flow[list[EventDefinition]]:
        found: EventList = yield from self._call(LIST_EVENTS, {"repoId": repository_id})
        return found.events

    def put_event(
        self,
        repository_id: str,
        event_id: str,
        name: str,
        *,
        description: str = "",
        blocking: bool = False,
    ) -> Flow[EventDefinition]:
        body: EventSpec = {"name": name, "description": description, "blocking": blocking}
        where = {"repoId": repository_id, "id": event_id}
        return (yield from self._call(PUT_EVENT, where, body=body))

    def get_event(self, repository_id: str, event_id: str) -> Flow[EventWithWebhooks]:
        return (yield from self._call(GET_EVENT, {"repoId": repository_id, "id": event_id}))

    def create_repository_webhook(
        self, repository_id: str, event_id: str, spec: RepositoryWebhookSpec
    ) -> Flow[RepositoryWebhook]:
        where = {"repoId": repository_id, "id": event_id}
        return (yield from self._call(CREATE_REPOSITORY_WEBHOOK, where, body=spec))

    def get_repository_webhook(
        self, repository_id: str, event_id: str, webhook_id: str
    ) -> Flow[RepositoryWebhook]:
        where = {"repoId": repository_id, "id": event_id, "webHookId": webhook_id}
        return (yield from self._call(GET_REPOSITORY_WEBHOOK, where))

    def replace_repository_webhook(
        self, repository_id: str, event_id: str, webhook_id: str, spec: RepositoryWebhookSpec
    ) -> Flow[RepositoryWebhook]:
        where = {"repoId": repository_id, "id": event_id, "webHookId": webhook_id}
        return (yield from self._call(REPLACE_REPOSITORY_WEBHOOK, where, body=spec))

    def delete_repository_webhook(
        self, repository_id: str, event_id: str, webhook_id: str
    ) -> Flow[None]:
        where = {"repoId": repository_id, "id": event_id, "webHookId": webhook_id}
        return (yield from self._call(DELETE_REPOSITORY_WEBHOOK, where))

    def trigger(
        self,
        repository_id: str,
        event_id: str,
        data: dict[str, Any] | None = None,
        *,
        category: str | None = None,
        id: str | None = None,
    ) -> Flow[TriggerVerdict | TriggerQueued]:
        body: TriggerSpec = {}
        if data is not None:
            body["data"] = data
        if category is not None:
            body["category"] = category
        if id is not None:
            body["id"] = id
        where = {"repoId": repository_id, "id": event_id}
        return (yield from self._call(TRIGGER, where, body=body))


def answer(endpoint: Endpoint, response: httpx.Response) -> Any:
    """The parsed answer of a success, or the error an error answer stands for."""
    if response.status_code >= 400:
        raise error_of(response)
    if response.status_code not in endpoint.answers:
        raise HookdError(
            response.status_code,
            {},
            f"unexpected answer to {endpoint.method} {endpoint.path}",
            response.status_code,
        )
    model = endpoint.answers[response.status_code]
    return None if model is None else model.model_validate_json(response.content)


def batches(events: Iterable[EventBody], most: int, max_bytes: int) -> list[bytes]:
    """`events` as JSON arrays of at most `most` events and `max_bytes` bytes each, in order.
    An event that cannot fit in a request of its own is refused before anything is sent."""
    encoded = [encode(event) for event in events]
    for index, event in enumerate(encoded):
        if len(event) + 2 > max_bytes:
            raise ValueError(
                f"events[{index}] takes {len(event)} bytes as JSON: more than a publish request "
                f"may hold ({max_bytes} bytes)"
            )
    found: list[bytes] = []
    start, size = 0, 1  # the opening bracket
    for index, event in enumerate(encoded):
        if index > start and (index - start >= most or size + 1 + len(event) + 1 > max_bytes):
            found.append(b"[" + b",".join(encoded[start:index]) + b"]")
            start, size = index, 1
        size += len(event) + (1 if index > start else 0)
    if encoded:
        found.append(b"[" + b",".join(encoded[start:]) + b"]")
    return found


def drive(flow: Flow[T], send: Any) -> T:
    """Run `flow`, sending each of its requests with `send` (a blocking call)."""
    try:
        request = next(flow)
        while True:
            request = flow.send(send(request))
    except StopIteration as done:
        return done.value
