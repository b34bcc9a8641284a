"""The client against a running `hookd serve`, repository dialect: repositories, event
definitions, their webhooks, and triggers (the blocking one's verdict), in both flavours."""

from __future__ import annotations

import time
from typing import Any

import pytest

from conftest import Receiver
from hookd.client import (
    BadRequest,
    EventDefinition,
    EventWithWebhooks,
    NotFound,
    Repository,
    RepositoryWebhook,
    Restriction,
    TriggerQueued,
    TriggerVerdict,
    Unauthorized,
    ValidationCall,
)

pytestmark = pytest.mark.slow  # a subprocess

WEBHOOK_NOT_FOUND, EVENT_NOT_FOUND, REPOSITORY_NOT_FOUND = 240100, 240200, 240300


def unique(name: str) -> str:
    return f"{name}-{time.monotonic_ns()}"


def test_repositories_and_event_definitions(admin: Any, user: Any) -> None:
    repo = unique("repo")
    created = admin.put_repository(repo, "Docs")
    assert created == Repository(id=repo, name="Docs", base_uri=None)
    updated = admin.put_repository(repo, "Documents", "http://127.0.0.1:9/base")
    assert updated.name == "Documents" and updated.base_uri == "http://127.0.0.1:9/base"
    assert admin.get_repository(repo) == updated
    seen_by_user = user.get_repository(repo)
    assert (seen_by_user.id, seen_by_user.name) == (repo, "Documents")
    assert seen_by_user.base_uri is None, "administrators only"

    built_in = {found.id for found in admin.list_events(repo)}
    assert "published" not in built_in
    event = admin.put_event(repo, "published", "Published", description="a page went out")
    assert event == EventDefinition(
        id="published", name="Published", description="a page went out", blocking=False
    )
    check = admin.put_event(repo, "check", "Check", blocking=True)
    assert check.blocking is True
    assert {found.id for found in user.list_events(repo)} == built_in | {"published", "check"}
    with_hooks = admin.get_event(repo, "published")
    assert isinstance(with_hooks, EventWithWebhooks)
    assert with_hooks.webhooks == []


def test_repository_webhook_calls_round_trip(admin: Any, receiver: Receiver) -> None:
    repo = unique("hooks")
    admin.put_repository(repo, "Hooks")
    admin.put_event(repo, "saved", "Saved")
    created = admin.create_repository_webhook(
        repo,
        "saved",
        uri=receiver.url("/saved"),
        description="on save",
        handleResponse="NONE",
        enabled=True,
        apiKey="key-1",
        restrictions=[{"key": "CATEGORY", "value": "books"}],
    )
    assert isinstance(created, RepositoryWebhook)
    assert created.restrictions == [Restriction(key="CATEGORY", value="books")]
    assert (created.enabled, created.apiKey, created.retry) == (True, "key-1", True)
    assert admin.get_repository_webhook(repo, "saved", created.id) == created
    assert [hook.id for hook in admin.get_event(repo, "saved").webhooks] == [created.id]

    replaced = admin.replace_repository_webhook(
        repo,
        "saved",
        created.id,
        uri=receiver.url("/saved-2"),
        description="on save, again",
        handleResponse="STATUS",
        retry=False,
        timeout=2000,
    )
    assert replaced.id == created.id
    assert (replaced.uri, replaced.retry, replaced.timeout) == (
        receiver.url("/saved-2"),
        False,
        2000,
    )
    assert (replaced.enabled, replaced.apiKey, replaced.restrictions) == (False, None, [])

    assert admin.delete_repository_webhook(repo, "saved", created.id) is None
    with pytest.raises(NotFound) as gone:
        admin.get_repository_webhook(repo, "saved", created.id)
    assert gone.value.code == WEBHOOK_NOT_FOUND
    assert set(gone.value.body) == {"code", "reason"}


def test_a_blocking_trigger_returns_the_verdict(admin: Any, user: Any, receiver: Receiver) -> None:
    repo = unique("verdict")
    admin.put_repository(repo, "Verdicts")
    admin.put_event(repo, "merge", "Merge", blocking=True)
    allow = f"/allow-{repo}"
    hook = admin.create_repository_webhook(
        repo,
        "merge",
        uri=receiver.url(allow),
        description="allows",
        handleResponse="STATUS_AND_BODY",
        enabled=True,
    )
    verdict = user.trigger(repo, "merge", {"pr": 7}, id=f"{repo}-1")
    assert isinstance(verdict, TriggerVerdict)
    assert verdict.allowed is True
    assert verdict.id == f"{repo}-1"
    [result] = verdict.results
    assert isinstance(result, ValidationCall)
    assert (result.webhook, result.status_code, result.attempts) == (hook.id, 200, 1)
    assert result.body == {"seen": allow}
    assert result.error is None
    [call] = receiver.at(allow)
    assert call.json()["data"] == {"pr": 7}

    deny = f"/deny-{repo}"
    receiver.statuses[deny] = 403
    admin.create_repository_webhook(
        repo,
        "merge",
        uri=receiver.url(deny),
        description="denies",
        handleResponse="STATUS",
        enabled=True,
    )
    refused = user.trigger(repo, "merge")
    assert isinstance(refused, TriggerVerdict)
    assert refused.allowed is False
    assert [r.status_code for r in refused.results] == [200, 403]
    assert refused.results[1].body is None, "STATUS: no body"


def test_a_non_blocking_trigger_queues_deliveries(
    admin: Any, user: Any, receiver: Receiver
) -> None:
    repo = unique("queued")
    admin.put_repository(repo, "Queued")
    admin.put_event(repo, "pushed", "Pushed")
    path = f"/pushed-{repo}"
    admin.create_repository_webhook(
        repo,
        "pushed",
        uri=receiver.url(path),
        description="on push",
        handleResponse="NONE",
        enabled=True,
        restrictions=[{"key": "CATEGORY", "value": "main"}],
    )
    queued = user.trigger(repo, "pushed", {"ref": "main"}, category="main")
    assert isinstance(queued, TriggerQueued)
    assert queued.deliveries == 1
    [delivered] = receiver.wait_for(1, path)
    assert delivered.json()["data"] == {"ref": "main"}
    other = user.trigger(repo, "pushed", category="feature")
    assert isinstance(other, TriggerQueued) and other.deliveries == 0


def test_repository_errors_carry_the_dialects_code(admin: Any, make_client: Any) -> None:
    repo = unique("errors")
    with pytest.raises(NotFound) as no_repository:
        admin.get_repository(repo)
    assert no_repository.value.status == 404
    assert no_repository.value.code == REPOSITORY_NOT_FOUND
    assert no_repository.value.body == {
        "code": REPOSITORY_NOT_FOUND,
        "reason": f"Repository {repo!r} not found",
    }
    admin.put_repository(repo, "Errors")
    with pytest.raises(NotFound) as no_event:
        admin.trigger(repo, "missing")
    assert no_event.value.code == EVENT_NOT_FOUND
    with pytest.raises(BadRequest) as bad:
        admin.put_repository(repo, "")
    assert bad.value.code == 400 and bad.value.message.startswith("name")
    with pytest.raises(Unauthorized) as anonymous:
        make_client().get_repository(repo)
    assert anonymous.value.body["code"] == 401
