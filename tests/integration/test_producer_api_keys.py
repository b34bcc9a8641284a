"""Producers' API keys, on each backend: created by an admin and shown once, they publish (only
the types they were given), are refused everywhere else and after revocation, and are never
stored in clear."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from sqlalchemy import LargeBinary, String, Text, select
from standardwebhooks.webhooks import Webhook as StandardWebhook

from hookd.store.database import Database
from hookd.store.schema import metadata
from support import Api, Receiver, assert_error, assert_field_error

EVENT = "log.door_was_opened"
SECRET = "0123456789abcdef"


async def new_key(api: Api, **body: Any) -> dict[str, Any]:
    response = await api.client.post(
        "/api/v1/api-keys", json={"name": "shop", **body}, headers=api.admin
    )
    assert response.status_code == 201, response.text
    return response.json()  # type: ignore[no-any-return]


def bearer(key: dict[str, Any]) -> dict[str, str]:
    return {"Authorization": f"Bearer {key['key']}"}


async def publish(api: Api, key: dict[str, Any], events: Any) -> httpx.Response:
    return await api.client.post("/api/v1/events", json=events, headers=bearer(key))


async def test_a_key_publishes_and_its_events_are_delivered(api: Api, receiver: Receiver) -> None:
    hook = await api.create_webhook(url=receiver.url(), secret=SECRET)
    key = await new_key(api)
    assert set(key) == {"id", "name", "key", "event_types", "created_at"}
    assert key["key"].startswith("hk_") and key["event_types"] is None

    published = await publish(api, key, {"type": EVENT, "data": {"door": 1}})

    assert published.status_code == 202, published.text
    assert published.json()["deliveries"] == 1
    await receiver.wait_for(1)
    request = receiver.requests[0]
    headers = {name.lower(): value for name, value in request.headers.items()}
    delivered = StandardWebhook(SECRET).verify(request.body, headers)
    assert delivered["type"] == EVENT and delivered["data"] == {"door": 1}
    [delivery] = await api.wait_for_deliveries(hook["uid"], 1)
    assert delivery["status"] == "succeeded"


async def test_a_revoked_key_gets_401(api: Api) -> None:
    key = await new_key(api)
    assert (await publish(api, key, {"type": EVENT})).status_code == 202

    revoked = await api.client.delete(f"/api/v1/api-keys/{key['id']}", headers=api.admin)

    assert revoked.status_code == 204, revoked.text
    assert_error(await publish(api, key, {"type": EVENT}), 401, "Log In")
    again = await api.client.delete(f"/api/v1/api-keys/{key['id']}", headers=api.admin)
    assert_error(again, 404, "No such API key")
    listed = await api.client.get("/api/v1/api-keys", headers=api.admin)
    assert listed.json() == {"items": [], "total": 0}


async def test_an_unknown_key_gets_401(api: Api) -> None:
    unknown = {"key": "hk_" + "x" * 43}
    assert_error(await publish(api, unknown, {"type": EVENT}), 401, "Log In")
    listing = await api.client.get("/api/v1/webhooks", headers=bearer(unknown))
    assert_error(listing, 401, "Log In")


async def test_a_key_publishes_only_its_types(api: Api, receiver: Receiver) -> None:
    await api.client.post("/api/v1/event-types", json={"name": "order.created"}, headers=api.admin)
    await api.create_webhook(url=receiver.url(), event_types=[EVENT, "order.*"])
    key = await new_key(api, event_types=[EVENT, "order.*"])
    assert key["event_types"] == [EVENT, "order.*"]

    assert (await publish(api, key, {"type": EVENT})).status_code == 202
    assert (await publish(api, key, {"type": "order.created"})).status_code == 202
    refused = await publish(api, key, [{"type": EVENT}, {"type": "log.door_was_closed"}])

    assert_error(refused, 403, "This API key may not publish 'log.door_was_closed'")
    await receiver.wait_for(2)
    assert sorted(r.json()["type"] for r in receiver.requests) == [EVENT, "order.created"]


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/api/v1/webhooks"),
        ("POST", "/api/v1/webhooks"),
        ("GET", "/api/v1/api-keys"),
        ("POST", "/api/v1/api-keys"),
        ("GET", "/api/v1/event-types"),
        ("POST", "/api/v1/logout"),
    ],
)
async def test_a_key_on_any_other_route_gets_403(api: Api, method: str, path: str) -> None:
    key = await new_key(api)
    response = await api.client.request(method, path, json={}, headers=bearer(key))
    assert_error(response, 403, "An API key may only publish events (POST /api/v1/events)")


async def test_a_key_on_the_repository_dialect_gets_its_403(api: Api) -> None:
    key = await new_key(api)
    response = await api.client.put("/r/repo1", json={"name": "r"}, headers=bearer(key))
    assert response.status_code == 403, response.text
    assert response.json()["code"] == 403


async def test_the_list_shows_no_key(api: Api) -> None:
    first = await new_key(api, name="shop")
    second = await new_key(api, name="billing", event_types=["log.*"])

    listed = (await api.client.get("/api/v1/api-keys", headers=api.admin)).json()

    assert listed["total"] == 2
    assert [item["name"] for item in listed["items"]] == ["shop", "billing"]
    for item, key in zip(listed["items"], (first, second), strict=True):
        assert set(item) == {"id", "name", "prefix", "event_types", "created_at"}
        assert item["id"] == key["id"]
        assert key["key"].startswith(item["prefix"]) and len(item["prefix"]) == 11
        assert key["key"] not in str(listed)
    assert listed["items"][1]["event_types"] == ["log.*"]
    user_listing = await api.client.get("/api/v1/api-keys", headers=api.user)
    assert_error(user_listing, 403, "Administrator rights required")


async def test_no_key_is_stored_in_clear(api: Api, receiver: Receiver, db: Database) -> None:
    await api.create_webhook(url=receiver.url())
    key = await new_key(api, event_types=[EVENT])
    assert (await publish(api, key, {"type": EVENT, "id": "e-1"})).status_code == 202
    await receiver.wait_for(1)
    secret_part = key["key"][11:]

    scanned = 0
    async with db.read() as conn:
        for table in metadata.sorted_tables:
            columns = [
                column
                for column in table.columns
                if isinstance(column.type, String | Text | LargeBinary)
            ]
            if not columns:
                continue
            for row in await conn.execute(select(*columns)):
                for value in row:
                    text = value.decode(errors="replace") if isinstance(value, bytes) else value
                    if text is not None:
                        scanned += 1
                        assert secret_part not in text, (table.name, text)
    assert scanned > 10


async def test_ids_are_the_keys_own(api: Api, receiver: Receiver) -> None:
    """Idempotency is per producer: a key's ids never silence its creator's, or another key's."""
    await api.create_webhook(url=receiver.url())
    one, two = await new_key(api), await new_key(api)
    results = [
        (await publish(api, one, {"type": EVENT, "id": "same"})).json(),
        (await publish(api, two, {"type": EVENT, "id": "same"})).json(),
        await api.publish({"type": EVENT, "id": "same"}),
        (await publish(api, one, {"type": EVENT, "id": "same"})).json(),
    ]
    assert [result["deliveries"] for result in results] == [1, 1, 1, 1]
    await receiver.wait_for(3)
    assert len(receiver.requests) == 3


