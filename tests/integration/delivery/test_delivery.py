"""Delivery end to end: in-process hookd, its embedded worker, a real receiver on 127.0.0.1."""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import time
from pathlib import Path
from typing import Any

import pytest
from standardwebhooks.webhooks import Webhook as StandardWebhook
from standardwebhooks.webhooks import WebhookVerificationError as StandardVerificationError
from svix.webhooks import Webhook as SvixWebhook
from svix.webhooks import WebhookVerificationError as SvixVerificationError

from support import Api, Receiver

EVENT = "log.door_was_opened"
OTHER_EVENT = "log.tamper_event"
SECRET = "a-plain-secret-of-32-characters!"


async def test_fan_out_only_to_subscribed_active_webhooks(api: Api, receiver: Receiver) -> None:
    subscribed = await api.create_webhook(url=receiver.url("/a"), event_types=[EVENT, OTHER_EVENT])
    also = await api.create_webhook(url=receiver.url("/b"), event_types=[EVENT])
    await api.create_webhook(url=receiver.url("/other"), event_types=[OTHER_EVENT])
    await api.create_webhook(url=receiver.url("/off"), event_types=[EVENT], status="disabled")

    published = await api.publish({"type": EVENT, "data": {"door": 7}})

    assert published["deliveries"] == 2
    await receiver.wait_for(2)
    await api.wait_for_deliveries(subscribed["uid"], 1)
    await api.wait_for_deliveries(also["uid"], 1)
    assert sorted(request.path for request in receiver.requests) == ["/a", "/b"]
    assert {request.json()["id"] for request in receiver.requests} == {published["ids"][0]}


async def test_body_and_headers_follow_the_contract(api: Api, receiver: Receiver) -> None:
    await api.create_webhook(
        url=receiver.url(), secret=SECRET, headers='{"X-Tenant": "acme", "X-Trace": "a\\tb"}'
    )
    published = await api.publish({"type": EVENT, "id": "order-1", "data": {"door": 7}})
    await receiver.wait_for(1)

    request = receiver.requests[0]
    body = request.json()
    assert body["id"] == "order-1" == published["ids"][0]
    assert body["type"] == EVENT
    assert body["data"] == {"door": 7}
    assert body["created_at"].endswith("Z")
    assert request.headers["Content-Type"] == "application/json"
    assert request.headers["User-Agent"].startswith("hookd/")
    assert request.headers["webhook-id"] == "order-1"
    assert abs(int(request.headers["webhook-timestamp"]) - time.time()) < 60
    assert request.headers["X-Hookd-Attempt"] == "1"
    assert request.headers["X-Tenant"] == "acme"
    assert request.headers["X-Trace"] == "a\tb"


# What users type: a plain string (the README's), a string that happens to be base64, and the
# Standard Webhooks form that hookd generates.
PLAIN = "0123456789abcdef"
BASE64 = base64.b64encode(b"a key of twenty-four byt").decode()
WHSEC = "whsec_" + base64.b64encode(b"0123456789abcdef0123456789abcdef").decode()


@pytest.mark.parametrize(
    ("secret", "hex_key"),
    [
        (PLAIN, PLAIN.encode()),
        (BASE64, BASE64.encode()),
        (WHSEC, b"0123456789abcdef0123456789abcdef"),
        (SECRET, SECRET.encode()),
    ],
    ids=["plain", "base64", "whsec", "plain-not-base64"],
)
async def test_deliveries_verify_with_standardwebhooks_and_svix_given_the_secret_as_configured(
    api: Api, receiver: Receiver, secret: str, hex_key: bytes
) -> None:
    await api.create_webhook(url=receiver.url(), secret=secret)
    await api.publish({"type": EVENT, "data": {"n": 1}})
    await receiver.wait_for(1)

    request = receiver.requests[0]
    headers = {name.lower(): value for name, value in request.headers.items()}
    assert StandardWebhook(secret).verify(request.body, headers) == request.json()
    SvixWebhook(secret).verify(request.body, headers)
    tampered = request.body.replace(b'"n":1', b'"n":2')
    with pytest.raises(StandardVerificationError, match="signature"):
        StandardWebhook(secret).verify(tampered, headers)
    with pytest.raises(SvixVerificationError, match="signature"):
        SvixWebhook(secret).verify(tampered, headers)
    # The hex header keeps its key: the secret's UTF-8 bytes, or a whsec_ secret's decoded ones.
    expected = hmac.new(hex_key, request.body, hashlib.sha256).hexdigest()
    assert headers["x-hookd-signature-256"] == f"sha256={expected}"
    # And the README's hand-written verifier agrees.
    readme_verify = readme_verifier()
    assert readme_verify(secret, headers, request.body)
    assert not readme_verify(secret, headers, tampered)
    assert not readme_verify("another-secret-entirely", headers, request.body)


