"""The console's reading pages: the overview, the delivery log (its filters, pages, live rows),
one delivery with its attempts and the headers it was sent with, and the repositories."""

from __future__ import annotations

import asyncio
import re

import pytest

from hookd.store import stats
from support import ADMIN_PASSWORD, USER_PASSWORD, Api, Receiver, console_client, console_login
from support import form_token as token_of


async def test_the_overview_counts_what_was_delivered(
    api: Api, receiver: Receiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(stats, "WRITE_EVERY", 0.05)
    receiver.answer("/o", 500, body=b"no")
    webhook = await api.create_webhook(url=receiver.url("/o"), max_retries=0)
    await api.create_webhook(url=receiver.url("/ok"))
    await api.publish([{"type": "log.door_was_opened"}] * 2)
    await api.wait_for_deliveries(webhook["uid"], 2)
    await console_login(api.client, "admin", ADMIN_PASSWORD)
    for _ in range(100):  # the counts are written a moment after the outcomes
        page = await api.client.get("/")
        assert page.status_code == 200
        if "<dt>Attempts, last 6 h</dt><dd>4</dd>" in page.text:
            break
        await asyncio.sleep(0.05)

    def card(name: str) -> str:
        found = re.search(rf"<dt>{re.escape(name)}</dt><dd>([^<]*)</dd>", page.text)
        assert found, name
        return found.group(1)

    assert card("Attempts, last 6 h") == "4"
    assert card("Success rate") == "75.0 %"  # one 500 and three 2xx (the 500 was the first)
    assert card("Deliveries failed for good") == "1"
    assert card("Queued or in flight") == "0" and card("Pending") == "0"
    assert page.text.count('<svg class="chart"') == 3
    assert 'aria-current="true">6 h<' in page.text
    assert 'aria-current="true">24 h<' in (await api.client.get("/?hours=24")).text
    assert 'aria-current="true">6 h<' in (await api.client.get("/?hours=7")).text


async def test_the_delivery_log_pages_and_filters(api: Api, receiver: Receiver) -> None:
    webhook = await api.create_webhook(url=receiver.url("/l"))
    await api.publish([{"type": "log.door_was_opened", "id": f"e-{n}"} for n in range(60)])
    await api.wait_for_deliveries(webhook["uid"], 60)
    await console_login(api.client, "admin", ADMIN_PASSWORD)

    def rows(html: str) -> list[int]:
        return [int(n) for n in re.findall(r'<tr data-id="(\d+)">', html)]

    first = await api.client.get("/deliveries")
    assert rows(first.text) == list(range(60, 10, -1))
    assert 'id="live"' in first.text  # the live view is offered on the first page
    older = re.search(r'href="\?before=(\d+)">Older', first.text)
    assert older and older.group(1) == "11"
    second = await api.client.get("/deliveries?before=11")
    assert rows(second.text) == list(range(10, 0, -1))
    assert "Older" not in second.text and 'id="live"' not in second.text
    assert "Newest" in second.text

    by_event = await api.client.get("/deliveries?event=e-7")
    assert rows(by_event.text) == [8]
    failed = await api.client.get("/deliveries?state=failed")
    assert rows(failed.text) == [] and "No delivery matches" in failed.text
    wrong = await api.client.get("/deliveries?webhook=x&state=nope&from=yesterday")
    assert wrong.status_code == 400
    for message in ("a webhook&#39;s number", "choose a state", "a date and time"):
        assert message in wrong.text
    live = await api.client.get("/deliveries/rows?state=succeeded")
    assert live.status_code == 200 and rows(live.text) == list(range(60, 10, -1))
    assert "<html" not in live.text


async def test_a_delivery_shows_its_attempts_and_masked_headers(
    api: Api, receiver: Receiver
) -> None:
    receiver.answer("/d", 503, body=b'{"busy": "come back later"}')
    webhook = await api.create_webhook(
        url=receiver.url("/d"), max_retries=1, headers='{"X-Team-Key": "team-key-99"}'
    )
    await api.publish({"type": "log.door_was_opened", "data": {"door": 7}})
    [delivery] = await api.wait_for_deliveries(webhook["uid"], 1)
    sent = receiver.at("/d")
    assert len(sent) == 2
    await console_login(api.client, "admin", ADMIN_PASSWORD)
    page = await api.client.get(f"/deliveries/{delivery['id']}")
    assert page.status_code == 200
    assert page.text.index("Attempt 2:") < page.text.index("Attempt 1:")  # newest first
    assert "come back later" in page.text and "HTTP 503" in page.text
    assert "&#34;door&#34;: 7" in page.text
    signature = sent[0].headers["webhook-signature"]
    assert signature.split(",", 1)[1] not in page.text
    assert "v1,••••••••" in page.text and "sha256=••••••••" in page.text
    assert f'<td class="mono">{delivery["event_id"]}</td>' in page.text
    assert "team-key-99" in page.text  # an admin sees the webhook's own headers
    async with console_client(api, "user", USER_PASSWORD) as client:
        shown = await client.get(f"/deliveries/{delivery['id']}")
        assert "team-key-99" not in shown.text and "X-Team-Key" in shown.text

    receiver.default = (200, {}, 0.0, b"fine")
    retried = await api.client.post(
        f"/deliveries/{delivery['id']}/retry", data={"csrf": token_of(page.text)}
    )
    assert retried.status_code == 303
    assert retried.headers["location"] == f"/deliveries/{delivery['id']}?notice=retried"
    [done] = await api.wait_for_deliveries(webhook["uid"], 1, states=("succeeded",))
    assert done["status"] == "succeeded"
    assert (await api.client.get("/deliveries/999999")).status_code == 404


async def test_a_repository_shows_its_events_webhooks_and_validation_calls(
    api: Api, receiver: Receiver
) -> None:
    receiver.answer("/check", 422, body=b'{"reason": "no VAT id"}')
    await api.client.put("/r/inv", json={"name": "Invoices"}, headers=api.admin)
    for uri, handle in ((receiver.url("/check"), "STATUS_AND_BODY"), (receiver.url("/n"), "NONE")):
        made = await api.client.post(
            "/r/inv/events/document.beforecreate",
            json={"uri": uri, "description": "d", "enabled": True, "handleResponse": handle},
            headers=api.admin,
        )
        assert made.status_code == 201
    verdict = await api.client.post(
        "/r/inv/events/document.beforecreate/trigger", json={"id": "inv-1"}, headers=api.admin
    )
    assert verdict.json()["allowed"] is False
    await console_login(api.client, "admin", ADMIN_PASSWORD)
    listed = await api.client.get("/repositories")
    assert '<a href="/repositories/inv">inv</a>' in listed.text
    page = await api.client.get("/repositories/inv")
    assert page.status_code == 200
    assert page.text.count('<span class="badge blocking">blocking</span>') == 6
    assert page.text.index("STATUS_AND_BODY") < page.text.index(">NONE<")  # call order
    for _ in range(50):  # the call is logged just after the trigger's answer
        page = await api.client.get("/repositories/inv")
        if "inv-1" in page.text:
            break
    assert "inv-1" in page.text and "vetoed" in page.text and "HTTP 422" in page.text
    assert (await api.client.get("/repositories/nope")).status_code == 404
    assert (await api.client.get("/repositories/bad%20id")).status_code == 404
