"""``python -m bench``: ceiling, then hookd on each backend; tables on stdout, JSON in results/."""

from __future__ import annotations

import dataclasses
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from types import FrameType
from typing import Any

from bench import hostile, machine, publish_only, transactional_publish
from bench.backlog import run_backlog
from bench.ceiling import run_ceiling
from bench.config import BenchConfig, parse_args
from bench.console import say
from bench.hookd_proc import HarnessError
from bench.hookd_run import run_backend
from bench.isolation import IsolationConfig, run_isolation
from bench.payload import run_tag
from bench.postgres import ThrowAwayDatabase
from bench.receiver import Receiver
from bench.report import print_tables, write_json


def _on_sigterm(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt  # unwinds through every `finally`, which kills the children


def _run(cfg: BenchConfig, results: dict[str, Any]) -> int:
    code = 0
    with tempfile.TemporaryDirectory(prefix="hookd-bench-rx-") as rx_dir:
        receiver = Receiver(Path(rx_dir), prefer=cfg.receiver, allow_install=cfg.install_nginx)
        try:
            results["receiver"] = {"kind": receiver.kind, "port": receiver.port}
            say(f"receiver: {receiver.kind} on {receiver.url('/')}")
            ceiling_rate = None
            if cfg.ceiling:
                ceiling = run_ceiling(
                    receiver,
                    cfg.deliveries,
                    cfg.webhooks,
                    cfg.payload_bytes,
                    cfg.deadline_s,
                    run_tag(),
                )
                results["ceiling"] = ceiling
                value = ceiling.get("deliveries_per_s")
                ceiling_rate = float(value) if isinstance(value, int | float) else None
                say(f"ceiling: {ceiling_rate} deliveries/s")
            for backend in cfg.backends:
                if backend == "postgres":
                    why = ThrowAwayDatabase().available()
                    if why is not None:
                        say(f"postgres: SKIPPED, PostgreSQL does not answer on 127.0.0.1 ({why})")
                        results["runs"][backend] = {"skipped": f"PostgreSQL unavailable: {why}"}
                        continue
                try:
                    results["runs"][backend] = run_backend(cfg, backend, receiver, ceiling_rate)
                    _add_cpu_ratio(results["runs"][backend], results.get("ceiling"))
                except HarnessError as exc:
                    say(f"{backend}: FAILED: {exc}")
                    results["runs"][backend] = {"error": str(exc)}
                    code = 1
                    continue
                if cfg.quick and _incomplete(results["runs"][backend]):
                    code = 1  # deliveries missing at the deadline: lost or stalled, not just slow
        finally:
            receiver.close()
    if cfg.backlog_rows:
        results["backlog"] = run_backlog(list(cfg.backends), cfg.backlog_rows)
    if not cfg.quick and "sqlite" in cfg.backends:
        results["trigger_overhead"] = _trigger_overhead()
    if not cfg.quick:
        results["publish_only"] = _publish_only(cfg.backends)
    results["transactional_publish"] = _transactional_publish(cfg.backends, cfg.quick)
    if cfg.isolation and not cfg.quick:
        results["isolation"] = run_isolation(IsolationConfig.from_bench(cfg))
        if any("error" in run for run in results["isolation"]["runs"].values()):
            code = 1
    if not cfg.quick and "sqlite" in cfg.backends:
        found: dict[str, Any] = {}
        results["hostile"] = found
        _hostile(cfg, found)
    return code


def _hostile(cfg: BenchConfig, found: dict[str, Any]) -> None:
    """/healthz and a publish with 20 hostile clients of each kind (bench/hostile.py), SQLite."""
    say("hostile clients: every kind at once, SQLite, 10 s windows")
    settings = hostile.HostileConfig(window_s=10.0, hookd=cfg.hookd, settings=cfg.hookd_settings)
    try:
        hostile.run(settings, found)
    except HarnessError as exc:
        say(f"hostile clients: FAILED: {exc}")
        found["error"] = str(exc)


def _publish_only(backends: tuple[str, ...]) -> dict[str, Any]:
    """The publish API with nothing delivering beside it (bench/publish_only.py)."""
    found: dict[str, Any] = {}
    for backend in backends:
        say(f"publish only: {backend}, serve --no-worker, 100 requests of 100 events")
        if backend == "sqlite":
            found[backend] = publish_only.run(None, 100, 4)
        else:
            database = ThrowAwayDatabase()
            if database.available() is not None:
                continue
            with database:
                found[backend] = publish_only.run(database.url, 100, 4)
        say(f"publish only: {backend}: {found[backend]}")
    return found


def _transactional_publish(backends: tuple[str, ...], quick: bool) -> dict[str, Any]:
    """`hookd.publish` in transactions of 100 against the HTTP API's rate, measured in the same
    run (bench/transactional_publish.py)."""
    # --quick: a smoke run on SQLite alone (starting `hookd serve` is most of its time).
    events, http_batches = (2_000, 10) if quick else (100_000, 100)
    found: dict[str, Any] = {}
    for backend in ("sqlite",) if quick and "sqlite" in backends else backends:
        say(f"transactional publish: {backend}, {events} events in transactions of 100")
        if backend == "sqlite":
            found[backend] = transactional_publish.run(None, events, http_batches)
        else:
            database = ThrowAwayDatabase()
            if database.available() is not None:
                continue
            with database:
                found[backend] = transactional_publish.run(database.url, events, http_batches)
        say(f"transactional publish: {backend}: {found[backend]}")
    return found


def _trigger_overhead() -> list[str]:
    """The blocking trigger's own latency (bench/trigger_overhead.py), on SQLite."""
    say("trigger overhead: 1000 sequential blocking triggers, SQLite")
    done = subprocess.run(
        [sys.executable, "-m", "bench.trigger_overhead", "-n", "1000"],
        capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    lines = done.stdout.strip().splitlines()
    for line in lines:
        say(f"trigger overhead: {line}")
    return lines


def _add_cpu_ratio(run: dict[str, Any], ceiling: dict[str, Any] | None) -> None:
    """Ceiling CPU per delivery ÷ hookd CPU per delivery: less sensitive to a busy machine
    than the ratio of rates, since each side is charged only for its own CPU."""
    ours = run["throughput"]["cpu"]["hookd"].get("cpu_s_per_1000")
    theirs = (ceiling or {}).get("cpu_per_1000")
    if ours and theirs:
        run["throughput"]["cpu_ratio_to_ceiling"] = round(theirs / ours, 3)


def _incomplete(run: dict[str, Any]) -> bool:
    return any(not part.get("complete", True) for part in run.values() if isinstance(part, dict))


def main(argv: list[str] | None = None) -> int:
    cfg = parse_args(argv)
    signal.signal(signal.SIGTERM, _on_sigterm)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    results: dict[str, Any] = {
        "started": time.strftime("%Y-%m-%d %H:%M:%S%z"),
        "machine": machine.describe(),
        "config": dataclasses.asdict(cfg),
        "runs": {},
    }
    t0 = time.monotonic()
    code = 2
    try:
        if cfg.wait_quiet_s > 0:
            say(f"waiting up to {cfg.wait_quiet_s:.0f}s for the machine to be quiet")
            load = machine.wait_quiet(cfg.wait_quiet_s)
            results["load_before_start_cores"] = load
            say(f"machine load before start: {load} cores")
        code = _run(cfg, results)
    except KeyboardInterrupt:
        say("interrupted: children killed, partial results follow")
        code = 130
    finally:
        results["duration_s"] = round(time.monotonic() - t0, 1)
        results["exit_code"] = code
        path = write_json(results, stamp)
        print_tables(results)
        if results.get("hostile"):
            hostile.print_tables(results["hostile"])
        say(f"results: {path} ({results['duration_s']}s)")
    return code


if __name__ == "__main__":
    sys.exit(main())
