"""One hookd run on one backend: start it, create webhooks, publish, wait for the arrivals."""

from __future__ import annotations

import asyncio
import contextlib
import math
import tempfile
import time
from pathlib import Path

import aiohttp
import uvloop

from bench import procstat
from bench.arrivals import ArrivalTally, wait_for_all
from bench.config import BenchConfig
from bench.console import say
from bench.hookd_api import (
    PublishLog,
    client_session,
    create_webhooks,
    login,
    publish_batches,
    publish_paced,
)
from bench.hookd_proc import HarnessError, HookdProcesses
from bench.payload import event_data, run_tag
from bench.postgres import ThrowAwayDatabase, server_pids
from bench.receiver import Receiver
from bench.stats import latency_ms, rate

WARMUP_TIMEOUT_S = 30
LATENCY_REQUESTS_PER_S = 50.0  # a producer that publishes what it has every 20 ms
LATENCY_RUN_S = 15.0  # how long the default latency run publishes
IDLE_S = 3.0  # how long hookd is watched doing nothing, before the throughput run


class Measured:
    """CPU (sampled per process group) and the bench's own CPU over one phase."""

    def __init__(self, groups: dict[str, procstat.PidSource]) -> None:
        self.sampler = procstat.Sampler(groups)
        self.result: dict[str, procstat.GroupFigures] = {}
        self.bench_cpu = 0.0
        self.wall = 0.0
        self.machine_busy = 0.0

    def __enter__(self) -> Measured:
        self.bench_cpu = -procstat.rusage_self_cpu()
        self.machine_busy = -procstat.machine_busy_seconds()
        self.wall = -time.monotonic()
        self.sampler.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.result = self.sampler.stop()
        self.bench_cpu += procstat.rusage_self_cpu()
        self.machine_busy += procstat.machine_busy_seconds()
        self.wall += time.monotonic()

    @property
    def other_cores(self) -> float:
        """Average cores busy with work that is neither hookd, the receiver, PG nor the bench."""
        ours = self.bench_cpu + sum(g.cpu for g in self.result.values())
        return max(0.0, self.machine_busy - ours) / self.wall if self.wall > 0 else 0.0

    def figures(self, deliveries: int) -> dict[str, object]:
        def per_1000(seconds: float) -> float | None:
            return round(1000 * seconds / deliveries, 3) if deliveries else None

        out: dict[str, object] = {}
        for name, group in self.result.items():
            out[name] = {**group.as_dict(), "cpu_s_per_1000": per_1000(group.cpu)}
        out["bench_client"] = {"cpu_s": round(self.bench_cpu, 3)}
        out["machine"] = {
            "wall_s": round(self.wall, 3),
            "busy_cores": round(self.machine_busy / self.wall, 2) if self.wall else None,
            "other_cores": round(self.other_cores, 2),
        }
        return out


def run_backend(
    cfg: BenchConfig, backend: str, receiver: Receiver, ceiling_rate: float | None
) -> dict[str, object]:
    workers = cfg.workers_for(backend)
    with contextlib.ExitStack() as stack:
        tmp = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix=f"hookd-{backend}-")))
        if backend == "postgres":
            db = stack.enter_context(ThrowAwayDatabase())
            url = db.url
        else:
            url = f"sqlite:///{tmp}/hookd.db"
        hookd = stack.enter_context(
            HookdProcesses(tmp, url, workers, cfg.hookd, cfg.hookd_settings)
        )
        say(f"{backend}: migrate + start hookd ({workers} process(es)) in {tmp}")
        hookd.start()
        groups: dict[str, procstat.PidSource] = {"hookd": hookd.pids, "receiver": receiver.pids}
        if backend == "postgres":
            groups["postgres"] = server_pids
        result = uvloop.run(_drive(cfg, backend, hookd, receiver, groups, ceiling_rate))
        result.update(
            backend=backend, workers=workers, database=_redact(url), startup_s=hookd.startup_s
        )
        return result
    raise AssertionError("unreachable")


def _redact(url: str) -> str:
    return url.split("?", 1)[0]


