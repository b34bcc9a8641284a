"""hookd's own events, delivered like any other to the webhooks subscribed to them: a webhook
disabled (failing, or 410 Gone), a suspended webhook recovered, a delivery's retries spent;
once each, signed, and never about the failures of their own deliveries."""

from __future__ import annotations

import asyncio
from typing import Any

from sqlalchemy import func, select
from standardwebhooks.webhooks import Webhook as StandardWebhook

from hookd.store.database import Database
from hookd.store.schema import events
from support import Api, Receiver

EVENT = "log.door_was_opened"
OPS_SECRET = "ops-secret-0123456789"
# Time for a duplicate or a loop to show itself once the awaited request is in.
SETTLE = 1.0


async def watcher(api: Api, receiver: Receiver, path: str, *types: str) -> dict[str, Any]:
    return await api.create_webhook(
        url=receiver.url(path), event_types=list(types), secret=OPS_SECRET, max_retries=0
    )


def verified(receiver: Receiver, path: str) -> list[dict[str, Any]]:
    """Every request at `path`, its signature checked with the standardwebhooks package."""
    found = []
    for request in receiver.at(path):
        headers = {name.lower(): value for name, value in request.headers.items()}
        found.append(StandardWebhook(OPS_SECRET).verify(request.body, headers))
    return found


async def operational_events(url: str) -> int:
    db = Database(url, pool_size=1)
    try:
        async with db.read() as conn:
            query = select(func.count()).where(events.c.type.like("hookd.%"))
            return int((await conn.execute(query)).scalar_one())
    finally:
        await db.close()


async def test_an_auto_disabled_webhook_is_announced_once(
    make_settings: Any, api_factory: Any, receiver: Receiver
) -> None:
    api = await api_factory(make_settings(disable_after="0s"))
    await watcher(api, receiver, "/ops", "hookd.webhook.disabled")
    failing_url = f"http://someone:hunter2@127.0.0.1:{receiver.port}/bad?token=t0ken#x"
    bad = await api.create_webhook(url=failing_url, max_retries=0)
    receiver.default = (500, {}, 0.0, b"")

    await api.publish({"type": EVENT})
    await receiver.wait_for(1, "/ops")
    await asyncio.sleep(SETTLE)

    [body] = verified(receiver, "/ops")
    assert body["type"] == "hookd.webhook.disabled"
    assert body["data"]["webhook"]["uid"] == bad["uid"]
    assert body["data"]["webhook"]["url"] == f"http://127.0.0.1:{receiver.port}/bad"
    assert body["data"]["cause"] == "failing"
    assert "failed" in body["data"]["reason"]
    assert "hunter2" not in receiver.at("/ops")[0].body.decode()
    assert "t0ken" not in receiver.at("/ops")[0].body.decode()


async def test_a_410_gone_is_announced_with_its_cause(api: Api, receiver: Receiver) -> None:
    await watcher(api, receiver, "/ops", "hookd.webhook.disabled")
    gone = await api.create_webhook(url=receiver.url("/gone"), max_retries=3)
    receiver.answer("/gone", 410)

    await api.publish({"type": EVENT})
    await receiver.wait_for(1, "/ops")
    await asyncio.sleep(SETTLE)

    [body] = verified(receiver, "/ops")
    assert body["data"]["webhook"]["uid"] == gone["uid"]
    assert body["data"]["cause"] == "gone"
    assert "410" in body["data"]["reason"]


async def test_spent_retries_are_announced_once(api: Api, receiver: Receiver) -> None:
    await watcher(api, receiver, "/ops", "hookd.delivery.exhausted")
    bad = await api.create_webhook(url=receiver.url("/bad"), max_retries=1)
    receiver.answer("/bad", 503)
    receiver.answer("/bad", 502, body=b"still down")
    published = await api.publish({"type": EVENT, "id": "the-event"})
    assert published["deliveries"] == 1

    await receiver.wait_for(1, "/ops")
    await asyncio.sleep(SETTLE)

    [body] = verified(receiver, "/ops")
    assert body["type"] == "hookd.delivery.exhausted"
    data = body["data"]
    [delivery] = await api.deliveries(bad["uid"])
    assert delivery["status"] == "failed"
    assert data["delivery_id"] == delivery["id"]
    assert data["event_id"] == "the-event"
    assert data["event_type"] == EVENT
    assert data["webhook"]["uid"] == bad["uid"]
    assert data["attempts"] == 2
    assert data["last_status_code"] == 502
    assert len(receiver.at("/bad")) == 2


async def test_a_recovered_webhook_is_announced_once(
    make_settings: Any, api_factory: Any, receiver: Receiver
) -> None:
    api = await api_factory(make_settings(retry_schedule="300ms", suspend_after=2))
    await watcher(api, receiver, "/ops", "hookd.webhook.recovered")
    flaky = await api.create_webhook(url=receiver.url("/flaky"), max_retries=5)
    for _ in range(3):
        receiver.answer("/flaky", 500)
    await api.publish([{"type": EVENT}, {"type": EVENT}])

    await receiver.wait_for(1, "/ops", timeout=15)
    await asyncio.sleep(SETTLE)

    [body] = verified(receiver, "/ops")
    assert body["type"] == "hookd.webhook.recovered"
    assert body["data"]["webhook"]["uid"] == flaky["uid"]
    states = await api.wait_for_deliveries(flaky["uid"], 2, states=("succeeded",))
    assert [item["status"] for item in states] == ["succeeded"] * 2


async def test_failures_of_hookds_own_events_announce_nothing(
    make_settings: Any, api_factory: Any, receiver: Receiver
) -> None:
    """A subscriber of every operational event that itself fails: its deliveries of them are
    spent and disable it, and none of that is announced (no loop); a healthy watcher hears of
    the producer's webhook only."""
    api = await api_factory(make_settings(disable_after="0s"))
    await watcher(
        api, receiver, "/broken-ops", "hookd.webhook.disabled", "hookd.delivery.exhausted"
    )
    await watcher(api, receiver, "/ops", "hookd.webhook.disabled")
    bad = await api.create_webhook(url=receiver.url("/bad"), max_retries=0)
    receiver.script["/broken-ops"] = [(500, {}, 0.0, b"")] * 10
    receiver.script["/bad"] = [(500, {}, 0.0, b"")]

    await api.publish({"type": EVENT})
    await receiver.wait_for(1, "/ops")
    await receiver.wait_for(1, "/broken-ops")
    await asyncio.sleep(2 * SETTLE)

    # /bad: disabled and its delivery spent, both told to /broken-ops, which fails (and is
    # disabled by its first failure, so the other may never be sent).
    told_broken = verified(receiver, "/broken-ops")
    assert 1 <= len(told_broken) <= 2
    assert {body["type"] for body in told_broken} <= {
        "hookd.webhook.disabled",
        "hookd.delivery.exhausted",
    }
    [told] = verified(receiver, "/ops")
    assert told["data"]["webhook"]["uid"] == bad["uid"]
    assert await operational_events(api.settings.database_url) == 2
