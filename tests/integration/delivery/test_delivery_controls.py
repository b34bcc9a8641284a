"""Delivery controls end to end, against real receivers on 127.0.0.1: fair sharing,
suspension, 410 Gone, secret rotation, ordering, replay and recover, the answer's deadline."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import time
from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiohttp import web
from sqlalchemy import select
from standardwebhooks.webhooks import Webhook as StandardWebhook
from standardwebhooks.webhooks import WebhookVerificationError

from hookd.store.database import Database
from hookd.store.schema import webhooks
from support import Api, Receiver

EVENT = "log.door_was_opened"
OLD = "whsec_" + base64.b64encode(b"the old key, 32 bytes long......").decode()
NEW = "whsec_" + base64.b64encode(b"the new key, 32 bytes long......").decode()


def events(count: int, prefix: str = "e") -> list[dict[str, Any]]:
    return [{"type": EVENT, "id": f"{prefix}{n:03d}"} for n in range(count)]


async def entity(api: Api, uid: int) -> dict[str, Any]:
    response = await api.client.get(f"/api/v1/webhooks/{uid}", headers=api.admin)
    assert response.status_code == 200, response.text
    return response.json()  # type: ignore[no-any-return]


async def post(api: Api, path: str, body: Any = None) -> Any:
    return await api.client.post(path, json=body, headers=api.admin)


# --- fair sharing -----------------------------------------------------------------------------


async def test_a_slow_webhook_uses_only_its_share_of_the_senders(
    make_settings: Any, api_factory: Any, receiver: Receiver
) -> None:
    api = await api_factory(make_settings(worker_concurrency=4))
    for _ in range(20):
        receiver.answer("/slow", 200, delay=3.0)
    await api.create_webhook(url=receiver.url("/slow"))
    await api.create_webhook(url=receiver.url("/fast"))
    await api.publish(events(20))

    await receiver.wait_for(20, "/fast", timeout=2.5)
    assert len(receiver.at("/fast")) == 20, "the slow webhook held the fast one's senders"
    assert len(receiver.at("/slow")) <= 4  # at most its share at a time


# --- suspension -------------------------------------------------------------------------------


async def test_a_failing_webhook_is_suspended_and_flows_again_after_a_good_probe(
    make_settings: Any, api_factory: Any, receiver: Receiver
) -> None:
    api = await api_factory(make_settings(retry_schedule="300ms", suspend_after=3))
    receiver.default = (500, {}, 0.0, b"down")
    hook = await api.create_webhook(url=receiver.url(), max_retries=5)
    await api.publish(events(10))
    await receiver.wait_for(10)
    await asyncio.sleep(2.5)  # without suspension, every delivery spends its 6 attempts by now

    assert (await entity(api, hook["uid"]))["health"] == "suspended"
    tried = len(receiver.requests)
    assert tried < 10 + 12, f"{tried} attempts: a suspended webhook gets one probe at a time"
    assert not await api.deliveries(hook["uid"], status="failed")

    receiver.default = (200, {}, 0.0, b"back")
    items = await api.wait_for_deliveries(hook["uid"], 10, states=("succeeded",), timeout=5)
    assert [item["status"] for item in items] == ["succeeded"] * 10
    assert (await entity(api, hook["uid"]))["health"] == "ok"


async def test_a_probe_that_succeeds_sends_the_waiting_retries_at_once(
    make_settings: Any, api_factory: Any, receiver: Receiver
) -> None:
    api = await api_factory(make_settings(retry_schedule="1s,60s", suspend_after=2))
    hook = await api.create_webhook(url=receiver.url(), max_retries=3)
    receiver.answer("/hook", 500)
    receiver.answer("/hook", 500)
    receiver.answer("/hook", 500)
    await api.publish(events(3))
    await receiver.wait_for(3)
    # The first probe goes a second later and succeeds: the two other deliveries, due in a
    # minute by the schedule, go at once.
    items = await api.wait_for_deliveries(hook["uid"], 3, states=("succeeded",), timeout=5)
    assert [item["status"] for item in items] == ["succeeded"] * 3


# --- 410 Gone ---------------------------------------------------------------------------------


async def test_410_gone_disables_the_webhook_at_once(api: Api, receiver: Receiver) -> None:
    hook = await api.create_webhook(url=receiver.url(), max_retries=3)
    receiver.answer("/hook", 410)
    await api.publish({"type": EVENT})
    [delivery] = await api.wait_for_deliveries(hook["uid"], 1)
    assert delivery["status"] == "failed"
    assert delivery["attempt_count"] == 1
    found = await entity(api, hook["uid"])
    assert found["status"] == "disabled"
    assert "410" in found["disabled_reason"]
    assert (await api.publish({"type": EVENT}))["deliveries"] == 0


# --- secret rotation --------------------------------------------------------------------------


def verified_by(secret: str, request: Any) -> bool:
    headers = {name.lower(): value for name, value in request.headers.items()}
    try:
        StandardWebhook(secret).verify(request.body, headers)
    except WebhookVerificationError:
        return False
    return True


def hookd_signature(secret: str, body: bytes) -> str:
    key = base64.b64decode(secret.removeprefix("whsec_"))
    return "sha256=" + hmac.new(key, body, hashlib.sha256).hexdigest()


async def test_a_rotated_secret_signs_beside_the_old_one(api: Api, receiver: Receiver) -> None:
    hook = await api.create_webhook(url=receiver.url(), secret=OLD)
    response = await post(api, f"/api/v1/webhooks/{hook['uid']}/secret/rotate", {"secret": NEW})
    assert response.status_code == 200, response.text
    assert response.json() == {"secret": NEW}
    assert (await entity(api, hook["uid"]))["secret"] == NEW

    await api.publish({"type": EVENT})
    await receiver.wait_for(1)
    [request] = receiver.requests
    assert len(request.headers["webhook-signature"].split()) == 2
    assert verified_by(OLD, request), "a receiver holding only the old key must verify"
    assert verified_by(NEW, request), "a receiver holding only the new key must verify"
    new_first = request.headers["webhook-signature"].split()[0]
    assert verified_by(NEW, _with_signature(request, new_first))
    assert request.headers["X-Hookd-Signature-256"] == hookd_signature(NEW, request.body)


def _with_signature(request: Any, signature: str) -> Any:
    return type(request)(request.path, {**request.headers, "webhook-signature": signature},
                         request.body, request.at)  # fmt: skip


async def test_rotation_without_a_secret_generates_one(api: Api, receiver: Receiver) -> None:
    hook = await api.create_webhook(url=receiver.url(), secret=OLD)
    for body in (None, {}):
        response = await api.client.post(
            f"/api/v1/webhooks/{hook['uid']}/secret/rotate",
            content=b"" if body is None else b"{}",
            headers=api.admin,
        )
        assert response.status_code == 200, response.text
        assert response.json()["secret"].startswith("whsec_")
    generated = response.json()["secret"]
    await api.publish({"type": EVENT})
    await receiver.wait_for(1)
    assert verified_by(generated, receiver.requests[0])


@pytest.mark.parametrize("method", ["PATCH", "PUT"])
async def test_changing_the_secret_is_a_rotation(api: Api, receiver: Receiver, method: str) -> None:
    hook = await api.create_webhook(url=receiver.url(), secret=OLD)
    body = {"secret": NEW}
    if method == "PUT":
        body = {"url": receiver.url(), "event_types": [EVENT], "secret": NEW}
    response = await api.client.request(
        method, f"/api/v1/webhooks/{hook['uid']}", json=body, headers=api.admin
    )
    assert response.status_code == 200, response.text
    await api.publish({"type": EVENT})
    await receiver.wait_for(1)
    assert verified_by(OLD, receiver.requests[0])
    assert verified_by(NEW, receiver.requests[0])


async def test_after_the_grace_period_only_the_new_secret_signs(
    make_settings: Any, api_factory: Any, receiver: Receiver
) -> None:
    api = await api_factory(make_settings(secret_grace="0s"))
    hook = await api.create_webhook(url=receiver.url(), secret=OLD)
    await post(api, f"/api/v1/webhooks/{hook['uid']}/secret/rotate", {"secret": NEW})
    await api.publish({"type": EVENT})
    await receiver.wait_for(1)
    assert not verified_by(OLD, receiver.requests[0])
    assert verified_by(NEW, receiver.requests[0])


async def test_the_previous_secret_is_sealed_at_rest(
    make_settings: Any, api_factory: Any, receiver: Receiver
) -> None:
    api = await api_factory(make_settings(secret_key="correct horse battery staple"))
    hook = await api.create_webhook(url=receiver.url(), secret=OLD)
    await post(api, f"/api/v1/webhooks/{hook['uid']}/secret/rotate", {"secret": NEW})
    db = Database(api.settings.database_url, pool_size=1)
    try:
        async with db.read() as conn:
            row = (await conn.execute(select(webhooks.c.secret, webhooks.c.previous_secret))).one()
    finally:
        await db.close()
    assert row.previous_secret.startswith("enc:") and OLD not in row.previous_secret
    assert row.secret.startswith("enc:v2:")
    await api.publish({"type": EVENT})
    await receiver.wait_for(1)
    assert verified_by(OLD, receiver.requests[0])


@pytest.mark.parametrize(
    ("body", "field"),
    [({"secret": "short"}, "secret"), ({"secret": 5}, "secret"), ({"other": 1}, "other")],
)
async def test_a_bad_rotation_is_refused_and_changes_nothing(
    api: Api, receiver: Receiver, body: Any, field: str
) -> None:
    hook = await api.create_webhook(url=receiver.url(), secret=OLD)
    response = await post(api, f"/api/v1/webhooks/{hook['uid']}/secret/rotate", body)
    assert response.status_code == 400
    assert response.json()["error"].startswith(f"{field}: ")
    assert (await entity(api, hook["uid"]))["secret"] == OLD


# --- ordering ---------------------------------------------------------------------------------


async def test_fifo_delivers_strictly_in_publish_order(api: Api, receiver: Receiver) -> None:
    hook = await api.create_webhook(url=receiver.url(), ordering="fifo", max_retries=5)
    assert hook["ordering"] == "fifo"
    for n in range(15):  # every third event fails once, first time
        receiver.answer("/hook", 500 if n % 3 == 0 else 200)
    await api.publish(events(15))
    items = await api.wait_for_deliveries(hook["uid"], 15, states=("succeeded",), timeout=15)
    assert [item["status"] for item in items] == ["succeeded"] * 15
    sent = [request.json()["id"] for request in receiver.requests]
    assert sent == sorted(sent), f"sent out of publish order: {sent}"


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"ordering": "lifo"}, "ordering: "),
        ({"rate_limit": 0}, "rate_limit: "),
        ({"rate_limit": "10"}, "rate_limit: "),
        ({"rate_limit": 1.5}, "rate_limit: "),
        ({"health": "ok"}, None),  # read-only: ignored
    ],
)
async def test_control_fields_are_validated(
    api: Api, receiver: Receiver, fields: dict[str, Any], message: str | None
) -> None:
    body = {"url": receiver.url(), "event_types": [EVENT], **fields}
    response = await post(api, "/api/v1/webhooks", body)
    if message is None:
        assert response.status_code == 201, response.text
        return
    assert response.status_code == 400, response.text
    assert response.json()["error"].startswith(message)


async def test_rate_limit_and_ordering_are_kept_and_changed(api: Api, receiver: Receiver) -> None:
    hook = await api.create_webhook(url=receiver.url(), rate_limit=7, ordering="fifo")
    assert (hook["rate_limit"], hook["ordering"], hook["health"]) == (7, "fifo", "ok")
    patched = await api.client.patch(
        f"/api/v1/webhooks/{hook['uid']}", json={"description": "x"}, headers=api.admin
    )
    assert (patched.json()["rate_limit"], patched.json()["ordering"]) == (7, "fifo")
    patched = await api.client.patch(
        f"/api/v1/webhooks/{hook['uid']}",
        json={"rate_limit": None, "ordering": "none"},
        headers=api.admin,
    )
    assert (patched.json()["rate_limit"], patched.json()["ordering"]) == (None, "none")


# --- replay and recover -----------------------------------------------------------------------


async def test_replay_queues_what_the_webhook_has_not_received(
    api: Api, receiver: Receiver
) -> None:
    since = int(time.time()) - 1
    await api.publish(events(3, "before"))  # nobody subscribed yet: stored only
    await api.publish({"type": "log.tamper_event"})  # another type
    hook = await api.create_webhook(url=receiver.url())

    response = await post(api, f"/api/v1/webhooks/{hook['uid']}/replay", {"since": since})
    assert response.status_code == 202, response.text
    assert response.json() == {"queued": 3}
    assert (await post(api, f"/api/v1/webhooks/{hook['uid']}/replay", {"since": since})).json() == {
        "queued": 0
    }
    await api.wait_for_deliveries(hook["uid"], 3, states=("succeeded",))
    assert sorted(r.json()["id"] for r in receiver.requests) == ["before000", "before001",
                                                                  "before002"]  # fmt: skip
    again = await post(api, f"/api/v1/webhooks/{hook['uid']}/replay", {"since": since})
    assert again.json() == {"queued": 0}
    later = await post(api, f"/api/v1/webhooks/{hook['uid']}/replay", {"since": time.time() + 9})
    assert later.json() == {"queued": 0}


async def test_replay_sends_again_what_finally_failed(api: Api, receiver: Receiver) -> None:
    hook = await api.create_webhook(url=receiver.url(), max_retries=0)
    receiver.answer("/hook", 500)
    await api.publish(events(2))
    await api.wait_for_deliveries(hook["uid"], 2)
    response = await post(api, f"/api/v1/webhooks/{hook['uid']}/replay", {"since": 0})
    assert response.json() == {"queued": 1}
    await receiver.wait_for(3)
    assert len(receiver.requests) == 3


async def test_recover_sends_every_failed_delivery_again(api: Api, receiver: Receiver) -> None:
    hook = await api.create_webhook(url=receiver.url(), max_retries=0)
    receiver.default = (500, {}, 0.0, b"")
    await api.publish(events(4))
    failed = await api.wait_for_deliveries(hook["uid"], 4, states=("failed",))
    assert len(failed) == 4
    receiver.default = (200, {}, 0.0, b"")

    response = await post(api, f"/api/v1/webhooks/{hook['uid']}/recover", {"since": 0})
    assert response.status_code == 202, response.text
    assert response.json() == {"queued": 4}
    items = await api.wait_for_deliveries(hook["uid"], 4, states=("succeeded",))
    assert [item["status"] for item in items] == ["succeeded"] * 4
    again = await post(api, f"/api/v1/webhooks/{hook['uid']}/recover", {"since": 0})
    assert again.json() == {"queued": 0}


@pytest.mark.parametrize("action", ["replay", "recover"])
@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({}, "since: is required"),
        ({"since": "yesterday"}, "since: must be a number of Unix seconds"),
        ({"since": True}, "since: must be a number of Unix seconds"),
        ({"since": -1}, "since: must be between 0 and"),
        ({"since": 0, "until": 1}, "until: is not a field"),
        ([0], "body: must be a JSON object"),
    ],
)
async def test_replay_and_recover_refuse_bad_bodies(
    api: Api, receiver: Receiver, action: str, body: Any, message: str
) -> None:
    hook = await api.create_webhook(url=receiver.url())
    response = await post(api, f"/api/v1/webhooks/{hook['uid']}/{action}", body)
    assert response.status_code == 400, response.text
    assert message in response.json()["error"] or response.json() == {"error": "Wrong JSON body"}


@pytest.mark.parametrize("action", ["replay", "recover", "secret/rotate"])
async def test_controls_of_an_unknown_webhook(api: Api, action: str) -> None:
    response = await post(api, f"/api/v1/webhooks/999/{action}", {"since": 0})
    assert response.status_code == 400
    assert response.json() == {"error": "Wrong webhook uid"}


# --- the answer's deadline --------------------------------------------------------------------


@pytest.fixture
async def trickling_receiver() -> AsyncIterator[str]:
    """Answers 200 at once, then its body one byte every half second."""

    async def trickle(request: web.Request) -> web.StreamResponse:
        await request.read()
        response = web.StreamResponse(status=200, headers={"Content-Length": "100"})
        await response.prepare(request)
        for _ in range(100):
            await response.write(b".")
            await asyncio.sleep(0.5)
        return response

    app = web.Application()
    app.router.add_post("/{tail:.*}", trickle)
    runner = web.AppRunner(app, access_log=None, shutdown_timeout=0.1)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    yield f"http://127.0.0.1:{runner.addresses[0][1]}/trickle"
    await runner.cleanup()


async def test_the_timeout_bounds_reading_the_whole_answer(
    api: Api, trickling_receiver: str
) -> None:
    hook = await api.create_webhook(url=trickling_receiver, timeout=1000, max_retries=0)
    await api.publish({"type": EVENT})
    [delivery] = await api.wait_for_deliveries(hook["uid"], 1, timeout=10)
    assert delivery["status"] == "failed"
    assert delivery["attempts"][0]["error"] == "timed out after 1000 ms"
