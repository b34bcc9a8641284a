"""API errors, and the shape each part of the API gives them.

Handlers raise ApiError (or let the domain raise InvalidField or TooLarge); the error is rendered
in the shape of the dialect that owns the request's path, so that every error of a dialect has
its shape, the framework's own 404s and 405s included. Paths no dialect owns (login, health) use
hookd's own shape, `{"error": "<message>"}`.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, ConfigDict
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import Response
from starlette.routing import Match, Mount

from hookd.domain.errors import InvalidField, TooLarge
from hookd.http.responses import Json
from hookd.store.availability import StoreUnavailable

log = logging.getLogger("hookd.api")


class ApiError(Exception):
    def __init__(
        self,
        status: int,
        message: str,
        code: int | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.code = code if code is not None else status
        self.headers = headers


def login_required() -> ApiError:
    return ApiError(401, "Log In")


def admin_required() -> ApiError:
    return ApiError(403, "Administrator rights required")


def publishing_only() -> ApiError:
    return ApiError(403, "An API key may only publish events (POST /api/v1/events)")


def wrong_json_body() -> ApiError:
    return ApiError(400, "Wrong JSON body")


# When to ask a client to try again after the store was found away or full.
STORE_RETRY_AFTER_SECONDS = 5


# Renders one error: (request, HTTP status, message, the dialect's error code) → response.
ErrorShape = Callable[[Request, int, str, int], Response]


class Error(BaseModel):
    """hookd's own error shape: `{"error": "<message>"}`."""

    model_config = ConfigDict(extra="forbid")

    error: str


def plain_error(request: Request, status: int, message: str, code: int) -> Response:
    """hookd's own error shape: `{"error": "<message>"}`."""
    return Json({"error": message}, status_code=status)


@dataclass(frozen=True, slots=True)
class ErrorShapes:
    """Which shape errors take under which path prefix."""

    by_prefix: Sequence[tuple[str, ErrorShape]] = ()
    default: ErrorShape = plain_error

    def render(
        self,
        request: Request,
        status: int,
        message: str,
        code: int | None,
        headers: dict[str, str] | None = None,
    ) -> Response:
        path = request.scope["path"]
        shape = next(
            (shape for prefix, shape in self.by_prefix if path.startswith(prefix)), self.default
        )
        response = shape(request, status, message, status if code is None else code)
        if headers:
            response.headers.update(headers)
        return response


METHODS = ("DELETE", "GET", "HEAD", "OPTIONS", "PATCH", "POST", "PUT")


def allowed_methods(request: Request) -> list[str]:
    """Every method some route answers on the request's path (the router names only the
    methods of the first route it found there)."""
    routes = [route for route in request.app.router.routes if not isinstance(route, Mount)]
    return [
        method
        for method in METHODS
        if any(
            route.matches({**request.scope, "method": method})[0] == Match.FULL for route in routes
        )
    ]


def install_error_handlers(app: FastAPI, shapes: ErrorShapes) -> None:
    @app.exception_handler(ApiError)
    async def _api_error(request: Request, exc: ApiError) -> Response:
        return shapes.render(request, exc.status, exc.message, exc.code, exc.headers)

    @app.exception_handler(StoreUnavailable)
    async def _store_unavailable(request: Request, exc: StoreUnavailable) -> Response:
        # Logged by the store once when it went away, not once per request.
        retry = {"Retry-After": str(STORE_RETRY_AFTER_SECONDS)}
        return shapes.render(request, 503, f"Unavailable: {exc.reason}", None, retry)

    @app.exception_handler(InvalidField)
    async def _invalid_field(request: Request, exc: InvalidField) -> Response:
        return shapes.render(request, 400, str(exc), None)

    @app.exception_handler(TooLarge)
    async def _too_large(request: Request, exc: TooLarge) -> Response:
        # The rest of the body may still be on its way: end the connection rather than read it.
        return shapes.render(request, 413, str(exc), None, {"Connection": "close"})

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError) -> Response:
        error = exc.errors()[0]
        location = [str(part) for part in error.get("loc", ())]
        if location[:1] == ["body"] and len(location) <= 1:
            return shapes.render(request, 400, "Wrong JSON body", None)
        field = ".".join(location[1:]) or "request"
        return shapes.render(request, 400, f"{field}: {error.get('msg', 'is not valid')}", None)

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> Response:
        response = shapes.render(request, exc.status_code, str(exc.detail), None)
        if exc.status_code == 405:
            response.headers["Allow"] = ", ".join(allowed_methods(request))
        return response

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> Response:
        log.exception("unexpected error on %s %s", request.method, request.url.path)
        return shapes.render(request, 500, "Internal error", None)
