"""`hookd listen` against real requests on loopback."""

import asyncio
import contextlib
import io
import re
import socket
import time
from collections.abc import AsyncIterator

import aiohttp
import orjson
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from rich.console import Console

from hookd.domain.signing import signature_headers, signing_keys
from hookd.listen import make_app, serve_listener, signature_status
from hookd.listening import CannotListen

SECRET = "whsec_" + "c2l4dGVlbiBieXRlcyBvZiBrZXk="  # "sixteen bytes of key"
Listener = tuple[TestClient[web.Request, web.Application], io.StringIO]


def _console() -> tuple[Console, io.StringIO]:
    out = io.StringIO()
    return Console(file=out, width=120, color_system=None), out


def _delivery(secret: str, body: bytes, attempt: int = 1) -> dict[str, str]:
    timestamp = int(time.time())
    return {
        "Content-Type": "application/json",
        "webhook-id": "evt_42",
        "webhook-timestamp": str(timestamp),
        "X-Hookd-Attempt": str(attempt),
        **signature_headers(signing_keys(secret), "evt_42", timestamp, body),
    }


BODY = orjson.dumps({"id": "evt_42", "type": "order.created", "data": {"total": 3}})


@pytest.fixture
async def listener() -> AsyncIterator[Listener]:
    console, out = _console()
    async with TestClient(TestServer(make_app(SECRET, console), host="127.0.0.1")) as client:
        yield client, out


async def test_valid_signature(listener: Listener) -> None:
    client, out = listener
    resp = await client.post("/hooks/orders", data=BODY, headers=_delivery(SECRET, BODY, 2))
    assert resp.status == 200
    assert await resp.json() == {"ok": True}
    printed = out.getvalue()
    assert "signature: valid" in printed
    assert "INVALID" not in printed
    assert "POST /hooks/orders" in printed
    assert "webhook-id: evt_42" in printed
    assert "attempt: 2" in printed
    assert "type: order.created" in printed
    assert '"total": 3' in printed


async def test_tampered_body(listener: Listener) -> None:
    client, out = listener
    tampered = BODY.replace(b'"total":3', b'"total":4')
    assert tampered != BODY
    resp = await client.post("/", data=tampered, headers=_delivery(SECRET, BODY))
    assert resp.status == 401, "hookd must record a failed attempt"
    assert "signature: INVALID" in out.getvalue()
    assert "signature: valid" not in out.getvalue()


async def test_wrong_secret(listener: Listener) -> None:
    client, out = listener
    resp = await client.post("/", data=BODY, headers=_delivery("some-other-secret-123", BODY))
    assert resp.status == 401
    assert (await resp.json())["signature"] == "INVALID"
    assert "signature: INVALID" in out.getvalue()


async def test_unsigned_request(listener: Listener) -> None:
    client, out = listener
    resp = await client.post("/x", data=b"plain text, [bold]not markup[/bold]")
    assert resp.status == 401
    printed = out.getvalue()
    assert "signature: INVALID (webhook-id, webhook-timestamp or webhook-signature missing)" in (
        printed
    )
    assert "[bold]not markup[/bold]" in printed


async def test_without_secret_signature_is_not_checked() -> None:
    console, out = _console()
    async with TestClient(TestServer(make_app(None, console), host="127.0.0.1")) as client:
        resp = await client.post("/", data=BODY, headers=_delivery(SECRET, BODY))
        assert resp.status == 200
    assert "signature: not checked (no --secret)" in out.getvalue()


async def test_large_body_is_truncated(
    listener: Listener,
) -> None:
    client, out = listener
    body = orjson.dumps({"type": "bulk", "data": ["x" * 100] * 200})
    resp = await client.post("/", data=body, headers=_delivery(SECRET, body))
    assert resp.status == 200
    printed = out.getvalue()
    assert "more characters)" in printed
    assert len(printed) < 4000
    assert "signature: valid" in printed


async def test_get_is_not_a_delivery(
    listener: Listener,
) -> None:
    client, out = listener
    resp = await client.get("/")
    assert resp.status == 405
    assert out.getvalue() == ""


def test_signature_status_rejects_non_numeric_timestamp() -> None:
    key = signing_keys(SECRET).standard
    headers = {"webhook-id": "e", "webhook-timestamp": "1_0", "webhook-signature": "v1,x"}
    assert signature_status(key, headers, b"") == "INVALID (webhook-timestamp is not Unix seconds)"


async def test_serve_listener_receives_until_cancelled() -> None:
    console, out = _console()
    task = asyncio.create_task(serve_listener("127.0.0.1", 0, SECRET, console))
    try:
        for _ in range(1000):  # the listener prints its URL once bound
            if "receiving on" in out.getvalue():
                break
            await asyncio.sleep(0.01)
        url = re.search(r"http://127\.0\.0\.1:\d+/", out.getvalue())
        assert url is not None
        async with (
            aiohttp.ClientSession() as session,
            session.post(url.group() + "hook", data=BODY, headers=_delivery(SECRET, BODY)) as resp,
        ):
            assert resp.status == 200
        assert "signature: valid" in out.getvalue()
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


@pytest.mark.parametrize("secret", ["0123456789abcdef", SECRET])
async def test_the_secret_is_verified_as_the_standard_webhooks_libraries_read_it(
    secret: str,
) -> None:
    console, out = _console()
    async with TestClient(TestServer(make_app(secret, console), host="127.0.0.1")) as client:
        resp = await client.post("/", data=BODY, headers=_delivery(secret, BODY))
        assert resp.status == 200
    assert "signature: valid" in out.getvalue()


async def test_a_port_in_use_is_one_line_saying_what_to_do() -> None:
    console, out = _console()
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(CannotListen) as raised:
            await serve_listener("127.0.0.1", port, SECRET, console)
    assert str(raised.value) == (
        f"port {port} on 127.0.0.1 is in use by another program; stop it or choose another --port"
    )
    assert out.getvalue() == "", "nothing is announced"


async def test_terminal_escape_codes_are_shown_not_obeyed(listener: Listener) -> None:
    client, out = listener
    text = "\x1b]0;retitled\x07\x1b[2Jcleared\rover\x9b31m".encode()
    await client.post("/hooks/plain", data=text, headers=_delivery(SECRET, text))
    typed = orjson.dumps({"type": "\x1b[31mred", "data": {}})
    await client.post("/hooks/typed", data=typed, headers=_delivery(SECRET, typed))

    printed = out.getvalue()
    assert not re.search(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]", printed), repr(printed)
    assert "\\x1b]0;retitled\\x07\\x1b[2Jcleared\\x0dover\\x9b31m" in printed
    assert "type: \\x1b[31mred" in printed
