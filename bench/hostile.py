"""hookd under hostile clients: `python -m bench.hostile [--kinds a,b] [--window S] [--postgres]`.

Starts one `hookd serve` (a fresh SQLite store, or a throw-away PostgreSQL database with
--postgres) and a validation-hook receiver, then measures, from a well-behaved prober, how long
`GET /healthz` and a logged-in single-event publish take to answer (each on its own keep-alive
connection, one request every ~20 ms):

  1. quiet:  for --window seconds with nothing else running;
  2. attack: for --window seconds while --clients (20) hostile clients of each chosen kind run,
     each kind in its own process, after a --ramp of 2 s:
       huge-accept   GET /r/x with an 8 MB Accept header, unauthenticated, repeatedly (its
                     first item differs per request, so no cache of parsed values helps)
       huge-headers  GET /healthz with a 1 MB block of other headers, repeatedly
       bad-login     POST /api/v1/login as admin with wrong passwords, back to back
       big-body      POST /api/v1/events, valid token, a 32 MiB array whose last event is too
                     large (413 after parsing it all; nothing is stored), repeatedly
       slow-loris    20 connections per client sending a request head a byte every 2 s
       slow-hook     triggers (4 waiting per client) of a repository whose blocking hook
                     answers after 8 s; the prober then also triggers a second repository
                     whose hook answers at once and checks it is allowed.
     A client sends at most --client-rate (20) requests/s, so a server that refuses at once
     does not turn a kind into a connection flood that would measure the machine instead.

The target: under attack, every probe's p99 ≤ 50 ms with no errors. Prints the tables and writes
bench/results/<timestamp>-hostile.json. With --check the exit code is 1 when a probe misses it.
All traffic goes to 127.0.0.1; every loop is bounded in count and time; every child is killed.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import os
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import Any

import orjson
import uvloop
from rich.console import Console
from rich.table import Table

from bench import machine, procstat
from bench.config import add_set_option, hookd_settings
from bench.console import say
from bench.hookd_api import auth, client_session, login
from bench.hookd_proc import HarnessError, HookdProcesses
from bench.hostile_clients import KINDS, MAX_RATE, SLOW_HOOK_INFLIGHT
from bench.hostile_probe import Probe, ProbeLog, probes, run_probes, summary, time_to_recover
from bench.postgres import ThrowAwayDatabase
from bench.procs import ProcessGroup, free_port, tail, wait_port
from bench.report import NOISY_CORES, _ms, _n, write_json

ROOT = Path(__file__).resolve().parent.parent
SLOW_REPO, FAST_REPO = "hostile-slow", "hostile-fast"
EVENT = "document.beforecreate"
START_LEAD_S = 1.5  # for the client processes to import and build their buffers
CLIENT_EXIT_GRACE_S = 15.0
RECOVERY_LIMIT_S = 30.0


@dataclass(frozen=True)
class HostileConfig:
    backend: str = "sqlite"
    kinds: tuple[str, ...] = KINDS
    window_s: float = 15.0
    ramp_s: float = 2.0
    clients: int = 20
    interval_s: float = 0.02
    hook_delay_s: float = 8.0
    client_rate: float = MAX_RATE
    slow_hook_inflight: int = SLOW_HOOK_INFLIGHT
    target_ms: float = 50.0
    hookd: str | None = None
    settings: dict[str, str] = field(default_factory=dict)


def _kinds(parser: argparse.ArgumentParser, value: str) -> tuple[str, ...]:
    if value.strip() == "all":
        return KINDS
    chosen = tuple(k.strip() for k in value.split(",") if k.strip())
    unknown = [k for k in chosen if k not in KINDS]
    if unknown or not chosen:
        parser.error(f"--kinds: unknown {unknown}; choose from all, {', '.join(KINDS)}")
    return tuple(k for k in KINDS if k in chosen)


def parse_args(argv: list[str] | None = None) -> tuple[HostileConfig, argparse.Namespace]:
    p = argparse.ArgumentParser(
        prog="python -m bench.hostile",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--kinds", default="all", help=f"'all' or some of: {','.join(KINDS)}")
    p.add_argument("--postgres", action="store_true", help="a throw-away PostgreSQL database")
    p.add_argument("--window", type=float, default=15.0, help="seconds of each measured phase")
    p.add_argument("--ramp", type=float, default=2.0, help="seconds of attack before measuring")
    p.add_argument("--clients", type=int, default=20, help="hostile clients of each kind")
    p.add_argument("--interval", type=float, default=0.02, help="seconds between a probe's sends")
    p.add_argument("--hook-delay", type=float, default=8.0, help="seconds the slow hook takes")
    p.add_argument(
        "--client-rate",
        type=float,
        default=MAX_RATE,
        help="requests/s one hostile client sends at most (default %(default)s)",
    )
    p.add_argument(
        "--slow-hook-inflight",
        type=int,
        default=SLOW_HOOK_INFLIGHT,
        help="triggers each slow-hook client keeps waiting at once (default %(default)s)",
    )
    p.add_argument("--target-ms", type=float, default=50.0, help="the p99 target")
    p.add_argument("--check", action="store_true", help="exit 1 when a probe misses the target")
    p.add_argument(
        "--wait-quiet",
        type=float,
        default=0.0,
        metavar="SECONDS",
        help="first wait (at most this long) until other processes use < 0.25 cores",
    )
    p.add_argument("--hookd", help="the `hookd` executable (default: the one next to this Python)")
    add_set_option(p)
    a = p.parse_args(argv)
    if not 1 <= a.window <= 300:
        p.error("--window must be between 1 and 300 seconds")
    if not 0 <= a.ramp <= 30:
        p.error("--ramp must be between 0 and 30 seconds")
    if not 1 <= a.clients <= 100:
        p.error("--clients must be between 1 and 100")
    if not 0.001 <= a.interval <= 1:
        p.error("--interval must be between 0.001 and 1 second")
    if not 0.1 <= a.client_rate <= 1000:
        p.error("--client-rate must be between 0.1 and 1000")
    if not 1 <= a.slow_hook_inflight <= 50:
        p.error("--slow-hook-inflight must be between 1 and 50")
    if not 0 <= a.hook_delay <= 60:
        p.error("--hook-delay must be between 0 and 60 seconds")
    cfg = HostileConfig(
        backend="postgres" if a.postgres else "sqlite",
        kinds=_kinds(p, a.kinds),
        window_s=a.window,
        ramp_s=a.ramp,
        clients=a.clients,
        interval_s=a.interval,
        hook_delay_s=a.hook_delay,
        client_rate=a.client_rate,
        slow_hook_inflight=a.slow_hook_inflight,
        target_ms=a.target_ms,
        hookd=a.hookd,
        settings=hookd_settings(p, a.set),
    )
    return cfg, a


# --- set-up ------------------------------------------------------------------------------------


async def _set_up(base: str, password: str, receiver_port: int) -> str:
    """Logs in; creates the slow and the fast repository, each with one blocking hook."""
    async with client_session(2) as session:
        token = await login(session, base, password)
        for repo, path in ((SLOW_REPO, "/slow"), (FAST_REPO, "/fast")):
            async with session.put(
                f"{base}/r/{repo}", json={"name": repo}, headers=auth(token)
            ) as resp:
                if resp.status not in (200, 201):
                    raise HarnessError(f"PUT /r/{repo} → {resp.status} {await resp.text()}")
            hook = {
                "uri": f"http://127.0.0.1:{receiver_port}{path}",
                "description": f"answers {path[1:]}",
                "enabled": True,
                "handleResponse": "STATUS",
                "timeout": 8000,
                "retry": False,
            }
            async with session.post(
                f"{base}/r/{repo}/events/{EVENT}", json=hook, headers=auth(token)
            ) as resp:
                if resp.status != 201:
                    raise HarnessError(
                        f"creating the {repo} hook → {resp.status} {await resp.text()}"
                    )
        async with session.post(
            f"{base}/r/{FAST_REPO}/events/{EVENT}/trigger", json={}, headers=auth(token)
        ) as resp:
            answer = await resp.read()
            if resp.status != 200 or orjson.loads(answer).get("allowed") is not True:
                raise HarnessError(f"the fast hook's trigger → {resp.status} {answer[:300]!r}")
    return token


# --- phases -----------------------------------------------------------------------------------


class WindowCpu:
    """CPU used during the window (read at its edges), in cores: hookd, the hostile clients,
    this process (the prober), and the rest of the machine ("other": not ours)."""

    def __init__(self, hookd: procstat.PidSource, clients: procstat.PidSource) -> None:
        self.sources = {"hookd": hookd, "clients": clients}
        self.marks: list[tuple[float, float, float, dict[str, float]]] = []

    def mark(self) -> None:
        groups = {
            name: sum(procstat.cpu_seconds(pid) or 0.0 for pid in source())
            for name, source in self.sources.items()
        }
        self.marks.append(
            (time.monotonic(), procstat.machine_busy_seconds(), procstat.rusage_self_cpu(), groups)
        )

    async def around(self, start_at: float, stop_at: float) -> None:
        await asyncio.sleep(max(0.0, start_at - time.time()))
        self.mark()
        await asyncio.sleep(max(0.0, stop_at - time.time()))
        self.mark()

    def cores(self) -> dict[str, float | None]:
        if len(self.marks) < 2:
            return {}
        (t0, busy0, self0, g0), (t1, busy1, self1, g1) = self.marks[:2]
        seconds = t1 - t0
        found = {name: (g1[name] - g0[name]) / seconds for name in g0}
        found["prober"] = (self1 - self0) / seconds
        found["other"] = max(0.0, (busy1 - busy0) / seconds - sum(found.values()))
        return {name: round(value, 2) for name, value in found.items()}


async def _probe_window(
    base: str, chosen: list[Probe], start_at: float, stop_at: float, interval_s: float,
    cpu: WindowCpu,
) -> dict[str, ProbeLog]:  # fmt: skip
    logs, _ = await asyncio.gather(
        run_probes(base, chosen, start_at, stop_at, interval_s), cpu.around(start_at, stop_at)
    )
    return logs


def _measure(
    cfg: HostileConfig,
    hookd: HookdProcesses,
    chosen: list[Probe],
    start_at: float,
    stop_at: float,
    clients: procstat.PidSource,
) -> dict[str, Any]:
    cpu = WindowCpu(hookd.pids, clients)
    sampler = procstat.Sampler({"hookd": hookd.pids}, interval=0.5).start()
    try:
        logs = uvloop.run(
            _probe_window(hookd.base_url, chosen, start_at, stop_at, cfg.interval_s, cpu)
        )
    finally:
        rss = sampler.stop()["hookd"].rss_peak_kib
    return {
        "probes": {p.name: summary(p, logs[p.name], cfg.interval_s, cfg.target_ms) for p in chosen},
        "cpu_cores": cpu.cores(),
        "hookd_rss_peak_mib": round(rss / 1024),
    }


def _attack(
    cfg: HostileConfig,
    hookd: HookdProcesses,
    chosen: list[Probe],
    token: str,
    workdir: Path,
) -> dict[str, Any]:
    begin = time.time() + START_LEAD_S
    start_at = begin + cfg.ramp_s
    stop_at = start_at + cfg.window_s
    env = {k: v for k, v in os.environ.items() if not k.startswith("HOOKD_")}
    env["HOOKD_BENCH_TOKEN"] = token
    started: dict[str, tuple[subprocess.Popen[bytes], Path, Path]] = {}
    with ProcessGroup() as clients:
        for kind in cfg.kinds:
            out, log = workdir / f"clients-{kind}.json", workdir / f"clients-{kind}.log"
            argv = [
                sys.executable, "-m", "bench.hostile_clients", "--kind", kind,
                "--port", str(hookd.port), "--clients", str(cfg.clients),
                "--start-at", repr(begin), "--stop-at", repr(stop_at),
                "--slow-repo", SLOW_REPO, "--out", str(out), "--rate", str(cfg.client_rate),
                "--inflight", str(cfg.slow_hook_inflight),
            ]  # fmt: skip
            started[kind] = (clients.start(kind, argv, log=log, cwd=ROOT, env=env), out, log)
        say(
            f"hostile: {cfg.clients} clients × {', '.join(cfg.kinds)}; measuring "
            f"{cfg.ramp_s:g}s after they start, for {cfg.window_s:g}s"
        )
        phase = _measure(cfg, hookd, chosen, start_at, stop_at, clients.pids)
        for proc, _, _ in started.values():
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=max(0.1, stop_at + CLIENT_EXIT_GRACE_S - time.time()))
    # The clients are gone (killed if need be): how long until hookd answers quickly again?
    phase["recovery_s"] = uvloop.run(
        time_to_recover(hookd.base_url, cfg.target_ms, RECOVERY_LIMIT_S)
    )
    phase["kinds"] = {}
    for kind, (_, out, log) in started.items():
        try:
            phase["kinds"][kind] = orjson.loads(out.read_bytes())
        except (OSError, orjson.JSONDecodeError):
            phase["kinds"][kind] = {"error": f"no result from the {kind} clients:\n{tail(log)}"}
    dead = hookd.group.dead()
    if dead:
        label, code, log = dead[0]
        phase["hookd_died"] = f"`hookd {label}` exited with {code}: {tail(log, 10)}"
    return phase


def run(cfg: HostileConfig, results: dict[str, Any] | None = None) -> dict[str, Any]:
    """One hookd, a quiet window, then the attack window: the figures, added to ``results``
    as they come (so an interrupted run keeps what it measured)."""
    results = {} if results is None else results
    results.update(
        started=time.strftime("%Y-%m-%d %H:%M:%S%z"),
        config=dataclasses.asdict(cfg),
    )
    with contextlib.ExitStack() as stack:
        workdir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="hookd-hostile-")))
        url = f"sqlite:///{workdir}/hookd.db"
        if cfg.backend == "postgres":
            database = ThrowAwayDatabase()
            why = database.available()
            if why is not None:
                raise HarnessError(f"PostgreSQL does not answer on 127.0.0.1 ({why})")
            url = stack.enter_context(database).url
        helpers = stack.enter_context(ProcessGroup())
        rx_port = free_port()
        rx = helpers.start(
            "hook-receiver",
            [sys.executable, "-m", "bench.hook_receiver", "--port", str(rx_port),
             "--slow-s", str(cfg.hook_delay_s)],
            log=workdir / "hook-receiver.log", cwd=ROOT,
        )  # fmt: skip
        if not wait_port(rx_port, 15, rx):
            raise HarnessError(
                f"the hook receiver did not start:\n{tail(workdir / 'hook-receiver.log')}"
            )
        hookd = stack.enter_context(
            HookdProcesses(workdir, url, 1, binary=cfg.hookd, settings=cfg.settings)
        )
        hookd.start()
        token = uvloop.run(_set_up(hookd.base_url, hookd.password, rx_port))
        chosen = probes(token, FAST_REPO if "slow-hook" in cfg.kinds else None)
        say(f"hostile: quiet baseline, {cfg.window_s:g}s")
        begin = time.time() + 0.5
        results["quiet"] = _measure(cfg, hookd, chosen, begin, begin + cfg.window_s, lambda: {})
        results["attack"] = _attack(cfg, hookd, chosen, token, workdir)
    return results


# --- report -----------------------------------------------------------------------------------


def _outcomes(outcomes: dict[str, int]) -> str:
    return ", ".join(f"{k} ×{v:,}" for k, v in sorted(outcomes.items(), key=lambda kv: -kv[1]))


def _kind_note(kind: str, tally: dict[str, Any], attack: dict[str, Any]) -> str:
    if kind == "slow-loris":
        s = tally.get("slow_loris") or {}
        return (
            f"{s.get('open_at_end')} of {s.get('connections_opened')} connections open at the "
            f"end ({s.get('open_whole_window')} the whole window)"
        )
    if kind == "slow-hook":
        fast = attack.get("probes", {}).get("fast-trigger") or {}
        return (
            f"fast repo's trigger p99 {_ms(fast.get('p99_ms'))} ms, allowed "
            f"{fast.get('allowed')}/{fast.get('samples')}"
        )
    sent = tally.get("bytes_sent") or 0
    return f"{sent / 1e6:,.0f} MB sent" if sent >= 1e6 else ""


def print_tables(results: dict[str, Any], console: Console | None = None) -> None:
    if console is None:
        console = Console()
        if not console.is_terminal:
            console = Console(width=200)
    cfg = results.get("config", {})
    target = cfg.get("target_ms", 50.0)
    kinds = ", ".join(cfg.get("kinds", ()))
    console.print(
        f"[bold]hookd under hostile clients[/bold] {results.get('started')}  ·  "
        f"{cfg.get('backend')}  ·  {cfg.get('clients')} clients of each of: {kinds}  ·  "
        f"window {cfg.get('window_s')}s"
    )
    if "error" in results:
        console.print(f"[red]hostile: FAILED — {results['error']}[/red]")
    t = Table(
        title=f"Probes (ms): quiet vs under attack; target p99 ≤ {target:g} ms, no errors",
        caption="one request every ~20 ms per probe, each on its own keep-alive connection · "
        "p99 corr.: p99 counting the requests a stalled probe could not send "
        "(coordinated omission) · errors: non-2xx, timeouts (10 s), resets",
    )
    for col in ("probe", "phase", "samples", "p50", "p95", "p99", "max", "p99 corr.", "errors"):
        t.add_column(col, justify="left" if col in ("probe", "phase") else "right")
    t.add_column(f"p99 ≤ {target:g}?")
    for when in ("quiet", "attack"):
        for name, f in (results.get(when) or {}).get("probes", {}).items():
            verdict = "[green]yes[/green]" if f.get("meets_target") else "[red]NO[/red]"
            t.add_row(
                name, when, _n(f.get("samples")), _ms(f.get("p50_ms")), _ms(f.get("p95_ms")),
                _ms(f.get("p99_ms")), _ms(f.get("max_ms")), _ms(f.get("p99_corrected_ms")),
                _n(f.get("errors")), verdict,
            )  # fmt: skip
    console.print(t)
    attack = results.get("attack") or {}
    k = Table(
        title="Hostile clients (under attack)",
        caption="outcomes: HTTP status, or dropped (closed unanswered), reset, unanswered (still "
        "waiting at the end), open-at-end (slow-loris)",
    )
    for col in ("kind", "clients", "requests", "outcomes", "note"):
        k.add_column(col, justify="right" if col in ("clients", "requests") else "left")
    for kind, tally in (attack.get("kinds") or {}).items():
        if "error" in tally:
            k.add_row(kind, "–", "–", "[red]no result[/red]", tally["error"][-200:])
            continue
        k.add_row(
            kind,
            _n(tally.get("clients")),
            _n(tally.get("requests")),
            _outcomes(tally.get("outcomes") or {}),
            _kind_note(kind, tally, attack),
        )
    if k.row_count:
        console.print(k)
    quiet = results.get("quiet") or {}
    for label, phase in (("quiet", quiet), ("attack", attack)):
        cores = phase.get("cpu_cores") or {}
        if not cores:
            continue
        line = (
            f"{label}: CPU cores used by hookd {_n(cores.get('hookd'), 2)}, the hostile clients "
            f"{_n(cores.get('clients'), 2)}, the prober {_n(cores.get('prober'), 2)}, "
            f"[bold]other processes {_n(cores.get('other'), 2)}[/bold]; hookd peak RSS "
            f"{_n(phase.get('hookd_rss_peak_mib'))} MiB"
        )
        if label == "attack":
            line += (
                f"; healthz within {target:g} ms again {_n(attack.get('recovery_s'), 2)} s "
                "after the clients stopped"
            )
        console.print(line)
    busy = [n for n, p in (("quiet", quiet), ("attack", attack)) if _other(p) > NOISY_CORES]
    if busy:
        console.print(
            f"[yellow]Other processes used > {NOISY_CORES} cores during {' and '.join(busy)}: "
            "those figures are noisy.[/yellow]"
        )
    if attack.get("hookd_died"):
        console.print(f"[red]{attack['hookd_died']}[/red]")


def _other(phase: dict[str, Any]) -> float:
    return float((phase.get("cpu_cores") or {}).get("other") or 0.0)


def missed_target(results: dict[str, Any]) -> list[str]:
    probes_ = (results.get("attack") or {}).get("probes") or {}
    return [name for name, f in probes_.items() if not f.get("meets_target")]


def _on_sigterm(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt  # unwinds through every `finally`, which kills the children


def main(argv: list[str] | None = None) -> int:
    cfg, args = parse_args(argv)
    signal.signal(signal.SIGTERM, _on_sigterm)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    results: dict[str, Any] = {"machine": machine.describe()}
    t0 = time.monotonic()
    code = 2
    try:
        if args.wait_quiet > 0:
            say(f"waiting up to {args.wait_quiet:.0f}s for the machine to be quiet")
            results["load_before_start_cores"] = machine.wait_quiet(args.wait_quiet)
            say(f"machine load before start: {results['load_before_start_cores']} cores")
        run(cfg, results)
        code = 1 if args.check and missed_target(results) else 0
    except HarnessError as exc:
        results["error"] = str(exc)
        code = 1
    except KeyboardInterrupt:
        say("interrupted: children killed, partial results follow")
        code = 130
    finally:
        results.setdefault("config", dataclasses.asdict(cfg))
        results["duration_s"] = round(time.monotonic() - t0, 1)
        results["exit_code"] = code
        path = write_json(results, f"{stamp}-hostile")
        print_tables(results)
        say(f"results: {path} ({results['duration_s']}s)")
    return code


if __name__ == "__main__":
    sys.exit(main())
