"""With HOOKD_SECRET_KEY, a repository webhook's apiKey is sealed at rest, yet every call and
delivery still carries it in clear, on each backend."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import select

from hookd.config import Settings
from hookd.store.database import Database
from hookd.store.schema import webhooks
from support import Api, Receiver


@pytest.fixture
def settings(make_settings: Any) -> Settings:
    return make_settings(secret_key="a-test-key-that-is-long-enough-0123456789")  # type: ignore[no-any-return]


async def test_the_api_key_is_sealed_at_rest_and_sent_in_clear(
    api: Api, receiver: Receiver, db: Database
) -> None:
    response = await api.client.put("/r/repo1", json={"name": "r"}, headers=api.admin)
    assert response.status_code == 201
    for event, handle in (("document.beforecreate", "STATUS"), ("document.created", "NONE")):
        body = {
            "uri": receiver.url(f"/{handle}"),
            "description": "d",
            "handleResponse": handle,
            "enabled": True,
            "apiKey": "clear-key",
        }
        response = await api.client.post(f"/r/repo1/events/{event}", json=body, headers=api.admin)
        assert response.status_code == 201
        assert response.json()["apiKey"] == "clear-key"
    async with db.read() as conn:
        stored = (await conn.execute(select(webhooks.c.bearer_token))).scalars().all()
    assert stored and all(key and "clear-key" not in key for key in stored)

    answer = await api.client.post(
        "/r/repo1/events/document.beforecreate/trigger", json={}, headers=api.user
    )
    assert answer.json()["allowed"] is True
    await api.client.post("/r/repo1/events/document.created/trigger", json={}, headers=api.user)
    await receiver.wait_for(1, "/NONE")
    for path in ("/STATUS", "/NONE"):
        assert receiver.at(path)[0].headers["Authorization"] == "Bearer clear-key"
