"""Relative webhook URIs on each backend: resolved against the repository's base_uri, else
HOOKD_RELATIVE_BASE_URL, and following either when it changes."""

from __future__ import annotations

from typing import Any

import pytest

from hookd.app import create_app
from hookd.config import Settings
from hookd.dialects.repository import store as repository_store
from hookd.store.database import Database
from support import Api, Receiver


@pytest.fixture
def settings(make_settings: Any, receiver: Receiver) -> Settings:
    """This module's hookd resolves relative URIs against the receiver's /global."""
    return make_settings(relative_base_url=receiver.url("/global"))  # type: ignore[no-any-return]


async def put_repo(api: Api, **body: Any) -> None:
    response = await api.client.put("/r/repo1", json={"name": "repo1", **body}, headers=api.admin)
    assert response.status_code in (200, 201), response.text


async def create_hook(api: Api, event: str, uri: str) -> dict[str, Any]:
    body = {"uri": uri, "description": "d", "handleResponse": "STATUS", "enabled": True}
    response = await api.client.post(f"/r/repo1/events/{event}", json=body, headers=api.admin)
    assert response.status_code == 201, response.text
    assert response.json()["uri"] == uri
    return response.json()  # type: ignore[no-any-return]


async def fire_both(api: Api, receiver: Receiver, path: str) -> None:
    """A validation call and a queued delivery both reach `path`."""
    before = len(receiver.at(path))
    response = await api.client.post(
        "/r/repo1/events/document.beforecreate/trigger", json={}, headers=api.user
    )
    assert response.json()["allowed"] is True, response.text
    assert len(receiver.at(path)) == before + 1
    response = await api.client.post(
        "/r/repo1/events/document.created/trigger", json={}, headers=api.user
    )
    assert response.json()["deliveries"] == 1
    await receiver.wait_for(before + 2, path)
    assert len(receiver.at(path)) == before + 2


async def test_without_base_uri_the_setting_is_the_base(api: Api, receiver: Receiver) -> None:
    await put_repo(api)
    await create_hook(api, "document.beforecreate", "/hook")
    await create_hook(api, "document.created", "/hook")
    await fire_both(api, receiver, "/global/hook")


async def test_the_repository_base_uri_wins_and_is_followed(api: Api, receiver: Receiver) -> None:
    await put_repo(api, base_uri=receiver.url("/base/"))
    await create_hook(api, "document.beforecreate", "/hook?x=1")
    await create_hook(api, "document.created", "/hook?x=1")
    await fire_both(api, receiver, "/base/hook")

    await put_repo(api, base_uri=receiver.url("/moved"))
    await fire_both(api, receiver, "/moved/hook")

    await put_repo(api)  # no base_uri any more: back to the setting
    await fire_both(api, receiver, "/global/hook")


async def test_absolute_uris_do_not_move(api: Api, receiver: Receiver) -> None:
    await put_repo(api, base_uri=receiver.url("/base"))
    await create_hook(api, "document.beforecreate", receiver.url("/absolute"))
    await create_hook(api, "document.created", receiver.url("/absolute"))
    await put_repo(api, base_uri=receiver.url("/moved"))
    await fire_both(api, receiver, "/absolute")


async def test_a_changed_setting_is_followed_at_start(
    api: Api, receiver: Receiver, make_settings: Any, db: Database
) -> None:
    await put_repo(api)
    hook = await create_hook(api, "document.created", "/hook")
    await put_repo_elsewhere(api, receiver)
    found = await repository_store.get_webhook(db, hook["id"])
    assert found is not None and found.webhook.url == receiver.url("/global/hook")

    # A restart with another HOOKD_RELATIVE_BASE_URL moves the webhook (not the other
    # repository's, which has a base_uri of its own).
    restarted = create_app(make_settings(relative_base_url=receiver.url("/new")), run_worker=False)
    async with restarted.router.lifespan_context(restarted):
        pass
    found = await repository_store.get_webhook(db, hook["id"])
    assert found is not None and found.webhook.url == receiver.url("/new/hook")
    assert found.binding.uri == "/hook"
    other = await repository_store.event_webhooks(db, "repo2", "document.created")
    assert [w.webhook.url for w in other] == [receiver.url("/own/hook")]


async def put_repo_elsewhere(api: Api, receiver: Receiver) -> None:
    response = await api.client.put(
        "/r/repo2", json={"name": "repo2", "base_uri": receiver.url("/own")}, headers=api.admin
    )
    assert response.status_code == 201
    body = {"uri": "/hook", "description": "d", "handleResponse": "NONE"}
    response = await api.client.post(
        "/r/repo2/events/document.created", json=body, headers=api.admin
    )
    assert response.status_code == 201
