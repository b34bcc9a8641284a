"""The client against a running `hookd serve`, device dialect: every call, in both flavours
(the `make_client` fixture runs each test with `Client` and with `AsyncClient`)."""

from __future__ import annotations

import time
from typing import Any

import pytest
from standardwebhooks import Webhook as Verifier

from conftest import PUBLISH_BYTES, MakeClient, Receiver, Server
from hookd.client import (
    ApiKey,
    BadRequest,
    Conflict,
    Delivery,
    DeliveryList,
    DeliveryState,
    Forbidden,
    HookdError,
    NewApiKey,
    NotFound,
    Ordering,
    Published,
    TestResult,
    TooLarge,
    Unauthorized,
    Webhook,
    WebhookHealth,
    WebhookStatus,
)
from support import ADMIN_PASSWORD

pytestmark = pytest.mark.slow  # a subprocess

SECRET = "whsec_" + "c2VjcmV0LXNlY3JldC1zZWNyZXQ="


def unique(name: str) -> str:
    return f"/{name}-{time.monotonic_ns()}"


def wait_for_states(
    client: Any, uid: int, count: int, states: tuple[str, ...], timeout: float = 20.0
) -> DeliveryList:
    deadline = time.monotonic() + timeout
    while True:
        found: DeliveryList = client.list_deliveries(uid, limit=1000)
        if sum(d.status in states for d in found.items) >= count or time.monotonic() > deadline:
            return found
        time.sleep(0.05)


def test_logging_in_by_credentials_by_token_and_out(make_client: MakeClient) -> None:
    by_password = make_client(username="admin", password=ADMIN_PASSWORD)
    assert by_password.token is None, "logs in at the first call"
    assert by_password.list_webhooks(limit=1).total >= 0
    token = by_password.token
    assert token

    by_token = make_client(token=token)
    assert by_token.event_types().total > 0

    explicit = make_client()
    login = explicit.login("admin", ADMIN_PASSWORD)
    assert login.account_type == "admin"
    assert explicit.token == login.token
    explicit.logout()
    assert explicit.token is None
    with pytest.raises(Unauthorized) as refused:
        make_client(token=login.token).list_webhooks()
    assert refused.value.status == 401
    assert refused.value.body == {"error": "Log In"}


def test_wrong_credentials_and_a_missing_token_are_unauthorized(make_client: MakeClient) -> None:
    with pytest.raises(Unauthorized) as wrong:
        make_client().login("admin", "not-the-password")
    assert wrong.value.message == "Log In"
    with pytest.raises(Unauthorized):
        make_client().event_types()


def test_an_expired_token_is_renewed_with_the_credentials(make_client: MakeClient) -> None:
    client = make_client()
    client.login("admin", ADMIN_PASSWORD)
    first = client.token
    other = make_client(token=first)
    other.logout()  # revokes the token the first client holds
    assert client.list_webhooks(limit=1).total >= 0, "logged in again"
    assert client.token not in (None, first)


def test_webhook_calls_round_trip(admin: Any, receiver: Receiver) -> None:
    path = unique("crud")
    created = admin.create_webhook(
        url=receiver.url(path),
        event_types=["log.tamper_event"],
        description="client test",
        headers='{"X-Tenant": "acme"}',
        ordering=Ordering.FIFO,
    )
    assert isinstance(created, Webhook)
    assert created.url == receiver.url(path)
    assert created.status is WebhookStatus.ACTIVE
    assert created.health is WebhookHealth.OK
    assert created.ordering is Ordering.FIFO
    assert created.secret and created.secret.startswith("whsec_")
    assert admin.get_webhook(created.uid) == created

    listed = admin.list_webhooks(limit=1000)
    assert created.uid in [webhook.uid for webhook in listed.items]
    assert listed.total >= 1
    page = admin.list_webhooks(limit=1, offset=0)
    assert len(page.items) == 1 and page.total == listed.total

    replaced = admin.replace_webhook(
        created.uid, url=receiver.url(path), event_types=["log.door_was_closed"], timeout=2000
    )
    assert replaced.event_types == ["log.door_was_closed"]
    assert replaced.timeout == 2000
    assert replaced.description == "", "a replacement is whole: omitted fields take defaults"
    assert replaced.secret == created.secret, "an omitted secret is kept"

    patched = admin.patch_webhook(created.uid, status=WebhookStatus.DISABLED, max_retries=1)
    assert (patched.status, patched.max_retries, patched.timeout) == (
        WebhookStatus.DISABLED,
        1,
        2000,
    )

    given = admin.rotate_secret(created.uid, SECRET)
    assert given.secret == SECRET
    generated = admin.rotate_secret(created.uid)
    assert generated.secret.startswith("whsec_") and generated.secret != SECRET
    assert admin.get_webhook(created.uid).secret == generated.secret

    assert admin.delete_webhook(created.uid) is None
    with pytest.raises(BadRequest) as gone:
        admin.get_webhook(created.uid)
    assert gone.value.body == {"error": "Wrong webhook uid"}


