"""Every error body of the device dialect: 401, 403, Wrong webhook uid, Wrong JSON body, 404/405,
bad list parameters, and no 500 for any garbage a client may send.

One app per backend serves the whole module (test_device_validation.running_device_app).
"""

from __future__ import annotations

import json
import random
import string
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import pytest
import pytest_asyncio

from support import (
    BASE,
    Shared,
    assert_error,
    assert_field_error,
    running_device_app,
)

pytestmark = pytest.mark.asyncio(loop_scope="module")


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def shared(backend: str, tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Shared]:
    async with running_device_app(backend, tmp_path_factory.mktemp("errors")) as found:
        yield found


UID = "{uid}"
PATCH_BODY = {"description": "changed by a request that must be refused"}

# (name, method, path, body): every webhook-management endpoint; {uid} is the shared target.
ADMIN_ENDPOINTS = [
    ("list", "GET", "/api/v1/webhooks", None),
    ("create", "POST", "/api/v1/webhooks", BASE),
    ("get", "GET", f"/api/v1/webhooks/{UID}", None),
    ("put", "PUT", f"/api/v1/webhooks/{UID}", BASE),
    ("patch", "PATCH", f"/api/v1/webhooks/{UID}", PATCH_BODY),
    ("delete", "DELETE", f"/api/v1/webhooks/{UID}", None),
    ("deliveries", "GET", f"/api/v1/webhooks/{UID}/deliveries", None),
    ("test", "POST", f"/api/v1/webhooks/{UID}/test", None),
    ("retry", "POST", "/api/v1/deliveries/1/retry", None),
]
ANY_USER_ENDPOINTS = [
    ("event-types", "GET", "/api/v1/event-types", None),
    ("events", "POST", "/api/v1/events", {"type": "log.door_was_opened"}),
    ("logout", "POST", "/api/v1/logout", None),
]
UID_ENDPOINTS = [e for e in ADMIN_ENDPOINTS if UID in e[2]]


def endpoint_params(endpoints: list[tuple[str, str, str, Any]]) -> list[Any]:
    return [pytest.param(method, path, body, id=name) for name, method, path, body in endpoints]


async def call(
    shared: Shared,
    method: str,
    path: str,
    body: Any,
    headers: dict[str, str] | None,
    uid: str | int | None = None,
) -> httpx.Response:
    return await shared.send(
        method, path.replace(UID, str(shared.target if uid is None else uid)), body, headers or {}
    )


async def assert_nothing_changed(shared: Shared, total: int) -> None:
    assert await shared.total() == total
    await shared.assert_target_untouched()


def _token(shared: Shared) -> str:
    return shared.admin["Authorization"].removeprefix("Bearer ")


# Authorization headers that must all get 401, made from the admin's valid token.
BAD_AUTHORIZATION: list[Any] = [
    pytest.param(lambda token: {}, id="no-header"),
    pytest.param(lambda token: {"Authorization": ""}, id="empty"),
    pytest.param(lambda token: {"Authorization": "Bearer"}, id="bearer-without-token"),
    pytest.param(lambda token: {"Authorization": "Bearer    "}, id="bearer-blank-token"),
    pytest.param(lambda token: {"Authorization": token}, id="token-without-scheme"),
    pytest.param(lambda token: {"Authorization": f"Basic {token}"}, id="basic-scheme"),
    pytest.param(lambda token: {"Authorization": f"Token {token}"}, id="token-scheme"),
    pytest.param(lambda token: {"Authorization": f"Bearer {token}x"}, id="altered-token"),
    pytest.param(lambda token: {"Authorization": f"Bearer {token[:-1]}"}, id="truncated"),
    pytest.param(lambda token: {"Authorization": "Bearer unknown-token"}, id="unknown-token"),
    pytest.param(lambda token: {"Authorization": "Bearer " + "x" * 10_000}, id="huge-token"),
    pytest.param(lambda token: {"X-Token": token}, id="token-in-other-header"),
]


@pytest.mark.parametrize("authorization", BAD_AUTHORIZATION)
async def test_401_for_every_kind_of_bad_authorization(
    shared: Shared, authorization: Callable[[str], Any]
) -> None:
    total = await shared.total()
    response = await call(
        shared, "DELETE", f"/api/v1/webhooks/{UID}", None, authorization(_token(shared))
    )
    assert_error(response, 401, "Log In")
    await assert_nothing_changed(shared, total)


