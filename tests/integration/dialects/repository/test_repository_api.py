"""Repository dialect management on each backend: repositories, events, webhooks,
error shapes and content negotiation."""

from __future__ import annotations

import re
import uuid
from typing import Any

import pytest

from support import Api

SPEC_FIELDS = {
    "apiKey",
    "description",
    "enabled",
    "handleResponse",
    "id",
    "restrictions",
    "retry",
    "timeout",
    "uri",
}
BUILT_IN = {
    "document.created": False,
    "document.updated": False,
    "document.deleted": False,
    "dossier.created": False,
    "dossier.updated": False,
    "dossier.deleted": False,
    "document.beforecreate": True,
    "document.beforeupdate": True,
    "document.beforedelete": True,
    "dossier.beforecreate": True,
    "dossier.beforeupdate": True,
    "dossier.beforedelete": True,
}
UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$")
HAL = {"Accept": "application/hal+json"}
MINIMAL = {
    "uri": "https://example.com/hook",
    "description": "Checks invoices",
    "handleResponse": "NONE",
}


async def put_repo(api: Api, repo: str = "repo1", **body: Any) -> dict[str, Any]:
    response = await api.client.put(f"/r/{repo}", json={"name": repo, **body}, headers=api.admin)
    assert response.status_code in (200, 201), response.text
    return response.json()  # type: ignore[no-any-return]


async def create_hook(
    api: Api, event: str = "document.created", repo: str = "repo1", **fields: Any
) -> dict[str, Any]:
    response = await api.client.post(
        f"/r/{repo}/events/{event}", json={**MINIMAL, **fields}, headers=api.admin
    )
    assert response.status_code == 201, response.text
    return response.json()  # type: ignore[no-any-return]


def assert_error(response: Any, status: int, code: int, reason: str | None = None) -> None:
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"code", "reason"}, body
    assert body["code"] == code
    assert isinstance(body["reason"], str) and body["reason"]
    if reason is not None:
        assert body["reason"].startswith(reason), body["reason"]


# --- repositories and event definitions ---------------------------------------------------------


async def test_a_repository_is_created_then_updated(api: Api) -> None:
    created = await api.client.put(
        "/r/repo1",
        json={"name": "Invoices", "base_uri": "https://h.example/app"},
        headers=api.admin,
    )
    assert created.status_code == 201
    assert created.headers["location"] == "/r/repo1"
    assert created.json() == {
        "id": "repo1",
        "name": "Invoices",
        "base_uri": "https://h.example/app",
    }

    updated = await api.client.put("/r/repo1", json={"name": "Renamed"}, headers=api.admin)
    assert updated.status_code == 200
    assert updated.json() == {"id": "repo1", "name": "Renamed", "base_uri": None}

    fetched = await api.client.get("/r/repo1", headers=api.admin)
    assert fetched.status_code == 200
    assert fetched.json() == {"id": "repo1", "name": "Renamed", "base_uri": None}
    # A user does not see where the repository's webhooks go.
    fetched = await api.client.get("/r/repo1", headers=api.user)
    assert fetched.json() == {"id": "repo1", "name": "Renamed"}


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        ({}, "name: is required"),
        ({"name": ""}, "name: must not be empty"),
        ({"name": "r", "base_uri": "ftp://x.example"}, "base_uri: "),
        ({"name": "r", "base_uri": "/relative"}, "base_uri: "),
        ({"name": "r", "base_uri": "https://x.example/?q=1"}, "base_uri: must not have a query"),
        ({"name": "r", "colour": "red"}, "colour: is not a field of a repository"),
        ({"name": "nul\u0000"}, "name: must not contain control characters"),
        ([], "body: must be a JSON object"),
    ],
)
async def test_bad_repositories_are_refused(api: Api, body: Any, reason: str) -> None:
    response = await api.client.put("/r/repo1", json=body, headers=api.admin)
    assert_error(response, 400, 400, reason)
    assert_error(await api.client.get("/r/repo1", headers=api.admin), 404, 240300)


async def test_repository_ids_are_checked(api: Api) -> None:
    response = await api.client.put("/r/bad%20id", json={"name": "x"}, headers=api.admin)
    assert_error(response, 400, 400, "repoId: ")
    assert_error(
        await api.client.put("/r/" + "a" * 101, json={"name": "x"}, headers=api.admin), 400, 400
    )
    body = b"{not json"
    response = await api.client.put("/r/repo1", content=body, headers=api.admin)
    assert_error(response, 400, 400, "Wrong JSON body")


