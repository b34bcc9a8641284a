"""The repository dialect's rules, without a store: fields, URIs, triggers, rendering."""

from __future__ import annotations

from typing import Any

import pytest

from hookd.dialects.repository.fields import parse_trigger, parse_webhook
from hookd.dialects.repository.model import (
    BUILT_IN_EVENTS,
    EventDefinition,
    Repository,
    RepositoryWebhook,
    canonical_uuid,
    delivery_url,
    topic,
)
from hookd.dialects.repository.trigger import draft
from hookd.dialects.repository.views import event_resource, response_body, webhook_entity
from hookd.domain.errors import InvalidField
from hookd.domain.states import WebhookStatus
from hookd.domain.webhook import Webhook, receives
from hookd.publishing import idempotency_key

MINIMAL = {"uri": "https://example.com/hook", "description": "d", "handleResponse": "STATUS"}
REPO = Repository("repo1", "Repo", None)


def fields_of(body: dict[str, Any], repository: Repository = REPO, base: str | None = None) -> Any:
    return parse_webhook(body).to_fields(repository, "document.created", base)[0]


def binding_of(body: dict[str, Any]) -> Any:
    return parse_webhook(body).to_fields(REPO, "document.created", None)[1]


def test_defaults_map_onto_the_core_webhook() -> None:
    fields = fields_of(MINIMAL)
    assert fields.url == "https://example.com/hook"
    assert fields.topics == ("repo1/document.created",)
    assert fields.status == WebhookStatus.DISABLED
    assert fields.max_retries == 3
    assert fields.timeout_ms == 300
    assert fields.bearer_token is None
    assert fields.categories == ()
    assert fields.secret is None
    binding = binding_of(MINIMAL)
    assert binding.repository_id == "repo1"
    assert binding.handle_response == "STATUS"
    assert binding.uri == MINIMAL["uri"]


def test_every_field_maps_onto_the_core_webhook() -> None:
    fields = fields_of(
        {
            **MINIMAL,
            "enabled": True,
            "retry": False,
            "timeout": 30000,
            "apiKey": "k",
            "restrictions": [
                {"key": "CATEGORY", "value": "b"},
                {"key": "CATEGORY", "value": "a"},
                {"key": "CATEGORY", "value": "b"},
            ],
        }
    )
    assert (fields.status, fields.max_retries, fields.timeout_ms) == ("active", 0, 30000)
    assert fields.bearer_token == "k"
    assert fields.categories == ("b", "a")  # repeats dropped, order kept


def test_the_entity_has_exactly_the_specified_fields() -> None:
    body = {**MINIMAL, "enabled": True}
    webhook = Webhook(**vars_of(fields_of(body)), public_id="u-1")
    assert webhook_entity(RepositoryWebhook(webhook, binding_of(body))) == {
        "apiKey": None,
        "description": "d",
        "enabled": True,
        "handleResponse": "STATUS",
        "id": "u-1",
        "restrictions": [],
        "retry": True,
        "timeout": 300,
        "uri": "https://example.com/hook",
    }


def vars_of(fields: Any) -> dict[str, Any]:
    return {name: getattr(fields, name) for name in fields.__slots__}


@pytest.mark.parametrize(
    ("uri", "base_uri", "setting", "expected"),
    [
        ("https://a.example/x", "https://b.example", "https://c.example", "https://a.example/x"),
        ("/x", "https://b.example", "https://c.example", "https://b.example/x"),
        ("/x", "https://b.example/app/", None, "https://b.example/app/x"),
        ("/x?y=1", None, "https://c.example/base", "https://c.example/base/x?y=1"),
    ],
)
def test_delivery_url(uri: str, base_uri: str | None, setting: str | None, expected: str) -> None:
    assert delivery_url(uri, base_uri, setting) == expected


