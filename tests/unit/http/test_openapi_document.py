"""The OpenAPI document tells the truth: valid, every schema named and resolvable, bearer
security, each dialect's error shape per status, HAL variants; and the views produce exactly
what the documenting models say."""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from openapi_spec_validator import validate

from hookd.app import create_app
from hookd.config import load_settings
from hookd.delivery.chain import Call, Hook, Verdict
from hookd.delivery.sender import Result
from hookd.dialects.device import views as device
from hookd.dialects.device.event_types import EVENT_TYPES, SUBSCRIBABLE_EVENT_TYPES
from hookd.dialects.repository import views as repository
from hookd.dialects.repository.model import (
    Binding,
    EventDefinition,
    Repository,
    RepositoryWebhook,
)
from hookd.domain.operational import OPERATIONAL_EVENT_TYPES
from hookd.domain.states import DeliveryState, WebhookStatus
from hookd.domain.webhook import Webhook
from hookd.store.deliveries import AttemptRecord, Delivery

HAL = "application/hal+json"
JSON = "application/json"
# /metrics takes a bearer token unless HOOKD_METRICS=open.
PUBLIC = {("post", "/api/v1/login"), ("get", "/healthz")}
# What an API key may call besides a bearer token.
PUBLISHING = {("post", "/api/v1/events")}


@pytest.fixture(scope="module")
def document() -> dict[str, Any]:
    return create_app(load_settings(), run_worker=False).openapi()


def operations(document: dict[str, Any]) -> Iterator[tuple[str, str, dict[str, Any]]]:
    for path, methods in document["paths"].items():
        for method, operation in methods.items():
            yield method, path, operation


def component(document: dict[str, Any], ref: dict[str, str]) -> dict[str, Any]:
    return document["components"]["schemas"][ref["$ref"].rsplit("/", 1)[1]]  # type: ignore[no-any-return]


def test_the_document_is_valid_openapi(document: dict[str, Any]) -> None:
    validate(document)


def test_every_reference_names_a_component(document: dict[str, Any]) -> None:
    text = json.dumps(document)
    references = set(re.findall(r'"\$ref": "([^"]+)"', text))
    assert references
    named = {f"#/components/schemas/{name}" for name in document["components"]["schemas"]}
    assert references <= named, references - named
    assert "$defs" not in text


def test_every_answer_with_a_body_has_a_named_schema(document: dict[str, Any]) -> None:
    unnamed = []
    for method, path, operation in operations(document):
        for status, answer in operation["responses"].items():
            if status == "204":
                assert "content" not in answer, f"{method} {path}"
                continue
            assert answer.get("content"), f"{method} {path} {status} has no content"
            for media_type, media in answer["content"].items():
                if "$ref" not in media.get("schema", {}) and media_type.endswith("json"):
                    unnamed.append(f"{method.upper()} {path} {status} {media_type}")
    assert unnamed == []


def test_every_body_read_is_documented_by_name(document: dict[str, Any]) -> None:
    for method, path, operation in operations(document):
        if method in ("post", "put", "patch") and path != "/api/v1/logout":
            if path.endswith("/test") or path.endswith("/retry"):
                assert "requestBody" not in operation
                continue
            schema = operation["requestBody"]["content"][JSON]["schema"]
            assert "$ref" in schema, f"{method} {path}"


def test_bearer_security_on_every_call_but_login_and_health(
    document: dict[str, Any],
) -> None:
    schemes = document["components"]["securitySchemes"]
    assert schemes["bearer"] == {
        "type": "http",
        "scheme": "bearer",
        "description": "A token from `POST /api/v1/login`",
    }
    assert schemes["apiKey"]["type"] == "http"
    assert schemes["apiKey"]["scheme"] == "bearer"
    assert "/api/v1/api-keys" in schemes["apiKey"]["description"]
    for method, path, operation in operations(document):
        if (method, path) in PUBLIC:
            assert "security" not in operation, f"{method} {path}"
        elif (method, path) in PUBLISHING:
            assert operation["security"] == [{"bearer": []}, {"apiKey": []}]
            assert "403" in operation["responses"], f"{method} {path}"
        else:
            assert operation["security"] == [{"bearer": []}], f"{method} {path}"
            assert "401" in operation["responses"], f"{method} {path}"


def test_errors_take_each_dialects_shape(document: dict[str, Any]) -> None:
    for method, path, operation in operations(document):
        for status, answer in operation["responses"].items():
            if not status.startswith("4"):
                continue
            if path.startswith("/r/"):
                assert set(answer["content"]) == {JSON, HAL}, f"{method} {path} {status}"
                for media in answer["content"].values():
                    assert media["schema"] == {"$ref": "#/components/schemas/RepositoryError"}
            else:
                assert set(answer["content"]) == {JSON}
                assert answer["content"][JSON]["schema"] == {"$ref": "#/components/schemas/Error"}
    assert set(component(document, {"$ref": "#/x/RepositoryError"})["required"]) == {
        "code",
        "reason",
    }


