"""Knobs of a benchmark run (command-line flags) and their defaults."""

from __future__ import annotations

import argparse
from dataclasses import dataclass


@dataclass(frozen=True)
class BenchConfig:
    quick: bool
    backends: tuple[str, ...]
    events: int
    webhooks: int
    batch: int
    payload_bytes: int
    workers: int | None  # None: 2 on PostgreSQL (serve + 1 worker), 1 on SQLite
    publishers: int
    deadline_s: float
    latency: bool
    latency_events: int | None
    latency_rate: float | None
    latency_batch: int | None  # events per request in the latency run; None: rate ÷ 50, rounded up
    receiver: str
    install_nginx: bool
    ceiling: bool
    hookd: str | None  # the `hookd` executable; None: the one next to this Python
    hookd_settings: dict[str, str]  # extra HOOKD_* settings for every hookd process
    wait_quiet_s: float  # wait up to this long for the machine to be idle before starting
    backlog_rows: int  # pending deliveries of the claim-under-backlog run; 0 skips it
    isolation: bool = True  # the isolation scenario (bench/isolation.py); never with --quick

    def workers_for(self, backend: str) -> int:
        if backend == "sqlite":
            return 1
        return self.workers if self.workers is not None else 2

    @property
    def deliveries(self) -> int:
        return self.events * self.webhooks


def add_set_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="HOOKD_NAME=VALUE",
        help="a hookd setting for every hookd process the bench starts (repeatable)",
    )


def hookd_settings(parser: argparse.ArgumentParser, items: list[str]) -> dict[str, str]:
    """The `--set` values as environment variables; a malformed one is a usage error."""
    settings: dict[str, str] = {}
    for item in items:
        name, sep, value = item.partition("=")
        if not sep or not name.startswith("HOOKD_"):
            parser.error(f"--set {item!r}: expected HOOKD_NAME=VALUE")
        settings[name] = value
    return settings


def parse_args(argv: list[str] | None = None) -> BenchConfig:
    p = argparse.ArgumentParser(
        prog="python -m bench",
        description="hookd benchmark: ceiling client vs hookd on SQLite and PostgreSQL. "
        "All traffic goes to 127.0.0.1.",
    )
    p.add_argument("--quick", action="store_true", help="CI smoke run: small, well under a minute")
    p.add_argument("--backend", choices=("sqlite", "postgres", "both"), default="both")
    p.add_argument("--events", type=int, help="events per throughput run (default 5000; quick 200)")
    p.add_argument("--webhooks", type=int, default=10, help="webhooks, each gets every event")
    p.add_argument("--batch", type=int, default=100, help="events per publish request (≤ 1000)")
    p.add_argument("--payload-bytes", type=int, default=1024, help="size of each event's data")
    p.add_argument(
        "--workers",
        type=int,
        help="hookd processes on PostgreSQL: serve + N-1 `hookd worker` (default 2). "
        "SQLite always runs serve's embedded worker only",
    )
    p.add_argument("--publishers", type=int, default=4, help="concurrent publishing tasks")
    p.add_argument(
        "--deadline",
        type=float,
        help="seconds a throughput run may take, publish to last arrival (default 90; quick 20)",
    )
    p.add_argument("--no-latency", action="store_true", help="skip the paced latency run")
    p.add_argument("--latency-events", type=int, help="events in the latency run")
    p.add_argument(
        "--latency-rate",
        type=float,
        help="events/s in the latency run (default: half the event rate the throughput run "
        "sustained)",
    )
    p.add_argument(
        "--latency-batch",
        type=int,
        help="events per request in the latency run (default: enough for 50 requests/s)",
    )
    p.add_argument("--receiver", choices=("auto", "nginx", "python"), default="auto")
    p.add_argument("--no-install", action="store_true", help="never apt-get install nginx")
    p.add_argument("--no-ceiling", action="store_true", help="skip the bare-client ceiling")
    p.add_argument(
        "--backlog",
        type=int,
        help="pending deliveries for the claims-under-backlog run (default 1000000; quick 0)",
    )
    p.add_argument(
        "--no-isolation",
        action="store_true",
        help="skip the isolation scenario (bench/isolation.py; full run only, ~3 min per store)",
    )
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
    settings = hookd_settings(p, a.set)
    backends = ("sqlite", "postgres") if a.backend == "both" else (a.backend,)
    events = a.events if a.events is not None else (200 if a.quick else 5000)
    for name, value in (("--events", events), ("--webhooks", a.webhooks), ("--batch", a.batch)):
        if value < 1:
            p.error(f"{name} must be ≥ 1")
    if a.batch > 1000:
        p.error("--batch: hookd accepts at most 1000 events per request")
    if a.latency_batch is not None and not 1 <= a.latency_batch <= 1000:
        p.error("--latency-batch must be between 1 and 1000")
    if a.workers is not None and a.workers < 1:
        p.error("--workers must be ≥ 1")
    return BenchConfig(
        quick=a.quick,
        backends=backends,
        events=events,
        webhooks=a.webhooks,
        batch=a.batch,
        payload_bytes=a.payload_bytes,
        workers=a.workers,
        publishers=max(1, a.publishers),
        deadline_s=a.deadline if a.deadline is not None else (20.0 if a.quick else 90.0),
        latency=not a.no_latency,
        latency_events=a.latency_events,
        latency_rate=a.latency_rate,
        latency_batch=a.latency_batch,
        receiver=a.receiver,
        install_nginx=not a.no_install,
        ceiling=not a.no_ceiling,
        hookd=a.hookd,
        hookd_settings=settings,
        wait_quiet_s=max(0.0, a.wait_quiet),
        backlog_rows=a.backlog if a.backlog is not None else (0 if a.quick else 1_000_000),
        isolation=not a.quick and not a.no_isolation,
    )