def readme_verifier() -> Any:
    """The `verify` function README.md shows receivers, as written there."""
    readme = (Path(__file__).resolve().parents[3] / "README.md").read_text()
    [source] = [
        block
        for block in re.findall(r"^```python\n(.*?)^```$", readme, re.M | re.S)
        if "def verify(secret: str" in block
    ]
    namespace: dict[str, Any] = {}
    exec(source, namespace)
    return namespace["verify"]


async def test_retries_until_success_with_the_same_webhook_id(api: Api, receiver: Receiver) -> None:
    hook = await api.create_webhook(url=receiver.url(), max_retries=3)
    receiver.answer("/hook", 500, body=b"first")
    receiver.answer("/hook", 500, body=b"second")
    receiver.answer("/hook", 200, body=b"third")
    await api.publish({"type": EVENT})

    items = await api.wait_for_deliveries(hook["uid"], 1)

    delivery = items[0]
    assert delivery["status"] == "succeeded"
    assert delivery["attempt_count"] == 3
    assert [a["status_code"] for a in delivery["attempts"]] == [500, 500, 200]
    assert [a["response_body"] for a in delivery["attempts"]] == ["first", "second", "third"]
    assert [a["number"] for a in delivery["attempts"]] == [1, 2, 3]
    assert len({r.headers["webhook-id"] for r in receiver.requests}) == 1
    assert [r.headers["X-Hookd-Attempt"] for r in receiver.requests] == ["1", "2", "3"]
    timestamps = [int(r.headers["webhook-timestamp"]) for r in receiver.requests]
    assert timestamps == sorted(timestamps)


async def test_no_retries_means_exactly_one_attempt(api: Api, receiver: Receiver) -> None:
    hook = await api.create_webhook(url=receiver.url(), max_retries=0)
    receiver.default = (503, {}, 0.0, b"down")
    await api.publish({"type": EVENT})

    items = await api.wait_for_deliveries(hook["uid"], 1)

    assert items[0]["status"] == "failed"
    assert items[0]["attempt_count"] == 1
    assert len(items[0]["attempts"]) == 1
    assert items[0]["last_status_code"] == 503
    await receiver.wait_for(2, timeout=0.5)
    assert len(receiver.requests) == 1


async def test_retries_stop_after_max_retries(api: Api, receiver: Receiver) -> None:
    hook = await api.create_webhook(url=receiver.url(), max_retries=2)
    receiver.default = (500, {}, 0.0, b"")
    await api.publish({"type": EVENT})

    items = await api.wait_for_deliveries(hook["uid"], 1)

    assert items[0]["status"] == "failed"
    assert [a["number"] for a in items[0]["attempts"]] == [1, 2, 3]


async def test_a_timeout_is_recorded_after_about_the_webhook_timeout(
    api: Api, receiver: Receiver
) -> None:
    hook = await api.create_webhook(url=receiver.url(), timeout=1000, max_retries=0)
    receiver.answer("/hook", 200, delay=3.0)
    await api.publish({"type": EVENT})

    items = await api.wait_for_deliveries(hook["uid"], 1)

    attempt = items[0]["attempts"][0]
    assert items[0]["status"] == "failed"
    assert attempt["status_code"] is None
    assert "timed out" in attempt["error"]
    assert 900 <= attempt["duration_ms"] < 2500


async def test_retry_after_is_honoured(
    make_settings: Any, receiver: Receiver, api_factory: Any
) -> None:
    api = await api_factory(make_settings(retry_schedule="50ms"))
    hook = await api.create_webhook(url=receiver.url(), max_retries=1)
    receiver.answer("/hook", 429, headers={"Retry-After": "1"})
    await api.publish({"type": EVENT})

    items = await api.wait_for_deliveries(hook["uid"], 1)

    assert items[0]["status"] == "succeeded"
    first, second = receiver.requests
    assert second.at - first.at >= 0.95


async def test_retry_schedule_delays_apply(
    make_settings: Any, receiver: Receiver, api_factory: Any
) -> None:
    api = await api_factory(make_settings(retry_schedule="600ms"))
    hook = await api.create_webhook(url=receiver.url(), max_retries=1)
    receiver.answer("/hook", 500)
    await api.publish({"type": EVENT})

    await api.wait_for_deliveries(hook["uid"], 1)

    first, second = receiver.requests
    assert second.at - first.at >= 0.5  # 600 ms less 10 % jitter


