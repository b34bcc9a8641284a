"""Isolation: does a healthy webhook keep its latency and rate beside bad ones?

`python -m bench.isolation [--backend sqlite|postgres|both] [--window S] [--rate N]
[--backlog N] [--drain S] [--set HOOKD_X=V]`; also the last part of the full `make bench`
(never of `--quick`). On each store — SQLite: one `hookd serve`; PostgreSQL: `hookd serve` +
one `hookd worker` — it starts hookd, the bench's receiver (nginx, or bench/sink.py) and the bad
receivers of bench/bad_receivers.py, all on 127.0.0.1, then runs twice:

1. alone: one healthy webhook (the receiver, path `/healthy`) subscribed to
   `log.door_was_opened`; events of that type are published at `--rate` events/s (50
   requests/s, like the main latency run) for `--window` seconds.
2. beside: four more webhooks on the same event type, whose receivers hang, answer 500, close
   the connection at once and trickle one byte per second; and a webhook on
   `log.tamper_event` at a 127.0.0.1 port where nothing listens (connection refused), for
   which `--backlog` deliveries are queued (events published in arrays of 1000, before the
   window; the worker already starts on them meanwhile, so the table shows how many were still
   waiting when the window opened). Then the same events/s as in 1, for the same window: every
   healthy event also fans out to the four bad webhooks, as a real service sees it.

Every webhook has `timeout` 5000 ms and `max_retries` 3 (the API's default); the retry
schedule is hookd's (`HOOKD_RETRY_SCHEDULE`, default `5s,30s,…`). Measured for the healthy
webhook, per run: published events (202 received), rate = its deliveries that arrived
inside the window ÷ window length, missing at window end = published − arrived in the window,
and publish-sent → arrival latency. After the window the bench waits at most `--drain` seconds
(default 10) for the missing deliveries: those arriving then count for latency (p50/p99 of the
arrived), not for the rate. Whatever is still missing after the drain is counted, in the
`incl. missing` percentiles, as arriving at the end of the drain, so those are lower bounds
(marked ≥) whenever anything is missing. The ratios beside ÷ alone use the `incl. missing`
percentiles. The target a fair-sharing change must meet: p50 and p99 within 2× of alone, rate
≥ 0.95× alone. This is reported, never asserted.

With the defaults (30 s windows, 10 s drain) a store takes about 1.5–2 minutes.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import math
import signal
import socket
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from types import FrameType
from typing import Any

import aiohttp
import uvloop

from bench import machine, procstat
from bench.arrivals import ArrivalTally, wait_for_all
from bench.bad_receivers import BEHAVIOURS, BadReceivers
from bench.config import BenchConfig, add_set_option, hookd_settings
from bench.console import say
from bench.hookd_api import (
    PublishLog,
    client_session,
    create_webhooks,
    delivery_counts,
    login,
    publish_batches,
    publish_paced,
)
from bench.hookd_proc import HarnessError, HookdProcesses
from bench.hookd_run import LATENCY_REQUESTS_PER_S, Measured
from bench.payload import EVENT_TYPE, event_data, run_tag
from bench.postgres import ThrowAwayDatabase, server_pids
from bench.procs import LOOPBACK, free_port
from bench.receiver import Receiver
from bench.report import print_isolation, write_json
from bench.stats import latency_ms, percentile

BACKLOG_EVENT_TYPE = "log.tamper_event"  # only the refused webhook subscribes to it
BACKLOG_BATCH = 1000
HEALTHY_PATH = "/healthy"
TIMEOUT_MS = 5000
MAX_RETRIES = 3
PUBLISH_GRACE_S = 5.0  # a late publish request may still leave this long after the window
WARMUP_TIMEOUT_S = 30.0
BACKLOG_PUBLISH_LIMIT_S = 120.0
SLICE_S = 5.0  # latency per slice of publish time, to see whether it grows during the window
TARGET_LATENCY_RATIO = 2.0
TARGET_RATE_RATIO = 0.95


@dataclass(frozen=True)
class IsolationConfig:
    backends: tuple[str, ...] = ("sqlite", "postgres")
    window_s: float = 30.0
    rate: float = 200.0
    backlog: int = 20_000
    drain_s: float = 10.0
    payload_bytes: int = 1024
    workers: int | None = None  # hookd processes on PostgreSQL (serve + N-1 workers); None: 2
    hookd: str | None = None
    hookd_settings: dict[str, str] | None = None
    receiver: str = "auto"
    install_nginx: bool = True
    wait_quiet_s: float = 0.0  # standalone only: the full bench waits (or not) before it starts

    @classmethod
    def from_bench(cls, cfg: BenchConfig) -> IsolationConfig:
        return cls(
            backends=cfg.backends,
            workers=cfg.workers,
            hookd=cfg.hookd,
            hookd_settings=cfg.hookd_settings,
            receiver=cfg.receiver,
            install_nginx=cfg.install_nginx,
        )

    def workers_for(self, backend: str) -> int:
        if backend == "sqlite":
            return 1
        return self.workers if self.workers is not None else 2


def run_isolation(cfg: IsolationConfig) -> dict[str, Any]:
    """The scenario on every store of ``cfg``; a store that fails is reported, not raised."""
    out: dict[str, Any] = {"config": asdict(cfg), "runs": {}}
    for backend in cfg.backends:
        if backend == "postgres":
            why = ThrowAwayDatabase().available()
            if why is not None:
                say(f"isolation: postgres SKIPPED, PostgreSQL does not answer ({why})")
                out["runs"][backend] = {"skipped": f"PostgreSQL unavailable: {why}"}
                continue
        try:
            out["runs"][backend] = _run_store(cfg, backend)
        except (HarnessError, RuntimeError) as exc:
            say(f"isolation: {backend}: FAILED: {exc}")
            out["runs"][backend] = {"error": str(exc)}
    return out


def _run_store(cfg: IsolationConfig, backend: str) -> dict[str, Any]:
    workers = cfg.workers_for(backend)
    with contextlib.ExitStack() as stack:
        tmp = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="hookd-isolation-")))
        if backend == "postgres":
            url = stack.enter_context(ThrowAwayDatabase()).url
        else:
            url = f"sqlite:///{tmp}/hookd.db"
        for sub in ("rx", "bad"):
            (tmp / sub).mkdir()
        receiver = stack.enter_context(
            Receiver(tmp / "rx", prefer=cfg.receiver, allow_install=cfg.install_nginx)
        )
        bad = stack.enter_context(BadReceivers(tmp / "bad"))
        hookd = stack.enter_context(
            HookdProcesses(tmp, url, workers, cfg.hookd, cfg.hookd_settings)
        )
        say(f"isolation: {backend}: hookd ({workers} process(es)), receiver {receiver.kind}")
        hookd.start()
        groups: dict[str, procstat.PidSource] = {
            "hookd": hookd.pids,
            "receiver": receiver.pids,
            "bad_receivers": bad.pids,
        }
        if backend == "postgres":
            groups["postgres"] = server_pids
        scenario = _Scenario(cfg, backend, hookd, receiver, bad, groups)
        result = uvloop.run(scenario.run())
        dead = [f"{label} exited {code}" for label, code, _ in hookd.group.dead()]
        result.update(workers=workers, receiver=receiver.kind, hookd_processes_died=dead)
        return result
    raise AssertionError("unreachable")


def _refused_port() -> int:
    """A 127.0.0.1 port nothing listens on (checked), for the connection-refused webhook."""
    for _ in range(20):
        port = free_port()
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            s.settimeout(1)
            if s.connect_ex((LOOPBACK, port)) != 0:
                return port
    raise HarnessError("found no free 127.0.0.1 port for the connection-refused webhook")


class _Scenario:
    def __init__(
        self,
        cfg: IsolationConfig,
        backend: str,
        hookd: HookdProcesses,
        receiver: Receiver,
        bad: BadReceivers,
        groups: dict[str, procstat.PidSource],
    ) -> None:
        self.cfg = cfg
        self.backend = backend
        self.hookd = hookd
        self.base = hookd.base_url
        self.receiver = receiver
        self.bad = bad
        self.groups = groups
        self.data = event_data(cfg.payload_bytes)
        self.token = ""

    async def run(self) -> dict[str, Any]:
        async with client_session(72) as session:  # publish_paced keeps up to 64 in flight
            self.token = await login(session, self.base, self.hookd.password)
            [healthy] = await self._webhooks(session, [self.receiver.url(HEALTHY_PATH)])
            await self._warm_up(session)
            alone = await self._window(session, "alone", {"healthy": healthy})

            port = _refused_port()
            [refused] = await self._webhooks(
                session, [f"http://{LOOPBACK}:{port}/refused"], BACKLOG_EVENT_TYPE
            )
            bad_uids = await self._webhooks(session, [self.bad.url(b) for b in BEHAVIOURS])
            uids = {"healthy": healthy, "refused": refused}
            uids.update(zip(BEHAVIOURS, bad_uids, strict=True))
            say(
                f"isolation: {self.backend}: + refused (127.0.0.1:{port}) and "
                f"{', '.join(BEHAVIOURS)} webhooks"
            )
            backlog = await self._queue_backlog(session)
            at_start = await delivery_counts(session, self.base, self.token, refused)
            beside = await self._window(session, "beside", uids)
            beside["refused_at_window_start"] = at_start
        return {
            "alone": alone,
            "beside": beside,
            "backlog": backlog,
            "ratios": _ratios(alone, beside),
        }

    async def _webhooks(
        self, session: aiohttp.ClientSession, urls: list[str], event_type: str = EVENT_TYPE
    ) -> list[object]:
        return await create_webhooks(
            session,
            self.base,
            self.token,
            urls,
            event_type=event_type,
            timeout_ms=TIMEOUT_MS,
            max_retries=MAX_RETRIES,
        )

    async def _warm_up(self, session: aiohttp.ClientSession) -> None:
        """One event must reach the healthy webhook before anything is measured."""
        prefix = f"warm-{run_tag()}-"
        self.receiver.log.mark()
        plog = await publish_batches(
            session, self.base, self.token, [f"{prefix}0"], self.data, 1, 1, time.monotonic() + 10
        )
        if not plog.sent_at:
            raise HarnessError(f"{self.backend}: warm-up publish failed: {plog.first_error}")
        tally = ArrivalTally(dict(plog.sent_at), frozenset({HEALTHY_PATH}))
        if not await wait_for_all(
            tally, self.receiver.log, prefix, time.monotonic() + WARMUP_TIMEOUT_S
        ):
            self.hookd.check_alive()
            raise HarnessError(f"{self.backend}: the warm-up event did not arrive in 30 s")

    async def _queue_backlog(self, session: aiohttp.ClientSession) -> dict[str, Any]:
        n = self.cfg.backlog
        if n <= 0:
            return {"requested": 0}
        say(f"isolation: {self.backend}: queueing {n} deliveries for the refused webhook")
        ids = [f"backlog-{run_tag()}-{i}" for i in range(n)]
        t0 = time.monotonic()
        plog = await publish_batches(
            session,
            self.base,
            self.token,
            ids,
            self.data,
            BACKLOG_BATCH,
            2,
            t0 + BACKLOG_PUBLISH_LIMIT_S,
            event_type=BACKLOG_EVENT_TYPE,
        )
        took = time.monotonic() - t0
        if plog.first_error:
            say(f"isolation: {self.backend}: backlog publish: {plog.first_error}")
        return {
            "requested": n,
            "deliveries_queued": plog.deliveries_announced,
            "publish_s": round(took, 2),
            "failed_requests": plog.failed_requests,
            "first_error": plog.first_error,
        }

    async def _window(
        self, session: aiohttp.ClientSession, label: str, uids: dict[str, object]
    ) -> dict[str, Any]:
        cfg = self.cfg
        count = max(1, int(cfg.rate * cfg.window_s))
        per_request = max(1, math.ceil(cfg.rate / LATENCY_REQUESTS_PER_S))
        prefix = f"{label}-{run_tag()}-"
        ids = [f"{prefix}{i}" for i in range(count)]
        say(
            f"isolation: {self.backend}: {label}: {cfg.rate:g} events/s to the healthy webhook "
            f"({per_request} per request) for {cfg.window_s:g}s, then ≤ {cfg.drain_s:g}s drain"
        )
        self.receiver.log.mark()
        bad_before = self.bad.counters()
        start_epoch = time.time()
        window_end = time.monotonic() + cfg.window_s
        with Measured(self.groups) as measured:
            plog = await publish_paced(
                session,
                self.base,
                self.token,
                ids,
                self.data,
                cfg.rate,
                per_request,
                window_end + PUBLISH_GRACE_S,
            )
            await asyncio.sleep(max(0.0, window_end - time.monotonic()))
        bad_after = self.bad.counters()
        end_epoch = start_epoch + cfg.window_s
        tally = ArrivalTally(dict(plog.sent_at), frozenset({HEALTHY_PATH}))
        tally.add(self.receiver.log, prefix)
        in_window = sum(1 for t in tally.first.values() if t <= end_epoch)
        say(
            f"isolation: {self.backend}: {label}: window over, {in_window}/{len(plog.sent_at)} "
            "arrived; draining"
        )
        await wait_for_all(tally, self.receiver.log, prefix, window_end + cfg.drain_s)
        drained_at = time.time()
        bad_drained = self.bad.counters()
        self.hookd.check_alive()
        states = {
            name: await delivery_counts(session, self.base, self.token, uid)
            for name, uid in uids.items()
        }
        out = _window_figures(plog, tally, start_epoch, cfg.window_s, drained_at)
        out.update(
            label=label,
            rate_target=cfg.rate,
            events_per_request=per_request,
            cpu=measured.figures(in_window),
            cpu_cores={
                name: round(group.cpu / measured.wall, 2) if measured.wall else None
                for name, group in measured.result.items()
            },
            other_cores=round(measured.other_cores, 2),
            states_after_drain=states,
        )
        if label == "beside":
            out["bad_receivers"] = _bad_figures(bad_before, bad_after, bad_drained, measured.wall)
        f = out["healthy"]
        say(
            f"isolation: {self.backend}: {label}: {f['rate_per_s']}/s in window, "
            f"missing {f['missing_at_window_end']} at window end, "
            f"{f['missing_after_drain']} after drain; p50 {f['incl_missing']['p50_ms']} ms, "
            f"p99 {f['incl_missing']['p99_ms']} ms (incl. missing)"
        )
        return out


def _window_figures(
    plog: PublishLog, tally: ArrivalTally, start_epoch: float, window_s: float, drained_at: float
) -> dict[str, Any]:
    end_epoch = start_epoch + window_s
    sent = plog.sent_at
    arrived = {eid: t for (eid, _), t in tally.first.items()}
    in_window = sum(1 for t in arrived.values() if t <= end_epoch)
    missing = [eid for eid in sent if eid not in arrived]
    latencies = [t - sent[eid] for eid, t in arrived.items()]
    censored = latencies + [drained_at - sent[eid] for eid in missing]
    incl_missing = latency_ms(censored)
    incl_missing["lower_bound"] = bool(missing)
    slices = []
    for k in range(math.ceil(window_s / SLICE_S)):
        lo, hi = start_epoch + k * SLICE_S, start_epoch + (k + 1) * SLICE_S
        ids = [eid for eid, t in sent.items() if lo <= t < hi]
        got = sorted(arrived[eid] - sent[eid] for eid in ids if eid in arrived)
        p50 = percentile(got, 50)
        slices.append(
            {
                "published_from_s": k * SLICE_S,
                "published": len(ids),
                "arrived": len(got),
                "p50_ms_of_arrived": None if p50 is None else round(p50 * 1000, 1),
            }
        )
    return {
        "publish": {
            "events": len(sent),
            "requests": plog.requests,
            "failed_requests": plog.failed_requests,
            "first_error": plog.first_error,
            "stopped_by_deadline": plog.stopped_by_deadline,
            "deliveries_announced": plog.deliveries_announced,
            "request_latency": latency_ms(plog.request_latency_s),
        },
        "healthy": {
            "published": len(sent),
            "arrived_in_window": in_window,
            "arrived_by_drain_end": len(arrived),
            "missing_at_window_end": len(sent) - in_window,
            "missing_after_drain": len(missing),
            "drain_s": round(max(0.0, drained_at - end_epoch), 1),
            "rate_per_s": round(in_window / window_s, 1),
            "latency_of_arrived": latency_ms(latencies),
            "incl_missing": incl_missing,
            "duplicates": tally.duplicates,
            "non_2xx": tally.non_2xx,
            "stray": tally.stray,
            "by_publish_slice": slices,
        },
    }


def _bad_figures(
    before: dict[str, dict[str, float]],
    after: dict[str, dict[str, float]],
    drained: dict[str, dict[str, float]],
    wall: float,
) -> dict[str, Any]:
    """What each bad receiver saw during the window (its counters are up to 1 s stale).

    ``held_mean_s``: request read → connection closed by hookd, for the connections that closed
    between the window's start and the end of the drain (a hang is only seen to end at its
    timeout, which may come after the window).
    """
    out: dict[str, Any] = {}
    for name in BEHAVIOURS:
        b, a, d = before.get(name, {}), after.get(name, {}), drained.get(name, {})
        requests = a.get("requests", 0) - b.get("requests", 0)
        held_n = d.get("held_n", 0) - b.get("held_n", 0)
        held_s = d.get("held_s", 0.0) - b.get("held_s", 0.0)
        out[name] = {
            "requests": requests,
            "requests_per_s": round(requests / wall, 1) if wall else None,
            "connections": a.get("connections", 0) - b.get("connections", 0),
            "open_peak": a.get("open_peak"),
            "over_cap": a.get("over_cap", 0) - b.get("over_cap", 0),
            "held_mean_s": round(held_s / held_n, 2) if held_n else None,
        }
    return out


def _ratio(num: object, den: object) -> float | None:
    if isinstance(num, int | float) and isinstance(den, int | float) and den > 0:
        return round(num / den, 2)
    return None


def _ratios(alone: dict[str, Any], beside: dict[str, Any]) -> dict[str, Any]:
    a, b = alone["healthy"], beside["healthy"]
    p50 = _ratio(b["incl_missing"]["p50_ms"], a["incl_missing"]["p50_ms"])
    p99 = _ratio(b["incl_missing"]["p99_ms"], a["incl_missing"]["p99_ms"])
    rate = _ratio(b["rate_per_s"], a["rate_per_s"])
    met = (
        p50 is not None
        and p99 is not None
        and rate is not None
        and p50 <= TARGET_LATENCY_RATIO
        and p99 <= TARGET_LATENCY_RATIO
        and rate >= TARGET_RATE_RATIO
    )
    return {
        "p50": p50,
        "p99": p99,
        "rate": rate,
        "lower_bound": bool(b["incl_missing"]["lower_bound"]),
        "target": f"p50, p99 ≤ {TARGET_LATENCY_RATIO:g}×; rate ≥ {TARGET_RATE_RATIO:g}×",
        "target_met": met,
    }


def parse_args(argv: list[str] | None = None) -> IsolationConfig:
    p = argparse.ArgumentParser(
        prog="python -m bench.isolation",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--backend", choices=("sqlite", "postgres", "both"), default="both")
    p.add_argument("--window", type=float, default=30.0, metavar="SECONDS", help="default 30")
    p.add_argument("--rate", type=float, default=200.0, help="healthy events/s (default 200)")
    p.add_argument(
        "--backlog",
        type=int,
        default=20_000,
        help="deliveries queued for the connection-refused webhook (default 20000; 0: none)",
    )
    p.add_argument(
        "--drain",
        type=float,
        default=10.0,
        metavar="SECONDS",
        help="how long to wait after the window for missing deliveries (default 10)",
    )
    p.add_argument("--payload-bytes", type=int, default=1024, help="size of each event's data")
    p.add_argument("--workers", type=int, help="hookd processes on PostgreSQL (default 2)")
    p.add_argument("--receiver", choices=("auto", "nginx", "python"), default="auto")
    p.add_argument("--no-install", action="store_true", help="never apt-get install nginx")
    p.add_argument("--hookd", help="the `hookd` executable (default: the one next to this Python)")
    p.add_argument(
        "--wait-quiet",
        type=float,
        default=0.0,
        metavar="SECONDS",
        help="first wait (at most this long) until other processes use < 0.25 cores",
    )
    add_set_option(p)
    a = p.parse_args(argv)
    settings = hookd_settings(p, a.set)
    if not 0 < a.window <= 600:
        p.error("--window must be in (0, 600] seconds")
    if not 0 < a.rate <= 5000:
        p.error("--rate must be in (0, 5000] events/s")
    if not 0 <= a.backlog <= 1_000_000:
        p.error("--backlog must be in [0, 1000000]")
    if not 0 <= a.drain <= 600:
        p.error("--drain must be in [0, 600] seconds")
    if a.workers is not None and a.workers < 1:
        p.error("--workers must be ≥ 1")
    return IsolationConfig(
        backends=("sqlite", "postgres") if a.backend == "both" else (a.backend,),
        window_s=a.window,
        rate=a.rate,
        backlog=a.backlog,
        drain_s=a.drain,
        payload_bytes=a.payload_bytes,
        workers=a.workers,
        hookd=a.hookd,
        hookd_settings=settings,
        receiver=a.receiver,
        install_nginx=not a.no_install,
        wait_quiet_s=max(0.0, a.wait_quiet),
    )


def _on_sigterm(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt  # unwinds through every `finally`, which kills the children


def main(argv: list[str] | None = None) -> int:
    cfg = parse_args(argv)
    signal.signal(signal.SIGTERM, _on_sigterm)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    results: dict[str, Any] = {
        "started": time.strftime("%Y-%m-%d %H:%M:%S%z"),
        "machine": machine.describe(),
    }
    t0 = time.monotonic()
    code = 0
    try:
        if cfg.wait_quiet_s > 0:
            say(f"waiting up to {cfg.wait_quiet_s:.0f}s for the machine to be quiet")
            results["load_before_start_cores"] = machine.wait_quiet(cfg.wait_quiet_s)
            say(f"machine load before start: {results['load_before_start_cores']} cores")
        results["isolation"] = run_isolation(cfg)
        if any("error" in run for run in results["isolation"]["runs"].values()):
            code = 1
    except KeyboardInterrupt:
        say("interrupted: children killed")
        code = 130
    finally:
        results["duration_s"] = round(time.monotonic() - t0, 1)
        path = write_json(results, f"isolation-{stamp}")
        if "isolation" in results:
            print_isolation(results)
        say(f"results: {path} ({results['duration_s']}s)")
    return code


if __name__ == "__main__":
    sys.exit(main())
