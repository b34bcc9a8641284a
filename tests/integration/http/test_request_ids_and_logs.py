"""X-Request-Id on every answer, and the log lines: their ids, both formats, and no secret in any
line through a whole scenario."""

from __future__ import annotations

import io
import logging
import math
import re
import time
from collections.abc import Callable, Iterator
from typing import Any

import orjson
import pytest

from hookd import logs
from hookd.config import Settings
from support import ADMIN_PASSWORD, USER_PASSWORD, Api, Receiver, served_api

GENERATED = re.compile(r"^[0-9a-f]{32}$")


@pytest.mark.parametrize("run_worker", [False])
async def test_a_given_request_id_is_echoed_on_every_answer(api: Api) -> None:
    for path, headers, status in (
        ("/healthz", {}, 200),
        ("/api/v1/webhooks", {}, 401),
        ("/api/v1/webhooks/999", api.admin, 400),
        ("/r/nope/events", api.admin, 404),
        ("/no/such/page", {}, 404),
    ):
        response = await api.client.get(path, headers={**headers, "X-Request-Id": "abc.DEF-1:2_3"})
        assert response.status_code == status, path
        assert response.headers["x-request-id"] == "abc.DEF-1:2_3", path


@pytest.mark.parametrize("run_worker", [False])
@pytest.mark.parametrize(
    "given", [None, "", "has space", "x" * 129, "semi;colon", "é".encode(), "line\tbreak"]
)
async def test_a_missing_or_unsafe_request_id_is_replaced(
    api: Api, given: str | bytes | None
) -> None:
    headers = {} if given is None else {"X-Request-Id": given}
    first = await api.client.get("/healthz", headers=headers)
    second = await api.client.get("/healthz", headers=headers)
    assert GENERATED.match(first.headers["x-request-id"])
    assert first.headers["x-request-id"] != second.headers["x-request-id"]
    assert first.headers.get_list("x-request-id") == [first.headers["x-request-id"]]


@pytest.mark.parametrize("run_worker", [False])
async def test_the_limits_refusals_carry_a_request_id(
    make_settings: Callable[..., Settings], api_factory: Any
) -> None:
    api = await api_factory(
        make_settings(max_event_bytes=1024, max_body_bytes=1024, max_publish_bytes=4096)
    )
    too_large = await api.client.post(
        "/api/v1/events", content=b"x" * 5000, headers={**api.user, "X-Request-Id": "big-1"}
    )
    assert too_large.status_code == 413
    assert too_large.headers["x-request-id"] == "big-1"


async def test_the_servers_own_refusals_carry_a_request_id(settings: Settings) -> None:
    async with served_api(settings) as api:
        huge = {"X-Filler": "x" * (settings.max_header_bytes + 100)}
        response = await api.client.get("/healthz", headers=huge)
        assert response.status_code == 431
        assert GENERATED.match(response.headers["x-request-id"])


# --- the log lines --------------------------------------------------------------------------


@pytest.fixture
def captured(request: pytest.FixtureRequest) -> Iterator[tuple[str, io.StringIO]]:
    """Every log line of the process as `hookd serve` logs them (libraries at INFO), formatted as
    `HOOKD_LOG_FORMAT` (the parameter) says, hookd's own at DEBUG (`HOOKD_LOG_LEVEL=debug`: the
    successful deliveries too); but the test's own HTTP client's."""
    log_format: str = request.param
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logs.formatter(log_format))
    handler.addFilter(lambda record: not record.name.startswith(("httpx", "httpcore")))
    root, hookd = logging.getLogger(), logging.getLogger("hookd")
    levels = root.level, hookd.level
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    hookd.setLevel(logging.DEBUG)
    try:
        yield log_format, stream
    finally:
        root.removeHandler(handler)
        root.setLevel(levels[0])
        hookd.setLevel(levels[1])


SECRETS = {
    "webhook_secret": "whsec-not-really-Zm9vYmFyYmF6cXV4",
    "url_password": "pw-in-the-url-7741",
    "url_query": "query-secret-3318",
    "api_key": "repository-api-key-5521",
    "metrics_token": "metrics-token-0123456789abcdef",
    "wrong_password": "wrong-password-9090",
    "request_query": "asked-in-a-query-6060",
}


