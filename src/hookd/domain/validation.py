"""Rules every dialect's input follows: control characters, http(s) URLs, ids, and pydantic's
errors turned into one `<field>: <what is wrong>` message."""

from __future__ import annotations

import re
from functools import cache
from typing import Annotated, Any, TypeVar

from pydantic import AfterValidator, BaseModel, Field, ValidationError
from yarl import URL

from hookd.domain.errors import InvalidField

# One line of text (names, URLs, categories) holds no control character at all; free text
# (descriptions) may hold tabs and line breaks.
_CONTROL_IN_LINE = re.compile(r"[\x00-\x1f\x7f]")
_CONTROL_IN_TEXT = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


def check_line(value: str) -> str:
    if _CONTROL_IN_LINE.search(value):
        raise ValueError("must not contain control characters")
    return value


def check_text(value: str) -> str:
    if _CONTROL_IN_TEXT.search(value):
        raise ValueError("must not contain control characters other than tabs and line breaks")
    return value


# The same rules as JSON Schema patterns, for the API's documentation (not checked by pydantic:
# its errors would not say what is wrong as plainly as the checks above).
LINE_PATTERN = r"^[^\x00-\x1f\x7f]*$"
TEXT_PATTERN = r"^[^\x00-\x08\x0b\x0c\x0e-\x1f\x7f]*$"
# An absolute http(s) URL with a host, as documented.
HTTP_URL_SCHEMA: dict[str, Any] = {
    "format": "uri",
    "pattern": r"^[Hh][Tt][Tt][Pp][Ss]?://([^\s/?#@]+@)?[^\s/?#@]+([/?#]\S*)?$",
}

Line = Annotated[
    str, AfterValidator(check_line), Field(json_schema_extra={"pattern": LINE_PATTERN})
]
Text = Annotated[
    str, AfterValidator(check_text), Field(json_schema_extra={"pattern": TEXT_PATTERN})
]

_HTTP_URL = re.compile(
    r"(?i:https?)://([^/?#@\s]+@)?(\[[0-9a-fA-F:.]+\]|[^/?#:\s\[\]]+)(:\d{1,5})?([/?#]\S*)?"
)


def check_http_url(url: str) -> str:
    """An absolute http(s) URL with a host, that the delivery client can send to.

    The client parses URLs with yarl, so yarl has the last word here: a URL it refuses (a
    backslash in the host, an invalid IDNA label, a bracketed IPv4 address…) would otherwise be
    accepted and then fail every attempt before a request is made.
    """
    match = _HTTP_URL.fullmatch(url)
    if not match or _CONTROL_IN_LINE.search(url):
        raise ValueError("must be an absolute http(s) URL")
    if match.group(3) and not 0 < int(match.group(3)[1:]) < 65536:
        raise ValueError("has a port out of range")
    try:
        parsed = URL(url)
        host = parsed.raw_host and parsed.host  # `host` decodes IDNA labels, as the client does
    except ValueError as exc:  # UnicodeError (IDNA) is a ValueError too
        raise ValueError(f"has a host that cannot be used ({_first_line(exc)})") from None
    if not host:
        raise ValueError("must be an absolute http(s) URL")
    if parsed.user is not None or parsed.password is not None:
        # Sent as `Authorization: Basic`, in Latin-1, the user name without a colon.
        user, password = parsed.user or "", parsed.password or ""
        try:
            f"{user}:{password}".encode("latin-1")
        except UnicodeEncodeError:
            raise ValueError("has a user name or password that HTTP cannot carry") from None
        if ":" in user:
            raise ValueError("has a user name with a colon") from None
    return url


def _first_line(exc: Exception) -> str:
    text = str(exc).strip().splitlines()
    return text[0][:200] if text else type(exc).__name__


# Ids in paths (`/webhooks/{uid}`, `/deliveries/{id}`) are integers ≥ 1 that fit in 64 bits.
_MAX_ID_DIGITS = 18


def parse_id(raw: str) -> int | None:
    """A path's integer id (≥ 1), or None when `raw` is not one."""
    if not raw.isascii() or not raw.isdigit() or len(raw) > _MAX_ID_DIGITS or int(raw) < 1:
        return None
    return int(raw)


_Model = TypeVar("_Model", bound=BaseModel)


def validated(model: type[_Model], body: Any, what: str) -> _Model:
    """`body` as `model`; InvalidField naming the first bad field when it does not fit."""
    if not isinstance(body, dict):
        raise InvalidField("body", "must be a JSON object")
    try:
        return model.model_validate(body)
    except ValidationError as exc:
        raise field_error(exc, model, what) from None


_MESSAGES = {
    "missing": "is required",
    "string_type": "must be a string",
    "bool_type": "must be true or false",
    "int_type": "must be an integer",
    "list_type": "must be a list",
    "model_type": "must be an object",
    "model_attributes_type": "must be an object",
    "dict_type": "must be an object",
}


def field_error(exc: ValidationError, model: type[BaseModel], what: str) -> InvalidField:
    """The first error of `exc` as `<field>: <what is wrong>`; nested fields are dotted
    (`restrictions.0.key`), and an unknown field "is not a field of a(n) <what>"."""
    error = exc.errors()[0]
    location = [str(part) for part in error["loc"]]
    kind = error["type"]
    ctx = error.get("ctx") or {}
    if len(location) >= 3 and location[1].isdigit():
        what = _singular(location[0])
    if kind == "extra_forbidden":
        message = f"is not a field of {'an' if what[0] in 'aeiou' else 'a'} {what}"
    elif kind in ("literal_error", "enum"):
        message = f"must be {ctx.get('expected')}"
    elif kind in ("string_too_short", "too_short") and ctx.get("min_length") == 1:
        message = (
            "must not be empty"
            if isinstance(error.get("input"), str)
            else ("must hold at least 1 item")
        )
    elif kind in ("string_too_short", "too_short"):
        least = ctx.get("min_length")
        message = f"must hold at least {least} {_unit(error, least)}"
    elif kind in ("string_too_long", "too_long"):
        most = ctx.get("max_length")
        message = f"must hold at most {most} {_unit(error, most)}"
    elif kind in ("greater_than_equal", "less_than_equal"):
        low, high = _bounds(model, location[0])
        message = f"must be between {low} and {high}"
    elif kind in _MESSAGES:
        message = _MESSAGES[kind]
    else:
        message = error["msg"].removeprefix("Value error, ")
    return InvalidField(".".join(location) or "body", message)


def _unit(error: Any, count: Any) -> str:
    unit = "character" if isinstance(error.get("input"), str) else "item"
    return unit if count == 1 else f"{unit}s"


def _singular(name: str) -> str:
    return name[:-1] if name.endswith("s") else name


@cache
def _schema(model: type[BaseModel]) -> dict[str, Any]:
    return model.model_json_schema()


def _bounds(model: type[BaseModel], field: str) -> tuple[Any, Any]:
    """A numeric field's minimum and maximum, as its JSON schema states them."""
    schema = _schema(model).get("properties", {}).get(field, {})
    for candidate in (schema, *schema.get("anyOf", ())):
        if "minimum" in candidate or "maximum" in candidate:
            return candidate.get("minimum"), candidate.get("maximum")
    return None, None
