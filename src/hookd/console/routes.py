"""The console as the app mounts it: its pages, its static files, and its errors as pages."""

from __future__ import annotations

from dataclasses import dataclass

from fastapi import APIRouter, Request
from starlette.responses import Response

from hookd.console import deliveries, overview, repositories, session, webhooks
from hookd.console.render import STATIC, page
from hookd.http.errors import ErrorShape

router = APIRouter(include_in_schema=False)
for pages in (session, overview, webhooks, deliveries, repositories):
    router.include_router(pages.router)


@router.get("/static/{digest}/{name}")
async def static_file(digest: str, name: str) -> Response:
    found = STATIC.response(digest, name)
    return found if found is not None else Response("Not Found", status_code=404)


def error_page(request: Request, status: int, message: str, code: int) -> Response:
    """An error under the console's paths, as a page; not being logged in leads to the login."""
    if status == 401:
        return session.back_to_login(request)
    return page(request, "error.html", status, viewer=None, code=status, message=message)


@dataclass(frozen=True, slots=True)
class Console:
    router: APIRouter
    # The console's paths ("/" itself is its overview); errors under them are pages.
    path_prefixes: tuple[str, ...]
    error_shape: ErrorShape


CONSOLE = Console(
    router=router,
    path_prefixes=("/login", "/logout", "/webhooks", "/deliveries", "/repositories", "/static/"),
    error_shape=error_page,
)
