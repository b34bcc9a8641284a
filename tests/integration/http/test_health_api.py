"""Health, metrics and the API's own documentation, on each backend."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from hookd.app import create_app
from hookd.config import Settings
from hookd.store.database import Database
from support import Api

MANAGE = {"400", "401", "403"}
# Every endpoint of the foundation, with the error responses its documentation must describe.
DOCUMENTED: dict[tuple[str, str], set[str]] = {
    ("get", "/healthz"): {"503"},
    ("get", "/metrics"): {"401", "403"},
    ("post", "/api/v1/login"): {"400", "401"},
    ("post", "/api/v1/logout"): {"401"},
    ("get", "/api/v1/webhooks"): MANAGE,
    ("post", "/api/v1/webhooks"): MANAGE,
    ("get", "/api/v1/webhooks/{uid}"): MANAGE,
    ("put", "/api/v1/webhooks/{uid}"): MANAGE,
    ("patch", "/api/v1/webhooks/{uid}"): MANAGE,
    ("delete", "/api/v1/webhooks/{uid}"): MANAGE,
    ("get", "/api/v1/webhooks/{uid}/deliveries"): MANAGE,
    ("post", "/api/v1/webhooks/{uid}/test"): MANAGE,
    ("post", "/api/v1/deliveries/{delivery_id}/retry"): MANAGE,
    ("get", "/api/v1/event-types"): {"401"},
    ("post", "/api/v1/events"): {"400", "401"},
}
WITH_BODY = [
    ("post", "/api/v1/login"),
    ("post", "/api/v1/webhooks"),
    ("put", "/api/v1/webhooks/{uid}"),
    ("patch", "/api/v1/webhooks/{uid}"),
    ("post", "/api/v1/events"),
]


@dataclass
class Running:
    app: FastAPI
    client: httpx.AsyncClient


@pytest.fixture
async def running(settings: Settings) -> AsyncIterator[Running]:
    app = create_app(settings, run_worker=False)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://hookd.test") as client:
            yield Running(app, client)


@pytest.fixture
async def openapi(running: Running) -> dict[str, Any]:
    response = await running.client.get("/openapi.json")
    assert response.status_code == 200
    return response.json()  # type: ignore[no-any-return]


async def test_healthz(running: Running) -> None:
    response = await running.client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}
    assert response.headers["content-type"].startswith("application/json")


async def test_healthz_is_503_when_the_store_does_not_answer(running: Running) -> None:
    services = running.app.state.services
    working = services.db
    # Nothing listens on port 1: the store "does not answer".
    services.db = Database("postgresql://postgres@127.0.0.1:1/hookd_absent", pool_size=1)
    try:
        response = await running.client.get("/healthz")
    finally:
        await services.db.close()
        services.db = working
    assert response.status_code == 503
    assert response.json()["status"] != "ok"
    assert (await running.client.get("/healthz")).status_code == 200


@pytest.mark.parametrize(("method", "path"), sorted(DOCUMENTED))
def test_openapi_lists_the_endpoint_and_its_errors(
    openapi: dict[str, Any], method: str, path: str
) -> None:
    operation = openapi["paths"].get(path, {}).get(method)
    assert operation is not None, f"{method.upper()} {path} is not documented"
    responses = operation["responses"]
    assert DOCUMENTED[(method, path)] <= set(responses), sorted(responses)
    success = [code for code in responses if code.startswith("2")]
    assert success, "the success answer is described too"
    for code, response in responses.items():
        assert response.get("description", "").strip(), f"{code} has no description"
    if (method, path) in WITH_BODY:
        assert operation["requestBody"]["content"]["application/json"]["schema"]


def test_openapi_webhook_schema_has_the_specified_ranges(openapi: dict[str, Any]) -> None:
    body = openapi["paths"]["/api/v1/webhooks"]["post"]["requestBody"]
    schema = body["content"]["application/json"]["schema"]
    if "$ref" in schema:
        schema = openapi["components"]["schemas"][schema["$ref"].rsplit("/", 1)[1]]
    fields = schema["properties"]
    assert (fields["url"]["minLength"], fields["url"]["maxLength"]) == (4, 2000)
    assert (fields["timeout"]["minimum"], fields["timeout"]["maximum"]) == (1000, 30000)
    assert (fields["max_retries"]["minimum"], fields["max_retries"]["maximum"]) == (0, 5)
    assert fields["description"]["maxLength"] == 1000
    assert set(schema["required"]) == {"url", "event_types"}


def test_openapi_documents_no_status_the_api_never_sends(openapi: dict[str, Any]) -> None:
    documented_422 = [
        f"{method.upper()} {path}"
        for path, operations in openapi["paths"].items()
        for method, operation in operations.items()
        if "422" in operation.get("responses", {})
    ]
    assert documented_422 == []


async def test_docs_page(running: Running) -> None:
    response = await running.client.get("/docs")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    assert "openapi.json" in response.text
    assert "<html" in response.text.lower()


def metric(text: str, name: str) -> float:
    match = re.search(rf"^{re.escape(name)} ([0-9.e+]+)$", text, re.MULTILINE)
    assert match, f"{name} not in the metrics"
    return float(match.group(1))


@pytest.mark.parametrize("run_worker", [False])
async def test_metrics_are_prometheus_text(api: Api) -> None:
    response = await api.client.get("/metrics", headers=api.admin)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    text = response.text
    assert "# HELP hookd_events_published_total" in text
    assert "# TYPE hookd_events_published_total counter" in text
    assert "# TYPE hookd_delivery_attempt_seconds histogram" in text
    before = metric(text, "hookd_events_published_total")
    await api.publish([{"type": "log.door_was_opened"}, {"type": "log.tamper_event"}])
    scraped = await api.client.get("/metrics", headers=api.admin)
    after = metric(scraped.text, "hookd_events_published_total")
    assert after == before + 2