def test_bad_input_is_a_bad_request_with_the_field(admin: Any, receiver: Receiver) -> None:
    with pytest.raises(BadRequest) as refused:
        admin.create_webhook(url=receiver.url("/x"), event_types=["no.such_type"])
    assert refused.value.status == 400
    assert refused.value.message.startswith("event_types")
    assert list(refused.value.body) == ["error"]


def test_only_an_admin_manages_webhooks(user: Any, receiver: Receiver) -> None:
    with pytest.raises(Forbidden) as refused:
        user.create_webhook(url=receiver.url("/x"), event_types=["log.tamper_event"])
    assert refused.value.status == 403
    assert refused.value.body == {"error": "Administrator rights required"}


def test_a_test_send_reaches_the_receiver(admin: Any, receiver: Receiver) -> None:
    path = unique("test-send")
    webhook = admin.create_webhook(url=receiver.url(path), event_types=["log.tamper_event"])
    result = admin.test_webhook(webhook.uid)
    assert isinstance(result, TestResult)
    assert result.status_code == 200
    assert result.error is None
    [sent] = receiver.at(path)
    assert sent.json()["type"] == "hookd.test"
    admin.delete_webhook(webhook.uid)


def test_event_types(user: Any) -> None:
    listed = user.event_types()
    assert "log.door_was_opened" in listed.items
    assert listed.total == len(listed.items)


def test_publish_is_delivered_signed_and_logged(admin: Any, user: Any, receiver: Receiver) -> None:
    path = unique("publish")
    webhook = admin.create_webhook(
        url=receiver.url(path), event_types=["log.lift_call_success"], secret=SECRET
    )
    since = time.time() - 0.05
    published = user.publish(
        [
            {"type": "log.lift_call_success", "data": {"n": 1}, "id": f"client-{path}-1"},
            {"type": "log.lift_call_success", "data": {"n": 2}},
        ]
    )
    assert isinstance(published, Published)
    assert published.ids[0] == f"client-{path}-1"
    assert len(published.ids) == 2 and published.deliveries == 2
    arrived = receiver.wait_for(2, path)
    assert len(arrived) == 2
    for request in arrived:
        payload = Verifier(SECRET).verify(request.body, request.headers)
        assert payload["type"] == "log.lift_call_success"

    log = wait_for_states(admin, webhook.uid, 2, (DeliveryState.SUCCEEDED,))
    assert log.total == 2
    done = [d for d in log.items if d.status is DeliveryState.SUCCEEDED]
    assert len(done) == 2
    entry = done[0]
    assert isinstance(entry, Delivery)
    assert entry.webhook_uid == webhook.uid
    assert entry.event_id in published.ids
    assert entry.attempts and entry.attempts[0].status_code == 200

    only = admin.list_deliveries(webhook.uid, status=DeliveryState.SUCCEEDED, limit=1, offset=1)
    assert len(only.items) == 1 and only.total == 2
    assert admin.list_deliveries(webhook.uid, status=DeliveryState.FAILED).total == 0

    retried = admin.retry_delivery(entry.id)
    assert retried.id == entry.id
    assert retried.status is DeliveryState.PENDING
    assert len(receiver.wait_for(3, path)) == 3

    replayed = admin.replay(webhook.uid, since=since)
    assert replayed.queued == 0, "every event of its types reached it already"
    admin.delete_webhook(webhook.uid)