SOME_BAD_AUTHORIZATION = [
    p for p in BAD_AUTHORIZATION if p.id in ("no-header", "basic-scheme", "unknown-token")
]


@pytest.mark.parametrize(
    ("method", "path", "body"), endpoint_params(ADMIN_ENDPOINTS + ANY_USER_ENDPOINTS)
)
@pytest.mark.parametrize("authorization", SOME_BAD_AUTHORIZATION)
async def test_401_on_every_endpoint(
    shared: Shared, method: str, path: str, body: Any, authorization: Callable[[str], Any]
) -> None:
    total = await shared.total()
    response = await call(shared, method, path, body, authorization(_token(shared)))
    assert_error(response, 401, "Log In")
    await assert_nothing_changed(shared, total)


@pytest.mark.parametrize(("method", "path", "body"), endpoint_params(UID_ENDPOINTS))
async def test_401_comes_before_uid_and_body_checks(
    shared: Shared, method: str, path: str, body: Any
) -> None:
    response = await call(shared, method, path, ["not", "a", "webhook"], {}, uid="abc")
    assert_error(response, 401, "Log In")


@pytest.mark.parametrize(("method", "path", "body"), endpoint_params(ADMIN_ENDPOINTS))
async def test_403_for_a_user(shared: Shared, method: str, path: str, body: Any) -> None:
    total = await shared.total()
    response = await call(shared, method, path, body, shared.user)
    assert_error(response, 403, "Administrator rights required")
    await assert_nothing_changed(shared, total)


async def test_user_token_is_valid_where_any_user_may_go(shared: Shared) -> None:
    # The 403s above are about the role, not a broken user token.
    response = await shared.client.get("/api/v1/event-types", headers=shared.user)
    assert response.status_code == 200, response.text


BAD_UIDS = [
    pytest.param("0", id="zero"),
    pytest.param("-1", id="minus-one"),
    pytest.param("abc", id="letters"),
    pytest.param("1.5", id="decimal"),
    pytest.param("1e3", id="exponent"),
    pytest.param("+1", id="plus-sign"),
    pytest.param("0x1", id="hex"),
    pytest.param("%201", id="leading-space"),
    pytest.param("1%20", id="trailing-space"),
    pytest.param("%C2%B2", id="superscript-two"),
    pytest.param("%EF%BC%91", id="fullwidth-one"),
    pytest.param("9223372036854775807", id="int64-max"),
    pytest.param("9223372036854775808", id="int64-max-plus-one"),
    pytest.param("9" * 40, id="huge"),
    pytest.param("999999999", id="names-no-webhook"),
]


@pytest.mark.parametrize("uid", BAD_UIDS)
async def test_wrong_webhook_uid_forms(shared: Shared, uid: str) -> None:
    response = await shared.send("GET", f"/api/v1/webhooks/{uid}")
    assert_error(response, 400, "Wrong webhook uid")


SOME_BAD_UIDS = [
    p
    for p in BAD_UIDS
    if p.id in ("zero", "minus-one", "letters", "decimal", "huge", "names-no-webhook")
]


@pytest.mark.parametrize(("method", "path", "body"), endpoint_params(UID_ENDPOINTS))
@pytest.mark.parametrize("uid", SOME_BAD_UIDS)
async def test_wrong_webhook_uid_on_every_endpoint(
    shared: Shared, method: str, path: str, body: Any, uid: str
) -> None:
    total = await shared.total()
    response = await call(shared, method, path, body, shared.admin, uid=uid)
    assert_error(response, 400, "Wrong webhook uid")
    await assert_nothing_changed(shared, total)


@pytest.mark.parametrize(("method", "path", "body"), endpoint_params(UID_ENDPOINTS))
async def test_deleted_webhook_uid(shared: Shared, method: str, path: str, body: Any) -> None:
    created = (await shared.create(BASE)).json()
    deleted = await shared.client.delete(f"/api/v1/webhooks/{created['uid']}", headers=shared.admin)
    assert deleted.status_code == 204
    total = await shared.total()
    response = await call(shared, method, path, body, shared.admin, uid=created["uid"])
    assert_error(response, 400, "Wrong webhook uid")
    await assert_nothing_changed(shared, total)


