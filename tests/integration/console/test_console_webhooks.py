"""The console's webhook pages: one list for both dialects, the forms that create and edit
through each dialect's own rules (its message next to the field), and the actions."""

from __future__ import annotations

import html as html_module
import re
from typing import Any

import httpx
import pytest

from support import ADMIN_PASSWORD, Api, Receiver, console_login, form_token

DEVICE_FORM = {
    "url": "http://127.0.0.1:9/hook",
    "description": "doors",
    "event_types": ["log.door_was_opened", "log.door_was_closed"],
    "status": "active",
    "timeout": "2500",
    "max_retries": "2",
    "headers": "",
    "secret": "",
}


async def logged_in(api: Api) -> str:
    answer = await console_login(api.client, "admin", ADMIN_PASSWORD)
    assert answer.status_code == 303
    return form_token((await api.client.get("/")).text)


def field_error(html: str, name: str) -> str | None:
    """The error shown in the field of control `name`, if any."""
    match = re.search(
        rf'<div class="field invalid">\s*(?:<fieldset[^>]*>\s*<legend>[^<]*</legend>|'
        rf'<label for="f-{name}">[^<]*</label>)\s*<p class="error" id="f-{name}-error">'
        rf"<strong>Error:</strong> ([^<]*)</p>",
        html,
    )
    return html_module.unescape(match.group(1)) if match else None


async def post_form(api: Api, path: str, form: dict[str, Any], token: str) -> httpx.Response:
    return await api.client.post(path, data={"csrf": token, **form})


@pytest.mark.parametrize(
    ("changes", "field", "says"),
    [
        ({"url": "ftp://127.0.0.1/x"}, "url", "must be an absolute http(s) URL"),
        ({"timeout": "soon"}, "timeout", "must be an integer"),
        ({"timeout": "100"}, "timeout", "must be between 1000 and 30000"),
        ({"max_retries": "9"}, "max_retries", "must be between 0 and 5"),
        ({"event_types": []}, "event_types", "must hold at least 1 item"),
        ({"headers": "{not json"}, "headers", "must be a string holding a JSON object"),
        ({"headers": '{"Host": "x"}'}, "headers", "is a system header"),
        ({"secret": "short"}, "secret", "must hold at least 16 characters"),
    ],
)
async def test_a_device_form_shows_the_dialects_message_next_to_its_field(
    api: Api, changes: dict[str, Any], field: str, says: str
) -> None:
    token = await logged_in(api)
    form = {**DEVICE_FORM, **changes}
    answer = await post_form(api, "/webhooks/new/device", form, token)
    assert answer.status_code == 400
    shown = field_error(answer.text, field)
    assert shown is not None and says in shown, answer.text
    assert answer.text.count('class="field invalid"') == 1
    # What was typed is shown again (except a secret, never written into a page).
    if field == "url":
        assert 'value="ftp://127.0.0.1/x"' in answer.text
    listed = await api.client.get("/api/v1/webhooks", headers=api.admin)
    assert listed.json()["total"] == 0


async def test_create_edit_toggle_and_delete_a_device_webhook(api: Api) -> None:
    token = await logged_in(api)
    answer = await post_form(api, "/webhooks/new/device", DEVICE_FORM, token)
    assert answer.status_code == 303, answer.text
    uid = int(answer.headers["location"].split("/")[2].split("?")[0])
    entity = (await api.client.get(f"/api/v1/webhooks/{uid}", headers=api.admin)).json()
    assert entity["event_types"] == ["log.door_was_opened", "log.door_was_closed"]
    assert entity["timeout"] == 2500 and entity["max_retries"] == 2 and entity["headers"] == "{}"
    secret = entity["secret"]
    assert secret.startswith("whsec_")

    edit = await api.client.get(f"/webhooks/{uid}/edit")
    assert 'value="2500"' in edit.text and secret not in edit.text
    changed = {**DEVICE_FORM, "description": "doors, edited", "headers": '{"X-Team": "a"}'}
    answer = await post_form(api, f"/webhooks/{uid}/edit", changed, token)
    assert answer.status_code == 303
    entity = (await api.client.get(f"/api/v1/webhooks/{uid}", headers=api.admin)).json()
    assert entity["description"] == "doors, edited" and entity["headers"] == '{"X-Team": "a"}'
    assert entity["secret"] == secret  # an empty secret keeps it

    answer = await post_form(api, f"/webhooks/{uid}/disable", {}, token)
    assert answer.status_code == 303
    entity = (await api.client.get(f"/api/v1/webhooks/{uid}", headers=api.admin)).json()
    assert entity["status"] == "disabled"
    await post_form(api, f"/webhooks/{uid}/enable", {}, token)
    entity = (await api.client.get(f"/api/v1/webhooks/{uid}", headers=api.admin)).json()
    assert entity["status"] == "active"

    confirm = await api.client.get(f"/webhooks/{uid}/delete")
    assert "cannot be undone" in confirm.text
    answer = await post_form(api, f"/webhooks/{uid}/delete", {}, token)
    assert answer.status_code == 303
    gone = await api.client.get(f"/api/v1/webhooks/{uid}", headers=api.admin)
    assert gone.status_code == 400


