"""The metrics, scraped from /metrics after real deliveries, failures, auto-disables, validation
calls and store outages, each series moved by exactly what happened; and who may scrape."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from hookd.config import Settings
from hookd.delivery import metrics
from hookd.store.database import Database
from support import Api, Receiver

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]
METRICS_TOKEN = "scrape-token-0123456789abcdef"


def parse(text: str) -> Samples:
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


async def scrape(api: Api) -> Samples:
    response = await api.client.get("/metrics", headers=api.admin)
    assert response.status_code == 200, response.text
    return parse(response.text)


def moved(before: Samples, after: Samples, name: str, **labels: str) -> float:
    key = (name, frozenset(labels.items()))
    assert key in after, f"{name}{labels} not in the metrics"
    return after[key] - before.get(key, 0.0)


async def test_deliveries_failures_and_auto_disables_move_each_series_exactly(
    api: Api, receiver: Receiver
) -> None:
    ok = await api.create_webhook(url=receiver.url("/ok"))
    failing = await api.create_webhook(url=receiver.url("/fail"), max_retries=1)
    gone = await api.create_webhook(url=receiver.url("/gone"), event_types=["log.tamper_event"])
    for _ in range(4):
        receiver.answer("/fail", 500)
    receiver.answer("/gone", 410)
    before = await scrape(api)

    await api.publish([{"type": "log.door_was_opened"}, {"type": "log.door_was_opened"}])
    await api.publish({"type": "log.tamper_event"})
    await api.wait_for_deliveries(ok["uid"], 2)
    await api.wait_for_deliveries(failing["uid"], 2, states=("failed",))
    await api.wait_for_deliveries(gone["uid"], 1, states=("failed",))
    await receiver.wait_for(7)
    after = await scrape(api)

    attempts = "hookd_delivery_attempts_total"
    assert moved(before, after, attempts, dialect="device", outcome="succeeded") == 2
    assert moved(before, after, attempts, dialect="device", outcome="retrying") == 2
    assert moved(before, after, attempts, dialect="device", outcome="failed") == 3
    deliveries = "hookd_deliveries_total"
    assert moved(before, after, deliveries, dialect="device", outcome="succeeded") == 2
    assert moved(before, after, deliveries, dialect="device", outcome="failed") == 3
    assert moved(before, after, "hookd_delivery_attempt_seconds_count") == 7
    assert moved(before, after, "hookd_delivery_first_attempt_delay_seconds_count") == 5
    # Every attempt was claimed once (a retry is claimed again), in batches of any size.
    assert moved(before, after, "hookd_worker_claim_batch_size_sum") == 7
    assert 1 <= moved(before, after, "hookd_worker_claim_batch_size_count") <= 7
    assert moved(before, after, "hookd_webhooks_disabled_total", reason="gone") == 1
    assert moved(before, after, "hookd_webhooks_disabled_total", reason="failing") == 0
    assert moved(before, after, "hookd_events_published_total") == 3
    requests = "hookd_http_requests_total"
    assert moved(before, after, requests, method="POST", route="/api/v1/events", status="202") == 2
    assert moved(before, after, requests, method="GET", route="/metrics", status="200") == 1
    assert (
        moved(
            before, after, "hookd_http_request_seconds_count", method="POST", route="/api/v1/events"
        )
        == 2
    )
    polled = moved(
        before,
        after,
        requests,
        method="GET",
        route="/api/v1/webhooks/{uid}/deliveries",
        status="200",
    )
    assert polled >= 3
    # Routes by template only: a raw path never becomes a label.
    assert not any(dict(labels).get("route", "").endswith(str(ok["uid"])) for _, labels in after)


async def test_auto_disable_after_failing_is_counted_by_its_reason(
    make_settings: Callable[..., Settings], api_factory: Any, receiver: Receiver
) -> None:
    api = await api_factory(make_settings(disable_after="0s", suspend_after=0))
    hook = await api.create_webhook(url=receiver.url("/down"), max_retries=0)
    receiver.answer("/down", 500)
    before = await scrape(api)
    await api.publish({"type": "log.door_was_opened"})
    await api.wait_for_deliveries(hook["uid"], 1, states=("failed",))
    for _ in range(100):
        after = await scrape(api)
        if moved(before, after, "hookd_webhooks_disabled_total", reason="failing"):
            break
    assert moved(before, after, "hookd_webhooks_disabled_total", reason="failing") == 1
    assert moved(before, after, "hookd_webhooks_disabled_total", reason="gone") == 0


async def test_validation_calls_are_counted_by_verdict(api: Api, receiver: Receiver) -> None:
    response = await api.client.put("/r/repo1", json={"name": "r"}, headers=api.admin)
    assert response.status_code in (200, 201), response.text
    event = "document.beforecreate"
    body = {
        "uri": receiver.url("/validate"),
        "description": "d",
        "handleResponse": "STATUS",
        "enabled": True,
        "retry": False,
    }
    response = await api.client.post(f"/r/repo1/events/{event}", json=body, headers=api.admin)
    assert response.status_code == 201, response.text
    receiver.answer("/validate", 200)
    receiver.answer("/validate", 403)
    before = await scrape(api)

    verdicts = []
    for _ in range(2):
        trigger = await api.client.post(
            f"/r/repo1/events/{event}/trigger", json={}, headers=api.admin
        )
        assert trigger.status_code == 200, trigger.text
        verdicts.append(trigger.json()["allowed"])
    after = await scrape(api)

    assert verdicts == [True, False]
    assert moved(before, after, "hookd_validations_total", verdict="allowed") == 1
    assert moved(before, after, "hookd_validations_total", verdict="vetoed") == 1
    assert moved(before, after, "hookd_validations_total", verdict="cancelled") == 0
    assert moved(before, after, "hookd_validation_seconds_count") == 2
    attempts = "hookd_delivery_attempts_total"
    assert moved(before, after, attempts, dialect="repository", outcome="succeeded") == 1
    assert moved(before, after, attempts, dialect="repository", outcome="failed") == 1
    assert moved(before, after, "hookd_delivery_attempt_seconds_count") == 2


@pytest.mark.parametrize("run_worker", [False])
async def test_queue_depth_and_oldest_due_are_sampled(api: Api, db: Database) -> None:
    await api.create_webhook(url="http://127.0.0.1:9/a")
    await api.create_webhook(url="http://127.0.0.1:9/b")
    await api.publish([{"type": "log.door_was_opened"} for _ in range(3)])
    await asyncio.sleep(0.05)  # they have been due a while
    await metrics.sample_queue(db)
    after = await scrape(api)
    depth = "hookd_queue_deliveries"
    assert after[(depth, frozenset({("state", "pending")}))] == 6
    assert after[(depth, frozenset({("state", "retrying")}))] == 0
    assert after[(depth, frozenset({("state", "delivering")}))] == 0
    assert after[("hookd_queue_oldest_due_age_seconds", frozenset())] > 0


async def test_store_outages_and_recoveries_are_counted(api: Api, db: Database) -> None:
    before = await scrape(api)
    db.availability.failed(OSError("connection refused"))
    db.availability.failed(OSError("connection refused"))
    db.availability.succeeded(wrote=False)
    db.availability.failed(ValueError("a bug, not an outage"))
    after = await scrape(api)
    reason = "the store does not answer"
    assert moved(before, after, "hookd_store_errors_total", reason=reason) == 2
    assert moved(before, after, "hookd_store_reconnects_total") == 1


# --- who may scrape ---------------------------------------------------------------------------


@pytest.mark.parametrize("run_worker", [False])
async def test_metrics_need_a_metrics_or_admin_token_unless_open(
    make_settings: Callable[..., Settings], api_factory: Any
) -> None:
    api = await api_factory(make_settings(metrics_token=METRICS_TOKEN))

    async def status(headers: dict[str, str] | None) -> httpx.Response:
        return await api.client.get("/metrics", headers=headers)

    refused = await status(None)
    assert refused.status_code == 401 and refused.json() == {"error": "Log In"}
    assert "hookd_" not in refused.text
    assert (await status({"Authorization": "Bearer not-a-token"})).status_code == 401
    assert (await status({"Authorization": f"Basic {METRICS_TOKEN}"})).status_code == 401
    user = await status(api.user)
    assert user.status_code == 403 and user.json() == {"error": "Administrator rights required"}
    assert (await status(api.admin)).status_code == 200
    allowed = await status({"Authorization": f"Bearer {METRICS_TOKEN}"})
    assert allowed.status_code == 200 and "hookd_events_published_total" in allowed.text


@pytest.mark.parametrize("run_worker", [False])
async def test_open_metrics_need_nothing(
    make_settings: Callable[..., Settings], api_factory: Any
) -> None:
    api = await api_factory(make_settings(metrics="open"))
    response = await api.client.get("/metrics")
    assert response.status_code == 200 and "hookd_http_requests_total" in response.text
