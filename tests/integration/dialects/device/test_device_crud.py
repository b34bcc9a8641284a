"""Device dialect CRUD semantics on each backend: create, list, get, PUT, PATCH, DELETE, and the
event-type catalogue."""

from __future__ import annotations

import time
from typing import Any

import pytest
from sqlalchemy import update

from hookd.store.database import Database
from hookd.store.schema import webhooks
from support import Api, spec_event_types

SPEC_FIELDS = {
    "url",
    "secret",
    "status",
    "timeout",
    "headers",
    "description",
    "event_types",
    "max_retries",
    "created_at",
    "updated_at",
}
# hookd's delivery controls, beside the specification's fields.
CONTROL_FIELDS = {"rate_limit", "ordering", "health", "disabled_reason"}
FULL: dict[str, Any] = {
    "url": "https://127.0.0.1:9/full?x=1",
    "secret": "f" * 40,
    "status": "disabled",
    "timeout": 2500,
    "headers": '{"X-Tenant": "acme", "X-Trace": "a\\tb"}',
    "description": "every field set",
    "event_types": ["log.tamper_event", "log.door_was_opened", "log.device_booted"],
    "max_retries": 5,
}
DEFAULTS = {
    "status": "active",
    "timeout": 10000,
    "headers": "{}",
    "description": "",
    "max_retries": 3,
    "rate_limit": None,
    "ordering": "none",
    "health": "ok",
    "disabled_reason": None,
}


@pytest.fixture
def run_worker() -> bool:
    return False


async def create(api: Api, body: dict[str, Any]) -> dict[str, Any]:
    response = await api.client.post("/api/v1/webhooks", json=body, headers=api.admin)
    assert response.status_code == 201, response.text
    return response.json()  # type: ignore[no-any-return]


async def get(api: Api, uid: int) -> dict[str, Any]:
    response = await api.client.get(f"/api/v1/webhooks/{uid}", headers=api.admin)
    assert response.status_code == 200, response.text
    return response.json()  # type: ignore[no-any-return]


async def listing(api: Api, **params: Any) -> dict[str, Any]:
    response = await api.client.get("/api/v1/webhooks", params=params, headers=api.admin)
    assert response.status_code == 200, response.text
    return response.json()  # type: ignore[no-any-return]


async def age(db: Database, uid: int, seconds: int) -> None:
    """Move a webhook's timestamps into the past, so a change shows without sleeping."""
    async with db.transaction() as conn:
        await conn.execute(
            update(webhooks)
            .where(webhooks.c.id == uid)
            .values(
                created_at=webhooks.c.created_at - seconds,
                updated_at=webhooks.c.updated_at - seconds,
            )
        )


def assert_recent(timestamp: Any) -> None:
    assert isinstance(timestamp, int) and not isinstance(timestamp, bool)
    assert abs(timestamp - time.time()) < 10, "Unix seconds, close to now (not milliseconds)"


async def test_create_returns_the_entity_with_uid_and_timestamps(api: Api) -> None:
    created = await create(api, FULL)
    assert set(created) == SPEC_FIELDS | CONTROL_FIELDS | {"uid"}
    assert {key: created[key] for key in FULL} == FULL
    assert isinstance(created["uid"], int) and created["uid"] >= 1
    assert_recent(created["created_at"])
    assert created["updated_at"] == created["created_at"]
    assert await get(api, created["uid"]) == created


async def test_create_fills_the_specified_defaults(api: Api) -> None:
    created = await create(api, {"url": FULL["url"], "event_types": ["log.door_was_opened"]})
    assert {key: created[key] for key in DEFAULTS} == DEFAULTS
    assert created["secret"].startswith("whsec_")


async def test_uids_are_distinct_and_increasing(api: Api) -> None:
    uids = [(await create(api, FULL))["uid"] for _ in range(3)]
    assert uids == sorted(set(uids))
    assert uids[0] >= 1


async def test_list_pages(api: Api) -> None:
    created = [await create(api, {**FULL, "description": f"#{n}"}) for n in range(5)]
    everything = await listing(api)
    assert set(everything) == {"items", "total"}
    assert everything["total"] == 5
    assert everything["items"] == created
    page = await listing(api, limit=2, offset=1)
    assert page == {"items": created[1:3], "total": 5}
    assert await listing(api, limit=1000, offset=4) == {"items": created[4:], "total": 5}
    assert await listing(api, offset=5) == {"items": [], "total": 5}
    assert await listing(api, limit=1) == {"items": created[:1], "total": 5}


async def test_list_of_an_empty_store(api: Api) -> None:
    assert await listing(api) == {"items": [], "total": 0}