async def test_the_device_form_offers_added_types_and_keeps_wildcards(api: Api) -> None:
    token = await logged_in(api)
    added = await api.client.post(
        "/api/v1/event-types", json={"name": "order.created"}, headers=api.admin
    )
    assert added.status_code == 201, added.text
    new = await api.client.get("/webhooks/new/device")
    assert 'value="order.created"' in new.text
    assert 'value="hookd.webhook.disabled"' in new.text
    form = {**DEVICE_FORM, "event_types": ["order.created", "no.such_type"]}
    refused = await post_form(api, "/webhooks/new/device", form, token)
    assert refused.status_code == 400
    assert field_error(refused.text, "event_types") == "'no.such_type' is not a known event type"

    hook = await api.create_webhook(url="http://127.0.0.1:9/", event_types=["log.*"])
    edit = await api.client.get(f"/webhooks/{hook['uid']}/edit")
    assert re.search(r'value="log\.\*" checked', edit.text), edit.text
    form = {**DEVICE_FORM, "event_types": ["log.*", "order.created"]}
    saved = await post_form(api, f"/webhooks/{hook['uid']}/edit", form, token)
    assert saved.status_code == 303, saved.text
    entity = (await api.client.get(f"/api/v1/webhooks/{hook['uid']}", headers=api.admin)).json()
    assert entity["event_types"] == ["log.*", "order.created"]


REPOSITORY_FORM = {
    "event": "docs/document.created",
    "uri": "/hook",
    "description": "indexes documents",
    "enabled": "on",
    "handleResponse": "NONE",
    "retry": "on",
    "timeout": "",
    "apiKey": "key-1",
    "restrictions": "invoice,\nletter",
}


async def test_create_and_edit_a_repository_webhook(api: Api) -> None:
    made = await api.client.put(
        "/r/docs", json={"name": "Docs", "base_uri": "http://127.0.0.1:9"}, headers=api.admin
    )
    assert made.status_code == 201
    token = await logged_in(api)
    answer = await post_form(api, "/webhooks/new/repository", {**REPOSITORY_FORM, "uri": ""}, token)
    assert answer.status_code == 400
    assert field_error(answer.text, "uri") == "must not be empty"
    assert '<option value="docs/document.created" selected>' in answer.text

    answer = await post_form(
        api, "/webhooks/new/repository", {**REPOSITORY_FORM, "timeout": "0"}, token
    )
    assert field_error(answer.text, "timeout") == "must be between 1 and 30000"
    answer = await post_form(
        api, "/webhooks/new/repository", {**REPOSITORY_FORM, "event": "docs/nope"}, token
    )
    assert field_error(answer.text, "event") == "choose one of the repositories' events"

    answer = await post_form(api, "/webhooks/new/repository", REPOSITORY_FORM, token)
    assert answer.status_code == 303, answer.text
    webhook_id = answer.headers["location"].split("/")[2].split("?")[0]
    page = await api.client.get(f"/webhooks/{webhook_id}")
    public_id = re.search(r'<span class="mono">([0-9a-f-]{36})</span>', page.text)
    assert public_id
    path = f"/r/docs/events/document.created/{public_id.group(1)}"
    entity = (await api.client.get(path, headers=api.admin)).json()
    assert entity == {
        "apiKey": "key-1",
        "description": "indexes documents",
        "enabled": True,
        "handleResponse": "NONE",
        "id": public_id.group(1),
        "restrictions": [
            {"key": "CATEGORY", "value": "invoice"},
            {"key": "CATEGORY", "value": "letter"},
        ],
        "retry": True,
        "timeout": 300,
        "uri": "/hook",
    }

    edit = await api.client.get(f"/webhooks/{webhook_id}/edit")
    assert "key-1" not in edit.text and 'value="invoice, letter"' in edit.text
    edited = {k: v for k, v in REPOSITORY_FORM.items() if k not in ("event", "retry", "apiKey")}
    answer = await post_form(api, f"/webhooks/{webhook_id}/edit", edited, token)
    assert answer.status_code == 303, answer.text
    entity = (await api.client.get(path, headers=api.admin)).json()
    assert entity["retry"] is False and entity["apiKey"] == "key-1"  # empty key: kept
    answer = await post_form(
        api, f"/webhooks/{webhook_id}/edit", {**edited, "remove_apiKey": "on"}, token
    )
    entity = (await api.client.get(path, headers=api.admin)).json()
    assert entity["apiKey"] is None

    await post_form(api, f"/webhooks/{webhook_id}/disable", {}, token)
    assert (await api.client.get(path, headers=api.admin)).json()["enabled"] is False
    await post_form(api, f"/webhooks/{webhook_id}/enable", {}, token)
    assert (await api.client.get(path, headers=api.admin)).json()["enabled"] is True


