"""The device dialect's webhook entity: every field's boundaries, both sides.

Each refused body must give 400 `{"error": "<field>: <message>"}` and write nothing: the list
total stays the same after a refused create, the entity stays the same after a refused PUT or PATCH.

One app per backend serves the whole module (the cases are many and each is one request).
"""

from __future__ import annotations

import base64
import json
from collections.abc import AsyncIterator
from typing import Any

import pytest
import pytest_asyncio

from support import (
    BASE,
    Shared,
    assert_error,
    assert_field_error,
    running_device_app,
    spec_event_types,
    spec_system_headers,
)

pytestmark = pytest.mark.asyncio(loop_scope="module")

EVENT_TYPES = spec_event_types()
SYSTEM_HEADERS = spec_system_headers()
HOOKD_HEADERS = [
    "webhook-id",
    "webhook-timestamp",
    "webhook-signature",
    "X-Hookd-Signature-256",
    "X-Hookd-Attempt",
]


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def shared(backend: str, tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Shared]:
    async with running_device_app(backend, tmp_path_factory.mktemp("validation")) as found:
        yield found


def headers_json(**pairs: Any) -> str:
    """A `headers` value: the JSON text of an object of header name -> value."""
    return json.dumps(pairs)


def _b64(data: bytes, pad: bool = True) -> str:
    encoded = base64.b64encode(data).decode()
    return encoded if pad else encoded.rstrip("=")


LONG_URL_PREFIX = "http://127.0.0.1:9/"


def url_of_length(length: int) -> str:
    return LONG_URL_PREFIX + "a" * (length - len(LONG_URL_PREFIX))


def case(field: str, value: Any, says: str | None = None, *, at: str | None = None, id: str) -> Any:
    """A refused value: `field` set to `value`; the error names `at` (default: the field)."""
    return pytest.param(field, value, at or field, says, id=id)


