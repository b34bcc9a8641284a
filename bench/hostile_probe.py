"""The well-behaved side of bench.hostile: probes that time hookd's answers during a window.

Each probe has its own keep-alive connection (opened before the window) and sends one request,
waits for the answer, then sends the next on a fixed ~20 ms schedule (at once when it is late).
A request that fails or times out counts as an error and its time until failure counts as its
latency, so a server that stops answering cannot look fast.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from dataclasses import dataclass, field

import aiohttp
import orjson

from bench.hookd_api import auth
from bench.payload import EVENT_TYPE
from bench.stats import latency_ms, percentile

PROBE_TIMEOUT_S = 10.0
MAX_PROBES = 100_000
TRIGGER_PATH = "/r/{repo}/events/document.beforecreate/trigger"


@dataclass(frozen=True)
class Probe:
    name: str
    method: str
    path: str
    body: bytes | None
    expect: int
    token: str | None = None
    wants_allowed: bool = False  # a blocking trigger: the answer must say `"allowed": true`


def probes(token: str, fast_repo: str | None) -> list[Probe]:
    publish = orjson.dumps({"type": EVENT_TYPE, "data": {"door": "front", "probe": True}})
    found = [
        Probe("healthz", "GET", "/healthz", None, 200),
        Probe("publish", "POST", "/api/v1/events", publish, 202, token),
    ]
    if fast_repo is not None:
        path = TRIGGER_PATH.format(repo=fast_repo)
        found.append(Probe("fast-trigger", "POST", path, b"{}", 200, token, wants_allowed=True))
    return found


@dataclass
class ProbeLog:
    latencies_s: list[float] = field(default_factory=list)
    errors: int = 0
    statuses: Counter[str] = field(default_factory=Counter)
    allowed: int = 0
    first_error: str | None = None

    def error(self, what: str) -> None:
        self.errors += 1
        if self.first_error is None:
            self.first_error = what[:300]


async def _one(session: aiohttp.ClientSession, base: str, probe: Probe, log: ProbeLog) -> None:
    headers = {"Content-Type": "application/json"} if probe.body is not None else {}
    if probe.token:
        headers.update(auth(probe.token))
    started = time.perf_counter()
    try:
        async with session.request(
            probe.method, base + probe.path, data=probe.body, headers=headers
        ) as resp:
            raw = await resp.read()
            status = resp.status
    except (aiohttp.ClientError, TimeoutError) as exc:
        log.latencies_s.append(time.perf_counter() - started)
        log.statuses[type(exc).__name__] += 1
        log.error(f"{probe.method} {probe.path}: {type(exc).__name__}: {exc}")
        return
    log.latencies_s.append(time.perf_counter() - started)
    log.statuses[str(status)] += 1
    if status != probe.expect:
        log.error(f"{probe.method} {probe.path} → {status} {raw[:200]!r}")
        return
    if probe.wants_allowed:
        try:
            allowed = orjson.loads(raw).get("allowed") is True
        except (orjson.JSONDecodeError, AttributeError):
            allowed = False
        if allowed:
            log.allowed += 1
        else:
            log.error(f"{probe.method} {probe.path} → {status} not allowed: {raw[:200]!r}")


async def _loop(
    session: aiohttp.ClientSession,
    base: str,
    probe: Probe,
    start_at: float,
    stop_at: float,
    interval_s: float,
) -> ProbeLog:
    log = ProbeLog()
    await asyncio.sleep(max(0.0, start_at - time.time()))
    tick = time.time()
    for _ in range(MAX_PROBES):
        if time.time() >= stop_at:
            break
        await _one(session, base, probe, log)
        tick = max(tick + interval_s, time.time())
        await asyncio.sleep(max(0.0, tick - time.time()))
    return log


async def run_probes(
    base: str, chosen: list[Probe], start_at: float, stop_at: float, interval_s: float
) -> dict[str, ProbeLog]:
    """Each probe on its own keep-alive connection from ``start_at`` to ``stop_at`` (epoch)."""
    timeout = aiohttp.ClientTimeout(total=PROBE_TIMEOUT_S)
    sessions = [
        aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=1), timeout=timeout)
        for _ in chosen
    ]
    try:
        # One request each before the window, so the window's first sample is no connect.
        await asyncio.gather(
            *(_one(s, base, p, ProbeLog()) for s, p in zip(sessions, chosen, strict=True))
        )
        logs = await asyncio.gather(
            *(
                _loop(s, base, p, start_at, stop_at, interval_s)
                for s, p in zip(sessions, chosen, strict=True)
            )
        )
    finally:
        for session in sessions:
            await session.close()
    return {p.name: log for p, log in zip(chosen, logs, strict=True)}


def corrected(latencies_s: list[float], interval_s: float) -> list[float]:
    """The latencies plus those of the requests a stalled probe did not send: a request that
    took L stands for the ones due every interval meanwhile, which would have waited
    L - interval, L - 2·interval… (the coordinated-omission correction)."""
    out: list[float] = []
    for latency in latencies_s:
        out.append(latency)
        missed = latency - interval_s
        while missed > interval_s:
            out.append(missed)
            missed -= interval_s
    return out


def summary(probe: Probe, log: ProbeLog, interval_s: float, target_ms: float) -> dict[str, object]:
    figures: dict[str, object] = dict(latency_ms(log.latencies_s))
    fixed = sorted(corrected(log.latencies_s, interval_s))
    p99 = percentile(fixed, 99)
    figures["p99_corrected_ms"] = None if p99 is None else round(p99 * 1000, 1)
    figures["errors"] = log.errors
    figures["statuses"] = dict(sorted(log.statuses.items()))
    figures["first_error"] = log.first_error
    if probe.wants_allowed:
        figures["allowed"] = log.allowed
    p99_ms = figures.get("p99_ms")
    figures["meets_target"] = bool(
        isinstance(p99_ms, int | float) and p99_ms <= target_ms and log.errors == 0
    )
    return figures


async def time_to_recover(base: str, target_ms: float, limit_s: float) -> float | None:
    """Seconds until a new GET /healthz answers 200 within ``target_ms``; None after ``limit_s``."""
    started = time.time()
    timeout = aiohttp.ClientTimeout(total=min(PROBE_TIMEOUT_S, limit_s))
    async with aiohttp.ClientSession(timeout=timeout) as session:
        for _ in range(10_000):
            if time.time() - started > limit_s:
                return None
            t0 = time.perf_counter()
            try:
                async with session.get(base + "/healthz") as resp:
                    await resp.read()
                    ok = resp.status == 200
            except (aiohttp.ClientError, TimeoutError):
                ok = False
            if ok and (time.perf_counter() - t0) * 1000 <= target_ms:
                return round(time.time() - started, 2)
            await asyncio.sleep(0.05)
    return None