async def test_one_list_for_both_dialects_with_filters(api: Api) -> None:
    await api.create_webhook(url="http://127.0.0.1:9/door", description="front door")
    await api.create_webhook(
        url="http://127.0.0.1:9/tamper", event_types=["log.tamper_event"], status="disabled"
    )
    await api.client.put("/r/docs", json={"name": "Docs"}, headers=api.admin)
    await api.client.post(
        "/r/docs/events/document.created",
        json={"uri": "http://127.0.0.1:9/doc", "description": "d", "handleResponse": "NONE"},
        headers=api.admin,
    )
    await logged_in(api)

    async def listed(query: str) -> list[str]:
        page = await api.client.get(f"/webhooks?{query}")
        assert page.status_code == 200
        return re.findall(r'<span class="url">http://127\.0\.0\.1:9/(\w+)</span>', page.text)

    assert await listed("") == ["door", "tamper", "doc"]
    assert await listed("dialect=repository") == ["doc"]
    assert await listed("dialect=device") == ["door", "tamper"]
    assert await listed("status=disabled") == ["tamper", "doc"]  # a new repository webhook
    assert await listed("repository=docs") == ["doc"]
    assert await listed("type=log.tamper_event") == ["tamper"]
    assert await listed("type=document.created") == ["doc"]
    assert await listed("q=FRONT") == ["door"]
    assert await listed("q=nothing-like-it") == []
    assert await listed("status=bogus&dialect=bogus&page=x") == ["door", "tamper", "doc"]
    assert await listed("page=99999999999999999999999") == []
    assert await listed("page=%D9%A3") == ["door", "tamper", "doc"]  # a non-ASCII digit


async def test_send_a_test_event_and_see_the_answer(api: Api, receiver: Receiver) -> None:
    receiver.answer("/tested", 202, body=b'{"seen": true}')
    webhook = await api.create_webhook(url=receiver.url("/tested"))
    token = await logged_in(api)
    answer = await post_form(api, f"/webhooks/{webhook['uid']}/test", {}, token)
    assert answer.status_code == 200
    assert "Test event sent" in answer.text and "HTTP 202" in answer.text
    assert "{&#34;seen&#34;: true}" in answer.text
    assert re.search(r"<dt>Time</dt><dd>[\d.]+ ms</dd>", answer.text)
    [received] = receiver.at("/tested")
    assert received.json()["type"] == "hookd.test"


async def test_bulk_recovery_queues_the_failed_deliveries(api: Api, receiver: Receiver) -> None:
    receiver.default = (503, {}, 0.0, b"busy")
    webhook = await api.create_webhook(url=receiver.url("/r"), max_retries=0)
    await api.publish([{"type": "log.door_was_opened"}] * 3)
    await api.wait_for_deliveries(webhook["uid"], 3, states=("failed",))
    receiver.default = (200, {}, 0.0, b"ok")
    token = await logged_in(api)
    answer = await post_form(api, f"/webhooks/{webhook['uid']}/recover", {"since": ""}, token)
    assert answer.status_code == 400 and "Give a date and time" in answer.text
    answer = await post_form(
        api, f"/webhooks/{webhook['uid']}/recover", {"since": "2000-01-01T00:00"}, token
    )
    assert answer.status_code == 303
    assert answer.headers["location"].endswith("notice=recovered&queued=3")
    page = await api.client.get(answer.headers["location"])
    assert "Queued 3 failed deliveries" in page.text
    done = await api.wait_for_deliveries(webhook["uid"], 3, states=("succeeded",))
    assert [d["status"] for d in done] == ["succeeded"] * 3