REFUSED = [
    # url: 4..2000 chars, absolute http(s)
    case("url", "htt", "4", id="url-3-chars"),
    case("url", "http", "http", id="url-4-chars-not-a-url"),
    case("url", url_of_length(2001), "2000", id="url-2001-chars"),
    case("url", "ftp://127.0.0.1/x", "http", id="url-ftp"),
    case("url", "/relative/path", "http", id="url-relative"),
    case("url", "127.0.0.1/hook", "http", id="url-no-scheme"),
    case("url", "http://", "http", id="url-no-host"),
    case("url", "https:///path", "http", id="url-empty-host"),
    case("url", "javascript:alert(1)", "http", id="url-javascript"),
    case("url", "http://exa mple.com/", "http", id="url-space"),
    case("url", "http://127.0.0.1:99999/", "port", id="url-port-out-of-range"),
    case("url", "http://a\\b/", "host", id="url-backslash-in-host"),
    case("url", "http://[1.2.3.4]/", "host", id="url-bracketed-ipv4"),
    case("url", "http://xn--/", "host", id="url-empty-punycode"),
    case("url", "http://\u0100@h/", "user name", id="url-user-not-latin-1"),
    case("url", "http://a%3Ab:c@h/", "colon", id="url-user-with-colon"),
    case("url", 12345, id="url-not-string"),
    case("url", None, id="url-null"),
    # secret: 16..128 chars; a whsec_ secret must hold base64
    case("secret", "s" * 15, "16", id="secret-15"),
    case("secret", "s" * 129, "128", id="secret-129"),
    case("secret", "whsec_!!!!not*base64!!", "base64", id="secret-whsec-bad-base64"),
    case("secret", "whsec_" + "a" * 13, "base64", id="secret-whsec-impossible-length"),
    case("secret", "whsec_==========", id="secret-whsec-only-padding"),
    case("secret", 1234567890123456, id="secret-number"),
    # status: active | disabled
    case("status", "Active", "active", id="status-capitalised"),
    case("status", "enabled", "active", id="status-enabled"),
    case("status", "", "active", id="status-empty"),
    case("status", None, id="status-null"),
    case("status", True, id="status-bool"),
    # timeout: 1000..30000, an integer
    case("timeout", 999, "1000", id="timeout-999"),
    case("timeout", 30001, "30000", id="timeout-30001"),
    case("timeout", -1, "1000", id="timeout-negative"),
    case("timeout", "10000", id="timeout-string"),
    case("timeout", True, id="timeout-bool"),
    case("timeout", 10000.0, id="timeout-float-whole"),
    case("timeout", 1000.5, id="timeout-float"),
    case("timeout", None, id="timeout-null"),
    # headers: a string holding a JSON object of token name -> printable ASCII/tab value
    case("headers", {"X-A": "1"}, id="headers-object-not-string"),
    case("headers", "[]", "JSON object", id="headers-array"),
    case("headers", "not json", "JSON object", id="headers-not-json"),
    case("headers", '"x"', "JSON object", id="headers-json-string"),
    case("headers", "null", "JSON object", id="headers-json-null"),
    case("headers", "", "JSON object", id="headers-empty-string"),
    case("headers", None, id="headers-null"),
    case("headers", headers_json(**{"X Foo": "1"}), "X Foo", id="headers-name-space"),
    case("headers", headers_json(**{"X:Foo": "1"}), "X:Foo", id="headers-name-colon"),
    case("headers", headers_json(**{"X,Foo": "1"}), "X,Foo", id="headers-name-comma"),
    case("headers", headers_json(**{"X*Foo": "1"}), "X*Foo", id="headers-name-star"),
    case("headers", headers_json(**{"X(Foo": "1"}), "X(Foo", id="headers-name-paren"),
    case("headers", headers_json(**{"X/Foo": "1"}), "X/Foo", id="headers-name-slash"),
    case("headers", headers_json(**{'X"Foo': "1"}), id="headers-name-quote"),
    case("headers", headers_json(**{"": "1"}), id="headers-name-empty"),
    case("headers", '{"Zähler": "1"}', id="headers-name-non-ascii"),
    case("headers", headers_json(**{"X-A": "caf\u00e9"}), "X-A", id="headers-value-non-ascii"),
    case("headers", headers_json(**{"X-A": "a\u0001b"}), "X-A", id="headers-value-control"),
    case("headers", headers_json(**{"X-A": "a\nb"}), "X-A", id="headers-value-newline"),
    case("headers", headers_json(**{"X-A": "a\rb"}), "X-A", id="headers-value-cr"),
    case("headers", headers_json(**{"X-A": "a\u007fb"}), "X-A", id="headers-value-del"),
    case("headers", headers_json(**{"X-A": 1}), "X-A", id="headers-value-number"),
    case("headers", headers_json(**{"X-A": None}), "X-A", id="headers-value-null"),
    case("headers", headers_json(**{"X-A": ["1"]}), "X-A", id="headers-value-list"),
    case("headers", headers_json(**{"X-A": {"b": "1"}}), "X-A", id="headers-value-object"),
    case("headers", headers_json(**{"X-Dup": "1", "x-dup": "2"}), "x-dup", id="headers-dup-case"),
    case("headers", headers_json(**{"Cookie": "s=1"}), "Cookie", id="headers-cookie"),
    case("headers", headers_json(**{"Proxy-Authorization": "x"}), id="headers-proxy-authorization"),
    case("headers", headers_json(**{"EXPECT": "100-continue"}), "EXPECT", id="headers-expect"),
    case("headers", headers_json(**{"content-encoding": "gzip"}), id="headers-content-encoding"),
    case("headers", headers_json(**{"X-Long": "v" * 8200}), "8192", id="headers-too-long"),
    case(
        "headers",
        headers_json(**{f"X-H{i}": "1" for i in range(51)}),
        "50 headers",
        id="headers-too-many",
    ),
    # description: <= 1000 chars
    case("description", "d" * 1001, "1000", id="description-1001"),
    case("description", "\u00e9" * 1001, "1000", id="description-1001-non-ascii"),
    case("description", 5, id="description-number"),
    case("description", None, id="description-null"),
    # event_types: a non-empty list of the specification's values, no repeats
    case("event_types", [], "1", id="event-types-empty"),
    case("event_types", ["log.no_such_event"], "log.no_such_event", id="event-types-unknown"),
    case("event_types", ["hookd.test"], "hookd.test", id="event-types-hookd-test"),
    case("event_types", ["LOG.DOOR_WAS_OPENED"], id="event-types-wrong-case"),
    case(
        "event_types",
        ["log.door_was_opened", "log.tamper_event", "log.door_was_opened"],
        "repeat",
        id="event-types-repeated",
    ),
    case("event_types", "log.door_was_opened", id="event-types-string"),
    case("event_types", None, id="event-types-null"),
    case("event_types", [1], at="event_types.0", id="event-types-number-item"),
    # max_retries: 0..5
    case("max_retries", -1, "0", id="max-retries-minus-1"),
    case("max_retries", 6, "5", id="max-retries-6"),
    case("max_retries", "3", id="max-retries-string"),
    case("max_retries", 3.0, id="max-retries-float"),
    case("max_retries", False, id="max-retries-bool"),
    # fields that are not the specification's
    case("foo", 1, id="unknown-field"),
    case("timeout_ms", 1000, id="unknown-field-internal-name"),
    case("event_type", ["log.door_was_opened"], id="unknown-field-singular"),
]


