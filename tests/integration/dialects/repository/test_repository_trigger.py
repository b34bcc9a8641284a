"""Repository dialect triggers on each backend, against a real receiver on 127.0.0.1:
queued (non-blocking) events, validation hooks (blocking), restrictions, retries, the log."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import orjson
import pytest

from hookd.dialects.repository import store as repository_store
from hookd.domain.webhook import Webhook
from hookd.store import deliveries
from hookd.store.database import Database
from support import Api, Receiver


async def put_repo(api: Api, repo: str = "repo1", **body: Any) -> None:
    response = await api.client.put(f"/r/{repo}", json={"name": repo, **body}, headers=api.admin)
    assert response.status_code in (200, 201), response.text


async def create_hook(
    api: Api, receiver: Receiver, event: str, path: str = "/hook", **fields: Any
) -> dict[str, Any]:
    body = {
        "uri": receiver.url(path),
        "description": f"hook at {path}",
        "handleResponse": "STATUS",
        "enabled": True,
        **fields,
    }
    response = await api.client.post(f"/r/repo1/events/{event}", json=body, headers=api.admin)
    assert response.status_code == 201, response.text
    return response.json()  # type: ignore[no-any-return]


async def trigger(
    api: Api, event: str, body: Any = None, status: int | None = None, repo: str = "repo1"
) -> dict[str, Any]:
    response = await api.client.post(
        f"/r/{repo}/events/{event}/trigger",
        content=b"" if body is None else orjson.dumps(body),
        headers={**api.user, "Content-Type": "application/json"},
    )
    if status is not None:
        assert response.status_code == status, response.text
    return response.json()  # type: ignore[no-any-return]


async def internal(db: Database, public_id: str) -> Webhook:
    found = await repository_store.get_webhook(db, public_id)
    assert found is not None
    return found.webhook


async def logged(db: Database, public_id: str, count: int) -> list[deliveries.Delivery]:
    """Poll the delivery log until `count` finished deliveries of the webhook are there."""
    webhook = await internal(db, public_id)
    deadline = time.monotonic() + 10
    while True:
        found, _ = await deliveries.list_deliveries(db, webhook.id, state=None, limit=100, offset=0)
        done = [d for d in found if d.state in ("succeeded", "failed")]
        if len(done) >= count or time.monotonic() > deadline:
            return found
        await asyncio.sleep(0.05)


# --- non-blocking: queued and delivered by the embedded worker ----------------------------------


async def test_a_non_blocking_trigger_is_delivered_as_the_contract_says(
    api: Api, receiver: Receiver, db: Database
) -> None:
    await put_repo(api)
    hook = await create_hook(api, receiver, "document.created", apiKey="cryptoKey")
    await create_hook(api, receiver, "document.created", "/off", enabled=False)
    await create_hook(api, receiver, "document.updated", "/other")
    data = {"document": {"id": "D1", "title": "Invoice 42"}}
    answer = await trigger(api, "document.created", {"category": "invoices", "data": data}, 202)
    assert set(answer) == {"id", "deliveries"}
    assert answer["deliveries"] == 1
    await receiver.wait_for(1, "/hook")
    [received] = receiver.at("/hook")
    body = received.json()
    assert list(body) == ["id", "type", "created_at", "repository", "category", "data"]
    assert body["id"] == answer["id"]
    assert body["type"] == "document.created"
    assert body["repository"] == "repo1"
    assert body["category"] == "invoices"
    assert body["data"] == data
    assert body["created_at"].endswith("Z")
    assert received.headers["Authorization"] == "Bearer cryptoKey"
    assert received.headers["webhook-id"] == answer["id"]
    assert received.headers["Content-Type"] == "application/json"
    assert received.headers["X-Hookd-Attempt"] == "1"
    [delivery] = await logged(db, hook["id"], 1)
    assert delivery.state == "succeeded"
    assert delivery.event_id == answer["id"]
    await asyncio.sleep(0.2)
    assert receiver.at("/off") == [] and receiver.at("/other") == []


async def test_a_trigger_without_body_or_category(api: Api, receiver: Receiver) -> None:
    await put_repo(api)
    await create_hook(api, receiver, "dossier.deleted")
    answer = await trigger(api, "dossier.deleted", None, 202)
    assert answer["deliveries"] == 1
    await receiver.wait_for(1)
    body = receiver.requests[0].json()
    assert "category" not in body
    assert body["data"] == {}
    assert "Authorization" not in receiver.requests[0].headers


async def test_the_trigger_id_is_an_idempotency_key(
    api: Api, receiver: Receiver, db: Database
) -> None:
    await put_repo(api)
    hook = await create_hook(api, receiver, "document.created")
    other = await create_hook(api, receiver, "document.updated", "/updated")
    first = await trigger(api, "document.created", {"id": "change-1", "data": {"n": 1}}, 202)
    again = await trigger(api, "document.created", {"id": "change-1", "data": {"n": 2}}, 202)
    assert first == again == {"id": "change-1", "deliveries": 1}
    # The key belongs to the repository event: another event may use the same id.
    assert await trigger(api, "document.updated", {"id": "change-1"}, 202) == first
    await logged(db, hook["id"], 1)
    await logged(db, other["id"], 1)
    await asyncio.sleep(0.3)
    assert [r.json()["data"] for r in receiver.at("/hook")] == [{"n": 1}]
    assert len(receiver.at("/updated")) == 1
    assert receiver.at("/hook")[0].headers["webhook-id"] == "change-1"


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        ({"data": []}, "data: must be a JSON object"),
        ({"category": 7}, "category: "),
        ({"category": ""}, "category: "),
        ({"category": "nul\u0000"}, "category: "),
        ({"id": ""}, "id: "),
        ({"type": "x"}, "type: is not a field of a trigger"),
        ([], "body: must be a JSON object"),
    ],
)
async def test_bad_triggers_are_refused(
    api: Api, receiver: Receiver, body: Any, reason: str
) -> None:
    await put_repo(api)
    await create_hook(api, receiver, "document.created")
    response = await api.client.post(
        "/r/repo1/events/document.created/trigger", json=body, headers=api.user
    )
    assert response.status_code == 400
    assert response.json()["code"] == 400
    assert response.json()["reason"].startswith(reason)
    response = await api.client.post("/r/repo1/events/document.created/trigger", json={})
    assert response.status_code == 401
    assert response.json()["code"] == 401
    # 401 whatever the path names, and before the Accept header is looked at.
    response = await api.client.post(
        "/r/nope/events/nope/trigger", json={}, headers={"Accept": "text/html"}
    )
    assert response.status_code == 401
    assert response.json()["code"] == 401
    response = await api.client.post(
        "/r/repo1/events/document.created/trigger",
        json={},
        headers={**api.user, "Accept": "text/html"},
    )
    assert response.status_code == 406
    assert response.json()["code"] == 406
    await asyncio.sleep(0.2)
    assert receiver.requests == []


async def test_queued_retries_follow_retry(api: Api, receiver: Receiver, db: Database) -> None:
    await put_repo(api)
    retrying = await create_hook(api, receiver, "document.created", "/retrying")
    once = await create_hook(api, receiver, "document.created", "/once", retry=False)
    for _ in range(6):
        receiver.answer("/retrying", 500)
        receiver.answer("/once", 500)
    await trigger(api, "document.created", {}, 202)
    [delivery] = await logged(db, retrying["id"], 1)
    assert delivery.state == "failed"
    assert [a.number for a in delivery.attempt_log] == [1, 2, 3, 4]
    [single] = await logged(db, once["id"], 1)
    assert single.state == "failed" and single.attempts == 1
    await asyncio.sleep(0.3)
    assert len(receiver.at("/retrying")) == 4
    assert len(receiver.at("/once")) == 1


# --- restrictions ---------------------------------------------------------------------------------


def restricted(*categories: str) -> list[dict[str, str]]:
    return [{"key": "CATEGORY", "value": category} for category in categories]


async def test_restrictions_filter_queued_deliveries(api: Api, receiver: Receiver) -> None:
    await put_repo(api)
    await create_hook(api, receiver, "document.created", "/all")
    await create_hook(
        api, receiver, "document.created", "/invoices", restrictions=restricted("inv", "bill")
    )
    assert (await trigger(api, "document.created", {"category": "bill"}, 202))["deliveries"] == 2
    assert (await trigger(api, "document.created", {"category": "memo"}, 202))["deliveries"] == 1
    assert (await trigger(api, "document.created", {}, 202))["deliveries"] == 1
    await receiver.wait_for(3, "/all")
    await receiver.wait_for(1, "/invoices")
    await asyncio.sleep(0.2)
    assert [r.json()["category"] for r in receiver.at("/invoices")] == ["bill"]


async def test_restrictions_filter_validation_hooks(api: Api, receiver: Receiver) -> None:
    await put_repo(api)
    everything = await create_hook(api, receiver, "document.beforecreate", "/all")
    invoices = await create_hook(
        api, receiver, "document.beforecreate", "/invoices", restrictions=restricted("inv")
    )
    receiver.answer("/invoices", 422)
    answer = await trigger(api, "document.beforecreate", {"category": "memo"}, 200)
    assert answer["allowed"] is True
    assert [r["webhook"] for r in answer["results"]] == [everything["id"]]
    answer = await trigger(api, "document.beforecreate", {"category": "inv"}, 200)
    assert answer["allowed"] is False
    assert [r["webhook"] for r in answer["results"]] == [everything["id"], invoices["id"]]


# --- blocking: validation hooks -------------------------------------------------------------------


async def test_each_handle_response_mode(api: Api, receiver: Receiver) -> None:
    await put_repo(api)
    status = await create_hook(api, receiver, "document.beforecreate", "/status", apiKey="k-1")
    with_json = await create_hook(
        api, receiver, "document.beforecreate", "/json", handleResponse="STATUS_AND_BODY"
    )
    with_text = await create_hook(
        api, receiver, "document.beforecreate", "/text", handleResponse="STATUS_AND_BODY"
    )
    await create_hook(api, receiver, "document.beforecreate", "/none", handleResponse="NONE")
    await create_hook(api, receiver, "document.beforecreate", "/disabled", enabled=False)
    receiver.answer("/status", 200, body=b'{"ignored": true}')
    receiver.answer("/json", 201, body=b'{"checked": ["amount", "vat"]}')
    receiver.answer("/text", 204)
    receiver.answer("/none", 500)  # NONE never vetoes
    data = {"invoice": {"amount": 12}}
    answer = await trigger(api, "document.beforecreate", {"data": data, "category": "inv"}, 200)
    assert answer["allowed"] is True
    assert answer["id"].startswith("evt_")
    by_hook = {result["webhook"]: result for result in answer["results"]}
    assert list(by_hook) == [status["id"], with_json["id"], with_text["id"]]
    assert set(by_hook[status["id"]]) == {"webhook", "status_code", "duration_ms", "attempts"}
    assert by_hook[status["id"]]["status_code"] == 200
    assert by_hook[with_json["id"]]["body"] == {"checked": ["amount", "vat"]}
    assert by_hook[with_json["id"]]["status_code"] == 201
    assert by_hook[with_text["id"]]["body"] == ""
    for result in answer["results"]:
        assert "error" not in result
        assert result["duration_ms"] >= 0
    call = receiver.at("/status")[0]
    assert call.headers["Authorization"] == "Bearer k-1"
    assert call.json()["data"] == data and call.json()["category"] == "inv"
    assert call.json()["type"] == "document.beforecreate"
    assert call.json()["repository"] == "repo1"
    assert call.headers["webhook-id"] == answer["id"]
    await receiver.wait_for(1, "/none")
    assert receiver.at("/none")[0].json()["id"] == answer["id"]
    await asyncio.sleep(0.2)
    assert receiver.at("/disabled") == []


async def test_a_text_body_comes_back_as_text(api: Api, receiver: Receiver) -> None:
    await put_repo(api)
    await create_hook(
        api, receiver, "document.beforeupdate", "/text", handleResponse="STATUS_AND_BODY"
    )
    receiver.answer("/text", 422, body=b"amount missing")
    answer = await trigger(api, "document.beforeupdate", {}, 200)
    assert answer["allowed"] is False
    assert answer["results"][0]["body"] == "amount missing"
    assert answer["results"][0]["status_code"] == 422


async def test_a_veto_by_status_stops_the_chain(api: Api, receiver: Receiver) -> None:
    await put_repo(api)
    first = await create_hook(api, receiver, "document.beforedelete", "/first")
    await create_hook(api, receiver, "document.beforedelete", "/second")
    receiver.answer("/first", 422)
    answer = await trigger(api, "document.beforedelete", {}, 200)
    assert answer["allowed"] is False
    assert answer["results"] == [
        {
            "webhook": first["id"],
            "status_code": 422,
            "duration_ms": answer["results"][0]["duration_ms"],
            "attempts": 1,  # a 4xx is an answer: not tried again
        }
    ]
    assert len(receiver.at("/first")) == 1
    assert receiver.at("/second") == []
    # Without a veto the chain goes on.
    answer = await trigger(api, "document.beforedelete", {}, 200)
    assert answer["allowed"] is True
    assert len(answer["results"]) == 2
    assert len(receiver.at("/second")) == 1


async def test_a_redirect_vetoes(api: Api, receiver: Receiver) -> None:
    await put_repo(api)
    await create_hook(api, receiver, "dossier.beforecreate", "/moved")
    receiver.answer("/moved", 302, headers={"Location": receiver.url("/elsewhere")})
    answer = await trigger(api, "dossier.beforecreate", {}, 200)
    assert answer["allowed"] is False
    assert answer["results"][0]["status_code"] == 302
    assert receiver.at("/elsewhere") == []


async def test_a_veto_by_timeout_answers_after_the_timeout(api: Api, receiver: Receiver) -> None:
    await put_repo(api)
    slow = await create_hook(
        api, receiver, "document.beforecreate", "/slow", timeout=300, retry=False
    )
    await create_hook(api, receiver, "document.beforecreate", "/after")
    delay = 1.5
    receiver.answer("/slow", 200, delay=delay)
    started = time.monotonic()
    answer = await trigger(api, "document.beforecreate", {}, 200)
    elapsed = time.monotonic() - started
    assert elapsed < delay, elapsed
    assert elapsed >= 0.3
    assert answer["allowed"] is False
    [result] = answer["results"]
    assert result["webhook"] == slow["id"]
    assert result["status_code"] is None
    assert "timed out" in result["error"]
    assert receiver.at("/after") == []


async def test_blocking_retries_follow_retry(api: Api, receiver: Receiver) -> None:
    await put_repo(api)
    await create_hook(api, receiver, "document.beforecreate", "/retrying")
    for _ in range(5):
        receiver.answer("/retrying", 500)
    answer = await trigger(api, "document.beforecreate", {}, 200)
    assert answer["allowed"] is False
    assert answer["results"][0]["attempts"] == 4
    assert answer["results"][0]["status_code"] == 500
    calls = receiver.at("/retrying")
    assert len(calls) == 4
    assert [c.headers["X-Hookd-Attempt"] for c in calls] == ["1", "2", "3", "4"]
    assert len({c.headers["webhook-id"] for c in calls}) == 1

    await put_repo(api, "repo1")
    response = await api.client.get("/r/repo1/events/document.beforecreate", headers=api.admin)
    [hook] = response.json()["webhooks"]
    replaced = await api.client.put(
        f"/r/repo1/events/document.beforecreate/{hook['id']}",
        json={
            **{k: hook[k] for k in ("uri", "description", "handleResponse")},
            "enabled": True,
            "retry": False,
        },
        headers=api.admin,
    )
    assert replaced.status_code == 200
    receiver.requests.clear()
    receiver.answer("/retrying", 503)
    answer = await trigger(api, "document.beforecreate", {}, 200)
    assert answer["allowed"] is False
    assert answer["results"][0]["attempts"] == 1
    assert len(receiver.at("/retrying")) == 1


async def test_a_retry_can_turn_a_failure_into_an_answer(api: Api, receiver: Receiver) -> None:
    await put_repo(api)
    await create_hook(api, receiver, "document.beforecreate", "/flaky", timeout=200)
    receiver.answer("/flaky", 200, delay=1.0)  # times out
    receiver.answer("/flaky", 502)
    receiver.answer("/flaky", 200)
    started = time.monotonic()
    answer = await trigger(api, "document.beforecreate", {}, 200)
    assert time.monotonic() - started < 1.0
    assert answer["allowed"] is True
    assert answer["results"][0]["attempts"] == 3
    assert answer["results"][0]["status_code"] == 200
    assert "error" not in answer["results"][0]


async def test_a_connection_error_vetoes(api: Api, receiver: Receiver) -> None:
    await put_repo(api)
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    body = {
        "uri": f"http://127.0.0.1:{port}/nobody",
        "description": "nobody listens",
        "handleResponse": "STATUS",
        "enabled": True,
    }
    response = await api.client.post(
        "/r/repo1/events/document.beforecreate", json=body, headers=api.admin
    )
    assert response.status_code == 201
    answer = await trigger(api, "document.beforecreate", {}, 200)
    assert answer["allowed"] is False
    assert answer["results"][0]["attempts"] == 4
    assert answer["results"][0]["error"].startswith("connection failed")


async def test_no_validation_hooks_means_allowed(api: Api, receiver: Receiver) -> None:
    await put_repo(api)
    await create_hook(api, receiver, "dossier.beforeupdate", "/off", enabled=False)
    answer = await trigger(api, "dossier.beforeupdate", {"id": "same"}, 200)
    assert answer == {"id": "same", "allowed": True, "results": []}
    await asyncio.sleep(0.1)
    assert receiver.requests == []


async def test_an_event_made_blocking_validates(api: Api, receiver: Receiver) -> None:
    await put_repo(api)
    response = await api.client.put(
        "/r/repo1/events/invoice.check", json={"name": "Check", "blocking": True}, headers=api.admin
    )
    assert response.status_code == 201
    await create_hook(api, receiver, "invoice.check", "/check")
    receiver.answer("/check", 409)
    answer = await trigger(api, "invoice.check", {"id": "inv-1"}, 200)
    assert answer == {
        "id": "inv-1",
        "allowed": False,
        "results": [
            {
                "webhook": answer["results"][0]["webhook"],
                "status_code": 409,
                "duration_ms": answer["results"][0]["duration_ms"],
                "attempts": 1,
            }
        ],
    }
    # A validation is asked again on every trigger, even with the same id.
    assert (await trigger(api, "invoice.check", {"id": "inv-1"}, 200))["allowed"] is True
    assert len(receiver.at("/check")) == 2


async def test_synchronous_calls_are_in_the_delivery_log(
    api: Api, receiver: Receiver, db: Database
) -> None:
    await put_repo(api)
    passing = await create_hook(api, receiver, "document.beforecreate", "/passing")
    vetoing = await create_hook(
        api, receiver, "document.beforecreate", "/vetoing", handleResponse="STATUS_AND_BODY"
    )
    receiver.answer("/passing", 500, body=b"busy")
    receiver.answer("/passing", 200, body=b"fine")
    receiver.answer("/vetoing", 422, body=b'{"reason": "no VAT id"}')
    answer = await trigger(api, "document.beforecreate", {"data": {"n": 1}}, 200)
    assert answer["allowed"] is False

    [first] = await logged(db, passing["id"], 1)
    assert first.state == "succeeded"
    assert first.event_id == answer["id"]
    assert first.event_type == "repo1/document.beforecreate"
    assert first.attempts == 2
    assert first.last_status_code == 200
    log = first.attempt_log
    assert [(a.number, a.status_code, a.response_body) for a in log] == [
        (1, 500, "busy"),
        (2, 200, "fine"),
    ]
    assert all(a.duration_ms >= 0 and a.started_at > 0 for a in log)

    [second] = await logged(db, vetoing["id"], 1)
    assert second.state == "failed"
    assert second.attempts == 1
    assert second.attempt_log[0].status_code == 422
    assert second.attempt_log[0].response_body == '{"reason": "no VAT id"}'
    # Logged, not queued: the worker sends nothing more.
    await asyncio.sleep(0.3)
    assert len(receiver.at("/passing")) == 2
    assert len(receiver.at("/vetoing")) == 1


async def test_a_timed_out_call_is_logged_with_its_error(
    api: Api, receiver: Receiver, db: Database
) -> None:
    await put_repo(api)
    hook = await create_hook(api, receiver, "document.beforecreate", "/slow", timeout=100)
    for _ in range(4):
        receiver.answer("/slow", 200, delay=0.5)
    answer = await trigger(api, "document.beforecreate", {}, 200)
    assert answer["results"][0]["attempts"] == 4
    [delivery] = await logged(db, hook["id"], 1)
    assert delivery.state == "failed"
    assert delivery.attempts == 4
    assert delivery.last_status_code is None
    assert delivery.last_error is not None and "timed out" in delivery.last_error
    assert all(a.error and "timed out" in a.error for a in delivery.attempt_log)
