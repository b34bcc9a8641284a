"""What a failed call raises: one exception per kind of refusal, each carrying the HTTP status
and the error body in the shape of the dialect that answered (`{"error"}` for the device
dialect and hookd's own paths, `{"code", "reason"}` for the repository dialect)."""

from __future__ import annotations

from typing import Any

import httpx
import orjson
from pydantic import ValidationError

from hookd.client._models import DeviceErrorBody, Published, RepositoryErrorBody


class HookdError(Exception):
    """hookd refused a call or failed it. `status` is the HTTP status; `body` the error body as
    sent (a dict; `{}` when it was no JSON object); `message` its text; `code` the repository
    dialect's own code (240100…) or, for the device dialect, the status."""

    def __init__(self, status: int, body: dict[str, Any], message: str, code: int) -> None:
        super().__init__(f"{status}: {message}")
        self.status = status
        self.body = body
        self.message = message
        self.code = code
        # Set by publish(): what the requests before the one that failed stored.
        self.published: Published | None = None


class BadRequest(HookdError):
    """400 (and 406, 415: the request itself cannot be taken)."""


class Unauthorized(HookdError):
    """401: no token, a wrong or expired one, or wrong credentials."""


class Forbidden(HookdError):
    """403: the token's account may not do this."""


class NotFound(HookdError):
    """404."""


class Conflict(HookdError):
    """409."""


class TooLarge(HookdError):
    """413: the body, or one event in it, is too large."""


class Retryable(HookdError):
    """A refusal that asks to be tried again later: `retry_after` seconds when hookd said."""

    def __init__(
        self,
        status: int,
        body: dict[str, Any],
        message: str,
        code: int,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(status, body, message, code)
        self.retry_after = retry_after


class RateLimited(Retryable):
    """429: too many calls (or failed logins)."""


class Unavailable(Retryable):
    """503: hookd is busy or its store is away."""


class ServerError(HookdError):
    """Any other 5xx."""


_BY_STATUS: dict[int, type[HookdError]] = {
    400: BadRequest,
    401: Unauthorized,
    403: Forbidden,
    404: NotFound,
    406: BadRequest,
    409: Conflict,
    413: TooLarge,
    415: BadRequest,
}


def error_body(response: httpx.Response) -> dict[str, Any]:
    try:
        body = orjson.loads(response.content)
    except orjson.JSONDecodeError:
        return {}
    return body if isinstance(body, dict) else {}


def _message_and_code(body: dict[str, Any]) -> tuple[str | None, int | None]:
    """The message (and the repository dialect's code) of an error body in either shape."""
    try:
        device = DeviceErrorBody.model_validate(body)
    except ValidationError:
        pass
    else:
        return device.error, None
    try:
        repository = RepositoryErrorBody.model_validate(body)
    except ValidationError:
        return None, None
    return repository.reason, repository.code


def retry_after(response: httpx.Response) -> float | None:
    """Retry-After in seconds (hookd sends seconds, never a date)."""
    try:
        return float(response.headers["retry-after"])
    except (KeyError, ValueError):
        return None


def error_of(response: httpx.Response) -> HookdError:
    """The exception an error answer stands for."""
    status = response.status_code
    body = error_body(response)
    message, code = _message_and_code(body)
    if message is None:
        message = response.reason_phrase or response.text[:200]
    code = status if code is None else code
    if status in (429, 503):
        kind: type[Retryable] = RateLimited if status == 429 else Unavailable
        return kind(status, body, message, code, retry_after(response))
    if status >= 500:
        return ServerError(status, body, message, code)
    return _BY_STATUS.get(status, HookdError)(status, body, message, code)
