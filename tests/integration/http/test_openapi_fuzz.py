"""schemathesis against both dialects through their OpenAPI document: no answer is a 5xx, and
every answer matches what the document says of it (status, media type, headers, body).

hookd runs in this process on 127.0.0.1 without a worker, so no queued delivery is sent. What a
request does send at once (a test send, a blocking event's validation calls) can only go to the
receiver below: the run narrows every URL the document lets a client write to that receiver's
address, and a fence around hookd's sender refuses (and reports) any other target, whatever
the SSRF guard would say.
"""

from __future__ import annotations

import asyncio
import copy
import re
import threading
import time
from collections import Counter
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
import schemathesis
import uvicorn
from hypothesis import HealthCheck, Phase, given, settings
from schemathesis import checks

from hookd.app import create_app
from hookd.config import load_settings
from hookd.delivery.sender import Attempt, Result
from hookd.domain.credentials import hash_password
from hookd.store import accounts
from hookd.store.database import Database
from support import ADMIN_PASSWORD, free_port, migrated_store_url

# Cases per operation: the run stays within a minute or two on a busy 2-core machine.
EXAMPLES = 40
LOOPBACK = {"127.0.0.1", "localhost", "::1", "[::1]"}
HAL = "application/hal+json"
CHECKS = [
    checks.not_a_server_error,
    checks.status_code_conformance,
    checks.content_type_conformance,
    checks.response_headers_conformance,
    checks.response_schema_conformance,
]
# Operations that must be reached with a 2xx answer: the fuzzer can write valid bodies.
MUST_SUCCEED = ("POST /api/v1/webhooks", "POST /api/v1/events")


class _Receiver(BaseHTTPRequestHandler):
    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"{}")

    def log_message(self, *args: Any) -> None:
        pass


class Hookd:
    """hookd served by uvicorn in a thread, its receiver, and what its sender was asked."""

    def __init__(self, base: str, receiver: str, token: str, app: Any) -> None:
        self.base = base
        self.receiver = receiver
        self.token = token
        self.app = app
        self.sent: list[str] = []
        self.fenced: list[str] = []


def _fence(hookd: Hookd) -> None:
    """Let hookd's sender reach loopback only; anything else is refused and reported."""
    sender = hookd.app.state.services.sender
    send = sender.send

    async def fenced_send(attempt: Attempt) -> Result:
        host = urlsplit(attempt.url).hostname or ""
        if host not in LOOPBACK:
            hookd.fenced.append(attempt.url)
            return Result(time.time(), 0.0, error="fenced off by the test")
        hookd.sent.append(attempt.url)
        return await send(attempt)

    sender.send = fenced_send


@pytest.fixture(scope="module")
def hookd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Hookd]:
    directory: Path = tmp_path_factory.mktemp("fuzz")
    url = asyncio.run(migrated_store_url("sqlite", directory))

    async def add_admin() -> None:
        db = Database(url, pool_size=1)
        try:
            await accounts.create_user(db, "admin", hash_password(ADMIN_PASSWORD), "admin")
        finally:
            await db.close()

    asyncio.run(add_admin())
    receiver = ThreadingHTTPServer(("127.0.0.1", 0), _Receiver)
    threading.Thread(target=receiver.serve_forever, daemon=True).start()
    # The fuzzer fails many logins from this one address; the logout case then logs in for
    # real, which the login throttle (tested elsewhere) would refuse.
    settings_ = load_settings(
        database_url=url,
        allow_targets="127.0.0.0/8",
        admin_password=ADMIN_PASSWORD,
        login_failures_per_user=1_000_000,
        login_failures_per_address=1_000_000,
    )
    app = create_app(settings_, run_worker=False)
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="on")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while not server.started:
            assert thread.is_alive() and time.monotonic() < deadline, "hookd did not start"
            time.sleep(0.05)
        login = httpx.post(
            f"{base}/api/v1/login", json={"username": "admin", "password": ADMIN_PASSWORD}
        )
        running = Hookd(
            base, f"http://127.0.0.1:{receiver.server_port}", login.json()["token"], app
        )
        _fence(running)
        yield running
        assert running.fenced == [], "hookd was asked to send beyond loopback"
    finally:
        server.should_exit = True
        thread.join(timeout=30)
        receiver.shutdown()


def _document() -> dict[str, Any]:
    return create_app(load_settings(), run_worker=False).openapi()