@pytest.mark.parametrize("captured", ["text", "json"], indirect=True)
async def test_log_lines_carry_ids_and_no_secret(
    make_settings: Callable[..., Settings],
    api_factory: Any,
    receiver: Receiver,
    captured: tuple[str, io.StringIO],
) -> None:
    log_format, stream = captured
    api = await api_factory(make_settings(metrics_token=SECRETS["metrics_token"]))
    receiver.answer("/hook", 500)  # the first attempt fails, the retry succeeds
    url = (
        receiver.url("/hook").replace("http://", f"http://alice:{SECRETS['url_password']}@")
        + f"?token={SECRETS['url_query']}"
    )
    hook = await api.create_webhook(url=url, secret=SECRETS["webhook_secret"])
    published = await api.client.post(
        "/api/v1/events",
        json={"type": "log.door_was_opened"},
        headers={**api.user, "X-Request-Id": "publish-42"},
    )
    assert published.status_code == 202
    [event_id] = published.json()["ids"]
    [delivery] = await api.wait_for_deliveries(hook["uid"], 1)
    assert delivery["status"] == "succeeded"
    # A repository webhook with an API key, called synchronously.
    await api.client.put("/r/repo1", json={"name": "r"}, headers=api.admin)
    blocking = {
        "uri": receiver.url("/validate"),
        "description": "d",
        "handleResponse": "STATUS",
        "enabled": True,
        "apiKey": SECRETS["api_key"],
    }
    made = await api.client.post(
        "/r/repo1/events/document.beforecreate", json=blocking, headers=api.admin
    )
    assert made.status_code == 201, made.text
    trigger = await api.client.post(
        "/r/repo1/events/document.beforecreate/trigger", json={}, headers=api.admin
    )
    assert trigger.status_code == 200
    wrong = await api.client.post(
        "/api/v1/login", json={"username": "admin", "password": SECRETS["wrong_password"]}
    )
    assert wrong.status_code == 401
    await api.client.get(
        "/metrics", headers={"Authorization": f"Bearer {SECRETS['metrics_token']}"}
    )
    await api.client.get(f"/healthz?token={SECRETS['request_query']}")
    await receiver.wait_for(3)

    text = stream.getvalue()
    tokens = [api.admin["Authorization"], api.user["Authorization"]]
    for secret in [*SECRETS.values(), ADMIN_PASSWORD, USER_PASSWORD, *tokens]:
        assert secret not in text
    for token in tokens:
        assert token.removeprefix("Bearer ") not in text

    deliveries = [line for line in text.splitlines() if "hookd.delivery" in line]
    assert len(deliveries) == 2  # the failure (INFO) and the success (DEBUG)
    if log_format == "json":
        lines = [orjson.loads(line) for line in text.splitlines()]
        published_line = next(line for line in lines if line.get("request_id") == "publish-42")
        assert published_line["route"] == "/api/v1/events" and published_line["status"] == 202
        outcomes = [line for line in lines if line["logger"] == "hookd.delivery"]
        assert [(line["attempt"], line["outcome"]) for line in outcomes] == [
            (1, "retrying"),
            (2, "succeeded"),
        ]
        assert [line["level"] for line in outcomes] == ["info", "debug"]
        for line in outcomes:
            assert line["event_id"] == event_id
            assert line["delivery_id"] == delivery["id"]
            assert line["webhook_id"] == hook["uid"]
        requests = [line for line in lines if line["logger"] == "hookd.http"]
        assert requests and all(
            GENERATED.match(r["request_id"]) or r["request_id"] == "publish-42" for r in requests
        )
    else:
        assert re.search(r"POST /api/v1/events 202 [0-9.]+ ms \(request publish-42\)", text)
        for line, attempt, outcome in zip(
            deliveries, (1, 2), ("retrying", "succeeded"), strict=True
        ):
            assert f"delivery {delivery['id']} of event {event_id} " in line
            assert f"to webhook {hook['uid']}: attempt {attempt} {outcome}" in line


async def test_a_flood_of_refusals_writes_a_few_lines_and_their_count(
    make_settings: Callable[..., Settings],
) -> None:
    settings = make_settings(log_error_lines_per_second=2, log_level="info")
    stream = io.StringIO()
    root = logging.getLogger()
    saved = root.handlers[:], root.level, logging.getLogger("hookd").level
    logs.configure(settings, stream)
    logs.configure(settings, stream)  # again: still one budget
    try:
        async with served_api(settings) as api:
            started = time.monotonic()
            huge = {"X-Filler": "x" * (settings.max_header_bytes + 100)}
            for _ in range(30):
                assert (await api.client.get("/healthz", headers=huge)).status_code == 431
            for _ in range(5):
                assert (await api.client.get("/healthz")).status_code == 200
            seconds = time.monotonic() - started
    finally:
        root.handlers[:] = saved[0]
        root.setLevel(saved[1])
        logging.getLogger("hookd").setLevel(saved[2])
        for budget in logging.getLogger("hookd.http").filters[:]:
            logging.getLogger("hookd.http").removeFilter(budget)
    text = stream.getvalue()
    refusals = [line for line in text.splitlines() if "refused by the server" in line]
    assert 1 <= len(refusals) <= 2 * (math.ceil(seconds) + 1) < 30
    assert text.count("GET /healthz 200") == 5
