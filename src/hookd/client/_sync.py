"""The blocking client: the calls of `_api.Api`, sent with `httpx.Client`."""

from __future__ import annotations

from collections.abc import Iterable
from types import TracebackType
from typing import Any, Self, TypeVar

import httpx
from typing_extensions import Unpack

from hookd.client._api import MAX_EVENTS_PER_REQUEST, MAX_PUBLISH_BYTES, Api, Flow, drive
from hookd.client._models import (
    ApiKeyList,
    Delivery,
    DeliveryList,
    Event,
    EventDefinition,
    EventType,
    EventTypeList,
    EventWithWebhooks,
    Login,
    NewApiKey,
    NewSecret,
    Published,
    Queued,
    Repository,
    RepositoryWebhook,
    RepositoryWebhookSpec,
    TestResult,
    TriggerQueued,
    TriggerVerdict,
    Webhook,
    WebhookChanges,
    WebhookList,
    WebhookSpec,
)

T = TypeVar("T")
DEFAULT_TIMEOUT = 30.0


class Client:
    """hookd's HTTP API, both dialects. Give a token (a login token or an API key), or a
    username and password to log in with (at the first call, and again when the token
    expires). Use it as a context manager, or `close()` it."""

    def __init__(
        self,
        base_url: str,
        token: str | None = None,
        *,
        username: str | None = None,
        password: str | None = None,
        timeout: float = DEFAULT_TIMEOUT,
        transport: httpx.BaseTransport | None = None,
        max_publish_bytes: int = MAX_PUBLISH_BYTES,
        max_events_per_request: int = MAX_EVENTS_PER_REQUEST,
    ) -> None:
        self._api = Api(
            base_url, token, username, password, max_publish_bytes, max_events_per_request
        )
        self._http = httpx.Client(timeout=timeout, transport=transport)

    def _run(self, flow: Flow[T]) -> T:
        return drive(flow, self._http.send)

    @property
    def token(self) -> str | None:
        return self._api.token

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    # --- hookd's own -----------------------------------------------------------------------

    def login(self, username: str, password: str) -> Login:
        """Log in; the token is kept for every later call."""
        return self._run(self._api.login(username, password))

    def logout(self) -> None:
        """End the login token's validity (and forget it and the credentials)."""
        return self._run(self._api.logout())

    # --- the device dialect ----------------------------------------------------------------

    def list_webhooks(self, limit: int = 100, offset: int = 0) -> WebhookList:
        return self._run(self._api.list_webhooks(limit, offset))

    def create_webhook(self, **spec: Unpack[WebhookSpec]) -> Webhook:
        return self._run(self._api.create_webhook(spec))

    def get_webhook(self, uid: int) -> Webhook:
        return self._run(self._api.get_webhook(uid))

    def replace_webhook(self, uid: int, **spec: Unpack[WebhookSpec]) -> Webhook:
        return self._run(self._api.replace_webhook(uid, spec))

    def patch_webhook(self, uid: int, **changes: Unpack[WebhookChanges]) -> Webhook:
        return self._run(self._api.patch_webhook(uid, changes))

    def delete_webhook(self, uid: int) -> None:
        return self._run(self._api.delete_webhook(uid))

    def test_webhook(self, uid: int) -> TestResult:
        return self._run(self._api.test_webhook(uid))

    def rotate_secret(self, uid: int, secret: str | None = None) -> NewSecret:
        return self._run(self._api.rotate_secret(uid, secret))

    def replay(self, uid: int, since: float) -> Queued:
        return self._run(self._api.replay(uid, since))

    def recover(self, uid: int, since: float) -> Queued:
        return self._run(self._api.recover(uid, since))

    def create_api_key(self, name: str, event_types: list[str] | None = None) -> NewApiKey:
        """A producer's key, allowed to publish the types (or wildcards, `order.*`) listed, or
        any type; `key` is in this answer only. A client given it as `token` may publish."""
        return self._run(self._api.create_api_key(name, event_types))

    def list_api_keys(self) -> ApiKeyList:
        return self._run(self._api.list_api_keys())

    def delete_api_key(self, id: int) -> None:
        """Revoke the key: it is refused (401) from then on."""
        return self._run(self._api.delete_api_key(id))

    def create_event_type(self, name: str, description: str | None = None) -> EventType:
        """Add a type (`order.created`) to the catalogue, for webhooks and API keys to list."""
        return self._run(self._api.create_event_type(name, description))

    def delete_event_type(self, name: str) -> None:
        return self._run(self._api.delete_event_type(name))

    def event_types(self) -> EventTypeList:
        return self._run(self._api.event_types())

    def publish(self, events: Iterable[Event]) -> Published:
        return self._run(self._api.publish(events))

    def list_deliveries(
        self, uid: int, *, status: str | None = None, limit: int = 100, offset: int = 0
    ) -> DeliveryList:
        return self._run(self._api.list_deliveries(uid, status=status, limit=limit, offset=offset))

    def retry_delivery(self, delivery_id: int) -> Delivery:
        return self._run(self._api.retry_delivery(delivery_id))

    # --- the repository dialect ------------------------------------------------------------

    def put_repository(
        self, repository_id: str, name: str, base_uri: str | None = None
    ) -> Repository:
        return self._run(self._api.put_repository(repository_id, name, base_uri))

    def get_repository(self, repository_id: str) -> Repository:
        return self._run(self._api.get_repository(repository_id))

    def list_events(self, repository_id: str) -> list[EventDefinition]:
        return self._run(self._api.list_events(repository_id))

    def put_event(
        self,
        repository_id: str,
        event_id: str,
        name: str,
        *,
        description: str = "",
        blocking: bool = False,
    ) -> EventDefinition:
        return self._run(
            self._api.put_event(
                repository_id, event_id, name, description=description, blocking=blocking
            )
        )

    def get_event(self, repository_id: str, event_id: str) -> EventWithWebhooks:
        return self._run(self._api.get_event(repository_id, event_id))

    def create_repository_webhook(
        self, repository_id: str, event_id: str, **spec: Unpack[RepositoryWebhookSpec]
    ) -> RepositoryWebhook:
        return self._run(self._api.create_repository_webhook(repository_id, event_id, spec))

    def get_repository_webhook(
        self, repository_id: str, event_id: str, webhook_id: str
    ) -> RepositoryWebhook:
        return self._run(self._api.get_repository_webhook(repository_id, event_id, webhook_id))

    def replace_repository_webhook(
        self,
        repository_id: str,
        event_id: str,
        webhook_id: str,
        **spec: Unpack[RepositoryWebhookSpec],
    ) -> RepositoryWebhook:
        return self._run(
            self._api.replace_repository_webhook(repository_id, event_id, webhook_id, spec)
        )

    def delete_repository_webhook(self, repository_id: str, event_id: str, webhook_id: str) -> None:
        return self._run(self._api.delete_repository_webhook(repository_id, event_id, webhook_id))

    def trigger(
        self,
        repository_id: str,
        event_id: str,
        data: dict[str, Any] | None = None,
        *,
        category: str | None = None,
        id: str | None = None,
    ) -> TriggerVerdict | TriggerQueued:
        """Fire the event: a blocking event's verdict (`allowed`, `results`), or for any other
        the queued deliveries."""
        return self._run(self._api.trigger(repository_id, event_id, data, category=category, id=id))
