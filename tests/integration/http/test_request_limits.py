"""The application's own request limits (`hookd.http.limits`, each route's body limit), met by
every way of running hookd, the in-process client included: 431, 414 and 413 in the error
shape of the path's dialect; bodies held to their limit while they stream in."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Any

import orjson
import pytest

from hookd.config import Settings
from support import Api, running_api

EVENT = "log.door_was_opened"


@pytest.fixture
def settings(make_settings: Callable[..., Settings]) -> Settings:
    return make_settings(
        max_header_bytes=4096,
        max_url_bytes=512,
        max_event_bytes=1024,
        max_publish_bytes=4096,
        max_body_bytes=2048,
    )


@pytest.fixture
async def api(settings: Settings) -> AsyncIterator[Api]:
    async with running_api(settings, run_worker=False) as running:
        yield running


async def chunks(body: bytes, size: int = 1000) -> AsyncIterator[bytes]:
    """`body` streamed in pieces, with no Content-Length (chunked)."""
    for start in range(0, len(body), size):
        yield body[start : start + size]


@pytest.mark.parametrize(
    ("path", "shape"),
    [("/api/v1/webhooks", {"error"}), ("/r/repo1", {"code", "reason"})],
)
async def test_a_head_over_the_limit_is_431_in_the_dialect_s_shape(
    api: Api, path: str, shape: set[str]
) -> None:
    response = await api.client.get(path, headers={**api.admin, "X-Big": "b" * 5000})
    assert response.status_code == 431, response.text
    assert set(response.json()) == shape


async def test_a_request_target_over_the_limit_is_414(api: Api) -> None:
    response = await api.client.get("/r/" + "x" * 600, headers=api.admin)
    assert response.status_code == 414, response.text
    assert response.json() == {"code": 414, "reason": "Request target too long"}


async def test_a_publish_over_its_limit_is_refused_as_it_streams(api: Api) -> None:
    events = [{"type": EVENT, "data": {"n": n, "pad": "p" * 100}} for n in range(40)]
    body = orjson.dumps(events)
    assert len(body) > 4096
    response = await api.client.post("/api/v1/events", content=chunks(body), headers=api.user)
    assert response.status_code == 413, response.text
    assert response.json() == {"error": "body: larger than 4096 bytes"}
    assert response.headers["connection"] == "close"


async def test_a_publish_declared_over_the_ceiling_is_refused_unread(api: Any) -> None:
    response = await api.client.post(
        "/api/v1/events",
        content=b"[]",
        headers={**api.user, "Content-Length": str(32 * 1024 * 1024)},
    )
    assert response.status_code == 413, response.text
    assert response.json()["error"].startswith("body: larger than")


async def test_a_publish_within_its_limit_is_accepted(api: Api) -> None:
    events = [{"type": EVENT, "data": {"n": n}} for n in range(60)]
    body = orjson.dumps(events)
    assert 2048 < len(body) <= 4096  # over the other routes' limit: the publish has its own
    response = await api.client.post("/api/v1/events", content=chunks(body), headers=api.user)
    assert response.status_code == 202, response.text


@pytest.mark.parametrize(
    ("method", "path", "shape"),
    [
        ("POST", "/api/v1/webhooks", {"error"}),
        ("PUT", "/r/repo1", {"code", "reason"}),
        ("POST", "/api/v1/login", {"error"}),
    ],
)
async def test_other_bodies_are_held_to_their_own_limit(
    api: Api, method: str, path: str, shape: set[str]
) -> None:
    body = orjson.dumps({"name": "r", "description": "d" * 3000})
    response = await api.client.request(method, path, content=chunks(body), headers=api.admin)
    assert response.status_code == 413, response.text
    assert set(response.json()) == shape


async def test_a_trigger_is_held_to_the_event_limit(api: Api) -> None:
    await api.client.put("/r/repo1", json={"name": "r"}, headers=api.admin)
    body = orjson.dumps({"data": {"pad": "p" * 4000}})
    response = await api.client.post(
        "/r/repo1/events/document.created/trigger", content=chunks(body), headers=api.user
    )
    assert response.status_code == 413, response.text
    assert response.json()["code"] == 413


@pytest.mark.parametrize("length", [b"9" * 3000, b"000000000000000000000000099999999", b"\xb2"])
async def test_odd_content_lengths_are_no_500(api: Api, length: bytes) -> None:
    response = await api.client.post(
        "/api/v1/events", content=b"[]", headers={**api.user, "Content-Length": length}
    )
    assert response.status_code in (400, 413), response.text