async def _drive(
    cfg: BenchConfig,
    backend: str,
    hookd: HookdProcesses,
    receiver: Receiver,
    groups: dict[str, procstat.PidSource],
    ceiling_rate: float | None,
) -> dict[str, object]:
    base = hookd.base_url
    paths = [f"/hook/{i}" for i in range(cfg.webhooks)]
    data = event_data(cfg.payload_bytes)
    async with client_session(cfg.publishers + 8) as session:
        token = await login(session, base, hookd.password)
        await create_webhooks(session, base, token, [receiver.url(p) for p in paths])
        say(f"{backend}: {cfg.webhooks} webhooks → {receiver.url('/hook/<i>')}")

        # Warm-up: one event must reach every webhook before anything is measured.
        tag = run_tag()
        warm = ArrivalTally({}, frozenset(paths))
        receiver.log.mark()
        plog = await publish_batches(
            session, base, token, [f"warm-{tag}"], data, 1, 1, time.monotonic() + 10
        )
        if not plog.sent_at:
            raise HarnessError(f"{backend}: warm-up publish failed: {plog.first_error}")
        warm.sent_at.update(plog.sent_at)
        if not await wait_for_all(warm, receiver.log, "warm-", time.monotonic() + WARMUP_TIMEOUT_S):
            hookd.check_alive()
            raise HarnessError(
                f"{backend}: warm-up event reached {warm.arrived}/{warm.expected} webhooks in "
                f"{WARMUP_TIMEOUT_S}s: hookd's delivery path does not deliver"
            )

        idle = await _idle(groups, 1.0 if cfg.quick else IDLE_S)
        throughput = await _throughput(cfg, backend, hookd, receiver, groups, session, token, paths)
        delivered = throughput["delivery"]
        assert isinstance(delivered, dict)
        d_rate = delivered.get("deliveries_per_s")
        if ceiling_rate and d_rate:
            throughput["ratio_to_ceiling"] = round(float(d_rate) / ceiling_rate, 3)
        result: dict[str, object] = {"idle": idle, "throughput": throughput}
        if cfg.latency:
            result["latency_run"] = await _latency(
                cfg, backend, hookd, receiver, groups, session, token, paths, throughput
            )
    return result


async def _idle(groups: dict[str, procstat.PidSource], seconds: float) -> dict[str, object]:
    """CPU used with nothing to do (polling, timers), as % of one core, per process group."""
    with Measured(groups) as measured:
        await asyncio.sleep(seconds)
    out: dict[str, object] = {
        f"{name}_cpu_pct": round(100 * group.cpu / seconds, 1)
        for name, group in measured.result.items()
    }
    out["processes"] = measured.figures(0)
    out["other_cores"] = round(measured.other_cores, 2)
    return out


async def _throughput(
    cfg: BenchConfig,
    backend: str,
    hookd: HookdProcesses,
    receiver: Receiver,
    groups: dict[str, procstat.PidSource],
    session: aiohttp.ClientSession,
    token: str,
    paths: list[str],
) -> dict[str, object]:
    prefix = f"tp-{run_tag()}-"
    ids = [f"{prefix}{i}" for i in range(cfg.events)]
    data = event_data(cfg.payload_bytes)
    say(
        f"{backend}: throughput: {cfg.events} events × {cfg.webhooks} webhooks in batches of "
        f"{cfg.batch}, {cfg.publishers} publishers, deadline {cfg.deadline_s:.0f}s"
    )
    receiver.log.mark()
    stop_at = time.monotonic() + cfg.deadline_s
    with Measured(groups) as measured:
        plog = await publish_batches(
            session, hookd.base_url, token, ids, data, cfg.batch, cfg.publishers, stop_at
        )
        tally = ArrivalTally(plog.sent_at, frozenset(paths))
        say(f"{backend}: published {len(plog.sent_at)} events; waiting for deliveries")
        complete = await _wait_with_progress(tally, receiver, prefix, stop_at, backend)
    return _figures(cfg, hookd, plog, tally, measured, complete)


