"""One hookd run on one backend: start it, create webhooks, publish, wait for the arrivals."""

from __future__ import annotations

import contextlib
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


class Measured:
    """CPU (sampled per process group) and the bench's own CPU over one phase."""

    def __init__(self, groups: dict[str, procstat.PidSource]) -> None:
        self.sampler = procstat.Sampler(groups)
        self.bench_cpu0 = 0.0
        self.result: dict[str, procstat.GroupFigures] = {}
        self.bench_cpu = 0.0

    def __enter__(self) -> Measured:
        self.bench_cpu0 = procstat.rusage_self_cpu()
        self.sampler.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.result = self.sampler.stop()
        self.bench_cpu = procstat.rusage_self_cpu() - self.bench_cpu0

    def figures(self, deliveries: int) -> dict[str, object]:
        def per_1000(seconds: float) -> float | None:
            return round(1000 * seconds / deliveries, 3) if deliveries else None

        out: dict[str, object] = {}
        for name, group in self.result.items():
            out[name] = {**group.as_dict(), "cpu_s_per_1000": per_1000(group.cpu)}
        out["bench_client"] = {"cpu_s": round(self.bench_cpu, 3)}
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
        hookd = stack.enter_context(HookdProcesses(tmp, url, workers, cfg.hookd))
        say(f"{backend}: migrate + start hookd ({workers} process(es)) in {tmp}")
        hookd.start()
        groups: dict[str, procstat.PidSource] = {"hookd": hookd.pids, "receiver": receiver.pids}
        if backend == "postgres":
            groups["postgres"] = server_pids
        result = uvloop.run(_drive(cfg, backend, hookd, receiver, groups, ceiling_rate))
        result.update(backend=backend, workers=workers, database=_redact(url))
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

        throughput = await _throughput(cfg, backend, hookd, receiver, groups, session, token, paths)
        delivered = throughput["delivery"]
        assert isinstance(delivered, dict)
        d_rate = delivered.get("deliveries_per_s")
        if ceiling_rate and d_rate:
            throughput["ratio_to_ceiling"] = round(float(d_rate) / ceiling_rate, 3)
        result: dict[str, object] = {"throughput": throughput}
        if cfg.latency:
            result["latency_run"] = await _latency(
                cfg, backend, hookd, receiver, groups, session, token, paths, throughput
            )
    return result


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
    per_second = cfg.latency_rate or _half_sustainable_rate(throughput, cfg.webhooks)
    count = cfg.latency_events or (50 if cfg.quick else int(min(1500, max(100, per_second * 15))))
    prefix = f"lat-{run_tag()}-"
    ids = [f"{prefix}{i}" for i in range(count)]
    data = event_data(cfg.payload_bytes)
    budget = min(cfg.deadline_s, count / per_second + 30)
    say(
        f"{backend}: latency: {count} single events at {per_second:.1f}/s "
        f"(× {cfg.webhooks} webhooks), deadline {budget:.0f}s"
    )
    receiver.log.mark()
    stop_at = time.monotonic() + budget
    with Measured(groups) as measured:
        plog = await publish_paced(session, hookd.base_url, token, ids, data, per_second, stop_at)
        tally = ArrivalTally(plog.sent_at, frozenset(paths))
        complete = await _wait_with_progress(tally, receiver, prefix, stop_at, backend)
    out = _figures(cfg, hookd, plog, tally, measured, complete)
    out["rate_events_per_s"] = round(per_second, 1)
    return out


def _half_sustainable_rate(throughput: dict[str, object], webhooks: int) -> float:
    """Half of what the throughput run sustained, in events/s: min(accepted, delivered ÷ W)."""
    publish = throughput["publish"]
    delivery = throughput["delivery"]
    assert isinstance(publish, dict) and isinstance(delivery, dict)
    accepted = publish.get("events_per_s") or 0.0
    delivered = (delivery.get("deliveries_per_s") or 0.0) / webhooks
    sustainable = min(float(accepted), float(delivered)) if delivered else float(accepted)
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
            "request_latency": latency_ms(plog.request_latency_s),
        },
        "delivery": delivery,
        "cpu": measured.figures(tally.arrived),
        "hookd_processes_died": dead,
        "batch": cfg.batch,
    }