def test_recover_sends_failed_deliveries_again(admin: Any, user: Any, receiver: Receiver) -> None:
    path = unique("recover")
    receiver.statuses[path] = 500
    webhook = admin.create_webhook(
        url=receiver.url(path), event_types=["log.lift_call_error"], max_retries=0
    )
    since = time.time() - 0.05
    user.publish([{"type": "log.lift_call_error"}])
    log = wait_for_states(admin, webhook.uid, 1, (DeliveryState.FAILED,))
    assert [d.status for d in log.items] == [DeliveryState.FAILED]
    assert log.items[0].last_status_code == 500
    receiver.statuses[path] = 200
    assert admin.recover(webhook.uid, since=since).queued == 1
    log = wait_for_states(admin, webhook.uid, 1, (DeliveryState.SUCCEEDED,))
    assert [d.status for d in log.items] == [DeliveryState.SUCCEEDED]
    admin.delete_webhook(webhook.uid)


def test_replay_queues_what_a_webhook_has_not_received(
    admin: Any, user: Any, receiver: Receiver
) -> None:
    since = time.time() - 0.05
    published = user.publish([{"type": "log.lift_module_access_error"}] * 3)
    path = unique("replay")
    webhook = admin.create_webhook(
        url=receiver.url(path), event_types=["log.lift_module_access_error"]
    )
    assert admin.replay(webhook.uid, since=since).queued == 3
    arrived = receiver.wait_for(3, path)
    assert sorted(request.json()["id"] for request in arrived) == sorted(published.ids)
    admin.delete_webhook(webhook.uid)


def test_publish_splits_by_count(
    admin: Any, make_client: MakeClient, receiver: Receiver, server: Server
) -> None:
    """2500 events: 1000 per request at most (one request of them all would be a 400)."""
    webhook = admin.create_webhook(
        url=receiver.url(unique("count")), event_types=["log.outgoing_call_missed"]
    )
    client = make_client(username="user", password="user-password-1")
    events: list[Any] = [{"type": "log.outgoing_call_missed"} for _ in range(2500)]
    published = client.publish(events)
    assert len(published.ids) == len(set(published.ids)) == 2500
    assert published.deliveries == 2500
    admin.patch_webhook(webhook.uid, status=WebhookStatus.DISABLED)
    admin.delete_webhook(webhook.uid)


def test_publish_splits_by_bytes(make_client: MakeClient) -> None:
    """300 events of ~700 bytes: over the server's HOOKD_MAX_PUBLISH_BYTES together, so the
    client splits them by size (one request of them all would be a 413)."""
    events: list[Any] = [
        {"type": "log.outgoing_call_web", "data": {"pad": "x" * 640, "n": n}} for n in range(300)
    ]
    whole = make_client(username="user", password="user-password-1")
    with pytest.raises(TooLarge):
        make_client(username="user", password="user-password-1", max_publish_bytes=10**9).publish(
            events
        )
    published = make_client(
        username="user", password="user-password-1", max_publish_bytes=PUBLISH_BYTES
    ).publish(events)
    assert len(published.ids) == 300
    assert whole.token is None, "nothing was sent with it"


def test_publishing_nothing_sends_nothing(user: Any) -> None:
    assert user.publish([]) == Published(ids=[], deliveries=0)
    assert user.token is None


def test_an_event_too_large_for_any_request_is_refused_before_sending(
    make_client: MakeClient,
) -> None:
    client = make_client(username="user", password="user-password-1", max_publish_bytes=4096)
    events: list[Any] = [
        {"type": "log.tamper_event"},
        {"type": "log.tamper_event", "data": {"x": "y" * 5000}},
    ]
    with pytest.raises(ValueError, match=r"events\[1\]"):
        client.publish(events)
    assert client.token is None, "nothing was sent"