async def test_manual_retry_sends_a_finished_delivery_again(api: Api, receiver: Receiver) -> None:
    hook = await api.create_webhook(url=receiver.url(), max_retries=0)
    receiver.answer("/hook", 500)
    await api.publish({"type": EVENT})
    [failed] = await api.wait_for_deliveries(hook["uid"], 1)
    assert failed["status"] == "failed"

    response = await api.client.post(f"/api/v1/deliveries/{failed['id']}/retry", headers=api.admin)
    assert response.status_code == 202
    assert response.json()["status"] == "pending"

    [delivery] = await api.wait_for_deliveries(hook["uid"], 1, states=("succeeded",))
    assert delivery["status"] == "succeeded"
    assert [a["status_code"] for a in delivery["attempts"]] == [500, 200]
    assert receiver.requests[1].headers["X-Hookd-Attempt"] == "2"


async def test_manual_retry_of_an_unknown_delivery(api: Api) -> None:
    for bad in ("999999", "abc", "0x1"):
        response = await api.client.post(f"/api/v1/deliveries/{bad}/retry", headers=api.admin)
        assert response.status_code == 400
        assert response.json() == {"error": "Wrong delivery id"}


async def test_publish_is_idempotent_on_the_event_id(api: Api, receiver: Receiver) -> None:
    hook = await api.create_webhook(url=receiver.url())
    first = await api.publish({"type": EVENT, "id": "same-id"})
    again = await api.publish({"type": EVENT, "id": "same-id"})
    batch = await api.publish([{"type": EVENT, "id": "same-id"}, {"type": EVENT, "id": "new"}])

    assert first == again == {"ids": ["same-id"], "deliveries": 1}
    assert batch == {"ids": ["same-id", "new"], "deliveries": 2}
    await api.wait_for_deliveries(hook["uid"], 2)
    await receiver.wait_for(3, timeout=0.5)
    assert sorted(r.headers["webhook-id"] for r in receiver.requests) == ["new", "same-id"]


async def test_repeated_id_inside_one_batch_is_stored_once(api: Api, receiver: Receiver) -> None:
    hook = await api.create_webhook(url=receiver.url())
    result = await api.publish([{"type": EVENT, "id": "x"}, {"type": EVENT, "id": "x"}])
    assert result == {"ids": ["x", "x"], "deliveries": 2}
    items = await api.wait_for_deliveries(hook["uid"], 1)
    assert len(items) == 1


async def test_a_webhook_that_keeps_failing_is_disabled(
    make_settings: Any, receiver: Receiver, api_factory: Any
) -> None:
    api = await api_factory(make_settings(disable_after="0s"))
    hook = await api.create_webhook(url=receiver.url(), max_retries=0)
    receiver.default = (500, {}, 0.0, b"")
    await api.publish({"type": EVENT})
    await api.wait_for_deliveries(hook["uid"], 1)

    response = await api.client.get(f"/api/v1/webhooks/{hook['uid']}", headers=api.admin)
    entity = response.json()
    assert entity["status"] == "disabled"
    assert "failed" in entity["disabled_reason"]
    assert (await api.publish({"type": EVENT}))["deliveries"] == 0

    enabled = await api.client.patch(
        f"/api/v1/webhooks/{hook['uid']}", json={"status": "active"}, headers=api.admin
    )
    assert enabled.json()["status"] == "active"
    assert enabled.json()["disabled_reason"] is None


async def test_a_webhook_that_recovers_is_not_disabled(
    make_settings: Any, receiver: Receiver, api_factory: Any
) -> None:
    api = await api_factory(make_settings(disable_after="1h"))
    hook = await api.create_webhook(url=receiver.url(), max_retries=0)
    receiver.answer("/hook", 500)
    await api.publish({"type": EVENT})
    await api.wait_for_deliveries(hook["uid"], 1)
    entity = (await api.client.get(f"/api/v1/webhooks/{hook['uid']}", headers=api.admin)).json()
    assert entity["status"] == "active"


async def test_the_ssrf_guard_refuses_loopback_unless_allowed(
    make_settings: Any, receiver: Receiver, api_factory: Any
) -> None:
    guarded = await api_factory(make_settings(allow_targets=""))
    by_name = await guarded.create_webhook(url=f"http://localhost:{receiver.port}/n", max_retries=0)
    by_ip = await guarded.create_webhook(url=receiver.url("/ip"), max_retries=0)
    await guarded.publish({"type": EVENT})

    for hook in (by_name, by_ip):
        [delivery] = await guarded.wait_for_deliveries(hook["uid"], 1)
        assert delivery["status"] == "failed"
        error = delivery["attempts"][0]["error"]
        assert error.startswith("refused by the SSRF guard: "), error
        assert "loopback" in error
        # It names the setting that lets a user deliver to this machine.
        assert error.endswith(
            "; to deliver there, list its network in HOOKD_ALLOW_TARGETS "
            "(127.0.0.0/8 for this machine) and restart hookd"
        )
    assert receiver.requests == []


