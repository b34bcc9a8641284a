"""Request limits the application keeps itself, whatever server runs it.

The server (`server.py`) refuses an over-long head or request target before parsing it; this
middleware repeats those checks on the parsed request (the in-process test client has no
server) and holds every body to the largest limit of any route while it streams in: a route
that reads no body, or reads it another way, never takes more than that. Each route holds its
body to its own, smaller limit as it reads it (`body.py`). Refusals take the error shape of the
dialect that owns the path.
"""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from hookd.config import Settings
from hookd.domain.errors import TooLarge
from hookd.http.body import declared_over
from hookd.http.errors import ErrorShapes

# What a header line adds to its name and value: ": " and CRLF.
_HEADER_LINE_OVERHEAD = 4


def body_ceiling(settings: Settings) -> int:
    """The largest body any route accepts."""
    return max(settings.max_publish_bytes, trigger_body_limit(settings), settings.max_body_bytes)


def trigger_body_limit(settings: Settings) -> int:
    """A trigger's body: one event's data, and room for the JSON around it."""
    return settings.max_event_bytes + settings.max_body_bytes


class RequestLimits:
    """ASGI middleware: 414/431 for an over-long request target or head, 413 for a body over
    the ceiling, declared or streamed."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        shapes: ErrorShapes,
        max_url_bytes: int,
        max_header_bytes: int,
        max_body_bytes: int,
    ) -> None:
        self.app = app
        self.shapes = shapes
        self.max_url_bytes = max_url_bytes
        self.max_header_bytes = max_header_bytes
        self.max_body_bytes = max_body_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        target = len(scope.get("raw_path") or scope["path"]) + len(scope.get("query_string", b""))
        if target > self.max_url_bytes:
            await self._refuse(scope, receive, send, 414, "Request target too long")
            return
        head = target
        declared: bytes | None = None
        chunked = False
        for name, value in scope["headers"]:
            head += len(name) + len(value) + _HEADER_LINE_OVERHEAD
            if name == b"content-length":
                declared = value
            elif name == b"transfer-encoding":
                chunked = True
        if head > self.max_header_bytes:
            await self._refuse(scope, receive, send, 431, "Request header fields too large")
            return
        if declared_over(declared, self.max_body_bytes):
            message = f"body: larger than {self.max_body_bytes} bytes"
            await self._refuse(scope, receive, send, 413, message, close=True)
            return
        if declared is None and not chunked:  # no body
            await self.app(scope, receive, send)
        else:
            await self.app(scope, self._counted(receive), send)

    def _counted(self, receive: Receive) -> Receive:
        limit = self.max_body_bytes
        received = 0

        async def counted() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise TooLarge("body", f"larger than {limit} bytes")
            return message

        return counted

    async def _refuse(
        self,
        scope: Scope,
        receive: Receive,
        send: Send,
        status: int,
        message: str,
        *,
        close: bool = False,
    ) -> None:
        headers = {"Connection": "close"} if close else None
        response: Any = self.shapes.render(Request(scope), status, message, None, headers)
        await response(scope, receive, send)
