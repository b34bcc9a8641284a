"""Properties, checked with Hypothesis over generated inputs:

- what URL validation accepts, the sender can send;
- what header validation accepts, the sender sends, and the receiver gets each header as given;
- what hookd signs verifies: with the Standard Webhooks library (`standardwebhooks`), with
  hookd's own `verify`, and `X-Hookd-Signature-256` as documented.

The sender's requests go over a Unix-domain socket to a receiver in this process: every request
is built, serialised and answered as over TCP, and nothing is resolved or sent on a network.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import string
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp
import pytest
from aiohttp import web
from hypothesis import HealthCheck, assume, example, given, settings
from hypothesis import strategies as st
from standardwebhooks.webhooks import Webhook as StandardWebhook

from hookd.delivery.sender import Attempt, Sender
from hookd.delivery.ssrf import TargetGuard
from hookd.dialects.device.fields import parse_custom_headers
from hookd.domain.signing import (
    SECRET_PREFIX,
    signature_headers,
    signing_keys,
    standard_key,
    verify,
)
from hookd.domain.validation import check_http_url

EXAMPLES = settings(
    max_examples=300,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


@dataclass
class UnixReceiver:
    """Answers 200 to every request on a Unix socket and keeps what it received."""

    received: list[tuple[str, dict[str, str], bytes]] = field(default_factory=list)

    async def handle(self, request: web.Request) -> web.Response:
        headers = {name.lower(): value for name, value in request.headers.items()}
        self.received.append((request.raw_path, headers, await request.read()))
        return web.Response(text="ok")


@pytest.fixture
async def unix_sender(tmp_path: Path) -> AsyncIterator[tuple[Sender, UnixReceiver]]:
    receiver = UnixReceiver()
    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", receiver.handle)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    socket_path = str(tmp_path / "receiver.sock")
    await web.UnixSite(runner, socket_path).start()
    # The guard is off: it judges addresses, and nothing here has one.
    sender = Sender(
        TargetGuard(enabled=False), connector=lambda: aiohttp.UnixConnector(path=socket_path)
    )
    await sender.open()
    try:
        yield sender, receiver
    finally:
        await sender.close()
        await runner.cleanup()


def attempt(url: str, headers: str = "{}", secret: str | None = None) -> Attempt:
    return Attempt(
        url=url,
        body=b'{"id":"evt_1"}',
        event_id="evt_1",
        number=1,
        timeout_ms=5000,
        secret=secret,
        headers=headers,
    )


# --- URLs -------------------------------------------------------------------------------------

LABEL = st.from_regex(r"[a-zA-Z0-9]([a-zA-Z0-9-]{0,20}[a-zA-Z0-9])?", fullmatch=True)
HOSTS = st.one_of(
    st.lists(LABEL, min_size=1, max_size=4).map(".".join),
    st.ip_addresses(v=4).map(str),
    st.ip_addresses(v=6).map(lambda address: f"[{address}]"),
    st.text(st.characters(codec="utf-8"), min_size=1, max_size=30),  # anything at all
    st.text("abcxn-.[]:%\\@é", min_size=1, max_size=20),  # the troublesome characters
)
URLS = st.builds(
    lambda scheme, userinfo, host, port, rest: f"{scheme}://{userinfo}{host}{port}{rest}",
    st.sampled_from(["http", "https", "HTTP", "ftp"]),
    st.sampled_from(["", "user@", "user:pw@"]),
    HOSTS,
    st.one_of(st.just(""), st.integers(0, 70_000).map(lambda port: f":{port}")),
    st.one_of(st.just(""), st.text(st.characters(codec="utf-8"), max_size=30).map("/{}".format)),
)


@EXAMPLES
@given(url=st.one_of(URLS, st.text(max_size=60).map("http://{}".format)))
@example(url="http://a\\b/")
@example(url="http://[1.2.3.4]/")
@example(url="http://xn--/")
@example(url="http://" + "é" * 70 + ".example/")
async def test_what_url_validation_accepts_can_be_sent(
    unix_sender: tuple[Sender, UnixReceiver], url: str
) -> None:
    try:
        check_http_url(url)
    except ValueError:
        assume(False)
    sender, receiver = unix_sender
    before = len(receiver.received)

    result = await sender.send(attempt(url))

    assert result.error is None, (url, result.error)
    assert result.status_code == 200
    assert len(receiver.received) == before + 1


# --- custom headers ----------------------------------------------------------------------------

TOKEN = string.ascii_letters + string.digits + "!#$%&'+-.^_`|~"
PRINTABLE = "".join(chr(code) for code in range(0x20, 0x7F)) + "\t"
# Mostly headers a webhook may have; now and then anything (which validation must refuse, or
# the sender must be able to send).
HEADERS = st.one_of(
    st.dictionaries(
        st.text(TOKEN, min_size=1, max_size=20).map("X-{}".format),
        st.text(PRINTABLE, max_size=40),
        max_size=8,
    ),
    st.dictionaries(
        st.one_of(
            st.text(TOKEN, min_size=1, max_size=20),
            st.sampled_from(["Cookie", "Host", "webhook-id", "Expect", "content-encoding"]),
            st.text(max_size=10),
        ),
        st.text(max_size=10),
        max_size=4,
    ),
)


@settings(
    EXAMPLES, suppress_health_check=[*EXAMPLES.suppress_health_check, HealthCheck.filter_too_much]
)
@given(pairs=HEADERS)
async def test_what_header_validation_accepts_is_sent_as_given(
    unix_sender: tuple[Sender, UnixReceiver], pairs: dict[str, str]
) -> None:
    text = json.dumps(pairs)
    try:
        headers = parse_custom_headers(text)
    except ValueError:
        assume(False)
    sender, receiver = unix_sender

    result = await sender.send(attempt("http://receiver.test/hook", headers=text))

    assert result.error is None, (text, result.error)
    _, got, _ = receiver.received[-1]
    for name, value in headers.items():
        # HTTP drops the blanks around a header value.
        assert got[name.lower()] == value.strip(" \t"), (name, value)
    assert got["webhook-id"] == "evt_1"


# --- signatures --------------------------------------------------------------------------------

EVENT_IDS = st.text(st.characters(min_codepoint=0x21, max_codepoint=0x7E), min_size=1, max_size=255)
BODIES = st.text(max_size=500).map(str.encode)
WHSEC = st.binary(min_size=1, max_size=64).map(
    lambda key: SECRET_PREFIX + base64.b64encode(key).decode()
)
PLAIN = st.text(st.characters(min_codepoint=0x20, max_codepoint=0x7E), min_size=16, max_size=128)


@settings(max_examples=500, deadline=None)
@given(secret=WHSEC, event_id=EVENT_IDS, body=BODIES)
def test_standard_webhooks_verifies_what_hookd_signs(
    secret: str, event_id: str, body: bytes
) -> None:
    timestamp = int(time.time())
    headers = {
        "webhook-id": event_id,
        "webhook-timestamp": str(timestamp),
        **signature_headers(signing_keys(secret), event_id, timestamp, body),
    }
    StandardWebhook(secret).verify(body, headers, json_parse=False)  # raises when it does not


@settings(max_examples=500, deadline=None)
@given(
    secret=st.one_of(WHSEC, PLAIN),
    event_id=EVENT_IDS,
    timestamp=st.integers(0, 2**40),
    body=st.binary(max_size=500),
    other=st.binary(min_size=1, max_size=8),
)
def test_signatures_round_trip_and_bind_their_parts(
    secret: str, event_id: str, timestamp: int, body: bytes, other: bytes
) -> None:
    keys = signing_keys(secret)
    signed = signature_headers(keys, event_id, timestamp, body)

    key = keys.standard
    assert verify(key, event_id, timestamp, body, signed["webhook-signature"])
    assert not verify(key, event_id, timestamp + 1, body, signed["webhook-signature"])
    assert not verify(key, event_id, timestamp, body + other, signed["webhook-signature"])
    assert not verify(key, event_id + "x", timestamp, body, signed["webhook-signature"])
    expected = hmac.new(keys.body, body, hashlib.sha256).hexdigest()
    assert signed["X-Hookd-Signature-256"] == f"sha256={expected}"


@EXAMPLES
@given(secret=st.one_of(WHSEC, PLAIN), body=BODIES)
async def test_a_sent_delivery_verifies_at_its_receiver(
    unix_sender: tuple[Sender, UnixReceiver], secret: str, body: bytes
) -> None:
    sender, receiver = unix_sender
    sent = attempt("http://receiver.test/hook", secret=secret)
    sent.body = body

    result = await sender.send(sent)

    assert result.error is None, result.error
    _, headers, received = receiver.received[-1]
    assert received == body
    try:  # the library's own reading of the secret, where it can read it
        verifier = StandardWebhook(secret)
    except Exception:  # a plain secret it cannot decode: hookd's reading, as bytes
        verifier = StandardWebhook(standard_key(secret))
    verifier.verify(body, headers, json_parse=False)
