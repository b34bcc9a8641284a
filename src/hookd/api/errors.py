"""API errors and the two shapes they take.

Device dialect: `{"error": "<message>"}`. Repository dialect (paths under `/r/`):
`{"code": <int>, "reason": "<text>"}`. Handlers raise ApiError (or let the domain raise
InvalidField); the dialect is picked from the path, so every error of a dialect has its shape,
404s and 405s of the framework included.
"""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException

from hookd.api.responses import Json
from hookd.domain.errors import InvalidField

log = logging.getLogger("hookd.api")

REPOSITORY_PREFIX = "/r/"


class ApiError(Exception):
    def __init__(self, status: int, message: str, code: int | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.code = code if code is not None else status


def login_required() -> ApiError:
    return ApiError(401, "Log In")


def admin_required() -> ApiError:
    return ApiError(403, "Administrator rights required")


def wrong_json_body() -> ApiError:
    return ApiError(400, "Wrong JSON body")


def error_response(request: Request, status: int, message: str, code: int | None = None) -> Json:
    if request.url.path.startswith(REPOSITORY_PREFIX):
        body: dict[str, object] = {"code": code if code is not None else status, "reason": message}
    else:
        body = {"error": message}
    return Json(body, status_code=status)


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(ApiError)
    async def _api_error(request: Request, exc: ApiError) -> Json:
        return error_response(request, exc.status, exc.message, exc.code)

    @app.exception_handler(InvalidField)
    async def _invalid_field(request: Request, exc: InvalidField) -> Json:
        return error_response(request, 400, str(exc))

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError) -> Json:
        error = exc.errors()[0]
        location = [str(part) for part in error.get("loc", ())]
        if location[:1] == ["body"] and len(location) <= 1:
            return error_response(request, 400, "Wrong JSON body")
        field = ".".join(location[1:]) or "request"
        return error_response(request, 400, f"{field}: {error.get('msg', 'is not valid')}")

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> Json:
        return error_response(request, exc.status_code, str(exc.detail))

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> Json:
        log.exception("unexpected error on %s %s", request.method, request.url.path)
        return error_response(request, 500, "Internal error")