def test_bodies_read_can_be_refused_as_not_json_or_too_large(document: dict[str, Any]) -> None:
    for method, path, operation in operations(document):
        if "requestBody" in operation:
            assert {"400", "413", "415"} <= set(operation["responses"]), f"{method} {path}"


def test_repository_success_answers_come_as_json_and_hal(document: dict[str, Any]) -> None:
    for method, path, operation in operations(document):
        if not path.startswith("/r/"):
            continue
        for status, answer in operation["responses"].items():
            if status.startswith("2") and status != "204":
                assert set(answer["content"]) == {JSON, HAL}, f"{method} {path} {status}"
                plain = answer["content"][JSON]["schema"]["$ref"]
                hal = answer["content"][HAL]["schema"]["$ref"]
                assert hal == plain + "Hal"
                assert "_links" in component(document, {"$ref": hal})["required"]


def test_ids_in_paths_are_integers_of_at_least_one(document: dict[str, Any]) -> None:
    for path, name in (
        ("/api/v1/webhooks/{uid}", "uid"),
        ("/api/v1/deliveries/{delivery_id}/retry", "delivery_id"),
    ):
        for operation in document["paths"][path].values():
            [parameter] = [p for p in operation["parameters"] if p["name"] == name]
            assert parameter["schema"]["type"] == "integer"
            assert parameter["schema"]["minimum"] == 1
    entity = document["components"]["schemas"]["DeviceWebhook"]["properties"]
    assert entity["uid"] == {"type": "integer", "minimum": 1, "title": "Uid"}


def test_event_types_are_the_built_in_ones_or_names_and_wildcards(
    document: dict[str, Any],
) -> None:
    schemas = document["components"]["schemas"]
    built_in = {"type": "string", "enum": list(SUBSCRIBABLE_EVENT_TYPES)}
    name = {"type": "string", "maxLength": 200, "pattern": r"^[a-z0-9_]+(\.[a-z0-9_]+)+$"}
    wildcard = {"type": "string", "maxLength": 200, "pattern": r"^[a-z0-9_]+(\.[a-z0-9_]+)*\.\*$"}
    for schema in (
        schemas["DeviceWebhookSpec"]["properties"]["event_types"]["items"],
        schemas["DeviceWebhookPatch"]["properties"]["event_types"]["items"],
        schemas["DeviceWebhook"]["properties"]["event_types"]["items"],
        schemas["ApiKeySpec"]["properties"]["event_types"]["anyOf"][0]["items"],
    ):
        [listed, custom, wildcards] = schema["anyOf"]
        assert listed == built_in
        assert custom.items() >= name.items()
        assert wildcards.items() >= wildcard.items()
    [listed, custom] = schemas["EventTypeList"]["properties"]["items"]["items"]["anyOf"]
    assert listed == built_in
    assert custom.items() >= name.items()
    [publishable, custom] = schemas["EventToPublish"]["properties"]["type"]["anyOf"]
    assert publishable == {"type": "string", "enum": list(EVENT_TYPES)}
    assert custom["pattern"] == r"^(?!hookd\.)[a-z0-9_]+(\.[a-z0-9_]+)+$"
    assert len(EVENT_TYPES) == 41
    assert list(SUBSCRIBABLE_EVENT_TYPES) == [*EVENT_TYPES, *OPERATIONAL_EVENT_TYPES]
    assert schemas["DeviceWebhookSpec"]["properties"]["event_types"]["uniqueItems"] is True


def test_the_documented_patterns_are_the_rules_that_are_checked(
    document: dict[str, Any],
) -> None:
    schemas = document["components"]["schemas"]
    _, name, wildcard = schemas["DeviceWebhookSpec"]["properties"]["event_types"]["items"]["anyOf"]
    publishable = schemas["EventToPublish"]["properties"]["type"]["anyOf"][1]["pattern"]
    for entry, is_name, is_wildcard in (
        ("order.created", True, False),
        ("log.door_was_opened", True, False),
        ("order.*", False, True),
        ("a.b.*", False, True),
        ("*", False, False),
        ("order", False, False),
        ("Order.created", False, False),
        ("order.*.x", False, False),
        ("order..x", False, False),
    ):
        assert bool(re.search(name["pattern"], entry)) is is_name, entry
        assert bool(re.search(wildcard["pattern"], entry)) is is_wildcard, entry
    assert re.search(publishable, "order.created")
    assert not re.search(publishable, "hookd.webhook.disabled")


def test_urls_have_a_format(document: dict[str, Any]) -> None:
    schemas = document["components"]["schemas"]
    assert schemas["DeviceWebhookSpec"]["properties"]["url"]["format"] == "uri"
    assert schemas["DeviceWebhook"]["properties"]["url"]["format"] == "uri"
    assert schemas["RepositoryWebhookSpec"]["properties"]["uri"]["format"] == "uri-reference"
    base_uri = schemas["RepositorySpec"]["properties"]["base_uri"]["anyOf"][0]
    assert base_uri["format"] == "uri"


