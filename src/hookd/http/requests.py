"""Every request: its request id, its metrics and its log line (ASGI middleware, outermost).

The request id is the client's `X-Request-Id` when it is 1 to 128 safe characters (letters,
digits, `.`, `_`, `:`, `-`), else a new one; it is returned on every answer, errors included, and
logged with the request. Requests are counted by route *template* (`/api/v1/webhooks/{uid}`,
`unmatched` for a path no route serves), so that the series stay few whatever paths are asked.
The log line holds the method, the path without its query (which may hold credentials), the
status and the duration; no header.
"""

from __future__ import annotations

import logging
import os
import re
import time
from typing import Any

from prometheus_client import Counter, Histogram
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from hookd.delivery import metrics

log = logging.getLogger("hookd.http")

HEADER = b"x-request-id"
_SAFE_ID = re.compile(rb"[A-Za-z0-9._:\-]{1,128}")
_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
UNMATCHED = "unmatched"


def request_id(given: bytes | None) -> str:
    """The client's id when it is safe to repeat and log, else a new one."""
    if given is not None and _SAFE_ID.fullmatch(given):
        return given.decode()
    return os.urandom(16).hex()


def route_template(scope: Scope) -> str:
    route = scope.get("route")
    path = getattr(route, "path", None)
    return path if isinstance(path, str) and path else UNMATCHED


def _shown(path: str) -> str:
    return path if path.isprintable() else path.encode("unicode_escape").decode()


class RequestObserver:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self._counted: dict[tuple[str, str, int], Counter] = {}
        self._timed: dict[tuple[str, str], Histogram] = {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        given = None
        for name, value in scope["headers"]:
            if name == HEADER:
                given = value
                break
        rid = request_id(given)
        scope.setdefault("state", {})["request_id"] = rid
        id_header = (HEADER, rid.encode())
        status = 500

        async def answer(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                headers = [h for h in message.get("headers", ()) if h[0].lower() != HEADER]
                headers.append(id_header)
                message = {**message, "headers": headers}
            await send(message)

        try:
            await self.app(scope, receive, answer)
        finally:
            self._observe(scope, rid, status, time.perf_counter() - started)

    def _observe(self, scope: Scope, rid: str, status: int, seconds: float) -> None:
        method = scope["method"] if scope["method"] in _METHODS else "OTHER"
        route = route_template(scope)
        key = (method, route, status)
        counted = self._counted.get(key)
        if counted is None:
            counted = self._counted[key] = metrics.HTTP_REQUESTS.labels(method, route, str(status))
        counted.inc()
        timed = self._timed.get((method, route))
        if timed is None:
            timed = self._timed[(method, route)] = metrics.HTTP_SECONDS.labels(method, route)
        timed.observe(seconds)
        if log.isEnabledFor(logging.INFO):
            path = _shown(scope["path"])
            fields: dict[str, Any] = {
                "request_id": rid,
                "method": method,
                "path": path,
                "route": route,
                "status": status,
                "duration_ms": round(seconds * 1000, 1),
            }
            log.info(
                "%s %s %s %.1f ms (request %s)",
                method,
                path,
                status,
                seconds * 1000,
                rid,
                extra=fields,
            )
