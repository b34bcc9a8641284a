"""The client and the server's OpenAPI document agree: each client type has the fields of the
component it stands for (names, required-ness, JSON types, enum values), and each call's
method, path, query, body and answers are the document's."""

from __future__ import annotations

import inspect
import re
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest
from pydantic import BaseModel, TypeAdapter

import hookd.client
from hookd.app import create_app
from hookd.client import AsyncClient, Client
from hookd.client._api import ENDPOINTS, MAX_EVENTS_PER_REQUEST, MAX_PUBLISH_BYTES, Api, Endpoint
from hookd.client._models import COMPONENTS
from hookd.config import load_settings
from hookd.dialects.device import events as device_events

REF = re.compile(r"^#/(?:components/schemas|\$defs)/(.+)$")
Shape = Any


@pytest.fixture(scope="module")
def document() -> dict[str, Any]:
    return create_app(load_settings(), run_worker=False).openapi()


# --- schemas, reduced to what a client relies on ----------------------------------------------


class Reader:
    """Reads a JSON schema's properties as shapes: JSON types (with "null"), arrays of shapes,
    objects by the component they are (`("object", name)`), enums by their values."""

    def __init__(self, definitions: dict[str, Any], name_of: Callable[[str], str]) -> None:
        self.definitions = definitions
        self.name_of = name_of

    def shape(self, schema: dict[str, Any]) -> frozenset[Shape]:
        if "$ref" in schema:
            name = REF.match(schema["$ref"]).group(1)  # type: ignore[union-attr]
            target = self.definitions[name]
            if "enum" in target:
                return self.shape(target)
            return frozenset({("object", self.name_of(name))})
        if "anyOf" in schema:
            return frozenset().union(*(self.shape(part) for part in schema["anyOf"]))
        if "const" in schema:
            return frozenset({("enum", (schema["const"],))})
        if "enum" in schema:
            return frozenset({("enum", tuple(sorted(schema["enum"])))})
        kind = schema.get("type")
        if kind == "array":
            return frozenset({("array", self.shape(schema["items"]))})
        if kind == "object":
            if "properties" in schema:
                raise AssertionError(f"an unnamed object: {schema}")
            return frozenset({("object", None)})
        if kind is None:
            return frozenset({"any"})
        return frozenset({kind})

    def fields(self, schema: dict[str, Any]) -> dict[str, tuple[bool, frozenset[Shape]]]:
        required = set(schema.get("required", ()))
        return {
            name: (name in required, self.shape(field))
            for name, field in schema.get("properties", {}).items()
        }


def loose(shape: frozenset[Shape]) -> frozenset[Shape]:
    """The shape with enums read as the strings they are."""
    found: set[Shape] = set()
    for part in shape:
        if isinstance(part, tuple) and part[0] == "enum":
            found.add("string")
        elif isinstance(part, tuple) and part[0] == "array":
            found.add(("array", loose(part[1])))
        else:
            found.add(part)
    return frozenset(found)


def agree(client: frozenset[Shape], server: frozenset[Shape]) -> bool:
    """Same JSON types; and where the client names the values (an enum or a Literal), the
    server's. The client may read a server's enum as any string (event types grow)."""
    if loose(client) != loose(server):
        return False
    client_enums = {part for part in client if isinstance(part, tuple) and part[0] == "enum"}
    server_enums = {part for part in server if isinstance(part, tuple) and part[0] == "enum"}
    nested = [
        (a[1], b[1])
        for a in client
        for b in server
        if isinstance(a, tuple) and isinstance(b, tuple) and a[0] == b[0] == "array"
    ]
    return (not client_enums or client_enums == server_enums) and all(
        agree(a, b) for a, b in nested
    )


def client_schema(kind: type[Any]) -> dict[str, Any]:
    if isinstance(kind, type) and issubclass(kind, BaseModel):
        return kind.model_json_schema(ref_template="#/$defs/{model}")
    return TypeAdapter(kind).json_schema(ref_template="#/$defs/{model}")


def client_fields(kind: type[Any]) -> dict[str, tuple[bool, frozenset[Shape]]]:
    schema = client_schema(kind)
    by_class = {cls.__name__: name for cls, name in COMPONENTS.items()}
    return Reader(schema.get("$defs", {}), lambda name: by_class.get(name, f"?{name}")).fields(
        schema
    )


def server_fields(
    document: dict[str, Any], component: str
) -> dict[str, tuple[bool, frozenset[Shape]]]:
    schemas = document["components"]["schemas"]
    return Reader(schemas, lambda name: name).fields(schemas[component])