async def test_unknown_repository_is_404_with_its_own_code(api: Api) -> None:
    for path in ("/r/nope", "/r/nope/events", "/r/nope/events/document.created"):
        assert_error(await api.client.get(path, headers=api.admin), 404, 240300)
    response = await api.client.post("/r/nope/events/document.created/trigger", headers=api.user)
    assert_error(response, 404, 240300)
    response = await api.client.put("/r/nope/events/x", json={"name": "x"}, headers=api.admin)
    assert_error(response, 404, 240300)


async def test_each_repository_has_the_built_in_events(api: Api) -> None:
    await put_repo(api)
    response = await api.client.get("/r/repo1/events", headers=api.user)
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    events = response.json()["events"]
    assert {event["id"]: event["blocking"] for event in events} == BUILT_IN
    for event in events:
        assert set(event) == {"id", "name", "description", "blocking"}
        assert event["name"]


async def test_events_are_defined_and_changed(api: Api) -> None:
    await put_repo(api)
    body = {"name": "Invoice booked", "description": "An invoice was booked", "blocking": False}
    created = await api.client.put("/r/repo1/events/invoice.booked", json=body, headers=api.admin)
    assert created.status_code == 201, created.text
    assert created.json() == {"id": "invoice.booked", **body}
    changed = await api.client.put(
        "/r/repo1/events/invoice.booked",
        json={"name": "Booked", "blocking": True},
        headers=api.admin,
    )
    assert changed.status_code == 200
    assert changed.json() == {
        "id": "invoice.booked",
        "name": "Booked",
        "description": "",
        "blocking": True,
    }
    built_in = await api.client.put(
        "/r/repo1/events/document.created", json={"name": "Created!"}, headers=api.admin
    )
    assert built_in.status_code == 200
    events = {
        e["id"]: e
        for e in (await api.client.get("/r/repo1/events", headers=api.user)).json()["events"]
    }
    assert events["invoice.booked"]["blocking"] is True
    assert events["document.created"]["name"] == "Created!"
    assert len(events) == len(BUILT_IN) + 1


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        ({}, "name: is required"),
        ({"name": "x", "blocking": "yes"}, "blocking: must be true or false"),
        ({"name": "x", "description": 5}, "description: must be a string"),
        ({"name": "x", "other": 1}, "other: is not a field of an event"),
        ({"name": "x", "description": "\u0000"}, "description: must not contain control"),
    ],
)
async def test_bad_event_definitions_are_refused(api: Api, body: Any, reason: str) -> None:
    await put_repo(api)
    response = await api.client.put("/r/repo1/events/e1", json=body, headers=api.admin)
    assert_error(response, 400, 400, reason)
    assert_error(await api.client.get("/r/repo1/events/e1", headers=api.admin), 404, 240200)


async def test_unknown_event_is_404_with_its_own_code(api: Api) -> None:
    await put_repo(api)
    assert_error(await api.client.get("/r/repo1/events/nope", headers=api.admin), 404, 240200)
    response = await api.client.post("/r/repo1/events/nope", json=MINIMAL, headers=api.admin)
    assert_error(response, 404, 240200)
    response = await api.client.post("/r/repo1/events/nope/trigger", json={}, headers=api.user)
    assert_error(response, 404, 240200)


async def test_management_needs_an_admin_and_reading_a_token(api: Api) -> None:
    await put_repo(api)
    hook = await create_hook(api)
    path = f"/r/repo1/events/document.created/{hook['id']}"
    forbidden = [
        ("PUT", "/r/repo1", {"name": "x"}),
        ("PUT", "/r/repo1/events/e1", {"name": "x"}),
        ("POST", "/r/repo1/events/document.created", MINIMAL),
        ("GET", "/r/repo1/events/document.created", None),
        ("GET", path, None),
        ("PUT", path, MINIMAL),
        ("DELETE", path, None),
    ]
    for method, url, body in forbidden:
        response = await api.client.request(method, url, json=body, headers=api.user)
        assert_error(response, 403, 403)
    for method, url, body in [
        *forbidden,
        ("GET", "/r/repo1", None),
        ("GET", "/r/repo1/events", None),
    ]:
        response = await api.client.request(method, url, json=body)
        assert_error(response, 401, 401)
        bad = {"Authorization": "Bearer nonsense"}
        assert_error(await api.client.request(method, url, json=body, headers=bad), 401, 401)
    assert (await api.client.get(path, headers=api.admin)).status_code == 200


# --- webhooks -----------------------------------------------------------------------------------