def test_a_failed_batch_says_what_was_stored_before_it(user: Any) -> None:
    events: list[Any] = [{"type": "log.incoming_call"}] * 1500 + [{"type": "no.such_type"}]
    with pytest.raises(BadRequest) as refused:
        user.publish(events)
    error: HookdError = refused.value
    assert error.message.startswith("[500].type")
    assert isinstance(error.published, Published)
    assert len(error.published.ids) == 1000


def test_an_api_key_publishes_its_types_only_until_revoked(
    admin: Any, make_client: MakeClient, receiver: Receiver
) -> None:
    path = unique("api-key")
    webhook = admin.create_webhook(url=receiver.url(path), event_types=["log.door_was_opened"])
    created = admin.create_api_key(path, event_types=["log.door_was_opened"])
    assert isinstance(created, NewApiKey)
    assert (created.name, created.event_types) == (path, ["log.door_was_opened"])
    [listed] = [key for key in admin.list_api_keys().items if key.id == created.id]
    assert isinstance(listed, ApiKey)
    assert created.key.startswith(listed.prefix) and created.key != listed.prefix
    assert "key" not in listed.model_dump()

    producer = make_client(token=created.key)
    published = producer.publish([{"type": "log.door_was_opened", "data": {"door": path}}])
    assert published.deliveries == 1
    [arrived] = receiver.wait_for(1, path)
    assert arrived.json()["id"] == published.ids[0]
    assert arrived.json()["data"] == {"door": path}

    with pytest.raises(Forbidden) as outside:
        producer.publish([{"type": "log.tamper_event"}])
    assert outside.value.message == "This API key may not publish 'log.tamper_event'"
    with pytest.raises(Forbidden) as not_publishing:
        producer.list_webhooks()
    assert not_publishing.value.message.startswith("An API key may only publish")

    assert admin.delete_api_key(created.id) is None
    assert created.id not in [key.id for key in admin.list_api_keys().items]
    with pytest.raises(Unauthorized):
        producer.publish([{"type": "log.door_was_opened"}])
    with pytest.raises(NotFound):
        admin.delete_api_key(created.id)
    assert len(receiver.at(path)) == 1
    admin.delete_webhook(webhook.uid)


def test_only_an_admin_manages_api_keys_and_types(user: Any) -> None:
    with pytest.raises(Forbidden):
        user.create_api_key("not-allowed")
    with pytest.raises(Forbidden):
        user.list_api_keys()
    with pytest.raises(Forbidden):
        user.create_event_type("order.not_allowed")


def test_an_added_type_reaches_a_wildcard_webhook(
    admin: Any, user: Any, receiver: Receiver
) -> None:
    # A prefix of its own: both flavours share one server.
    prefix = f"order{time.monotonic_ns()}"
    name = f"{prefix}.created"
    added = admin.create_event_type(name, description="An order was placed")
    assert (added.name, added.description) == (name, "An order was placed")
    assert name in admin.event_types().items
    with pytest.raises(Conflict):
        admin.create_event_type(name)

    path = unique("wildcard")
    webhook = admin.create_webhook(url=receiver.url(path), event_types=[f"{prefix}.*"])
    assert webhook.event_types == [f"{prefix}.*"]
    published = user.publish([{"type": name, "data": {"order": 42}}])
    assert published.deliveries == 1
    [arrived] = receiver.wait_for(1, path)
    assert (arrived.json()["type"], arrived.json()["data"]) == (name, {"order": 42})
    admin.delete_webhook(webhook.uid)

    assert admin.delete_event_type(name) is None
    assert name not in admin.event_types().items
    with pytest.raises(BadRequest):
        user.publish([{"type": name}])
    with pytest.raises(NotFound):
        admin.delete_event_type(name)
    with pytest.raises(BadRequest):
        admin.delete_event_type("log.tamper_event")