def test_the_repository_body_has_its_lengths(document: dict[str, Any]) -> None:
    operation = document["paths"]["/r/{repoId}"]["put"]
    body = component(document, operation["requestBody"]["content"][JSON]["schema"])
    assert body["required"] == ["name"]
    assert body["additionalProperties"] is False
    name = body["properties"]["name"]
    assert (name["minLength"], name["maxLength"]) == (1, 200)
    [repo_id] = operation["parameters"]
    assert repo_id["schema"]["pattern"] == "^[A-Za-z0-9._~-]{1,100}$"


def test_the_device_entity_is_the_specifications_plus_uid_and_the_delivery_controls(
    document: dict[str, Any],
) -> None:
    entity = document["components"]["schemas"]["DeviceWebhook"]
    specified = {
        "url",
        "secret",
        "status",
        "timeout",
        "headers",
        "description",
        "event_types",
        "max_retries",
        "created_at",
        "updated_at",
    }
    added = {"uid", "rate_limit", "ordering", "health", "disabled_reason"}
    assert set(entity["properties"]) == specified | added
    assert set(entity["required"]) == specified | added
    assert entity["additionalProperties"] is False


# --- the views produce what the models say ----------------------------------------------------


@pytest.mark.parametrize("reason", [None, "failing since yesterday"])
def test_the_device_views_match_their_models(reason: str | None) -> None:
    hook = Webhook(
        url="https://example.com/h",
        topics=("log.door_was_opened",),
        secret="s" * 16,
        status=WebhookStatus.DISABLED if reason else WebhookStatus.ACTIVE,
        id=7,
        created_at=1,
        updated_at=2,
        disabled_reason=reason,
    )
    device.DeviceWebhook.model_validate(device.webhook_entity(hook))
    delivery = Delivery(
        id=3,
        webhook_id=7,
        event_id="evt_1",
        event_type="log.door_was_opened",
        state=DeliveryState.FAILED,
        attempts=1,
        next_attempt_at=None,
        created_at=1.5,
        updated_at=2.5,
        last_status_code=500,
        last_error=None,
        attempt_log=[AttemptRecord(1, 1.5, 3.25, 500, "no", None)],
    )
    device.DeliveryEntry.model_validate(device.delivery_view(delivery))


def repository_webhook() -> RepositoryWebhook:
    hook = Webhook(
        url="https://example.com/h",
        topics=("docs/document.created",),
        public_id=str(uuid.uuid4()),
        categories=("invoice",),
        bearer_token=None,
    )
    return RepositoryWebhook(hook, Binding("docs", "/h", "STATUS_AND_BODY"))


@pytest.mark.parametrize("hal", [False, True], ids=["json", "hal"])
def test_the_repository_views_match_their_models(hal: bool) -> None:
    def rendered(resource: Any) -> dict[str, Any]:
        return resource.hal() if hal else resource.json()  # type: ignore[no-any-return]

    suffix = "Hal" if hal else ""
    event = EventDefinition("docs", "document.created", "Created", "", False)
    found = repository_webhook()
    pairs = [
        ("RepositoryEntity", repository.repository_resource(Repository("docs", "Docs", None))),
        ("EventEntity", repository.event_resource(event)),
        ("EventWithWebhooks", repository.event_resource(event, [found])),
        ("EventList", repository.events_resource("docs", [event])),
        (
            "RepositoryWebhookEntity",
            repository.webhook_resource("docs", "document.created", found),
        ),
    ]
    for name, resource in pairs:
        getattr(repository, name + suffix).model_validate(rendered(resource))
    answer = Result(1.0, 2.0, status_code=422, body='{"reason": "no"}')
    call = Call(hook=Hook.of(found.webhook), tries=[answer], duration_ms=2.0)
    verdict = repository.verdict_view(
        Verdict(allowed=False, calls=[call]), "evt_1", [found], detailed=True
    )
    repository.TriggerVerdict.model_validate(verdict)


def test_every_operation_documents_the_limits_and_the_stores_absence(
    document: dict[str, Any],
) -> None:
    checked = 0
    for path, operations in document["paths"].items():
        for method, operation in operations.items():
            answers = operation["responses"]
            if not any(status.startswith("4") for status in answers):
                continue  # a page (/docs, /healthz …), not an API operation
            checked += 1
            where = f"{method.upper()} {path}"
            for status in ("414", "431", "503"):
                assert status in answers, where
            assert "Retry-After" in answers["503"]["headers"], where
            if "requestBody" in operation:
                assert "413" in answers, where
            shapes = {
                answer["content"]["application/json"]["schema"]["$ref"]
                for status, answer in answers.items()
                if status.startswith(("4", "5")) and "content" in answer
            }
            assert len(shapes) == 1, (where, shapes)  # every error in the route's one shape
    assert checked > 20
