"""The device dialect's catalogue of event types, on each backend: administrators add their
own types and remove them, the built-in ones stay; webhooks subscribe to types or to prefix
wildcards (`order.*`), producers publish the added types, never hookd's own."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from hookd.dialects.device.event_types import SUBSCRIBABLE_EVENT_TYPES
from support import Api, Receiver, assert_error, assert_field_error

BUILT_IN = list(SUBSCRIBABLE_EVENT_TYPES)


async def add(api: Api, name: str, **body: Any) -> httpx.Response:
    return await api.client.post(
        "/api/v1/event-types", json={"name": name, **body}, headers=api.admin
    )


async def catalogue(api: Api) -> dict[str, Any]:
    response = await api.client.get("/api/v1/event-types", headers=api.user)
    assert response.status_code == 200, response.text
    return response.json()  # type: ignore[no-any-return]


async def test_added_types_follow_the_built_in_ones(api: Api) -> None:
    assert await catalogue(api) == {"items": BUILT_IN, "total": len(BUILT_IN)}

    first = await add(api, "order.created", description="An order was placed")
    second = await add(api, "invoice.paid")

    assert first.status_code == 201, first.text
    assert first.json()["name"] == "order.created"
    assert first.json()["description"] == "An order was placed"
    assert isinstance(first.json()["created_at"], int)
    assert second.status_code == 201
    assert await catalogue(api) == {
        "items": [*BUILT_IN, "order.created", "invoice.paid"],
        "total": len(BUILT_IN) + 2,
    }

    removed = await api.client.delete("/api/v1/event-types/order.created", headers=api.admin)

    assert removed.status_code == 204, removed.text
    assert (await catalogue(api))["items"] == [*BUILT_IN, "invoice.paid"]


async def test_built_in_types_cannot_be_removed_or_added_again(api: Api) -> None:
    for name in ("log.door_was_opened", "hookd.webhook.disabled"):
        removed = await api.client.delete(f"/api/v1/event-types/{name}", headers=api.admin)
        assert_error(removed, 400, f"{name!r} is a built-in event type and cannot be removed")
    assert_error(
        await add(api, "log.door_was_opened"),
        409,
        "name: the event type 'log.door_was_opened' exists already",
    )
    assert (await add(api, "order.created")).status_code == 201
    assert_error(
        await add(api, "order.created"), 409, "name: the event type 'order.created' exists already"
    )
    assert await catalogue(api) == {
        "items": [*BUILT_IN, "order.created"],
        "total": len(BUILT_IN) + 1,
    }


async def test_removing_an_unknown_type(api: Api) -> None:
    response = await api.client.delete("/api/v1/event-types/no.such", headers=api.admin)
    assert_error(response, 404, "No event type 'no.such'")
    for name in ("a%00b.c", "a." + "b" * 300, "x", "%C3%A9.x"):
        response = await api.client.delete(f"/api/v1/event-types/{name}", headers=api.admin)
        assert response.status_code == 404, response.text


async def test_only_admins_change_the_catalogue(api: Api) -> None:
    refused = await api.client.post(
        "/api/v1/event-types", json={"name": "order.created"}, headers=api.user
    )
    assert_error(refused, 403, "Administrator rights required")
    assert (await add(api, "order.created")).status_code == 201
    removal = await api.client.delete("/api/v1/event-types/order.created", headers=api.user)
    assert_error(removal, 403, "Administrator rights required")
    assert (await catalogue(api))["total"] == len(BUILT_IN) + 1


@pytest.mark.parametrize(
    ("body", "field", "says"),
    [
        ({"name": "order"}, "name", "not an event type name"),
        ({"name": "Order.Created"}, "name", "not an event type name"),
        ({"name": "order.*"}, "name", "not an event type name"),
        ({"name": "*"}, "name", "not an event type name"),
        ({"name": "order created"}, "name", "not an event type name"),
        ({"name": "order.created\n"}, "name", "not an event type name"),
        ({"name": ""}, "name", "not an event type name"),
        ({"name": "hookd.x"}, "name", "reserved"),
        ({"name": "hookd.webhook.mine"}, "name", "reserved"),
        ({"name": "a." + "b" * 200}, "name", "at most 200"),
        ({"name": 5}, "name", "must be a string"),
        ({}, "name", "is required"),
        ({"name": "order.created", "description": "x" * 1001}, "description", "at most 1000"),
        ({"name": "order.created", "description": "\x00"}, "description", "control"),
        ({"name": "order.created", "colour": "red"}, "colour", "not a field"),
    ],
)
async def test_bad_types_are_refused_and_change_nothing(
    api: Api, body: dict[str, Any], field: str, says: str
) -> None:
    response = await api.client.post("/api/v1/event-types", json=body, headers=api.admin)
    assert_field_error(response, field, says)
    assert (await catalogue(api))["total"] == len(BUILT_IN)


async def test_producers_publish_added_types_never_unknown_or_hookds_own(
    api: Api, receiver: Receiver
) -> None:
    assert (await add(api, "order.created")).status_code == 201
    await api.create_webhook(url=receiver.url(), event_types=["order.created"])

    published = await api.publish([{"type": "order.created"}, {"type": "log.door_was_opened"}])

    assert published["deliveries"] == 1
    await receiver.wait_for(1)
    assert receiver.requests[0].json()["type"] == "order.created"
    for event_type in ("order.deleted", "hookd.webhook.disabled", "hookd.mine", "a\x00b.c"):
        refused = await api.client.post(
            "/api/v1/events",
            json=[{"type": "order.created"}, {"type": event_type}],
            headers=api.user,
        )
        assert_field_error(refused, "[1].type", f"{event_type!r} is not a known event type")


async def test_a_type_a_webhook_lists_cannot_be_removed(api: Api) -> None:
    assert (await add(api, "order.created")).status_code == 201
    one = await api.create_webhook(event_types=["order.created"], url="http://127.0.0.1:9/")
    await api.create_webhook(event_types=["order.created", "log.*"], url="http://127.0.0.1:9/")
    await api.create_webhook(event_types=["order.*"], url="http://127.0.0.1:9/")

    refused = await api.client.delete("/api/v1/event-types/order.created", headers=api.admin)

    assert_error(refused, 409, "2 webhooks list 'order.created': remove it from them first")
    assert "order.created" in (await catalogue(api))["items"]
    await api.client.delete(f"/api/v1/webhooks/{one['uid']}", headers=api.admin)
    refused = await api.client.delete("/api/v1/event-types/order.created", headers=api.admin)
    assert_error(refused, 409, "1 webhook lists 'order.created': remove it from them first")


@pytest.mark.parametrize(
    ("event_types", "says"),
    [
        (["*"], "'*' is not a wildcard"),
        (["order.*.x"], "'order.*.x' is not a known event type"),
        (["ORDER.*"], "is not a wildcard"),
        (["order.created"], "'order.created' is not a known event type"),
        (["hookd.webhook.mine"], "'hookd.webhook.mine' is not a known event type"),
        (["log.*", "log.*"], "must not repeat"),
        (["a." + "b" * 200], "at most 200"),
    ],
)
async def test_bad_subscriptions_are_refused_and_change_nothing(
    api: Api, event_types: list[str], says: str
) -> None:
    body = {"url": "http://127.0.0.1:9/", "event_types": event_types}
    response = await api.client.post("/api/v1/webhooks", json=body, headers=api.admin)
    assert_field_error(response, "event_types", says)
    listed = await api.client.get("/api/v1/webhooks", headers=api.admin)
    assert listed.json()["total"] == 0


async def test_a_wildcard_receives_types_added_after_it_once_each(
    api: Api, receiver: Receiver
) -> None:
    wildcard = await api.create_webhook(url=receiver.url("/wild"), event_types=["order.*"])
    assert (await add(api, "order.created")).status_code == 201
    both = await api.create_webhook(
        url=receiver.url("/both"), event_types=["order.*", "order.created", "order.shipped.*"]
    )
    assert both["event_types"] == ["order.*", "order.created", "order.shipped.*"]
    assert (await add(api, "order.shipped.abroad")).status_code == 201
    assert (await add(api, "orders.created")).status_code == 201

    published = await api.publish(
        [
            {"type": "order.created", "data": {"n": 1}},
            {"type": "order.shipped.abroad", "data": {"n": 2}},
            {"type": "orders.created", "data": {"n": 3}},
        ]
    )

    assert published["deliveries"] == 4
    await receiver.wait_for(4)
    assert sorted(r.json()["data"]["n"] for r in receiver.at("/wild")) == [1, 2]
    assert sorted(r.json()["data"]["n"] for r in receiver.at("/both")) == [1, 2]
    assert len(await api.wait_for_deliveries(wildcard["uid"], 2)) == 2
    assert len(await api.wait_for_deliveries(both["uid"], 2)) == 2


async def test_a_wildcard_over_hookds_own_types(api: Api) -> None:
    hook = await api.create_webhook(url="http://127.0.0.1:9/", event_types=["hookd.*"])
    assert hook["event_types"] == ["hookd.*"]


async def test_replay_covers_what_a_wildcard_matches(api: Api, receiver: Receiver) -> None:
    assert (await add(api, "order.created")).status_code == 201
    await api.publish([{"type": "order.created"}, {"type": "log.door_was_opened"}])
    hook = await api.create_webhook(url=receiver.url(), event_types=["order.*"])

    replayed = await api.client.post(
        f"/api/v1/webhooks/{hook['uid']}/replay", json={"since": 0}, headers=api.admin
    )

    assert replayed.json() == {"queued": 1}
    await receiver.wait_for(1)
    assert receiver.requests[0].json()["type"] == "order.created"


async def test_a_change_keeps_wildcards_and_checks_added_types(api: Api) -> None:
    hook = await api.create_webhook(url="http://127.0.0.1:9/", event_types=["log.*"])
    path = f"/api/v1/webhooks/{hook['uid']}"
    refused = await api.client.patch(
        path, json={"event_types": ["log.*", "order.created"]}, headers=api.admin
    )
    assert_field_error(refused, "event_types", "'order.created' is not a known event type")
    assert (await add(api, "order.created")).status_code == 201
    changed = await api.client.patch(
        path, json={"event_types": ["log.*", "order.created"]}, headers=api.admin
    )
    assert changed.status_code == 200, changed.text
    assert changed.json()["event_types"] == ["log.*", "order.created"]
    kept = await api.client.patch(path, json={"description": "d"}, headers=api.admin)
    assert kept.json()["event_types"] == ["log.*", "order.created"]