async def test_a_webhook_gets_the_specified_defaults(api: Api) -> None:
    await put_repo(api)
    response = await api.client.post(
        "/r/repo1/events/document.created", json=MINIMAL, headers=api.admin
    )
    assert response.status_code == 201, response.text
    hook = response.json()
    assert set(hook) == SPEC_FIELDS
    assert UUID.match(hook["id"])
    assert hook == {
        **MINIMAL,
        "id": hook["id"],
        "apiKey": None,
        "enabled": False,
        "restrictions": [],
        "retry": True,
        "timeout": 300,
    }
    assert response.headers["location"] == f"/r/repo1/events/document.created/{hook['id']}"
    fetched = await api.client.get(response.headers["location"], headers=api.admin)
    assert fetched.status_code == 200
    assert fetched.headers["content-type"] == "application/json"
    assert fetched.json() == hook


async def test_every_field_round_trips_and_put_replaces(api: Api) -> None:
    await put_repo(api, base_uri="https://h.example")
    full = {
        "uri": "/validate",
        "description": "Webhook for the validation of invoices.",
        "enabled": True,
        "handleResponse": "STATUS_AND_BODY",
        "retry": False,
        "timeout": 1500,
        "apiKey": "cryptoKey",
        "restrictions": [
            {"key": "CATEGORY", "value": "00000000-0000-0000-0000-000000000001"},
            {"key": "CATEGORY", "value": "invoices"},
        ],
    }
    hook = await create_hook(api, "document.beforecreate", id="ignored-read-only", **full)
    assert hook == {**full, "id": hook["id"]}
    path = f"/r/repo1/events/document.beforecreate/{hook['id']}"
    assert (await api.client.get(path, headers=api.admin)).json() == hook

    # PUT replaces: what is left out takes its default again; null retry/timeout mean default.
    replaced = await api.client.put(
        path,
        json={**MINIMAL, "handleResponse": "STATUS", "retry": None, "timeout": None, "id": "x"},
        headers=api.admin,
    )
    assert replaced.status_code == 200, replaced.text
    expected = {
        **MINIMAL,
        "handleResponse": "STATUS",
        "id": hook["id"],
        "apiKey": None,
        "enabled": False,
        "restrictions": [],
        "retry": True,
        "timeout": 300,
    }
    assert replaced.json() == expected
    assert (await api.client.get(path, headers=api.admin)).json() == expected


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"uri": None}, "uri: must be a string"),
        ({"uri": ""}, "uri: must not be empty"),
        ({"uri": "ftp://example.com/x"}, "uri: must be an absolute http(s) URI"),
        ({"uri": "example.com/hook"}, "uri: must be an absolute http(s) URI"),
        ({"uri": "//example.com/hook"}, "uri: "),
        ({"uri": "https://exa mple.com/"}, "uri: "),
        ({"description": ""}, "description: must not be empty"),
        ({"description": 1}, "description: must be a string"),
        ({"description": "x" * 1001}, "description: must hold at most 1000 characters"),
        ({"uri": "https://example.com/" + "x" * 2000}, "uri: must hold at most 2000 characters"),
        (
            {"restrictions": [{"key": "CATEGORY", "value": str(n)} for n in range(101)]},
            "restrictions: must hold at most 100 items",
        ),
        ({"description": "nul\u0000byte"}, "description: must not contain control characters"),
        ({"uri": "https://example.com/\u0001"}, "uri: must not contain control characters"),
        ({"enabled": "true"}, "enabled: must be true or false"),
        ({"enabled": None}, "enabled: must be true or false"),
        ({"handleResponse": "ALL"}, "handleResponse: must be 'NONE', 'STATUS' or"),
        ({"handleResponse": "none"}, "handleResponse: "),
        ({"retry": 1}, "retry: must be true or false"),
        ({"timeout": 0}, "timeout: must be between 1 and 30000"),
        ({"timeout": 30001}, "timeout: must be between 1 and 30000"),
        ({"timeout": 1.5}, "timeout: must be an integer"),
        ({"timeout": "300"}, "timeout: must be an integer"),
        ({"apiKey": ""}, "apiKey: must not be empty"),
        ({"apiKey": "two words"}, "apiKey: "),
        ({"apiKey": "line\nbreak"}, "apiKey: "),
        ({"restrictions": {"key": "CATEGORY"}}, "restrictions: must be a list"),
        (
            {"restrictions": [{"key": "TYPE", "value": "a"}]},
            "restrictions.0.key: must be 'CATEGORY'",
        ),
        ({"restrictions": [{"key": None, "value": "a"}]}, "restrictions.0.key: "),
        ({"restrictions": [{"key": "CATEGORY"}]}, "restrictions.0.value: is required"),
        ({"restrictions": [{"key": "CATEGORY", "value": ""}]}, "restrictions.0.value: "),
        (
            {"restrictions": [{"key": "CATEGORY", "value": "a", "op": "eq"}]},
            "restrictions.0.op: is not a field of a restriction",
        ),
        ({"secret": "abc"}, "secret: is not a field of a webhook"),
    ],
)
async def test_bad_webhooks_are_refused(api: Api, change: dict[str, Any], reason: str) -> None:
    await put_repo(api)
    response = await api.client.post(
        "/r/repo1/events/document.created", json={**MINIMAL, **change}, headers=api.admin
    )
    assert_error(response, 400, 400, reason)
    event = await api.client.get("/r/repo1/events/document.created", headers=api.admin)
    assert event.json()["webhooks"] == []


