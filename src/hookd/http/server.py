"""The HTTP server's own limits: what a connection may cost before its request reaches hookd.

uvicorn's httptools protocol puts no bound on a request head, no deadline on reading a head or
a body, and its concurrency limit answers every request 503 once there are many connections,
slow ones included. `protocol(limits)` is that protocol with, per connection:

- the request head (request line and headers) within `max_header_bytes`, else 431; the request
  target within `max_url_bytes`, else 414 — both before the head is handed on, so that neither
  memory nor parsing grows with what a client sends;
- the head complete within `header_timeout` of its first byte (of the connection, for the
  first request), else 408; the body within `body_timeout` of the head, counted while hookd
  is reading it (not while the request waits for hookd), else 408;
- at most `max_connections` open connections: more are answered 503 and closed at once, so
  slow connections cannot take the file descriptors everyone needs; at most `max_requests`
  requests in progress: more are answered 503 with Retry-After.

These answers are hookd's own error shape, `{"error": ...}`, and close the connection. The
application repeats the size checks (`limits.py`), so that the in-process test client, which
has no server, meets them too.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from http import HTTPStatus
from typing import Any

import httptools
import orjson
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol, RequestResponseCycle

from hookd.config import Settings
from hookd.http.body import declared_over
from hookd.http.limits import body_ceiling
from hookd.http.requests import HEADER as REQUEST_ID
from hookd.http.requests import request_id

log = logging.getLogger("hookd.http")


@dataclass(frozen=True, slots=True)
class ServerLimits:
    max_header_bytes: int
    max_url_bytes: int
    # The largest body of any route: a larger Content-Length is refused with the head.
    max_body_bytes: int
    header_timeout: float
    body_timeout: float
    max_connections: int
    max_requests: int

    @classmethod
    def of(cls, settings: Settings) -> ServerLimits:
        return cls(
            max_header_bytes=settings.max_header_bytes,
            max_url_bytes=settings.max_url_bytes,
            max_body_bytes=body_ceiling(settings),
            header_timeout=settings.header_timeout,
            body_timeout=settings.body_timeout,
            max_connections=settings.max_connections,
            max_requests=settings.max_requests,
        )


def refusal(status: int, message: str, *, retry_after: int | None = None) -> bytes:
    """A whole HTTP response that ends the connection: hookd's error shape."""
    body = orjson.dumps({"error": message})
    head = [
        f"HTTP/1.1 {status} {HTTPStatus(status).phrase}",
        "content-type: application/json",
        f"content-length: {len(body)}",
        "connection: close",
    ]
    if retry_after is not None:
        head.append(f"retry-after: {retry_after}")
    return ("\r\n".join(head) + "\r\n\r\n").encode() + body


TOO_MANY_CONNECTIONS = refusal(503, "Too many connections", retry_after=1)
HEAD_TOO_LARGE = refusal(431, "Request header fields too large")
URL_TOO_LONG = refusal(414, "Request target too long")
BODY_TOO_LARGE = refusal(413, "Request body too large")
TOO_SLOW = refusal(408, "Request not received in time")
BAD_REQUEST = refusal(400, "Invalid HTTP request")


class _Refused(Exception):
    def __init__(self, response: bytes) -> None:
        self.response = response


_BUSY = orjson.dumps({"error": "Too many requests in progress"})


async def _too_many_requests(scope: Any, receive: Any, send: Any) -> None:
    """The application in place of hookd's while `max_requests` are in progress."""
    given = next((value for name, value in scope["headers"] if name == REQUEST_ID), None)
    headers = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(_BUSY)).encode()),
        (b"retry-after", b"1"),
        (b"connection", b"close"),
        (REQUEST_ID, request_id(given).encode()),
    ]
    await send({"type": "http.response.start", "status": 503, "headers": headers})
    await send({"type": "http.response.body", "body": _BUSY})


class LimitedProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol within `limits` (see the module's docstring)."""

    limits: ServerLimits

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._reading_head = True  # no request head complete since the last request ended
        self._head_bytes = 0  # read while the head is incomplete
        self._head_tail = b""  # the last bytes read, where a head's end may begin
        self._head_size = 0  # of the head's parts parsed so far
        self._head_timer: asyncio.TimerHandle | None = None
        self._body_timer: asyncio.TimerHandle | None = None
        self._body_paused = False  # reading was paused when the body timer last fired
        self._refused = False

    # -- connections --

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        if len(self.connections) > self.limits.max_connections:
            self._refuse(TOO_MANY_CONNECTIONS)
            return
        self._head_timer = self.loop.call_later(self.limits.header_timeout, self._head_late)

    def connection_lost(self, exc: Exception | None) -> None:
        self._cancel_timers()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        if self._refused:
            return
        self._unset_keepalive_if_required()
        if self._reading_head:
            if self._head_cannot_fit(data):  # refused unparsed: parsing is what costs
                self._refuse(HEAD_TOO_LARGE)
                return
            self._head_bytes += len(data)
            self._head_tail = data[-3:]
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserUpgrade:
            pass  # hookd upgrades nothing: the request goes on as it is
        except httptools.HttpParserError as exc:
            refused = exc.__context__
            self._refuse(refused.response if isinstance(refused, _Refused) else BAD_REQUEST)
            return
        if self._reading_head and self._head_bytes > self.limits.max_header_bytes:
            self._refuse(HEAD_TOO_LARGE)

    def _head_cannot_fit(self, data: bytes) -> bool:
        """Whether the head being read goes on past its limit within `data`: the limit is
        reached there and the head does not end before it."""
        room = self.limits.max_header_bytes - self._head_bytes
        if len(data) <= room:
            return False
        window = self._head_tail + data[: max(room, 0) + 4]
        return b"\r\n\r\n" not in window and b"\n\n" not in window

    # -- parser callbacks --

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._head_size = 0
        if self._head_timer is None:
            self._head_timer = self.loop.call_later(self.limits.header_timeout, self._head_late)

    def on_url(self, url: bytes) -> None:
        super().on_url(url)
        if len(self.url) > self.limits.max_url_bytes:
            raise _Refused(URL_TOO_LONG)

    def on_header(self, name: bytes, value: bytes) -> None:
        # A head that arrives whole in one read is measured here, header by header; one still
        # arriving, by the bytes read so far (data_received).
        self._head_size += len(name) + len(value) + 4
        if self._head_size + len(self.url) > self.limits.max_header_bytes:
            raise _Refused(HEAD_TOO_LARGE)
        if name.lower() == b"content-length" and declared_over(value, self.limits.max_body_bytes):
            raise _Refused(BODY_TOO_LARGE)
        super().on_header(name, value)

    def on_headers_complete(self) -> None:
        self._reading_head = False
        self._head_bytes = 0
        self._head_tail = b""
        if self._head_timer is not None:
            self._head_timer.cancel()
            self._head_timer = None
        super().on_headers_complete()
        self._body_paused = False
        self._body_timer = self.loop.call_later(self.limits.body_timeout, self._body_late)

    def on_message_complete(self) -> None:
        super().on_message_complete()
        self._reading_head = True
        if self._body_timer is not None:
            self._body_timer.cancel()
            self._body_timer = None

    def _start_asgi_task(self, cycle: RequestResponseCycle, app: Any) -> None:
        if len(self.tasks) >= self.limits.max_requests:
            app = _too_many_requests
        super()._start_asgi_task(cycle, app)

    # -- deadlines --

    def _head_late(self) -> None:
        self._head_timer = None
        if self._head_bytes:
            self._refuse(TOO_SLOW)
        else:  # nothing of a request came: nothing to answer
            self._refused = True
            self.transport.close()

    def _body_late(self) -> None:
        self._body_timer = None
        # While hookd does not read the body (its buffer is full), the client cannot be late;
        # once hookd reads again, the client has a whole period before it counts as late.
        paused, paused_last_time = self.flow.read_paused, self._body_paused
        self._body_paused = paused
        if paused or paused_last_time:
            self._body_timer = self.loop.call_later(self.limits.body_timeout, self._body_late)
            return
        self._refuse(TOO_SLOW)

    def _cancel_timers(self) -> None:
        for timer in (self._head_timer, self._body_timer):
            if timer is not None:
                timer.cancel()
        self._head_timer = self._body_timer = None

    def _refuse(self, response: bytes) -> None:
        """Answer `response` (unless an answer is being written already) and close."""
        self._refused = True
        self._cancel_timers()
        cycle = self.cycle
        answering = cycle is not None and cycle.response_started and not cycle.response_complete
        if cycle is not None and not cycle.response_complete:
            cycle.disconnected = True  # the application's answer, if any, goes nowhere
            cycle.message_event.set()
        if not self.transport.is_closing():
            if not answering:
                self.transport.write(_with_request_id(response))
            self.transport.close()


def _with_request_id(response: bytes) -> bytes:
    """A refusal with a request id of its own (the request's head was not read), logged."""
    rid = request_id(None)
    status_line, _, rest = response.partition(b"\r\n")
    log.info(
        "refused by the server: %s (request %s)",
        status_line.decode(),
        rid,
        extra={"request_id": rid, "status": int(status_line.split()[1])},
    )
    return b"%s\r\nx-request-id: %s\r\n%s" % (status_line, rid.encode(), rest)


def protocol(limits: ServerLimits) -> type[LimitedProtocol]:
    """The protocol class to give uvicorn (`http=`), bound to `limits`."""
    return type("HookdHttpProtocol", (LimitedProtocol,), {"limits": limits})
