"""Rules every route follows before its handler: bodies are JSON, and a method a path does not
answer gets 405 with the methods it does answer."""

from __future__ import annotations

import orjson
import pytest

from support import Api

XML = b"<webhook><url>https://example.com/h</url></webhook>"
WEBHOOK = {"url": "https://example.com/h", "event_types": ["log.door_was_opened"]}


@pytest.fixture
def run_worker() -> bool:
    return False


@pytest.mark.parametrize(
    "content_type", ["application/xml", "text/plain", "application/x-www-form-urlencoded"]
)
async def test_a_body_declared_as_not_json_is_refused_in_the_device_shape(
    api: Api, content_type: str
) -> None:
    response = await api.client.post(
        "/api/v1/webhooks",
        content=orjson.dumps(WEBHOOK),
        headers={**api.admin, "Content-Type": content_type},
    )
    assert response.status_code == 415
    assert response.json() == {
        "error": f"Content-Type: the body must be application/json, not {content_type}"
    }
    listed = await api.client.get("/api/v1/webhooks", headers=api.admin)
    assert listed.json()["total"] == 0, "nothing was created"


async def test_a_body_declared_as_xml_is_refused_in_the_repository_shape(api: Api) -> None:
    response = await api.client.put(
        "/r/docs", content=XML, headers={**api.admin, "Content-Type": "application/xml"}
    )
    assert response.status_code == 415
    assert response.json() == {
        "code": 415,
        "reason": "Content-Type: the body must be application/json, not application/xml",
    }
    assert (await api.client.get("/r/docs", headers=api.admin)).status_code == 404


async def test_login_refuses_a_form(api: Api) -> None:
    response = await api.client.post("/api/v1/login", data={"username": "admin", "password": "x"})
    assert response.status_code == 415
    assert response.json()["error"].startswith("Content-Type: the body must be application/json")


@pytest.mark.parametrize(
    "headers",
    [
        {"Content-Type": "application/json"},
        {"Content-Type": "Application/JSON; charset=utf-8"},
        {"Content-Type": "application/hal+json"},
        {},
    ],
    ids=["json", "json-with-charset", "hal", "none"],
)
async def test_json_bodies_are_read(api: Api, headers: dict[str, str]) -> None:
    response = await api.client.post(
        "/api/v1/webhooks", content=orjson.dumps(WEBHOOK), headers={**api.admin, **headers}
    )
    assert response.status_code == 201, response.text


@pytest.mark.parametrize(
    ("method", "path", "allowed", "error"),
    [
        ("TRACE", "/api/v1/webhooks", "GET, POST", {"error": "Method Not Allowed"}),
        ("PUT", "/api/v1/events", "POST", {"error": "Method Not Allowed"}),
        ("TRACE", "/api/v1/webhooks/1", "DELETE, GET, PATCH, PUT", {"error": "Method Not Allowed"}),
        ("POST", "/healthz", "GET", {"error": "Method Not Allowed"}),
        ("TRACE", "/r/docs", "GET, PUT", {"code": 405, "reason": "Method Not Allowed"}),
    ],
)
async def test_a_method_a_path_does_not_answer_gets_405_with_allow(
    api: Api, method: str, path: str, allowed: str, error: dict[str, object]
) -> None:
    response = await api.client.request(method, path, headers=api.admin)
    assert response.status_code == 405
    assert response.headers["Allow"] == allowed
    assert response.json() == error