@pytest.mark.parametrize("delivery_id", ["0", "-1", "abc", "1.5", "9" * 40, "999999999"])
async def test_wrong_delivery_id(shared: Shared, delivery_id: str) -> None:
    response = await shared.send("POST", f"/api/v1/deliveries/{delivery_id}/retry")
    assert_error(response, 400, "Wrong delivery id")


# Bodies that are not JSON at all.
UNPARSEABLE = [
    pytest.param(b"", id="empty"),
    pytest.param(b"{", id="unclosed"),
    pytest.param(b"not json", id="words"),
    pytest.param(b'{"url": }', id="missing-value"),
    pytest.param(b"{'url': 'http://x'}", id="single-quotes"),
    pytest.param(b'{"url": "http://x",}', id="trailing-comma"),
    pytest.param(b'{"a": 1} {"b": 2}', id="two-documents"),
    pytest.param(b"\xff\xfe\x00{", id="binary"),
    pytest.param(b'{"a": "\xc3\x28"}', id="invalid-utf8"),
    pytest.param(b'{"timeout": NaN}', id="nan"),
    pytest.param(b'{"timeout": 1e400}', id="infinite-number"),
    pytest.param(b'{"a": "\\ud800"}', id="lone-surrogate"),
    pytest.param(b"[" * 5000 + b"]" * 5000, id="too-deep"),
]
# (name, method, path) of every endpoint that reads a JSON body.
BODY_ENDPOINTS = [
    pytest.param("POST", "/api/v1/webhooks", id="create"),
    pytest.param("PUT", f"/api/v1/webhooks/{UID}", id="put"),
    pytest.param("PATCH", f"/api/v1/webhooks/{UID}", id="patch"),
    pytest.param("POST", "/api/v1/login", id="login"),
    pytest.param("POST", "/api/v1/events", id="events"),
]


async def send_raw(shared: Shared, method: str, path: str, content: bytes) -> httpx.Response:
    return await shared.client.request(
        method,
        path.replace(UID, str(shared.target)),
        content=content,
        headers={**shared.admin, "Content-Type": "application/json"},
    )


@pytest.mark.parametrize(("method", "path"), BODY_ENDPOINTS)
@pytest.mark.parametrize("content", UNPARSEABLE)
async def test_wrong_json_body(shared: Shared, method: str, path: str, content: bytes) -> None:
    total = await shared.total()
    response = await send_raw(shared, method, path, content)
    assert_error(response, 400, "Wrong JSON body")
    await assert_nothing_changed(shared, total)


NOT_AN_OBJECT = [
    pytest.param(b"[]", id="empty-array"),
    pytest.param(json.dumps([BASE]).encode(), id="array-of-webhook"),
    pytest.param(b'"http://127.0.0.1/"', id="string"),
    pytest.param(b"null", id="null"),
]


@pytest.mark.parametrize(("method", "path"), BODY_ENDPOINTS[:3])
@pytest.mark.parametrize("content", NOT_AN_OBJECT)
async def test_non_object_webhook_body(
    shared: Shared, method: str, path: str, content: bytes
) -> None:
    total = await shared.total()
    response = await send_raw(shared, method, path, content)
    assert_error(response, 400, "Wrong JSON body")
    await assert_nothing_changed(shared, total)


@pytest.mark.parametrize("content", NOT_AN_OBJECT)
async def test_non_object_login_body(shared: Shared, content: bytes) -> None:
    response = await shared.client.post(
        "/api/v1/login", content=content, headers={"Content-Type": "application/json"}
    )
    assert_error(response, 400, "Wrong JSON body")


@pytest.mark.parametrize(
    ("method", "path", "status"),
    [
        pytest.param("GET", "/api/v1/nope", 404, id="unknown-api-path"),
        pytest.param("GET", "/api/v1/webhooks/1/nope", 404, id="unknown-sub-path"),
        pytest.param("GET", "/nope", 404, id="unknown-top-path"),
        pytest.param("POST", "/api/v2/webhooks", 404, id="unknown-version"),
        pytest.param("DELETE", "/api/v1/webhooks", 405, id="delete-collection"),
        pytest.param("PUT", "/api/v1/event-types", 405, id="put-event-types"),
        pytest.param("GET", "/api/v1/login", 405, id="get-login"),
    ],
)
@pytest.mark.parametrize("as_admin", [True, False], ids=["admin", "anonymous"])
async def test_unknown_routes_in_device_shape(
    shared: Shared, method: str, path: str, status: int, as_admin: bool
) -> None:
    response = await shared.send(method, path, headers=shared.admin if as_admin else {})
    assert response.status_code == status, response.text
    body = response.json()
    assert list(body) == ["error"]
    assert isinstance(body["error"], str)
    assert body["error"]