@pytest.mark.parametrize("missing", ["uri", "description", "handleResponse"])
async def test_required_fields(api: Api, missing: str) -> None:
    await put_repo(api)
    body = {k: v for k, v in MINIMAL.items() if k != missing}
    response = await api.client.post(
        "/r/repo1/events/document.created", json=body, headers=api.admin
    )
    assert_error(response, 400, 400, f"{missing}: is required")


async def test_a_bad_replacement_changes_nothing(api: Api) -> None:
    await put_repo(api)
    hook = await create_hook(api)
    path = f"/r/repo1/events/document.created/{hook['id']}"
    response = await api.client.put(path, json={**MINIMAL, "timeout": -1}, headers=api.admin)
    assert_error(response, 400, 400, "timeout: ")
    response = await api.client.put(path, content=b"[", headers=api.admin)
    assert_error(response, 400, 400, "Wrong JSON body")
    assert (await api.client.get(path, headers=api.admin)).json() == hook


async def test_unknown_webhooks_are_404_240100(api: Api) -> None:
    await put_repo(api)
    await put_repo(api, "repo2")
    hook = await create_hook(api)
    wid = hook["id"]
    for path in (
        f"/r/repo1/events/document.created/{uuid.uuid4()}",
        "/r/repo1/events/document.created/not-a-uuid",
        "/r/repo1/events/document.created/12345",
        f"/r/repo1/events/document.updated/{wid}",  # another event
        f"/r/repo2/events/document.created/{wid}",  # another repository
    ):
        for method, body in (("GET", None), ("PUT", MINIMAL), ("DELETE", None)):
            response = await api.client.request(method, path, json=body, headers=api.admin)
            assert_error(response, 404, 240100)
    # Upper case names the same webhook.
    upper = f"/r/repo1/events/document.created/{wid.upper()}"
    assert (await api.client.get(upper, headers=api.admin)).json()["id"] == wid


async def test_a_deleted_webhook_is_gone(api: Api) -> None:
    await put_repo(api)
    hook = await create_hook(api)
    path = f"/r/repo1/events/document.created/{hook['id']}"
    response = await api.client.delete(path, headers=api.admin)
    assert response.status_code == 204
    assert response.content == b""
    assert_error(await api.client.get(path, headers=api.admin), 404, 240100)
    assert_error(await api.client.delete(path, headers=api.admin), 404, 240100)


async def test_an_event_lists_its_webhooks_in_creation_order(api: Api) -> None:
    await put_repo(api)
    first = await create_hook(api, description="first")
    second = await create_hook(api, description="second", enabled=True)
    await create_hook(api, "document.updated", description="elsewhere")
    response = await api.client.get("/r/repo1/events/document.created", headers=api.admin)
    assert response.status_code == 200
    body = response.json()
    assert body == {
        "id": "document.created",
        "name": body["name"],
        "description": body["description"],
        "blocking": False,
        "webhooks": [first, second],
    }


async def test_relative_uri_needs_a_base(api: Api) -> None:
    await put_repo(api)  # no base_uri, and HOOKD_RELATIVE_BASE_URL is not set
    response = await api.client.post(
        "/r/repo1/events/document.created", json={**MINIMAL, "uri": "/hook"}, headers=api.admin
    )
    assert_error(response, 400, 400, "uri: is relative")
    await put_repo(api, base_uri="https://h.example")
    hook = await create_hook(api, uri="/hook")
    assert hook["uri"] == "/hook"
    # Removing the base would leave that webhook nowhere to go.
    response = await api.client.put("/r/repo1", json={"name": "repo1"}, headers=api.admin)
    assert_error(response, 400, 400, "base_uri: is needed")
    assert (await api.client.get("/r/repo1", headers=api.admin)).json()["base_uri"] == (
        "https://h.example"
    )