async def test_the_ssrf_guard_lets_allowed_targets_through(api: Api, receiver: Receiver) -> None:
    # The `api` fixture allows 127.0.0.0/8 and ::1.
    hook = await api.create_webhook(url=f"http://localhost:{receiver.port}/n")
    await api.publish({"type": EVENT})
    [delivery] = await api.wait_for_deliveries(hook["uid"], 1)
    assert delivery["status"] == "succeeded"
    assert len(receiver.requests) == 1


async def test_connection_refused_is_a_failed_attempt(api: Api, unused_port: int) -> None:
    hook = await api.create_webhook(url=f"http://127.0.0.1:{unused_port}/", max_retries=0)
    await api.publish({"type": EVENT})
    [delivery] = await api.wait_for_deliveries(hook["uid"], 1)
    assert delivery["status"] == "failed"
    assert "connection failed" in delivery["attempts"][0]["error"]


async def test_a_huge_answer_is_stored_capped(api: Api, receiver: Receiver) -> None:
    hook = await api.create_webhook(url=receiver.url())
    receiver.answer("/hook", 200, body=b"x" * 1_000_000)
    await api.publish({"type": EVENT})
    [delivery] = await api.wait_for_deliveries(hook["uid"], 1)
    assert delivery["status"] == "succeeded"
    assert len(delivery["attempts"][0]["response_body"]) == 4096


async def test_a_redirect_is_not_followed(api: Api, receiver: Receiver) -> None:
    hook = await api.create_webhook(url=receiver.url(), max_retries=0)
    receiver.answer("/hook", 302, headers={"Location": receiver.url("/elsewhere")})
    await api.publish({"type": EVENT})
    [delivery] = await api.wait_for_deliveries(hook["uid"], 1)
    assert delivery["status"] == "failed"
    assert delivery["attempts"][0]["status_code"] == 302
    assert receiver.at("/elsewhere") == []


async def test_delivery_log_filters_and_pages(api: Api, receiver: Receiver) -> None:
    hook = await api.create_webhook(url=receiver.url(), max_retries=0)
    receiver.answer("/hook", 500)
    await api.publish([{"type": EVENT, "id": f"e{i}"} for i in range(3)])
    await api.wait_for_deliveries(hook["uid"], 3)

    newest_first = await api.deliveries(hook["uid"])
    assert [d["event_id"] for d in newest_first] == ["e2", "e1", "e0"]
    assert len(await api.deliveries(hook["uid"], status="failed")) == 1
    assert len(await api.deliveries(hook["uid"], status="succeeded")) == 2
    page = await api.deliveries(hook["uid"], limit=1, offset=1)
    assert [d["event_id"] for d in page] == ["e1"]
    bad = await api.client.get(
        f"/api/v1/webhooks/{hook['uid']}/deliveries?status=lost", headers=api.admin
    )
    assert bad.status_code == 400
    assert bad.json()["error"].startswith("status:")


async def test_test_send_returns_what_came_back(api: Api, receiver: Receiver) -> None:
    hook = await api.create_webhook(url=receiver.url(), secret=SECRET)
    receiver.answer("/hook", 418, body=b"teapot")
    response = await api.client.post(f"/api/v1/webhooks/{hook['uid']}/test", headers=api.admin)
    assert response.status_code == 200
    result = response.json()
    assert result["status_code"] == 418
    assert result["response_body"] == "teapot"
    assert result["error"] is None
    assert result["duration_ms"] >= 0
    request = receiver.requests[0]
    headers = {name.lower(): value for name, value in request.headers.items()}
    assert StandardWebhook(SECRET).verify(request.body, headers)["type"] == "hookd.test"


async def test_test_send_reports_a_connection_error(api: Api, unused_port: int) -> None:
    hook = await api.create_webhook(url=f"http://127.0.0.1:{unused_port}/")
    response = await api.client.post(f"/api/v1/webhooks/{hook['uid']}/test", headers=api.admin)
    assert response.status_code == 200
    assert response.json()["status_code"] is None
    assert "connection failed" in response.json()["error"]