@pytest.mark.parametrize(
    ("body", "field", "says"),
    [
        ({"name": ""}, "name", "must not be empty"),
        ({"name": "a\nb"}, "name", "control characters"),
        ({"name": "x" * 101}, "name", "at most 100"),
        ({"name": 7}, "name", "must be a string"),
        ({}, "name", "is required"),
        ({"name": "k", "event_types": []}, "event_types", "at least 1"),
        ({"name": "k", "event_types": ["*"]}, "event_types", "not a wildcard"),
        ({"name": "k", "event_types": ["hookd.*"]}, "event_types", "hookd's own"),
        ({"name": "k", "event_types": ["hookd.webhook.disabled"]}, "event_types", "own"),
        ({"name": "k", "event_types": ["no.such_type"]}, "event_types", "not a known"),
        ({"name": "k", "event_types": [EVENT, EVENT]}, "event_types", "repeat"),
        ({"name": "k", "extra": 1}, "extra", "not a field"),
    ],
)
async def test_bad_keys_are_refused_and_change_nothing(
    api: Api, body: dict[str, Any], field: str, says: str
) -> None:
    response = await api.client.post("/api/v1/api-keys", json=body, headers=api.admin)
    assert_field_error(response, field, says)
    listed = await api.client.get("/api/v1/api-keys", headers=api.admin)
    assert listed.json()["total"] == 0


async def test_wrong_key_ids(api: Api) -> None:
    for raw in ("0", "abc", "1" * 30):
        response = await api.client.delete(f"/api/v1/api-keys/{raw}", headers=api.admin)
        assert_error(response, 400, "Wrong API key id")
    assert_error(
        await api.client.delete("/api/v1/api-keys/99", headers=api.admin), 404, "No such API key"
    )