async def _latency(
    cfg: BenchConfig,
    backend: str,
    hookd: HookdProcesses,
    receiver: Receiver,
    groups: dict[str, procstat.PidSource],
    session: aiohttp.ClientSession,
    token: str,
    paths: list[str],
    throughput: dict[str, object],
) -> dict[str, object]:
    per_second = cfg.latency_rate or _default_latency_rate(throughput, cfg.webhooks)
    per_request = cfg.latency_batch or max(1, math.ceil(per_second / LATENCY_REQUESTS_PER_S))
    run_s = 3.0 if cfg.quick else LATENCY_RUN_S
    count = cfg.latency_events or int(max(50, per_second * run_s))
    prefix = f"lat-{run_tag()}-"
    ids = [f"{prefix}{i}" for i in range(count)]
    data = event_data(cfg.payload_bytes)
    budget = min(cfg.deadline_s, count / per_second + 30)
    say(
        f"{backend}: latency: {count} events at {per_second:.1f}/s, {per_request} per request "
        f"(× {cfg.webhooks} webhooks = {per_second * cfg.webhooks:.0f} deliveries/s), "
        f"deadline {budget:.0f}s"
    )
    receiver.log.mark()
    stop_at = time.monotonic() + budget
    with Measured(groups) as measured:
        plog = await publish_paced(
            session, hookd.base_url, token, ids, data, per_second, per_request, stop_at
        )
        tally = ArrivalTally(plog.sent_at, frozenset(paths))
        complete = await _wait_with_progress(tally, receiver, prefix, stop_at, backend)
    out = _figures(cfg, hookd, plog, tally, measured, complete)
    out["rate_events_per_s"] = round(per_second, 1)
    out["events_per_request"] = per_request
    achieved = _publish_rate(out)
    target_requests = per_second / per_request
    slow_calls = (_publish_call_p50(out) or 0.0) > 100
    behind = achieved is not None and achieved < 0.9 * target_requests
    out["saturated"] = bool(slow_calls or behind)
    if out["saturated"]:
        why = (
            f"publish calls took {_publish_call_p50(out):.0f} ms at p50"
            if slow_calls
            else f"it took {achieved} of {target_requests:.1f} requests/s"
        )
        say(
            f"{backend}: latency run saturated at {per_second:.0f} events/s ({why}): "
            "the latencies include queueing in hookd's publish path"
        )
    return out


def _send_rate(plog: PublishLog) -> float | None:
    """Requests sent per second, first to last send (the paced run's achieved rate)."""
    if plog.first_send is None or plog.last_send is None or plog.requests < 2:
        return None
    return rate(plog.requests - 1, plog.last_send - plog.first_send)


def _publish_rate(figures: dict[str, object]) -> float | None:
    publish = figures["publish"]
    assert isinstance(publish, dict)
    value = publish.get("requests_sent_per_s")
    return float(value) if isinstance(value, int | float) else None


def _publish_call_p50(figures: dict[str, object]) -> float | None:
    publish = figures["publish"]
    assert isinstance(publish, dict)
    value = publish["request_latency"].get("p50_ms")
    return float(value) if isinstance(value, int | float) else None


def _default_latency_rate(throughput: dict[str, object], webhooks: int) -> float:
    """Half of what the throughput run sustained, in events/s.

    Sustained = min(events accepted/s, deliveries/s ÷ webhooks): the burst of the throughput
    run is hookd's maximum, so this is "half the maximum throughput".
    """
    publish = throughput["publish"]
    delivery = throughput["delivery"]
    assert isinstance(publish, dict) and isinstance(delivery, dict)
    accepted = float(publish.get("events_per_s") or 0.0)
    delivered = float(delivery.get("deliveries_per_s") or 0.0) / webhooks
    sustainable = min(accepted, delivered) if delivered else accepted
    return max(1.0, round(sustainable / 2, 1))


async def _wait_with_progress(
    tally: ArrivalTally, receiver: Receiver, prefix: str, stop_at: float, backend: str
) -> bool:
    next_note = time.monotonic() + 5
    while True:
        step_end = min(stop_at, next_note)
        if await wait_for_all(tally, receiver.log, prefix, step_end):
            return True
        if time.monotonic() >= stop_at:
            say(f"{backend}: deadline: {tally.arrived}/{tally.expected} deliveries arrived")
            return False
        say(f"{backend}: … {tally.arrived}/{tally.expected} deliveries arrived")
        next_note = time.monotonic() + 5


def _figures(
    cfg: BenchConfig,
    hookd: HookdProcesses,
    plog: PublishLog,
    tally: ArrivalTally,
    measured: Measured,
    complete: bool,
) -> dict[str, object]:
    publish_wall = (plog.last_ack - plog.first_send) if plog.first_send and plog.last_ack else 0.0
    delivery = tally.figures(plog.first_send)
    dead = [f"{label} exited {code}" for label, code, _ in hookd.group.dead()]
    return {
        "complete": complete,
        "events": len(plog.sent_at),
        "publish": {
            "requests": plog.requests,
            "failed_requests": plog.failed_requests,
            "first_error": plog.first_error,
            "stopped_by_deadline": plog.stopped_by_deadline,
            "deliveries_announced": plog.deliveries_announced,
            "wall_s": round(publish_wall, 3),
            "events_per_s": rate(len(plog.sent_at), publish_wall),
            "requests_sent_per_s": _send_rate(plog),
            "request_latency": latency_ms(plog.request_latency_s),
        },
        "delivery": delivery,
        "cpu": measured.figures(tally.arrived),
        "hookd_processes_died": dead,
        "batch": cfg.batch,
    }