def test_a_relative_uri_without_any_base_is_refused() -> None:
    with pytest.raises(InvalidField, match=r"^uri: is relative"):
        delivery_url("/x", None, None)
    with pytest.raises(InvalidField, match=r"^uri: "):
        fields_of({**MINIMAL, "uri": "/x"})
    assert fields_of({**MINIMAL, "uri": "/x"}, base="https://c.example").url == (
        "https://c.example/x"
    )


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ("text", "body: must be a JSON object"),
        ({"uri": "/x", "description": "d"}, "handleResponse: is required"),
        ({**MINIMAL, "timeout": True}, "timeout: must be an integer"),
        ({**MINIMAL, "restrictions": [{"key": "CATEGORY", "value": "x" * 201}]}, None),
    ],
)
def test_bad_fields(body: Any, message: str | None) -> None:
    with pytest.raises(InvalidField) as raised:
        parse_webhook(body)
    if message is not None:
        assert str(raised.value) == message


def test_the_read_only_id_is_ignored() -> None:
    assert parse_webhook({**MINIMAL, "id": 5}).uri == MINIMAL["uri"]


def test_triggers() -> None:
    assert parse_trigger({}) == parse_trigger({"id": None, "category": None, "data": None})
    spec = parse_trigger({"id": "e1", "category": "c", "data": {"a": 1}})
    assert (spec.id, spec.category, spec.data) == ("e1", "c", {"a": 1})
    with pytest.raises(InvalidField, match=r"^kind: is not a field of a trigger"):
        parse_trigger({"kind": 1})
    with pytest.raises(InvalidField, match=r"^id: "):
        parse_trigger({"id": 5})


def key_of(repository_id: str, event_id: str, given_id: str) -> str | None:
    event = EventDefinition(repository_id, event_id, "E", "", False)
    spec = parse_trigger({"id": given_id})
    return idempotency_key(draft(Repository(repository_id, "R", None), event, spec), "user:1")


def test_idempotency_keys_are_scoped_to_the_repository_event() -> None:
    key = key_of("r", "e", "1")
    assert key is not None
    assert key == key_of("r", "e", "1")
    assert len(key) <= 255
    assert key != key_of("r", "f", "1")
    assert key != key_of("s", "e", "1")
    assert topic("r", "e") == "r/e"


def test_restrictions_match() -> None:
    assert receives((), None)
    assert receives((), "a")
    assert receives(("a", "b"), "b")
    assert not receives(("a",), "c")
    assert not receives(("a",), None)


def test_webhook_ids() -> None:
    assert canonical_uuid("0F0E0000-0000-4000-8000-000000000000") == (
        "0f0e0000-0000-4000-8000-000000000000"
    )
    assert canonical_uuid("0f0e00000000400080000000000000000") is None
    assert canonical_uuid("{0f0e0000-0000-4000-8000-000000000000}") is None


def test_built_in_events() -> None:
    blocking = {event_id for event_id, _, _, is_blocking in BUILT_IN_EVENTS if is_blocking}
    assert blocking == {
        f"{kind}.before{action}"
        for kind in ("document", "dossier")
        for action in ("create", "update", "delete")
    }
    assert len(BUILT_IN_EVENTS) == 12


def test_json_and_hal_renderings() -> None:
    event = EventDefinition("r", "e", "E", "", True)
    resource = event_resource(event, [])
    assert resource.json() == {
        "id": "e",
        "name": "E",
        "description": "",
        "blocking": True,
        "webhooks": [],
    }
    hal = resource.hal()
    assert hal["_links"]["self"] == {"href": "/r/r/events/e"}
    assert hal["_links"]["trigger"] == {"href": "/r/r/events/e/trigger"}
    assert hal["_embedded"] == {"webhooks": []}
    assert "webhooks" not in hal


def test_how_answer_bodies_come_back() -> None:
    assert response_body('{"a": [1]}') == {"a": [1]}
    assert response_body("plain") == "plain"
    assert response_body('{"cut') == '{"cut'
    assert response_body(None) is None


@pytest.mark.parametrize(
    "check",
    [
        lambda: parse_webhook({**MINIMAL, "uri": "/hook\n"}),
        lambda: parse_webhook({**MINIMAL, "apiKey": "key\n"}),
    ],
    ids=["relative-uri", "api-key"],
)
def test_a_trailing_newline_is_refused(check: Any) -> None:
    with pytest.raises(InvalidField):
        check()