# --- content negotiation ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "accept",
    [
        None,
        "*/*",
        "application/*",
        "application/json",
        "application/json, text/html;q=0.5",
        "application/hal+json;q=0.5, application/json",
        "text/html, */*;q=0.1",
    ],
)
async def test_plain_json_by_default(api: Api, accept: str | None) -> None:
    await put_repo(api)
    hook = await create_hook(api)
    headers = {**api.admin, **({"Accept": accept} if accept else {})}
    response = await api.client.get(
        f"/r/repo1/events/document.created/{hook['id']}", headers=headers
    )
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    assert response.json() == hook


@pytest.mark.parametrize(
    "accept",
    [
        "application/hal+json",
        "application/hal+json, application/json",
        "application/json;q=0.5, application/hal+json",
        "text/html, application/hal+json;q=0.2",
    ],
)
async def test_hal_when_asked(api: Api, accept: str) -> None:
    await put_repo(api)
    hook = await create_hook(api)
    path = f"/r/repo1/events/document.created/{hook['id']}"
    response = await api.client.get(path, headers={**api.admin, "Accept": accept})
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/hal+json"
    body = response.json()
    assert body.pop("_links") == {
        "self": {"href": path},
        "event": {"href": "/r/repo1/events/document.created"},
        "repository": {"href": "/r/repo1"},
    }
    assert body == hook


async def test_hal_everywhere(api: Api) -> None:
    headers = {**api.admin, **HAL}
    created = await api.client.put("/r/repo1", json={"name": "Repo"}, headers=headers)
    assert created.status_code == 201
    assert created.headers["content-type"] == "application/hal+json"
    assert created.json()["_links"] == {
        "self": {"href": "/r/repo1"},
        "events": {"href": "/r/repo1/events"},
    }
    events = (await api.client.get("/r/repo1/events", headers=headers)).json()
    assert events["_links"]["self"] == {"href": "/r/repo1/events"}
    assert "events" not in events
    embedded = {event["id"]: event for event in events["_embedded"]["events"]}
    assert set(embedded) == set(BUILT_IN)
    assert embedded["document.created"]["_links"]["self"] == {
        "href": "/r/repo1/events/document.created"
    }

    hook = await api.client.post("/r/repo1/events/document.created", json=MINIMAL, headers=headers)
    assert hook.status_code == 201
    assert hook.headers["content-type"] == "application/hal+json"
    assert hook.json()["_links"]["self"]["href"] == hook.headers["location"]

    event = (await api.client.get("/r/repo1/events/document.created", headers=headers)).json()
    assert "webhooks" not in event
    assert event["_links"]["self"] == {"href": "/r/repo1/events/document.created"}
    assert event["_links"]["repository"] == {"href": "/r/repo1"}
    [embedded_hook] = event["_embedded"]["webhooks"]
    assert embedded_hook == hook.json()

    trigger = await api.client.post(
        "/r/repo1/events/document.created/trigger", json={}, headers={**api.user, **HAL}
    )
    assert trigger.status_code == 202
    assert trigger.headers["content-type"] == "application/hal+json"
    assert trigger.json()["_links"]["event"] == {"href": "/r/repo1/events/document.created"}


@pytest.mark.parametrize(
    "accept", ["text/html", "application/xml", "application/json;q=0", "image/*, text/*"]
)
async def test_unacceptable_accept_is_406(api: Api, accept: str) -> None:
    await put_repo(api)
    headers = {**api.admin, "Accept": accept}
    for method, path in (("GET", "/r/repo1"), ("GET", "/r/repo1/events")):
        response = await api.client.request(method, path, headers=headers)
        assert_error(response, 406, 406)
        assert response.headers["content-type"] == "application/json"
    response = await api.client.post(
        "/r/repo1/events/document.created", json=MINIMAL, headers=headers
    )
    assert_error(response, 406, 406)
    event = await api.client.get("/r/repo1/events/document.created", headers=api.admin)
    assert event.json()["webhooks"] == []


async def test_errors_keep_their_shape_under_hal(api: Api) -> None:
    await put_repo(api)
    missing = f"/r/repo1/events/document.created/{uuid.uuid4()}"
    response = await api.client.get(missing, headers={**api.admin, **HAL})
    assert_error(response, 404, 240100)
    assert response.headers["content-type"] == "application/hal+json"
    response = await api.client.get(missing, headers=HAL)
    assert_error(response, 401, 401)
    assert response.headers["content-type"] == "application/hal+json"
    response = await api.client.post(
        "/r/repo1/events/document.created", json={}, headers={**api.admin, **HAL}
    )
    assert_error(response, 400, 400, "uri: is required")
    assert response.headers["content-type"] == "application/hal+json"
    response = await api.client.get(missing, headers=api.admin)
    assert_error(response, 404, 240100)
    assert response.headers["content-type"] == "application/json"