def disagreements(kind: type[Any], document: dict[str, Any]) -> list[str]:
    component = COMPONENTS[kind]
    ours, theirs = client_fields(kind), server_fields(document, component)
    found = [f"{component}.{name}: only in the client" for name in ours.keys() - theirs.keys()]
    found += [f"{component}.{name}: only in the server" for name in theirs.keys() - ours.keys()]
    for name in sorted(ours.keys() & theirs.keys()):
        (our_required, our_shape), (their_required, their_shape) = ours[name], theirs[name]
        if our_required != their_required:
            found.append(f"{component}.{name}: required {our_required} ≠ {their_required}")
        if not agree(our_shape, their_shape):
            found.append(
                f"{component}.{name}: {sorted(map(str, our_shape))} ≠ "
                f"{sorted(map(str, their_shape))}"
            )
    return found


@pytest.mark.parametrize("kind", list(COMPONENTS), ids=lambda kind: kind.__name__)
def test_each_client_type_matches_its_component(kind: type[Any], document: dict[str, Any]) -> None:
    assert COMPONENTS[kind] in document["components"]["schemas"]
    assert disagreements(kind, document) == []


def test_every_exported_type_names_its_component() -> None:
    exported = [getattr(hookd.client, name) for name in hookd.client.__all__]
    types = [
        kind
        for kind in exported
        if isinstance(kind, type)
        and (issubclass(kind, BaseModel) or hasattr(kind, "__required_keys__"))
    ]
    assert types
    assert [kind.__name__ for kind in types if kind not in COMPONENTS] == []


def test_a_renamed_field_on_either_side_is_seen(document: dict[str, Any]) -> None:
    """The comparison itself fails where it must (a check that cannot fail proves nothing)."""
    webhook = next(kind for kind, name in COMPONENTS.items() if name == "DeviceWebhook")
    changed = {**document["components"]["schemas"]["DeviceWebhook"]}
    changed["properties"] = {
        ("endpoint" if name == "url" else name): field
        for name, field in changed["properties"].items()
    }
    changed["required"] = ["endpoint" if n == "url" else n for n in changed["required"]]
    renamed = {
        **document,
        "components": {"schemas": {**document["components"]["schemas"], "DeviceWebhook": changed}},
    }
    assert disagreements(webhook, renamed) == [
        "DeviceWebhook.url: only in the client",
        "DeviceWebhook.endpoint: only in the server",
    ]
    changed = {**document["components"]["schemas"]["DeviceWebhook"]}
    changed["properties"] = {**changed["properties"], "timeout": {"type": "string"}}
    retyped = {
        **document,
        "components": {"schemas": {**document["components"]["schemas"], "DeviceWebhook": changed}},
    }
    assert disagreements(webhook, retyped) == ["DeviceWebhook.timeout: ['integer'] ≠ ['string']"]


# --- calls --------------------------------------------------------------------------------------


def operation_of(document: dict[str, Any], endpoint: Endpoint) -> dict[str, Any]:
    methods = document["paths"].get(endpoint.path)
    assert methods is not None, f"no path {endpoint.path}"
    found = methods.get(endpoint.method.lower())
    assert found is not None, f"no {endpoint.method} {endpoint.path}"
    return found  # type: ignore[no-any-return]


def component_of(schema: dict[str, Any] | None) -> str | None:
    return None if schema is None else REF.match(schema["$ref"]).group(1)  # type: ignore[union-attr]


def json_schema(part: dict[str, Any]) -> dict[str, Any] | None:
    return part.get("content", {}).get("application/json", {}).get("schema")  # type: ignore[no-any-return]


@pytest.mark.parametrize("endpoint", ENDPOINTS, ids=lambda e: f"{e.method} {e.path}")
def test_each_endpoint_is_the_documents(endpoint: Endpoint, document: dict[str, Any]) -> None:
    found = operation_of(document, endpoint)
    assert ("security" in found) == endpoint.secured
    query = {p["name"] for p in found.get("parameters", ()) if p["in"] == "query"}
    assert set(endpoint.query) == query
    body = found.get("requestBody")
    if endpoint.body is None:
        assert body is None or not body.get("required", False)
    else:
        assert body is not None
        named = component_of(json_schema(body))
        if endpoint.batch:
            alternatives = document["components"]["schemas"][named]["anyOf"]
            [array] = [a for a in alternatives if a.get("type") == "array"]
            assert component_of(array["items"]) == COMPONENTS[endpoint.body]
            assert array["maxItems"] == MAX_EVENTS_PER_REQUEST
        else:
            assert named == COMPONENTS[endpoint.body]
    successes = {
        int(status): answer for status, answer in found["responses"].items() if status[0] == "2"
    }
    assert set(successes) == set(endpoint.answers)
    for status, model in endpoint.answers.items():
        schema = json_schema(successes[status])
        assert component_of(schema) == (None if model is None else COMPONENTS[model])