@pytest.mark.parametrize(
    ("body", "status", "message"),
    [
        ({"type": "log.no_such_event"}, 400, "type: 'log.no_such_event' is not a known event type"),
        ({"data": {}}, 400, "type: is required and must be a string"),
        ({"type": EVENT, "data": [1]}, 400, "data: must be a JSON object"),
        ({"type": EVENT, "id": ""}, 400, "id: must be a string of 1 to 255 characters"),
        ({"type": EVENT, "id": "x" * 256}, 400, "id: must be a string of 1 to 255 characters"),
        ({"type": EVENT, "id": "ordré-1"}, 400, "id: must hold printable ASCII characters only"),
        ({"type": EVENT, "extra": 1}, 400, "extra: is not a field of an event"),
        ([], 400, "body: must hold 1 to 1000 events"),
        ([{"type": EVENT}] * 1001, 400, "body: must hold 1 to 1000 events"),
        ([{"type": EVENT}, {"type": "nope"}], 400, "[1].type: 'nope' is not a known event type"),
        ("text", 400, "body: must be an event object or a JSON array of events"),
    ],
)
async def test_bad_events_are_refused_and_nothing_is_written(
    api: Api, receiver: Receiver, body: Any, status: int, message: str
) -> None:
    hook = await api.create_webhook(url=receiver.url())
    response = await api.client.post("/api/v1/events", json=body, headers=api.user)
    assert response.status_code == status
    assert response.json() == {"error": message}
    assert await api.deliveries(hook["uid"]) == []


async def test_an_event_over_the_size_limit_gets_413(api: Api, receiver: Receiver) -> None:
    hook = await api.create_webhook(url=receiver.url())
    big = {"type": EVENT, "data": {"blob": "x" * (1024 * 1024)}}
    response = await api.client.post(
        "/api/v1/events", json=[{"type": EVENT}, big], headers=api.user
    )
    assert response.status_code == 413
    assert "larger than" in response.json()["error"]
    assert await api.deliveries(hook["uid"]) == []


async def test_publishing_needs_a_token(api: Api) -> None:
    response = await api.client.post("/api/v1/events", json={"type": EVENT})
    assert response.status_code == 401
    assert response.json() == {"error": "Log In"}


async def test_unparseable_publish_body(api: Api) -> None:
    response = await api.client.post(
        "/api/v1/events", content=b"{nope", headers={**api.user, "Content-Type": "application/json"}
    )
    assert response.status_code == 400
    assert response.json() == {"error": "Wrong JSON body"}


async def test_an_answer_with_nul_bytes_is_logged(api: Api, receiver: Receiver) -> None:
    hook = await api.create_webhook(url=receiver.url())
    receiver.answer("/hook", 200, body=b"a\x00b\xff")
    await api.publish({"type": EVENT})
    [delivery] = await api.wait_for_deliveries(hook["uid"], 1)
    assert delivery["status"] == "succeeded"
    assert delivery["attempts"][0]["response_body"] == "a\ufffdb\ufffd"


async def test_deleting_a_webhook_deletes_its_log(api: Api, receiver: Receiver, db: Any) -> None:
    hook = await api.create_webhook(url=receiver.url())
    await api.publish({"type": EVENT})
    await api.wait_for_deliveries(hook["uid"], 1)
    response = await api.client.delete(f"/api/v1/webhooks/{hook['uid']}", headers=api.admin)
    assert response.status_code == 204
    from sqlalchemy import text

    async with db.read() as conn:
        left = (await conn.execute(text("SELECT count(*) FROM deliveries"))).scalar_one()
        attempts = (await conn.execute(text("SELECT count(*) FROM attempts"))).scalar_one()
    assert (left, attempts) == (0, 0)


async def test_a_burst_is_delivered_once_each_without_waiting_for_leases(
    make_settings: Any, api_factory: Any, receiver: Receiver
) -> None:
    # With an hour-long lease, a delivery whose outcome the worker lost would stay claimed.
    api = await api_factory(make_settings(worker_lease="1h", worker_concurrency=32))
    hooks = [await api.create_webhook(url=receiver.url(f"/burst/{n}")) for n in range(4)]
    for start in range(0, 400, 100):
        await api.publish([{"type": EVENT, "id": f"b{n}"} for n in range(start, start + 100)])

    await receiver.wait_for(1600, timeout=60)
    for hook in hooks:
        items = await api.wait_for_deliveries(hook["uid"], 400, timeout=30)
        assert [d["status"] for d in items].count("succeeded") == 400
        assert all(d["attempt_count"] == 1 for d in items)
    assert len(receiver.requests) == 1600