@pytest.mark.parametrize(("field", "value", "at", "says"), REFUSED)
async def test_create_refuses(shared: Shared, field: str, value: Any, at: str, says: str) -> None:
    before = await shared.total()
    response = await shared.create({**BASE, field: value})
    assert_field_error(response, at, says)
    assert await shared.total() == before


@pytest.mark.parametrize(("field", "value", "at", "says"), REFUSED)
async def test_replace_refuses(shared: Shared, field: str, value: Any, at: str, says: str) -> None:
    response = await shared.send("PUT", f"/api/v1/webhooks/{shared.target}", {**BASE, field: value})
    assert_field_error(response, at, says)
    await shared.assert_target_untouched()


@pytest.mark.parametrize(("field", "value", "at", "says"), REFUSED)
async def test_patch_refuses(shared: Shared, field: str, value: Any, at: str, says: str) -> None:
    response = await shared.send("PATCH", f"/api/v1/webhooks/{shared.target}", {field: value})
    assert_field_error(response, at, says)
    await shared.assert_target_untouched()


MISSING = [
    pytest.param({"event_types": ["log.door_was_opened"]}, "url", id="no-url"),
    pytest.param({"url": BASE["url"]}, "event_types", id="no-event-types"),
    pytest.param({}, "url", id="empty-object"),
]


@pytest.mark.parametrize(("body", "field"), MISSING)
async def test_required_fields(shared: Shared, body: dict[str, Any], field: str) -> None:
    before = await shared.total()
    assert_field_error(await shared.create(body), field)
    assert await shared.total() == before
    response = await shared.send("PUT", f"/api/v1/webhooks/{shared.target}", body)
    assert_field_error(response, field)
    await shared.assert_target_untouched()


# Every system header of the specification, spelt in turn Title-Case, UPPER and lower.
SPELLINGS = (str.title, str.upper, str.lower)
SPELT_SYSTEM_HEADERS = [SPELLINGS[i % 3](name) for i, name in enumerate(SYSTEM_HEADERS)]


@pytest.mark.parametrize("header", SPELT_SYSTEM_HEADERS or ["?"])
async def test_system_headers_refused(shared: Shared, header: str) -> None:
    before = await shared.total()
    response = await shared.create({**BASE, "headers": headers_json(**{header: "x"})})
    assert_field_error(response, "headers", header)
    assert await shared.total() == before


@pytest.mark.parametrize("name", HOOKD_HEADERS)
@pytest.mark.parametrize("spelling", [str.lower, str.upper, str])
async def test_hookd_headers_refused(shared: Shared, name: str, spelling: Any) -> None:
    header = spelling(name)
    response = await shared.send(
        "PATCH", f"/api/v1/webhooks/{shared.target}", {"headers": headers_json(**{header: "x"})}
    )
    assert_field_error(response, "headers", header)
    await shared.assert_target_untouched()


async def test_specification_lists_parsed() -> None:
    assert len(EVENT_TYPES) == 41
    assert len(set(EVENT_TYPES)) == 41
    assert "content-type" in SYSTEM_HEADERS
    assert "access-control-expose-headers" in SYSTEM_HEADERS
    assert len(SYSTEM_HEADERS) == 33


