"""The OpenAPI document: every request and every answer of every dialect, by named schemas.

Routes declare their answers with pydantic models: the main one as `response_model` (the
handlers still render their own JSON, so the model documents and costs nothing per request),
errors with `errors()`. Schemas FastAPI cannot see in a route — request bodies the handlers read
themselves, HAL variants of an answer — are named with `SCHEMAS.ref()` and added to the
document's components when it is built.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi
from pydantic import BaseModel, ConfigDict
from pydantic.json_schema import models_json_schema

JSON = "application/json"
REF = "#/components/schemas/{model}"
BEARER = "bearer"
API_KEY = "apiKey"

SECURITY_SCHEMES = {
    BEARER: {
        "type": "http",
        "scheme": "bearer",
        "description": "A token from `POST /api/v1/login`",
    },
    API_KEY: {
        "type": "http",
        "scheme": "bearer",
        "description": "A producer's API key (`hk_…`) from `POST /api/v1/api-keys`: it may only "
        "publish events",
    },
}

STATUS_DESCRIPTIONS = {
    400: "Bad input: the message names the field and what is wrong",
    401: "No or invalid token",
    403: "Administrator rights required (or an API key, which may only publish)",
    409: "In conflict with what is stored",
    404: "Not found",
    406: "The Accept header allows none of the media types this answer comes in",
    413: "The body is too large",
    415: "The body is declared as something other than JSON",
}

# What any route may answer, from the request limits and the store's availability (the answer
# in the route's error shape).
LIMIT_ANSWERS = {
    414: "The request target is longer than `HOOKD_MAX_URL_BYTES`",
    431: "The request head is larger than `HOOKD_MAX_HEADER_BYTES`",
    503: "The store is unavailable or too many requests are in progress: "
    "try again after `Retry-After` seconds",
}
BODY_TOO_LARGE = "The body is larger than the route's limit"
RETRY_AFTER = {
    "Retry-After": {
        "description": "Seconds to wait before trying again",
        "schema": {"type": "integer", "minimum": 0},
    }
}


class Answer(BaseModel):
    """A documented answer: it holds exactly the fields its model names."""

    model_config = ConfigDict(extra="forbid")


class Schemas:
    """The models a document names by reference although no route declares them."""

    def __init__(self) -> None:
        self._models: dict[str, type[BaseModel]] = {}

    def ref(self, model: type[BaseModel]) -> dict[str, str]:
        """`{"$ref": …}` to `model`'s schema, which the document will hold."""
        known = self._models.setdefault(model.__name__, model)
        if known is not model:
            raise ValueError(f"two models are named {model.__name__}")
        return {"$ref": REF.format(model=model.__name__)}

    def definitions(self) -> dict[str, Any]:
        """The schemas of every model named, and of the models they use."""
        if not self._models:
            return {}
        _, top = models_json_schema(
            [(model, "validation") for model in self._models.values()], ref_template=REF
        )
        return dict(top.get("$defs", {}))


SCHEMAS = Schemas()


def operation(
    *,
    body: type[BaseModel] | None = None,
    body_required: bool = True,
    secured: bool = True,
    api_key: bool = False,
) -> dict[str, Any]:
    """A route's `openapi_extra`: the JSON body its handler reads, whether it takes a bearer
    token, and whether an API key will do instead."""
    extra: dict[str, Any] = {}
    if body is not None:
        extra["requestBody"] = {
            "required": body_required,
            "content": {JSON: {"schema": SCHEMAS.ref(body)}},
        }
    if secured:
        extra["security"] = [{BEARER: []}, {API_KEY: []}] if api_key else [{BEARER: []}]
    return extra


def content(model: type[BaseModel], media_types: Iterable[str]) -> dict[str, Any]:
    """An answer's `content` in further media types (the main one comes from `model=`)."""
    return {media_type: {"schema": SCHEMAS.ref(model)} for media_type in media_types}


def errors(
    model: type[BaseModel],
    statuses: Iterable[int],
    *,
    media_types: Iterable[str] = (),
    descriptions: Mapping[int, str] | None = None,
) -> dict[int | str, dict[str, Any]]:
    """The error answers of a route, each in the dialect's shape `model` (as JSON, and in
    `media_types` besides)."""
    described = {**STATUS_DESCRIPTIONS, **(descriptions or {})}
    also = tuple(media_types)
    answers: dict[int | str, dict[str, Any]] = {}
    for status in statuses:
        answer: dict[str, Any] = {"model": model, "description": described[status]}
        if also:
            answer["content"] = content(model, also)
        answers[status] = answer
    return answers


def document(app: FastAPI) -> dict[str, Any]:
    """The OpenAPI document of `app`, built once."""
    if app.openapi_schema is None:
        schema = get_openapi(
            title=app.title,
            version=app.version,
            description=app.description,
            routes=app.routes,
            separate_input_output_schemas=False,
        )
        for path in schema.get("paths", {}).values():
            for route in path.values():
                # FastAPI documents a 422 on every route; hookd answers bad input with 400.
                route.get("responses", {}).pop("422", None)
                _document_limits(route)
        components = schema.setdefault("components", {})
        schemas = components.setdefault("schemas", {})
        for name in ("HTTPValidationError", "ValidationError"):
            schemas.pop(name, None)
        for name, definition in SCHEMAS.definitions().items():
            schemas.setdefault(name, definition)
        components["schemas"] = dict(sorted(schemas.items()))
        components["securitySchemes"] = SECURITY_SCHEMES
        app.openapi_schema = schema
    return app.openapi_schema


def _document_limits(operation: dict[str, Any]) -> None:
    """Add the answers every route may give (`LIMIT_ANSWERS`, and 413 where there is a body) in
    the shape of the route's own error answers."""
    answers = operation.setdefault("responses", {})
    shaped = next(
        (
            answer
            for status, answer in sorted(answers.items())
            if status[0] == "4" and "content" in answer
        ),
        None,
    )
    if shaped is None:
        return
    limits = dict(LIMIT_ANSWERS)
    if "requestBody" in operation:
        limits[413] = BODY_TOO_LARGE
    for status, description in limits.items():
        answer = answers.setdefault(
            str(status), {"description": description, "content": shaped["content"]}
        )
        if status == 503:
            answer.setdefault("headers", RETRY_AFTER)
