"""Pages: the templates, how values are shown in them, and the headers every page carries."""

from __future__ import annotations

import hashlib
import math
from datetime import UTC, datetime
from importlib import resources
from typing import Any
from urllib.parse import urlencode, urlsplit, urlunsplit

from fastapi import Request
from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape
from starlette.responses import HTMLResponse, Response

from hookd import __version__
from hookd.domain.states import DeliveryState, WebhookStatus

# Everything a page loads comes from hookd itself: the browser refuses anything else.
CONTENT_SECURITY_POLICY = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; "
    "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
)
PAGE_HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "same-origin",
    # Pages show live data and, to admins, secrets: never kept by a cache.
    "Cache-Control": "no-store",
}


class Static:
    """The console's stylesheet and script, read once; URLs carry a digest of the content, so
    the files can be cached for good."""

    def __init__(self) -> None:
        folder = resources.files("hookd.console") / "static"
        self.files: dict[str, tuple[bytes, str]] = {}
        for name, media_type in (
            ("console.css", "text/css; charset=utf-8"),
            ("console.js", "text/javascript; charset=utf-8"),
        ):
            self.files[name] = ((folder / name).read_bytes(), media_type)
        self.digests = {
            name: hashlib.sha256(content).hexdigest()[:12]
            for name, (content, _) in self.files.items()
        }

    def url(self, name: str) -> str:
        return f"/static/{self.digests[name]}/{name}"

    def response(self, digest: str, name: str) -> Response | None:
        if name not in self.files:
            return None
        content, media_type = self.files[name]
        cache = (
            "public, max-age=31536000, immutable"
            if digest == self.digests[name]
            else "no-cache"  # an old page asking for an old version: give the current one
        )
        return Response(
            content,
            media_type=media_type,
            headers={
                "Cache-Control": cache,
                "ETag": f'"{self.digests[name]}"',
                "X-Content-Type-Options": "nosniff",
            },
        )


STATIC = Static()


# --- how values are shown ---------------------------------------------------------------------


def when(timestamp: float | None) -> str:
    if timestamp is None:
        return "—"
    return datetime.fromtimestamp(timestamp, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def iso(timestamp: float | None) -> str:
    if timestamp is None:
        return ""
    return datetime.fromtimestamp(timestamp, UTC).isoformat(timespec="seconds")


def clock(timestamp: float) -> str:
    return datetime.fromtimestamp(timestamp, UTC).strftime("%H:%M")


def span(seconds: float | None) -> str:
    """`4 s`, `3 min 5 s`, `2 h 10 min`, `3 d 4 h`."""
    if seconds is None:
        return "—"
    seconds = max(seconds, 0.0)
    if seconds < 60:
        return f"{seconds:.0f} s" if seconds >= 10 else f"{seconds:.1f} s"
    minutes, secs = divmod(int(seconds), 60)
    if minutes < 60:
        return f"{minutes} min {secs} s"
    hours, minutes = divmod(minutes, 60)
    if hours < 48:
        return f"{hours} h {minutes} min"
    days, hours = divmod(hours, 24)
    return f"{days} d {hours} h"


def ms(value: float | None) -> str:
    if value is None:
        return "—"
    if value >= 1000:
        return f"{value / 1000:.2f} s"
    return f"{value:.0f} ms" if value >= 10 or value == 0 else f"{value:.1f} ms"


def percent(value: float | None) -> str:
    if value is None:
        return "—"
    shown = math.floor(value * 1000) / 10  # 99.96 % is not 100 %
    return f"{shown:.1f} %"


def number(value: int | float | None) -> str:
    if value is None:
        return "—"
    if isinstance(value, float) and not value.is_integer():
        return f"{value:,.1f}".replace(",", "\u202f")
    return f"{int(value):,}".replace(",", "\u202f")


def without_password(url: str) -> str:
    """A URL as shown in lists: a password in it is masked."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    user = parts.username or ""
    host = parts.hostname or ""
    if parts.port is not None:
        host = f"{host}:{parts.port}"
    return urlunsplit(parts._replace(netloc=f"{user}:•••@{host}"))


def query(request: Request, **changes: Any) -> str:
    """This page's query string with some parameters changed (None drops one)."""
    params = dict(request.query_params)
    for name, value in changes.items():
        if value is None:
            params.pop(name, None)
        else:
            params[name] = str(value)
    return "?" + urlencode(params) if params else "?"


ENV = Environment(
    loader=PackageLoader("hookd.console", "templates"),
    autoescape=select_autoescape(["html"]),
    undefined=StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
)
ENV.filters.update(
    when=when,
    iso=iso,
    span=span,
    ms=ms,
    percent=percent,
    number=number,
    without_password=without_password,
)
ENV.globals.update(
    static=STATIC.url,
    query=query,
    version=__version__,
    DeliveryState=DeliveryState,
    WebhookStatus=WebhookStatus,
)


def page(request: Request, template: str, status: int = 200, **context: Any) -> HTMLResponse:
    html = ENV.get_template(template).render(request=request, **context)
    return HTMLResponse(html, status_code=status, headers=PAGE_HEADERS)