ACCEPTED = [
    pytest.param("url", url_of_length(2000), id="url-2000-chars"),
    pytest.param("url", "http://a", id="url-shortest"),
    pytest.param("url", "https://hooks.example.com:8443/in?x=1#frag", id="url-https-port-query"),
    pytest.param("url", "http://[::1]:9/hook", id="url-ipv6"),
    pytest.param("secret", "s" * 16, id="secret-16"),
    pytest.param("secret", "s" * 128, id="secret-128"),
    pytest.param("secret", "whsec_" + _b64(b"0123456789abcdef0123"), id="secret-whsec"),
    pytest.param("secret", "whsec_" + _b64(b"0123456789abcdef0", pad=False), id="secret-unpadded"),
    pytest.param("secret", "p\u00e4ssw\u00f6rd-with-\u00fcml\u00e4\u00fcts", id="secret-unicode"),
    pytest.param("status", "active", id="status-active"),
    pytest.param("status", "disabled", id="status-disabled"),
    pytest.param("timeout", 1000, id="timeout-1000"),
    pytest.param("timeout", 30000, id="timeout-30000"),
    pytest.param("headers", "{}", id="headers-empty"),
    pytest.param("headers", headers_json(**{"X-Tab": "a\tb"}), id="headers-value-tab"),
    pytest.param("headers", headers_json(**{"X-Empty": ""}), id="headers-value-empty"),
    pytest.param("headers", headers_json(**{"X-All": " !~azAZ09\"'\\"}), id="headers-printable"),
    pytest.param(
        "headers", headers_json(**{"a!#$%&'+-.^_`|~Z9": "1"}), id="headers-every-token-char"
    ),
    pytest.param(
        "headers", headers_json(**{"X-One": "1", "X-Two": "2", "Webhook": "3"}), id="headers-many"
    ),
    pytest.param("description", "", id="description-empty"),
    pytest.param("description", "d" * 1000, id="description-1000"),
    pytest.param("description", "\u00e9\u4e2d" * 500, id="description-1000-non-ascii"),
    pytest.param("event_types", list(reversed(EVENT_TYPES[:3])), id="event-types-order-kept"),
    pytest.param("event_types", EVENT_TYPES, id="event-types-all-41"),
    pytest.param("max_retries", 0, id="max-retries-0"),
    pytest.param("max_retries", 5, id="max-retries-5"),
]


@pytest.mark.parametrize(("field", "value"), ACCEPTED)
async def test_create_accepts(shared: Shared, field: str, value: Any) -> None:
    before = await shared.total()
    response = await shared.create({**BASE, field: value})
    assert response.status_code == 201, response.text
    created = response.json()
    assert created[field] == value
    assert await shared.entity(created["uid"]) == created
    assert await shared.total() == before + 1


@pytest.mark.parametrize(("field", "value"), ACCEPTED)
async def test_patch_accepts(shared: Shared, field: str, value: Any) -> None:
    created = (await shared.create(BASE)).json()
    response = await shared.send("PATCH", f"/api/v1/webhooks/{created['uid']}", {field: value})
    assert response.status_code == 200, response.text
    assert response.json()[field] == value
    assert (await shared.entity(created["uid"]))[field] == value


@pytest.mark.parametrize("method", ["POST", "PUT", "PATCH"])
async def test_read_only_fields_ignored(shared: Shared, method: str) -> None:
    other = (await shared.create(BASE)).json()
    smuggled = {"uid": 987654, "created_at": 1, "updated_at": 2}
    if method == "POST":
        response = await shared.create({**BASE, **smuggled})
        assert response.status_code == 201, response.text
    else:
        response = await shared.send(
            method, f"/api/v1/webhooks/{other['uid']}", {**BASE, **smuggled}
        )
        assert response.status_code == 200, response.text
    entity = response.json()
    assert entity["uid"] != 987654
    assert entity["created_at"] > 1_000_000_000
    assert entity["updated_at"] > 1_000_000_000
    if method != "POST":
        assert entity["uid"] == other["uid"]
        assert entity["created_at"] == other["created_at"]
    response = await shared.client.get("/api/v1/webhooks/987654", headers=shared.admin)
    assert_error(response, 400, "Wrong webhook uid")


async def test_omitted_secret_is_generated(shared: Shared) -> None:
    body = {key: value for key, value in BASE.items() if key != "secret"}
    first = (await shared.create(body)).json()
    second = (await shared.create({**body, "secret": None})).json()
    for created in (first, second):
        secret = created["secret"]
        assert secret.startswith("whsec_")
        assert 16 <= len(secret) <= 128
        assert base64.b64decode(secret.removeprefix("whsec_"), validate=True)
    assert first["secret"] != second["secret"]


# --- edge cases that once slipped through ----------------------------------------------------


@pytest.mark.parametrize(
    ("field", "value"),
    [
        pytest.param("url", "http://127.0.0.1:9/hook\n", id="url"),
        pytest.param("headers", headers_json(**{"X-A": "value\n"}), id="header-value"),
        pytest.param("headers", headers_json(**{"X-A\n": "value"}), id="header-name"),
    ],
)
async def test_trailing_newline_refused(shared: Shared, field: str, value: str) -> None:
    before = await shared.total()
    assert_field_error(await shared.create({**BASE, field: value}), field)
    assert await shared.total() == before


async def test_exact_duplicate_header_refused(shared: Shared) -> None:
    before = await shared.total()
    response = await shared.create({**BASE, "headers": '{"X-Dup": "1", "X-Dup": "2"}'})
    assert_field_error(response, "headers", "X-Dup")
    assert await shared.total() == before
