"""The client's own logic, without a server: how publish splits events, which exception each
error answer becomes, and logging in again when a token is refused (both flavours, over
httpx's mock transport)."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from typing import Any

import httpx
import orjson
import pytest

from hookd.client import (
    AsyncClient,
    BadRequest,
    Client,
    Conflict,
    Forbidden,
    HookdError,
    NotFound,
    RateLimited,
    ServerError,
    TooLarge,
    Unauthorized,
    Unavailable,
)
from hookd.client._api import batches


def events(count: int, pad: int = 0) -> list[Any]:
    """`count` events of one size each."""
    return [
        {"type": "log.tamper_event", "data": {"n": f"{n:06d}", "pad": "x" * pad}}
        for n in range(count)
    ]


SIZE = len(orjson.dumps(events(1, pad=20)[0]))


def test_batches_hold_at_most_the_count_and_keep_the_order() -> None:
    found = batches(events(2501), 1000, 10**9)
    decoded = [orjson.loads(batch) for batch in found]
    assert [len(batch) for batch in decoded] == [1000, 1000, 501]
    assert [int(event["data"]["n"]) for batch in decoded for event in batch] == list(range(2501))


# A batch of n events takes n × (SIZE + 1) + 1 bytes: "[", the events, n - 1 commas, "]".
@pytest.mark.parametrize("limit", [2, SIZE + 1, SIZE + 2, 3 * (SIZE + 1), 3 * (SIZE + 1) + 1, 4096])
def test_batches_fill_up_to_the_byte_limit_and_not_past_it(limit: int) -> None:
    given = events(100, pad=20)
    size = SIZE
    if size + 2 > limit:
        with pytest.raises(ValueError, match=r"events\[0\]"):
            batches(given, 1000, limit)
        return
    found = batches(given, 1000, limit)
    assert all(len(batch) <= limit for batch in found)
    per_batch = (limit - 1) // (size + 1)  # "[" + n events + n-1 commas + "]"
    assert len(orjson.loads(found[0])) == per_batch
    assert sum(len(orjson.loads(batch)) for batch in found) == 100


def test_no_events_make_no_batch() -> None:
    assert batches([], 1000, 4096) == []


# --- over a mock transport ----------------------------------------------------------------------


def answering(status: int, body: Any, headers: dict[str, str] | None = None) -> Any:
    def handle(request: httpx.Request) -> httpx.Response:
        return httpx.Response(status, json=body, headers=headers)

    return handle


def call(flavour: str, handler: Any, method: str, *args: Any, **options: Any) -> Any:
    if flavour == "sync":
        with Client(
            "http://hookd.test", "t", transport=httpx.MockTransport(handler), **options
        ) as c:
            return getattr(c, method)(*args)

    async def run() -> Any:
        transport = httpx.MockTransport(handler)
        async with AsyncClient("http://hookd.test", "t", transport=transport, **options) as c:
            return await getattr(c, method)(*args)

    return asyncio.run(run())


FLAVOURS = pytest.mark.parametrize("flavour", ["sync", "async"])


@FLAVOURS
@pytest.mark.parametrize(
    ("status", "kind"),
    [
        (400, BadRequest),
        (401, Unauthorized),
        (403, Forbidden),
        (404, NotFound),
        (406, BadRequest),
        (409, Conflict),
        (413, TooLarge),
        (415, BadRequest),
        (418, HookdError),
        (500, ServerError),
        (502, ServerError),
    ],
)
def test_each_error_status_is_its_exception(flavour: str, status: int, kind: type) -> None:
    with pytest.raises(HookdError) as raised:
        call(flavour, answering(status, {"error": "no"}), "get_webhook", 1)
    assert type(raised.value) is kind
    assert (raised.value.status, raised.value.message, raised.value.code) == (status, "no", status)
    assert raised.value.body == {"error": "no"}


@FLAVOURS
@pytest.mark.parametrize(("status", "kind"), [(429, RateLimited), (503, Unavailable)])
def test_a_refusal_to_retry_carries_retry_after(flavour: str, status: int, kind: type) -> None:
    handler = answering(status, {"error": "later"}, {"Retry-After": "5"})
    with pytest.raises(kind) as raised:
        call(flavour, handler, "event_types")
    assert raised.value.retry_after == 5.0


@FLAVOURS
def test_the_repository_dialects_error_keeps_its_code(flavour: str) -> None:
    body = {"code": 240300, "reason": "Repository 'x' not found"}
    with pytest.raises(NotFound) as raised:
        call(flavour, answering(404, body), "get_repository", "x")
    assert (raised.value.code, raised.value.message, raised.value.body) == (
        240300,
        "Repository 'x' not found",
        body,
    )


@FLAVOURS
def test_an_error_that_is_no_json_still_says_its_status(flavour: str) -> None:
    def handle(request: httpx.Request) -> httpx.Response:
        return httpx.Response(502, text="<html>bad gateway</html>")

    with pytest.raises(ServerError) as raised:
        call(flavour, handle, "event_types")
    assert (raised.value.status, raised.value.body) == (502, {})
    assert raised.value.message == "Bad Gateway"


class Server:
    """Answers login with the next token, and event-types to the tokens it takes."""

    def __init__(self, issued: list[str], valid: set[str]) -> None:
        self.issued = iter(issued)
        self.valid = valid
        self.seen: list[tuple[str, str | None]] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.seen.append((request.url.path, request.headers.get("authorization")))
        if request.url.path == "/api/v1/login":
            assert json.loads(request.content) == {"username": "a", "password": "p"}
            return httpx.Response(200, json={"token": next(self.issued), "account_type": "admin"})
        if request.headers.get("authorization") not in {f"Bearer {t}" for t in self.valid}:
            return httpx.Response(401, json={"error": "Log In"})
        return httpx.Response(200, json={"items": [], "total": 0})


@FLAVOURS
def test_a_refused_token_is_renewed_with_the_credentials(flavour: str) -> None:
    server = Server(["fresh"], {"fresh"})
    assert call(flavour, server, "event_types", username="a", password="p").total == 0
    assert server.seen == [
        ("/api/v1/event-types", "Bearer t"),
        ("/api/v1/login", None),
        ("/api/v1/event-types", "Bearer fresh"),
    ]


@FLAVOURS
def test_a_token_is_renewed_once_per_call(flavour: str) -> None:
    server = Server(["refused-too"], set())
    with pytest.raises(Unauthorized):
        call(flavour, server, "event_types", username="a", password="p")
    assert [path for path, _ in server.seen] == [
        "/api/v1/event-types",
        "/api/v1/login",
        "/api/v1/event-types",
    ]


@FLAVOURS
def test_without_credentials_a_refused_token_is_an_error(flavour: str) -> None:
    server = Server([], set())
    with pytest.raises(Unauthorized):
        call(flavour, server, "event_types")
    assert server.seen == [("/api/v1/event-types", "Bearer t")]


@FLAVOURS
@pytest.mark.parametrize(
    ("method", "args", "sent"),
    [
        ("create_api_key", ("shop",), {"name": "shop"}),
        ("create_api_key", ("shop", ["order.*"]), {"name": "shop", "event_types": ["order.*"]}),
        ("create_event_type", ("order.created",), {"name": "order.created"}),
        ("create_event_type", ("order.paid", "d"), {"name": "order.paid", "description": "d"}),
    ],
)
def test_an_optional_field_not_given_is_not_sent(
    flavour: str, method: str, args: tuple[Any, ...], sent: dict[str, Any]
) -> None:
    """Omitted, the server's default applies (any type for a key; no description)."""
    bodies: list[Any] = []

    def handle(request: httpx.Request) -> httpx.Response:
        bodies.append(json.loads(request.content))
        answer = {"id": 1, "key": "k", "event_types": None, "description": "", "created_at": 0}
        return httpx.Response(201, json={**answer, "name": sent["name"]})

    call(flavour, handle, method, *args)
    assert bodies == [sent]


def test_credentials_come_in_pairs() -> None:
    with pytest.raises(ValueError, match="username and password"):
        Client("http://hookd.test", username="admin")


def test_the_client_loads_nothing_of_the_server() -> None:
    """Producers import the client: it must not pull in the server's frameworks."""
    probe = (
        "import sys, hookd.client; "
        "print(sorted({name.split('.')[0] for name in sys.modules} & "
        "{'fastapi', 'starlette', 'sqlalchemy', 'aiohttp', 'uvicorn', 'asyncpg', 'alembic'}))"
    )
    loaded = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True, timeout=60
    )
    assert loaded.stdout.strip() == "[]"
