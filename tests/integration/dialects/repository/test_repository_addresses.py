"""Addresses inside the network are an administrator's business: a `user` sees neither what the
SSRF guard resolved nor where a connection failed, nor a repository's base_uri."""

from __future__ import annotations

from typing import Any

import pytest

from support import Api, Receiver

EVENT = "document.beforecreate"


async def blocking_hook(api: Api, uri: str) -> None:
    response = await api.client.put("/r/repo1", json={"name": "r"}, headers=api.admin)
    assert response.status_code in (200, 201), response.text
    body = {"uri": uri, "description": "d", "handleResponse": "STATUS", "enabled": True}
    response = await api.client.post(f"/r/repo1/events/{EVENT}", json=body, headers=api.admin)
    assert response.status_code == 201, response.text


async def error_seen_by(api: Api, who: dict[str, str]) -> str:
    response = await api.client.post(f"/r/repo1/events/{EVENT}/trigger", json={}, headers=who)
    assert response.status_code == 200, response.text
    [result] = response.json()["results"]
    assert isinstance(result["error"], str)
    return result["error"]


async def test_ssrf_refusals_name_the_address_to_admins_only(
    make_settings: Any, api_factory: Any, receiver: Receiver
) -> None:
    api = await api_factory(make_settings(allow_targets=""))  # the guard refuses loopback
    await blocking_hook(api, receiver.url())

    assert "127.0.0.1" in await error_seen_by(api, api.admin)
    assert await error_seen_by(api, api.user) == "refused by the SSRF guard"
    assert receiver.requests == []


async def test_connection_failures_name_the_address_to_admins_only(
    api: Api, unused_port: int
) -> None:
    await blocking_hook(api, f"http://127.0.0.1:{unused_port}/hook")

    assert str(unused_port) in await error_seen_by(api, api.admin)
    assert await error_seen_by(api, api.user) == "connection failed"


@pytest.mark.parametrize(("who", "shown"), [("admin", True), ("user", False)])
async def test_a_repository_base_uri_is_shown_to_admins_only(
    api: Api, who: str, shown: bool
) -> None:
    base = "http://10.1.2.3:8080/app"
    response = await api.client.put(
        "/r/repo1", json={"name": "r", "base_uri": base}, headers=api.admin
    )
    assert response.status_code == 201, response.text

    fetched = await api.client.get("/r/repo1", headers=getattr(api, who))

    assert fetched.status_code == 200, fetched.text
    assert ("base_uri" in fetched.json()) is shown
    assert (base in fetched.text) is shown
