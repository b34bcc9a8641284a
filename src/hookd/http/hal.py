"""Answers as plain JSON or as HAL (`_links`, `_embedded`), as the request's Accept asks.

Plain JSON unless `application/hal+json` is named and weighted at least as high as JSON;
wildcards (`*/*`, `application/*`) alone mean plain JSON; an Accept that allows neither gets 406.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import lru_cache
from typing import Annotated, Any

from fastapi import Depends, Request
from starlette.background import BackgroundTask

from hookd.http.errors import ApiError
from hookd.http.responses import Json

JSON = "application/json"
HAL = "application/hal+json"


@dataclass(slots=True)
class Resource:
    """A body with its links and embedded collections, rendered as plain JSON or as HAL."""

    body: dict[str, Any]
    links: dict[str, str] = field(default_factory=dict)
    embedded: dict[str, list[Resource]] = field(default_factory=dict)

    def json(self) -> dict[str, Any]:
        """Plain JSON: embedded collections become ordinary lists, links are left out."""
        rendered = dict(self.body)
        for name, items in self.embedded.items():
            rendered[name] = [item.json() for item in items]
        return rendered

    def hal(self) -> dict[str, Any]:
        """HAL: the body plus `_links` (each `{"href"}`) and `_embedded`."""
        rendered = dict(self.body)
        rendered["_links"] = {name: {"href": href} for name, href in self.links.items()}
        if self.embedded:
            rendered["_embedded"] = {
                name: [item.hal() for item in items] for name, items in self.embedded.items()
            }
        return rendered


# Accept headers up to this long are remembered (clients send the same few again and again);
# a longer one is worked out each time and forgotten, so that no client decides what is kept.
CACHED_ACCEPT_LENGTH = 256
# Media ranges of an Accept header looked at, at most: more are not a browser's or a client's.
MAX_MEDIA_RANGES = 64


def negotiate(accept: str | None) -> str | None:
    """The media type to answer with for an Accept header; None when it allows neither."""
    if accept is None or len(accept) <= CACHED_ACCEPT_LENGTH:
        return _negotiate_cached(accept)
    return _negotiate(accept)


@lru_cache(maxsize=512)
def _negotiate_cached(accept: str | None) -> str | None:
    return _negotiate(accept)


def _negotiate(accept: str | None) -> str | None:
    if accept is None or not accept.strip():
        return JSON
    # For each candidate: (specificity of the most specific matching range, its q).
    best = {JSON: (0, 0.0), HAL: (0, 0.0)}
    for item in accept.split(",", MAX_MEDIA_RANGES)[:MAX_MEDIA_RANGES]:
        media_range, *params = (part.strip() for part in item.split(";"))
        media_range = media_range.lower()
        q = 1.0
        for param in params:
            name, _, value = param.partition("=")
            if name.strip().lower() == "q":
                try:
                    q = min(max(float(value), 0.0), 1.0)
                except ValueError:
                    q = 0.0
        for candidate in best:
            if media_range == candidate:
                specificity = 3
            elif media_range == "application/*":
                specificity = 2
            elif media_range == "*/*":
                specificity = 1
            else:
                continue
            if specificity > best[candidate][0]:
                best[candidate] = (specificity, q)
    json_q, hal_q = best[JSON][1], best[HAL][1]
    if hal_q > 0 and (hal_q > json_q or (hal_q == json_q and best[HAL][0] == 3)):
        return HAL
    return JSON if json_q > 0 else None


def wants_hal(request: Request) -> bool:
    return negotiate(request.headers.get("accept")) == HAL


@dataclass(slots=True, frozen=True)
class View:
    """How this request's answers are rendered."""

    media_type: str

    def render(
        self,
        resource: Resource,
        status: int = 200,
        headers: dict[str, str] | None = None,
        background: BackgroundTask | None = None,
    ) -> Json:
        body = resource.hal() if self.media_type == HAL else resource.json()
        return Json(
            body,
            status_code=status,
            headers=headers,
            media_type=self.media_type,
            background=background,
        )


_VIEWS = {JSON: View(JSON), HAL: View(HAL)}


async def negotiated(request: Request) -> View:
    # async: FastAPI would run a plain function in its thread pool, a hop per request.
    media_type = negotiate(request.headers.get("accept"))
    if media_type is None:
        raise ApiError(406, f"Accept: this resource is available as {JSON} or {HAL} only")
    return _VIEWS[media_type]


Negotiated = Annotated[View, Depends(negotiated)]