def test_every_documented_operation_of_the_dialects_has_a_call(document: dict[str, Any]) -> None:
    covered = {(e.method.lower(), e.path) for e in ENDPOINTS}
    documented = {
        (method, path)
        for path, methods in document["paths"].items()
        if path.startswith(("/api/v1/", "/r/"))
        for method in methods
    }
    assert documented - covered == set()


# One set of arguments for every call: each call's request must be one the document has.
UID, DELIVERY, REPO, EVENT, HOOK = 7, 9, "docs", "saved", "0b0e2c4e-8f5c-4b8a-9d0e-2f4a6c8e0b1d"
REPOSITORY_WEBHOOK = {"uri": "/x", "description": "d", "handleResponse": "NONE"}
ARGUMENTS: dict[str, tuple[Any, ...]] = {
    "login": ("admin", "password"),
    "logout": (),
    "list_webhooks": (10, 20),
    "create_webhook": ({"url": "http://127.0.0.1/", "event_types": ["log.tamper_event"]},),
    "get_webhook": (UID,),
    "replace_webhook": (UID, {"url": "http://127.0.0.1/", "event_types": ["log.tamper_event"]}),
    "patch_webhook": (UID, {"timeout": 2000}),
    "delete_webhook": (UID,),
    "test_webhook": (UID,),
    "rotate_secret": (UID, "s" * 16),
    "replay": (UID, 1.5),
    "recover": (UID, 1.5),
    "event_types": (),
    "create_api_key": ("shop", ["order.*"]),
    "list_api_keys": (),
    "delete_api_key": (3,),
    "create_event_type": ("order.created", "An order was placed"),
    "delete_event_type": ("order.created",),
    "publish": ([{"type": "log.tamper_event"}],),
    "list_deliveries": (UID,),
    "retry_delivery": (DELIVERY,),
    "put_repository": (REPO, "Docs"),
    "get_repository": (REPO,),
    "list_events": (REPO,),
    "put_event": (REPO, EVENT, "Saved"),
    "get_event": (REPO, EVENT),
    "create_repository_webhook": (REPO, EVENT, REPOSITORY_WEBHOOK),
    "get_repository_webhook": (REPO, EVENT, HOOK),
    "replace_repository_webhook": (REPO, EVENT, HOOK, REPOSITORY_WEBHOOK),
    "delete_repository_webhook": (REPO, EVENT, HOOK),
    "trigger": (REPO, EVENT, {"a": 1}),
}


def public_methods(kind: type[Any]) -> dict[str, Callable[..., Any]]:
    return {
        name: member
        for name, member in inspect.getmembers(kind, inspect.isfunction)
        if not name.startswith("_")
    }


def first_request(name: str) -> httpx.Request:
    api = Api("http://hookd.test", token="t")
    return next(getattr(api, name)(*ARGUMENTS[name]))  # type: ignore[no-any-return]


def template(path: str) -> re.Pattern[str]:
    return re.compile("^" + re.sub(r"\\\{[^}]+\\\}", "[^/]+", re.escape(path)) + "$")


def test_every_call_sends_a_documented_request(document: dict[str, Any]) -> None:
    assert set(ARGUMENTS) == set(public_methods(Api)), "every call has arguments here"
    for name in ARGUMENTS:
        request = first_request(name)
        matches = [
            (path, methods[request.method.lower()])
            for path, methods in document["paths"].items()
            if template(path).match(request.url.path) and request.method.lower() in methods
        ]
        assert len(matches) == 1, f"{name}: {request.method} {request.url.path}"


def test_both_clients_offer_the_core_calls_with_one_signature() -> None:
    calls = set(public_methods(Api))
    sync, asynchronous = public_methods(Client), public_methods(AsyncClient)
    assert set(sync) == set(asynchronous) == calls | {"close"}
    for name, method in sync.items():
        other = asynchronous[name]
        assert inspect.iscoroutinefunction(other), name
        assert inspect.signature(method) == inspect.signature(other), name


def test_the_publish_limits_are_the_servers(document: dict[str, Any]) -> None:
    assert load_settings().max_publish_bytes == MAX_PUBLISH_BYTES
    assert MAX_EVENTS_PER_REQUEST == device_events.MAX_EVENTS_PER_REQUEST


def operations(document: dict[str, Any]) -> Iterator[tuple[str, str]]:
    for path, methods in document["paths"].items():
        for method in methods:
            yield method, path
