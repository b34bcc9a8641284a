"""Webhooks as the console shows and changes them: each change goes through the dialect that owns
the webhook (its parser, its rules, its store), exactly as that dialect's API would make it."""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass
from typing import Any

from hookd.console.forms import DEVICE_CONTROLS, Control, body_of
from hookd.console.session import Form
from hookd.delivery.sender import Attempt, Result
from hookd.dialects.device import catalogue
from hookd.dialects.device import fields as device_fields
from hookd.dialects.device import views as device_views
from hookd.dialects.repository import fields as repository_fields
from hookd.dialects.repository import model as repository_model
from hookd.dialects.repository import store as repository_store
from hookd.dialects.repository import views as repository_views
from hookd.domain.errors import InvalidField
from hookd.domain.event import delivery_body, new_event_id, rfc3339
from hookd.domain.signing import generate_secret
from hookd.domain.states import WebhookStatus
from hookd.domain.webhook import Webhook
from hookd.http.services import Services
from hookd.store import webhooks as core_store
from hookd.store.database import Database

DEVICE = device_fields.NAME
REPOSITORY = repository_model.NAME
DIALECTS = (DEVICE, REPOSITORY)
# Fields of an entity that hold a secret: shown to admins on request, to users never.
SECRET_FIELDS = frozenset({"secret", "apiKey"})


@dataclass(slots=True)
class Shown:
    """A webhook with what its dialect keeps beside it."""

    webhook: Webhook
    binding: repository_model.Binding | None = None

    @property
    def id(self) -> int:
        return self.webhook.id

    @property
    def dialect(self) -> str:
        return self.webhook.dialect

    @property
    def name(self) -> str:
        """How the dialect's API names it: a device uid, a repository webhook's UUID."""
        if self.webhook.public_id:
            return self.webhook.public_id
        return f"uid {self.webhook.id}"

    @property
    def short_name(self) -> str:
        """The name as lists show it: a UUID shortened to its first group."""
        if self.webhook.public_id:
            return self.webhook.public_id[:8] + "…"
        return self.name

    @property
    def synchronous(self) -> bool:
        """Called while a request waits (a validation hook), rather than queued."""
        return (
            self.binding is not None
            and self.binding.handle_response in repository_model.SYNCHRONOUS
        )

    @property
    def repository_id(self) -> str | None:
        return self.binding.repository_id if self.binding else None

    @property
    def event_id(self) -> str | None:
        if self.binding is None or not self.webhook.topics:
            return None
        return self.webhook.topics[0].partition("/")[2]

    @property
    def subscriptions(self) -> list[str]:
        if self.binding is not None:
            return [topic.replace("/", " / ", 1) for topic in self.webhook.topics]
        return list(self.webhook.topics)

    def entity(self) -> dict[str, Any]:
        """The webhook exactly as its dialect's API shows it."""
        if self.binding is not None:
            found = repository_model.RepositoryWebhook(self.webhook, self.binding)
            return repository_views.webhook_entity(found)
        return device_views.webhook_entity(self.webhook)


async def shown(db: Database, webhooks: list[Webhook]) -> list[Shown]:
    repository_ids = [w.id for w in webhooks if w.dialect == REPOSITORY]
    bindings = await repository_store.bindings(db, repository_ids)
    return [Shown(webhook, bindings.get(webhook.id)) for webhook in webhooks]


async def load(db: Database, webhook_id: int) -> Shown | None:
    webhook = await core_store.get_any_webhook(db, webhook_id)
    if webhook is None:
        return None
    return (await shown(db, [webhook]))[0]


# --- creating and changing --------------------------------------------------------------------


async def create_device(hookd: Services, form: Form) -> Webhook:
    spec = device_fields.parse_webhook(body_of(form, DEVICE_CONTROLS))
    await catalogue.check_subscriptions(hookd.db, spec.event_types, "event_types")
    fields = spec.to_fields(secret=generate_secret())
    return await core_store.create_webhook(hookd.db, DEVICE, fields)


async def _event(hookd: Services, topic: str) -> repository_store.EventLookup:
    repository_id, _, event_id = topic.partition("/")
    found = None
    if repository_model.is_id(repository_id) and repository_model.is_id(event_id):
        found = await repository_store.find_event(hookd.db, repository_id, event_id)
    if found is None or found.event is None:
        raise InvalidField("event", "choose one of the repositories' events")
    return found


async def create_repository(hookd: Services, form: Form, controls: tuple[Control, ...]) -> Webhook:
    found = await _event(hookd, form.get("event"))
    assert found.event is not None
    spec = repository_fields.parse_webhook(body_of(form, controls))
    fields, binding = spec.to_fields(
        found.repository, found.event.id, hookd.settings.relative_base_url
    )
    repository_id, event_id = found.repository.id, found.event.id
    count = await repository_store.count_event_webhooks(hookd.db, repository_id, event_id)
    if count >= repository_model.MAX_WEBHOOKS_PER_EVENT:
        raise InvalidField(
            "event", f"has the maximum of {repository_model.MAX_WEBHOOKS_PER_EVENT} webhooks"
        )
    created = await repository_store.create_webhook(
        hookd.db, fields, binding, public_id=str(uuid.uuid4())
    )
    return created.webhook


async def replace(
    hookd: Services, current: Shown, form: Form, controls: tuple[Control, ...]
) -> None:
    """Write the edited form over the webhook; an empty secret keeps the current one."""
    body = body_of(form, controls)
    if current.binding is None:
        spec = device_fields.parse_webhook(body)
        await catalogue.check_subscriptions(hookd.db, spec.event_types, "event_types")
        await core_store.replace_webhook(
            hookd.db, current.id, spec.to_fields(current.webhook.secret)
        )
        return
    if "apiKey" not in body and not form.has("remove_apiKey"):
        body["apiKey"] = current.webhook.bearer_token
    await _replace_repository(hookd, current, body)


async def _replace_repository(hookd: Services, current: Shown, body: dict[str, Any]) -> None:
    assert current.binding is not None
    repository = await repository_store.get_repository(hookd.db, current.binding.repository_id)
    if repository is None or current.event_id is None:
        raise InvalidField("event", "the webhook's repository no longer exists")
    spec = repository_fields.parse_webhook(body)
    fields, binding = spec.to_fields(repository, current.event_id, hookd.settings.relative_base_url)
    await repository_store.replace_webhook(hookd.db, current.id, fields, binding)


async def set_active(hookd: Services, current: Shown, active: bool) -> None:
    """Enable or disable, as a PATCH of the dialect's own field would."""
    if current.binding is None:
        status = WebhookStatus.ACTIVE if active else WebhookStatus.DISABLED
        spec = device_fields.patched_webhook(current.webhook, {"status": status.value})
        await core_store.replace_webhook(
            hookd.db, current.id, spec.to_fields(current.webhook.secret)
        )
        return
    await _replace_repository(hookd, current, {**current.entity(), "enabled": active})


async def send_test(hookd: Services, webhook: Webhook) -> Result:
    """A test event sent now, outside the queue, as the device dialect's test call sends it."""
    event_id = new_event_id()
    body = delivery_body(event_id, "hookd.test", rfc3339(time.time()), {"test": True})
    return await hookd.sender.send(
        Attempt(
            url=webhook.url,
            body=body,
            event_id=event_id,
            number=1,
            timeout_ms=webhook.timeout_ms,
            secret=webhook.secret,
            headers=webhook.headers,
            bearer_token=webhook.bearer_token,
        )
    )
