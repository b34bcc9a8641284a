"""The asynchronous client: the calls of `_api.Api`, sent with `httpx.AsyncClient`."""

from __future__ import annotations

from collections.abc import Iterable
from types import TracebackType
from typing import Any, Self, TypeVar

import httpx
from typing_extensions import Unpack

from hookd.client._api import MAX_EVENTS_PER_REQUEST, MAX_PUBLISH_BYTES, Api, Flow
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


class AsyncClient:
    """hookd's HTTP API, both dialects, for asyncio: `Client`'s calls, awaited. Give a token
    (a login token or an API key), or a username and password to log in with (at the first
    call, and again when the token expires). Use it as an async context manager, or
    `await close()`."""

    def __init__(
        self,
        base_url: str,
        token: str | None = None,
        *,
        username: str | None = None,
        password: str | None = None,
        timeout: float = DEFAULT_TIMEOUT,
        transport: httpx.AsyncBaseTransport | None = None,
        max_publish_bytes: int = MAX_PUBLISH_BYTES,
        max_events_per_request: int = MAX_EVENTS_PER_REQUEST,
    ) -> None:
        self._api = Api(
            base_url, token, username, password, max_publish_bytes, max_events_per_request
        )
        self._http = httpx.AsyncClient(timeout=timeout, transport=transport)

    async def _run(self, flow: Flow[T]) -> T:
        try:
            request = next(flow)
            while True:
                request = flow.send(await self._http.send(request))
        except StopIteration as done:
            return done.value

    @property
    def token(self) -> str | None:
        return self._api.token

    async def close(self) -> None:
        await self._http.aclose()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.close()

    # --- hookd's own -----------------------------------------------------------------------

    async def login(self, username: str, password: str) -> Login:
        """Log in; the token is kept for every later call."""
        return await self._run(self._api.login(username, password))

    async def logout(self) -> None:
        """End the login token's validity (and forget it and the credentials)."""
        return await self._run(self._api.logout())

    # --- the device dialect ----------------------------------------------------------------

    async def list_webhooks(self, limit: int = 100, offset: int = 0) -> WebhookList:
        return await self._run(self._api.list_webhooks(limit, offset))

    async def create_webhook(self, **spec: Unpack[WebhookSpec]) -> Webhook:
        return await self._run(self._api.create_webhook(spec))

    async def get_webhook(self, uid: int) -> Webhook:
        return await self._run(self._api.get_webhook(uid))

    async def replace_webhook(self, uid: int, **spec: Unpack[WebhookSpec]) -> Webhook:
        return await self._run(self._api.replace_webhook(uid, spec))

    async def patch_webhook(self, uid: int, **changes: Unpack[WebhookChanges]) -> Webhook:
        return await self._run(self._api.patch_webhook(uid, changes))

    async def delete_webhook(self, uid: int) -> None:
        return await self._run(self._api.delete_webhook(uid))

    async def test_webhook(self, uid: int) -> TestResult:
        return await self._run(self._api.test_webhook(uid))

    async def rotate_secret(self, uid: int, secret: str | None = None) -> NewSecret:
        return await self._run(self._api.rotate_secret(uid, secret))

    async def replay(self, uid: int, since: float) -> Queued:
        return await self._run(self._api.replay(uid, since))

    async def recover(self, uid: int, since: float) -> Queued:
        return await self._run(self._api.recover(uid, since))

    async def create_api_key(self, name: str, event_types: list[str] | None = None) -> NewApiKey:
        """A producer's key, allowed to publish the types (or wildcards, `order.*`) listed, or
        any type; `key` is in this answer only. A client given it as `token` may publish."""
        return await self._run(self._api.create_api_key(name, event_types))

    async def list_api_keys(self) -> ApiKeyList:
        return await self._run(self._api.list_api_keys())

    async def delete_api_key(self, id: int) -> None:
        """Revoke the key: it is refused (401) from then on."""
        return await self._run(self._api.delete_api_key(id))

    async def create_event_type(self, name: str, description: str | None = None) -> EventType:
        """Add a type (`order.created`) to the catalogue, for webhooks and API keys to list."""
        return await self._run(self._api.create_event_type(name, description))

    async def delete_event_type(self, name: str) -> None:
        return await self._run(self._api.delete_event_type(name))

    async def event_types(self) -> EventTypeList:
        return await self._run(self._api.event_types())

    async def publish(self, events: Iterable[Event]) -> Published:
        return await self._run(self._api.publish(events))

    async def list_deliveries(
        self, uid: int, *, status: str | None = None, limit: int = 100, offset: int = 0
    ) -> DeliveryList:
        return await self._run(
            self._api.list_deliveries(uid, status=status, limit=limit, offset=offset)
        )

    async def retry_delivery(self, delivery_id: int) -> Delivery:
        return await self._run(self._api.retry_delivery(delivery_id))

    # --- the repository dialect ------------------------------------------------------------

    async def put_repository(
        self, repository_id: str, name: str, base_uri: str | None = None
    ) -> Repository:
        return await self._run(self._api.put_repository(repository_id, name, base_uri))

    async def get_repository(self, repository_id: str) -> Repository:
        return await self._run(self._api.get_repository(repository_id))

    async def list_events(self, repository_id: str) -> list[EventDefinition]:
        return await self._run(self._api.list_events(repository_id))

    async def put_event(
        self,
        repository_id: str,
        event_id: str,
        name: str,
        *,
        description: str = "",
        blocking: bool = False,
    ) -> EventDefinition:
        return await self._run(
            self._api.put_event(
                repository_id, event_id, name, description=description, blocking=blocking
            )
        )

    async def get_event(self, repository_id: str, event_id: str) -> EventWithWebhooks:
        return await self._run(self._api.get_event(repository_id, event_id))

    async def create_repository_webhook(
        self, repository_id: str, event_id: str, **spec: Unpack[RepositoryWebhookSpec]
    ) -> RepositoryWebhook:
        return await self._run(self._api.create_repository_webhook(repository_id, event_id, spec))

    async def get_repository_webhook(
        self, repository_id: str, event_id: str, webhook_id: str
    ) -> RepositoryWebhook:
        return await self._run(
            self._api.get_repository_webhook(repository_id, event_id, webhook_id)
        )

    async def replace_repository_webhook(
        self,
        repository_id: str,
        event_id: str,
        webhook_id: str,
        **spec: Unpack[RepositoryWebhookSpec],
    ) -> RepositoryWebhook:
        return await self._run(
            self._api.replace_repository_webhook(repository_id, event_id, webhook_id, spec)
        )

    async def delete_repository_webhook(
        self, repository_id: str, event_id: str, webhook_id: str
    ) -> None:
        return await self._run(
            self._api.delete_repository_webhook(repository_id, event_id, webhook_id)
        )

    async def trigger(
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
        return await self._run(
            self._api.trigger(repository_id, event_id, data, category=category, id=id)
        )
