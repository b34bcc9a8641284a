"""Reading a request body as JSON, within a size limit."""

from __future__ import annotations

from typing import Any

import orjson
from fastapi import Request

from hookd.domain.errors import TooLarge
from hookd.http.errors import ApiError, wrong_json_body


def is_json(media_type: str) -> bool:
    """`application/json`, or a JSON-based type such as `application/hal+json`."""
    return media_type == "application/json" or (
        media_type.startswith("application/") and media_type.endswith("+json")
    )


def check_content_type(request: Request) -> None:
    """415 for a body declared as anything but JSON (a body without Content-Type is read as
    JSON)."""
    declared = request.headers.get("content-type", "")
    media_type = declared.partition(";")[0].strip().lower()
    if media_type and not is_json(media_type):
        raise ApiError(
            415, f"Content-Type: the body must be application/json, not {media_type[:100]}"
        )


async def read_json(request: Request, limit: int) -> Any:
    """The body parsed as JSON; 415 when it is declared as something else, 413 past `limit`
    bytes (checked while it streams in), "Wrong JSON body" when it is not JSON."""
    check_content_type(request)
    declared = request.headers.get("content-length")
    if declared_over(declared, limit):
        raise body_too_large(limit)
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise body_too_large(limit)
        chunks.append(chunk)
    try:
        return orjson.loads(b"".join(chunks))
    except orjson.JSONDecodeError:
        raise wrong_json_body() from None


def declared_over(length: str | bytes | None, limit: int) -> bool:
    """Whether a Content-Length value is a number over `limit` (of any length: a thousand
    digits must not cost an int() of them)."""
    if length is None:
        return False
    text = length.decode("latin-1") if isinstance(length, bytes) else length
    if not (text.isascii() and text.isdigit()):
        return False
    text = text.lstrip("0") or "0"
    return len(text) > len(str(limit)) or int(text) > limit


def body_too_large(limit: int) -> TooLarge:
    return TooLarge("body", f"larger than {limit} bytes")


async def read_json_object(request: Request, limit: int) -> dict[str, Any]:
    """The body as a JSON object; any other JSON is a "Wrong JSON body" too."""
    body = await read_json(request, limit)
    if not isinstance(body, dict):
        raise wrong_json_body()
    return body


def has_body(request: Request) -> bool:
    """Whether the request comes with a body (`curl -X POST` sends none)."""
    headers = request.headers
    return "transfer-encoding" in headers or headers.get("content-length", "0") != "0"


async def read_optional_json(request: Request, limit: int) -> Any:
    """The body parsed as JSON, or `{}` when the request has no body."""
    return await read_json(request, limit) if has_body(request) else {}


async def read_optional_json_object(request: Request, limit: int) -> dict[str, Any]:
    """The body as a JSON object, or `{}` when the request has no body."""
    return await read_json_object(request, limit) if has_body(request) else {}
