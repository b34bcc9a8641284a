"""The few hookd API calls the bench needs: login, create webhooks, publish events."""

from __future__ import annotations

import asyncio
import itertools
import time
from dataclasses import dataclass, field

import aiohttp
import orjson

from bench.hookd_proc import HarnessError
from bench.payload import EVENT_TYPE, new_secret

REQUEST_TIMEOUT = aiohttp.ClientTimeout(total=60)


def client_session(connections: int) -> aiohttp.ClientSession:
    connector = aiohttp.TCPConnector(limit=connections, limit_per_host=connections)
    return aiohttp.ClientSession(connector=connector, timeout=REQUEST_TIMEOUT)


async def _json(resp: aiohttp.ClientResponse) -> object:
    raw = await resp.read()
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError:
        return raw.decode(errors="replace")[:500]


async def login(session: aiohttp.ClientSession, base: str, password: str) -> str:
    body = {"username": "admin", "password": password}
    async with session.post(f"{base}/api/v1/login", json=body) as resp:
        answer = await _json(resp)
        if resp.status != 200 or not isinstance(answer, dict) or "token" not in answer:
            raise HarnessError(f"POST /api/v1/login → {resp.status} {answer!r}")
        return str(answer["token"])


def auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def create_webhooks(
    session: aiohttp.ClientSession,
    base: str,
    token: str,
    urls: list[str],
    *,
    event_type: str = EVENT_TYPE,
    timeout_ms: int = 10000,
    max_retries: int = 3,
) -> list[object]:
    """One device-dialect webhook per URL, subscribed to ``event_type``; returns their uids."""
    uids: list[object] = []
    for url in urls:
        body = {
            "url": url,
            "event_types": [event_type],
            "secret": new_secret(),
            "timeout": timeout_ms,
            "max_retries": max_retries,
        }
        async with session.post(f"{base}/api/v1/webhooks", json=body, headers=auth(token)) as resp:
            answer = await _json(resp)
            if resp.status != 201 or not isinstance(answer, dict):
                raise HarnessError(f"POST /api/v1/webhooks → {resp.status} {answer!r}")
            uids.append(answer.get("uid"))
    return uids


@dataclass
class PublishLog:
    """Per event id: when its publish request was sent (epoch seconds)."""

    sent_at: dict[str, float] = field(default_factory=dict)
    request_latency_s: list[float] = field(default_factory=list)
    requests: int = 0
    failed_requests: int = 0
    deliveries_announced: int = 0
    first_error: str | None = None
    first_send: float | None = None
    last_send: float | None = None
    last_ack: float | None = None
    stopped_by_deadline: bool = False

    def record_failure(self, what: str) -> None:
        self.failed_requests += 1
        if self.first_error is None:
            self.first_error = what


async def _publish_one(
    session: aiohttp.ClientSession,
    base: str,
    headers: dict[str, str],
    ids: list[str],
    body: bytes,
    log: PublishLog,
) -> None:
    sent = time.time()
    if log.first_send is None:
        log.first_send = sent
    log.last_send = sent
    log.requests += 1
    try:
        async with session.post(f"{base}/api/v1/events", data=body, headers=headers) as resp:
            answer = await _json(resp)
            status = resp.status
    except (aiohttp.ClientError, TimeoutError) as exc:
        log.record_failure(f"POST /api/v1/events: {type(exc).__name__}: {exc}")
        return
    acked = time.time()
    if status != 202 or not isinstance(answer, dict):
        log.record_failure(f"POST /api/v1/events → {status} {answer!r}"[:600])
        return
    got = answer.get("ids")
    # The service echoes the ids; if it chose its own, those are what the deliveries carry.
    keys = [str(x) for x in got] if isinstance(got, list) and len(got) == len(ids) else ids
    for key in keys:
        log.sent_at[key] = sent
    log.deliveries_announced += int(answer.get("deliveries", 0) or 0)
    log.request_latency_s.append(acked - sent)
    log.last_ack = acked if log.last_ack is None else max(log.last_ack, acked)


def event(
    event_id: str, data: dict[str, object], event_type: str = EVENT_TYPE
) -> dict[str, object]:
    return {"type": event_type, "id": event_id, "data": data}


DELIVERY_STATES = ("pending", "delivering", "retrying", "succeeded", "failed")


async def delivery_counts(
    session: aiohttp.ClientSession, base: str, token: str, uid: object
) -> dict[str, int | None]:
    """How many of a webhook's deliveries are in each state (the log's ``total``, per state)."""
    counts: dict[str, int | None] = {}
    for state in DELIVERY_STATES:
        url = f"{base}/api/v1/webhooks/{uid}/deliveries?status={state}&limit=1"
        async with session.get(url, headers=auth(token)) as resp:
            answer = await _json(resp)
        total = answer.get("total") if resp.status == 200 and isinstance(answer, dict) else None
        counts[state] = int(total) if isinstance(total, int) else None
    return counts


async def publish_batches(
    session: aiohttp.ClientSession,
    base: str,
    token: str,
    ids: list[str],
    data: dict[str, object],
    batch: int,
    publishers: int,
    stop_at: float,
    event_type: str = EVENT_TYPE,
) -> PublishLog:
    """Publishes ``ids`` as JSON arrays of ``batch`` events from ``publishers`` concurrent tasks."""
    headers = {**auth(token), "Content-Type": "application/json"}
    log = PublishLog()
    chunks = iter([ids[i : i + batch] for i in range(0, len(ids), batch)])

    async def publisher() -> None:
        for chunk in chunks:  # a shared iterator: each batch goes to exactly one task
            if time.monotonic() > stop_at:
                log.stopped_by_deadline = True
                return
            body = orjson.dumps([event(i, data, event_type) for i in chunk])
            await _publish_one(session, base, headers, chunk, body, log)

    await asyncio.gather(*(publisher() for _ in range(publishers)))
    return log


async def publish_paced(
    session: aiohttp.ClientSession,
    base: str,
    token: str,
    ids: list[str],
    data: dict[str, object],
    per_second: float,
    per_request: int,
    stop_at: float,
    max_in_flight: int = 64,
) -> PublishLog:
    """Publishes ``ids`` at a fixed event rate, ``per_request`` events per request.

    Requests leave on a fixed schedule without waiting for earlier acks (up to
    ``max_in_flight`` outstanding). One event goes as a JSON object, several as an array.
    """
    headers = {**auth(token), "Content-Type": "application/json"}
    log = PublishLog()
    gate = asyncio.Semaphore(max_in_flight)
    tasks: set[asyncio.Task[None]] = set()
    chunks = [ids[i : i + per_request] for i in range(0, len(ids), per_request)]
    requests_per_second = per_second / per_request
    start = time.monotonic()

    async def one(chunk: list[str]) -> None:
        try:
            events = [event(i, data) for i in chunk]
            body = orjson.dumps(events[0] if per_request == 1 else events)
            await _publish_one(session, base, headers, chunk, body, log)
        finally:
            gate.release()

    for n, chunk in zip(itertools.count(), chunks, strict=False):
        delay = start + n / requests_per_second - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)
        if time.monotonic() > stop_at:
            log.stopped_by_deadline = True
            break
        await gate.acquire()
        task = asyncio.create_task(one(chunk))
        tasks.add(task)
        task.add_done_callback(tasks.discard)
    if tasks:
        _, pending = await asyncio.wait(tasks, timeout=max(1.0, stop_at - time.monotonic()))
        for task in pending:
            task.cancel()
        await asyncio.gather(*pending, return_exceptions=True)
    return log