def narrowed(document: dict[str, Any], receiver: str) -> dict[str, Any]:
    """The document with every URL a client writes narrowed to the receiver, published types
    to the built-in ones, and path ids narrowed to a few values so that the fuzzer meets what
    it created."""
    document = copy.deepcopy(document)
    address = re.escape(receiver)
    urls = {
        "url": {"type": "string", "pattern": f"^{address}/[a-z]{{0,8}}$"},
        "base_uri": {"type": "string", "pattern": f"^{address}(/[a-z]{{1,8}})?$"},
        "uri": {"type": "string", "pattern": f"^(/[a-z]{{0,8}}|{address}/[a-z]{{0,8}})$"},
    }
    bodies = {
        media["schema"]["$ref"].rsplit("/", 1)[1]
        for path in document["paths"].values()
        for operation in path.values()
        for media in operation.get("requestBody", {}).get("content", {}).values()
    }
    narrowed_fields = 0
    for name in bodies:
        schema = document["components"]["schemas"][name]
        for name, field in schema.get("properties", {}).items():
            if name in urls and ("pattern" in field or "anyOf" in field):
                schema["properties"][name] = urls[name]
                narrowed_fields += 1
    assert narrowed_fields >= 4, "the document no longer names its URL fields as it did"
    # A published type may be one an administrator added: the fuzzer, which would make up
    # names nobody added, publishes the built-in ones.
    published = document["components"]["schemas"]["EventToPublish"]["properties"]
    [built_in] = [choice for choice in published["type"]["anyOf"] if "enum" in choice]
    published["type"] = built_in
    ids = {
        "uid": {"type": "integer", "minimum": 1, "maximum": 12},
        "delivery_id": {"type": "integer", "minimum": 1, "maximum": 30},
        "repoId": {"type": "string", "enum": ["docs", "invoices"]},
        "id": {"type": "string", "enum": ["document.created", "document.beforecreate", "x.y"]},
    }
    for path in document["paths"].values():
        for operation in path.values():
            for parameter in operation.get("parameters", []):
                if parameter["in"] == "path" and parameter["name"] in ids:
                    parameter["schema"] = ids[parameter["name"]]
    return document


# In the document's order, deletions last: the operations before them meet what exists.
OPERATIONS = sorted(
    (
        f"{method.upper()} {path}"
        for path, operations in _document()["paths"].items()
        for method in operations
    ),
    key=lambda label: label.startswith("DELETE "),
)


@pytest.fixture(scope="module")
def schema(hookd: Hookd) -> schemathesis.BaseSchema:
    loaded = schemathesis.openapi.from_dict(narrowed(_document(), hookd.receiver))
    loaded.config.update(base_url=hookd.base)
    return loaded


@pytest.fixture(scope="module")
def statuses() -> Counter[tuple[str, int]]:
    return Counter()


@pytest.mark.parametrize("label", OPERATIONS)
def test_every_answer_matches_the_document(
    hookd: Hookd, schema: Any, statuses: Counter[tuple[str, int]], label: str
) -> None:
    method, path = label.split(" ", 1)
    operation = schema[path][method]

    @settings(
        max_examples=EXAMPLES,
        derandomize=True,
        database=None,
        deadline=None,
        phases=[Phase.explicit, Phase.generate, Phase.shrink],
        suppress_health_check=list(HealthCheck),
    )
    @given(case=operation.as_strategy())
    def run(case: Any) -> None:
        token = hookd.token
        if label == "POST /api/v1/logout":  # it revokes the token it is sent: use a new one
            token = _login(hookd)
        headers = {"Authorization": f"Bearer {token}"}
        response = case.call_and_validate(base_url=hookd.base, headers=headers, checks=CHECKS)
        statuses[(label, response.status_code)] += 1
        if path.startswith("/r/"):  # and the same as HAL
            hal = case.call_and_validate(
                base_url=hookd.base, headers={**headers, "Accept": HAL}, checks=CHECKS
            )
            if hal.status_code < 300 and hal.content:
                assert hal.headers["content-type"] == [HAL]

    run()
    if label in MUST_SUCCEED:
        reached = [status for (name, status), _ in statuses.items() if name == label]
        assert any(200 <= status < 300 for status in reached), reached


def _login(hookd: Hookd) -> str:
    response = httpx.post(
        f"{hookd.base}/api/v1/login", json={"username": "admin", "password": ADMIN_PASSWORD}
    )
    assert response.status_code == 200, (response.status_code, response.text)
    return str(response.json()["token"])


def test_the_run_reached_the_happy_paths(hookd: Hookd, statuses: Counter[tuple[str, int]]) -> None:
    """Runs after the operations: what they met, in both dialects."""
    succeeded = {label for (label, status) in statuses if 200 <= status < 300}
    assert set(MUST_SUCCEED) <= succeeded
    assert any(label.startswith(("PUT /r/", "POST /r/")) for label in succeeded), succeeded
    assert hookd.sent, "test sends and validation calls went to the receiver"