LIST_PATHS = [
    pytest.param("/api/v1/webhooks", id="webhooks"),
    pytest.param(f"/api/v1/webhooks/{UID}/deliveries", id="deliveries"),
]


@pytest.mark.parametrize("path", LIST_PATHS)
@pytest.mark.parametrize(
    ("query", "field"),
    [
        pytest.param("limit=0", "limit", id="limit-0"),
        pytest.param("limit=1001", "limit", id="limit-1001"),
        pytest.param("limit=-1", "limit", id="limit-negative"),
        pytest.param("limit=abc", "limit", id="limit-letters"),
        pytest.param("limit=1.5", "limit", id="limit-decimal"),
        pytest.param("limit=", "limit", id="limit-empty"),
        pytest.param("offset=-1", "offset", id="offset-negative"),
        pytest.param("offset=abc", "offset", id="offset-letters"),
    ],
)
async def test_bad_list_parameters(shared: Shared, path: str, query: str, field: str) -> None:
    response = await shared.send("GET", f"{path.replace(UID, str(shared.target))}?{query}")
    assert_field_error(response, field)


@pytest.mark.parametrize("path", LIST_PATHS)
@pytest.mark.parametrize("query", ["limit=1", "limit=1000", "offset=0", "limit=1000&offset=5"])
async def test_list_parameter_boundaries_accepted(shared: Shared, path: str, query: str) -> None:
    response = await shared.send("GET", f"{path.replace(UID, str(shared.target))}?{query}")
    assert response.status_code == 200, response.text
    assert set(response.json()) == {"items", "total"}


@pytest.mark.parametrize("status", ["bogus", "SUCCEEDED", ""])
async def test_bad_delivery_status_filter(shared: Shared, status: str) -> None:
    response = await shared.send(
        "GET", f"/api/v1/webhooks/{shared.target}/deliveries?status={status}"
    )
    assert_field_error(response, "status")


@pytest.mark.parametrize("path", LIST_PATHS)
@pytest.mark.parametrize("offset", ["9223372036854775808", "9" * 30])
async def test_huge_offset_is_not_a_500(shared: Shared, path: str, offset: str) -> None:
    response = await shared.send("GET", f"{path.replace(UID, str(shared.target))}?offset={offset}")
    assert response.status_code in (200, 400), response.text
    if response.status_code == 400:
        assert_field_error(response, "offset")
    else:
        assert response.json()["items"] == []


# --- garbage: whatever a client sends, the answer is never a 500 --------------------------------

FIELDS = [
    "url",
    "secret",
    "status",
    "timeout",
    "headers",
    "description",
    "event_types",
    "max_retries",
    "uid",
    "created_at",
    "type",
    "data",
    "id",
    "username",
    "password",
]
STRINGS = [
    "",
    "http://127.0.0.1:9/x",
    "whsec_",
    "whsec_AAAA",
    "{}",
    '{"X-A": "1"}',
    "log.door_was_opened",
    "active",
    "\u202e\u200b\ufeff",
    "\U0001f600" * 20,
    "\x01\x1f\x7f",
    "x" * 5000,
    "\ud800",
    "../../etc/passwd",
    "' OR 1=1 --",
]
# NUL is left out here: test_nul_character_* below covers it.
ALPHABET = string.printable + "\x01\x08\x1b\x7f\u00e9\u4e2d\U0001f600\u0300"


def garbage_value(rng: random.Random, depth: int = 0) -> Any:
    kind = rng.randrange(9 if depth < 3 else 6)
    if kind == 0:
        return rng.choice([0, 1, -1, 999, 1000, 30000, 30001, 2**31, -(2**63), 2**64, 10**30])
    if kind == 1:
        return rng.choice([0.0, -0.0, 1.5, 1e308, -1e-308, 10000.0])
    if kind == 2:
        return rng.choice([True, False, None])
    if kind in (3, 4):
        return rng.choice(STRINGS)
    if kind == 5:
        return "".join(rng.choice(ALPHABET) for _ in range(rng.randrange(40)))
    if kind == 6:
        return [garbage_value(rng, depth + 1) for _ in range(rng.randrange(5))]
    return garbage_object(rng, depth + 1)