async def test_put_replaces_and_keeps_an_omitted_secret(api: Api, db: Database) -> None:
    created = await create(api, FULL)
    await age(db, created["uid"], 100)
    replacement = {"url": "http://127.0.0.1:9/replaced", "event_types": ["log.incoming_call"]}
    response = await api.client.put(
        f"/api/v1/webhooks/{created['uid']}", json=replacement, headers=api.admin
    )
    assert response.status_code == 200, response.text
    replaced = response.json()
    # Every omitted field goes back to its default, except the secret, which is kept.
    assert replaced == {
        **DEFAULTS,
        **replacement,
        "uid": created["uid"],
        "secret": FULL["secret"],
        "created_at": created["created_at"] - 100,
        "updated_at": replaced["updated_at"],
    }
    assert_recent(replaced["updated_at"])
    assert replaced["updated_at"] > replaced["created_at"]
    assert await get(api, created["uid"]) == replaced


async def test_put_with_a_secret_replaces_it(api: Api) -> None:
    created = await create(api, FULL)
    response = await api.client.put(
        f"/api/v1/webhooks/{created['uid']}",
        json={**FULL, "secret": "n" * 16},
        headers=api.admin,
    )
    assert response.status_code == 200, response.text
    assert response.json()["secret"] == "n" * 16
    assert (await get(api, created["uid"]))["secret"] == "n" * 16


@pytest.mark.parametrize(
    "patch",
    [
        pytest.param({"description": "only this"}, id="description"),
        pytest.param({"status": "active", "timeout": 1000}, id="two-fields"),
        pytest.param({"event_types": ["log.bond_lift_request"]}, id="event-types"),
        pytest.param({"secret": "p" * 128}, id="secret"),
        pytest.param({"headers": "{}"}, id="headers"),
    ],
)
async def test_patch_changes_only_the_given_fields(
    api: Api, db: Database, patch: dict[str, Any]
) -> None:
    created = await create(api, FULL)
    await age(db, created["uid"], 100)
    response = await api.client.patch(
        f"/api/v1/webhooks/{created['uid']}", json=patch, headers=api.admin
    )
    assert response.status_code == 200, response.text
    patched = response.json()
    assert patched == {
        **created,
        **patch,
        "created_at": created["created_at"] - 100,
        "updated_at": patched["updated_at"],
    }
    assert_recent(patched["updated_at"])
    assert await get(api, created["uid"]) == patched


async def test_patch_validates_the_merged_webhook(api: Api) -> None:
    created = await create(api, FULL)
    # Each field alone is fine in a PATCH; a null for a required field is not.
    response = await api.client.patch(
        f"/api/v1/webhooks/{created['uid']}", json={"url": None}, headers=api.admin
    )
    assert response.status_code == 400
    assert response.json()["error"].startswith("url: ")
    assert await get(api, created["uid"]) == created


async def test_empty_patch_changes_nothing_but_updated_at(api: Api) -> None:
    created = await create(api, FULL)
    response = await api.client.patch(
        f"/api/v1/webhooks/{created['uid']}", json={}, headers=api.admin
    )
    assert response.status_code == 200, response.text
    assert {k: v for k, v in response.json().items() if k != "updated_at"} == {
        k: v for k, v in created.items() if k != "updated_at"
    }


async def test_delete(api: Api) -> None:
    kept = await create(api, FULL)
    doomed = await create(api, FULL)
    response = await api.client.delete(f"/api/v1/webhooks/{doomed['uid']}", headers=api.admin)
    assert response.status_code == 204
    assert response.content == b""
    for method in ("GET", "DELETE"):
        again = await api.client.request(
            method, f"/api/v1/webhooks/{doomed['uid']}", headers=api.admin
        )
        assert again.status_code == 400
        assert again.json() == {"error": "Wrong webhook uid"}
    assert await listing(api) == {"items": [kept], "total": 1}


async def test_deleted_uid_is_not_reused(
    api: Api, database_url: str, request: pytest.FixtureRequest
) -> None:
    first = await create(api, FULL)
    await api.client.delete(f"/api/v1/webhooks/{first['uid']}", headers=api.admin)
    second = await create(api, FULL)
    assert second["uid"] != first["uid"]


async def test_deliveries_of_a_new_webhook(api: Api) -> None:
    created = await create(api, FULL)
    response = await api.client.get(
        f"/api/v1/webhooks/{created['uid']}/deliveries", headers=api.admin
    )
    assert response.status_code == 200, response.text
    assert response.json() == {"items": [], "total": 0}


@pytest.mark.parametrize("who", ["admin", "user"])
async def test_event_types_are_the_specified_catalogue_and_hookds_own(api: Api, who: str) -> None:
    response = await api.client.get("/api/v1/event-types", headers=getattr(api, who))
    assert response.status_code == 200, response.text
    operational = ["hookd.webhook.disabled", "hookd.webhook.recovered", "hookd.delivery.exhausted"]
    assert response.json() == {"items": [*spec_event_types(), *operational], "total": 44}