def garbage_object(rng: random.Random, depth: int = 0) -> dict[str, Any]:
    keys = rng.sample(FIELDS, rng.randrange(1, 6))
    if rng.random() < 0.2:
        keys.append(garbage_value(rng, 3) if rng.random() < 0.5 else "".join(rng.sample("xyz", 2)))
    return {str(key): garbage_value(rng, depth) for key in keys}


def garbage_body(rng: random.Random) -> Any:
    roll = rng.random()
    if roll < 0.4:
        # A valid webhook with one field made wrong reaches the deepest checks.
        return {**BASE, **garbage_object(rng, 2)}
    if roll < 0.9:
        return garbage_object(rng)
    return garbage_value(rng)


def assert_not_a_500(response: httpx.Response, sent: Any) -> None:
    assert response.status_code < 500, (sent, response.text)
    if response.status_code >= 400:
        body = response.json()
        assert list(body) == ["error"], (sent, body)
        assert isinstance(body["error"], str), (sent, body)


@pytest.mark.parametrize(("method", "path"), BODY_ENDPOINTS)
async def test_garbage_json_is_never_a_500(shared: Shared, method: str, path: str) -> None:
    rng = random.Random(f"{method} {path}")
    own = (await shared.create(BASE)).json()["uid"]
    for _ in range(50):
        sent = garbage_body(rng)
        content = json.dumps(sent).encode()
        response = await shared.client.request(
            method,
            path.replace(UID, str(own)),
            content=content,
            headers={**shared.admin, "Content-Type": "application/json"},
        )
        assert_not_a_500(response, sent)


@pytest.mark.parametrize(("method", "path"), BODY_ENDPOINTS)
async def test_garbage_bytes_are_never_a_500(shared: Shared, method: str, path: str) -> None:
    rng = random.Random(f"bytes {method} {path}")
    own = (await shared.create(BASE)).json()["uid"]
    for _ in range(25):
        sent = rng.randbytes(rng.randrange(200))
        response = await shared.client.request(
            method, path.replace(UID, str(own)), content=sent, headers=shared.admin
        )
        assert_not_a_500(response, sent)


async def test_garbage_paths_and_queries_are_never_a_500(shared: Shared) -> None:
    rng = random.Random("paths")
    for _ in range(30):
        piece = "".join(rng.choice(string.ascii_letters + string.digits + "-._~%") for _ in "abcd")
        for path in (
            f"/api/v1/webhooks/{piece}",
            f"/api/v1/webhooks/{piece}/deliveries?limit={piece}&status={piece}",
            f"/api/v1/webhooks?limit={piece}&offset={rng.randrange(10**6)}",
            f"/api/v1/deliveries/{piece}/retry",
        ):
            method = "POST" if path.endswith("retry") else "GET"
            response = await shared.send(method, path)
            assert_not_a_500(response, path)


# --- NUL characters: PostgreSQL text cannot hold them -------------------------------------------


async def test_nul_character_in_url_refused(shared: Shared) -> None:
    total = await shared.total()
    response = await shared.create({**BASE, "url": "http://127.0.0.1:9/a\u0000b"})
    assert_field_error(response, "url")
    assert await shared.total() == total


@pytest.mark.parametrize("field", ["description", "secret"])
async def test_nul_character_in_text_field_is_not_a_500(
    shared: Shared, request: pytest.FixtureRequest, backend: str, field: str
) -> None:
    value = "sixteen\u0000characters"
    response = await shared.create({**BASE, field: value})
    assert response.status_code in (201, 400), response.text
    if response.status_code == 400:
        assert_field_error(response, field)
    else:
        assert (await shared.entity(response.json()["uid"]))[field] == value


async def test_nul_character_in_login_is_not_a_500(
    shared: Shared, request: pytest.FixtureRequest, backend: str
) -> None:
    response = await shared.client.post(
        "/api/v1/login", json={"username": "admin\u0000", "password": "x"}
    )
    assert_error(response, 401, "Log In")
