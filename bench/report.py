"""The result: tables on stdout, JSON in bench/results/<timestamp>.json."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson
from rich.console import Console
from rich.table import Table

RESULTS_DIR = Path(__file__).resolve().parent / "results"


def write_json(results: dict[str, Any], stamp: str) -> Path:
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    path = RESULTS_DIR / f"{stamp}.json"
    path.write_bytes(orjson.dumps(results, option=orjson.OPT_INDENT_2))
    return path


def _n(value: object, digits: int = 0) -> str:
    if value is None:
        return "–"
    if isinstance(value, float):
        return f"{value:,.{digits}f}"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)


def _ms(value: object) -> str:
    """Milliseconds: one decimal below 100 ms, none above."""
    if isinstance(value, int | float):
        return f"{value:,.1f}" if value < 100 else f"{value:,.0f}"
    return "–"


def _get(d: object, *keys: str) -> Any:
    for key in keys:
        if not isinstance(d, dict):
            return None
        d = d.get(key)
    return d


def _peak_rss(cpu: object) -> str:
    """Peak RSS per hookd process, serve first, e.g. ``92 / 61``."""
    procs = _get(cpu, "hookd", "processes") or {}
    parts = [f"{p['rss_peak_mib']:.0f}" for p in procs.values()]
    return " / ".join(parts) or "–"


def print_tables(results: dict[str, Any], console: Console | None = None) -> None:
    if console is None:
        console = Console()
        if not console.is_terminal:  # CI logs and pipes: no 80-column squeeze
            console = Console(width=220)
    m = results["machine"]
    cfg = results["config"]
    console.print(
        f"[bold]hookd bench[/bold] {results['started']}  ·  {m['nproc']} cores {m['cpu_model']}, "
        f"{m['mem_total_gib']} GiB  ·  receiver: {results.get('receiver', {}).get('kind')}  ·  "
        f"{cfg['events']} events × {cfg['webhooks']} webhooks, batch {cfg['batch']}, "
        f"{cfg['payload_bytes']} B payload"
    )
    console.print(_throughput_table(results))
    latency = _latency_table(results)
    if latency.row_count:
        console.print(latency)
    backlog = _backlog_table(results)
    if backlog.row_count:
        console.print(backlog)
    if results.get("isolation"):
        print_isolation(results, console, warn_busy=False)
    busy = _busy_phases(results)
    if busy:
        console.print(
            f"[yellow]The machine was busy with other work during {', '.join(busy)} "
            f"(> {NOISY_CORES} cores on average): those figures are noisy.[/yellow]"
        )
    for backend, run in results.get("runs", {}).items():
        if "skipped" in run:
            console.print(f"[yellow]{backend}: skipped — {run['skipped']}[/yellow]")
        if "error" in run:
            console.print(f"[red]{backend}: FAILED — {run['error']}[/red]")
        for phase in ("throughput", "latency_run"):
            part = run.get(phase) or {}
            if part and not part.get("complete", True):
                d = part["delivery"]
                console.print(
                    f"[red]{backend} {phase}: {d['missing']} of {d['expected']} deliveries "
                    f"missing at the deadline[/red] e.g. {d['missing_sample'][:3]}"
                )
            if part.get("hookd_processes_died"):
                console.print(f"[red]{backend}: {part['hookd_processes_died']}[/red]")
            if _get(part, "publish", "first_error"):
                console.print(f"[red]{backend} {phase}: {part['publish']['first_error']}[/red]")


NOISY_CORES = 0.25


def _busy_phases(results: dict[str, Any]) -> list[str]:
    """Phases during which processes other than ours used more than NOISY_CORES cores."""
    out = []
    if (_get(results, "ceiling", "other_cores") or 0) > NOISY_CORES:
        out.append("the ceiling")
    for backend, run in results.get("runs", {}).items():
        for phase in ("throughput", "latency_run"):
            if (_get(run, phase, "cpu", "machine", "other_cores") or 0) > NOISY_CORES:
                out.append(f"{backend} {phase.replace('_run', '')}")
    for backend, run in (_get(results, "isolation", "runs") or {}).items():
        for label in ("alone", "beside"):
            if (_get(run, label, "other_cores") or 0) > NOISY_CORES:
                out.append(f"isolation {backend} {label}")
    return out


def _throughput_table(results: dict[str, Any]) -> Table:
    t = Table(
        title="Throughput: batch publish → deliveries at 127.0.0.1",
        caption="p50/p95/p99: publish sent → arrival, ms · CPU: seconds per 1000 deliveries · "
        "CPU × ceiling: ceiling CPU ÷ hookd CPU per delivery · "
        "×N: hookd processes · rx: receiver · idle: hookd with nothing to do · "
        "other cores: load from processes outside the bench",
    )
    for col in (
        "run",
        "arrived/expected",
        "events in/s",
        "deliveries/s",
        "× ceiling",
        "p50",
        "p95",
        "p99",
        "hookd CPU",
        "CPU × ceiling",
        "PG CPU",
        "rx CPU s",
        "idle CPU %",
        "peak RSS MiB serve/workers",
        "other cores",
    ):
        t.add_column(col, justify="right" if col != "run" else "left")
    c = results.get("ceiling")
    if c:
        t.add_row(
            "ceiling (bare client)",
            f"{_n(c['ok'])}/{_n(c['requested'])}",
            "–",
            _n(c["deliveries_per_s"]),
            "1.00",
            "–",
            "–",
            "–",
            _n(c["cpu_per_1000"], 3),
            "1.00",
            "–",
            _n(c["receiver_cpu_s"], 2),
            "–",
            _n(round(c["rss_peak_kib"] / 1024)),
            _n(c.get("other_cores"), 2),
        )
    for backend, run in results.get("runs", {}).items():
        tp = run.get("throughput")
        if not tp:
            continue
        d, cpu = tp["delivery"], tp["cpu"]
        t.add_row(
            f"{backend} ×{run['workers']}",
            f"{_n(d['arrived'])}/{_n(d['expected'])}",
            _n(tp["publish"]["events_per_s"]),
            _n(d["deliveries_per_s"]),
            _n(tp.get("ratio_to_ceiling"), 2),
            _ms(d["latency"]["p50_ms"]),
            _ms(d["latency"]["p95_ms"]),
            _ms(d["latency"]["p99_ms"]),
            _n(_get(cpu, "hookd", "cpu_s_per_1000"), 3),
            _n(tp.get("cpu_ratio_to_ceiling"), 2),
            _n(_get(cpu, "postgres", "cpu_s_per_1000"), 3),
            _n(_get(cpu, "receiver", "cpu_s"), 2),
            _n(_get(run, "idle", "hookd_cpu_pct"), 1),
            _peak_rss(cpu),
            _n(_get(cpu, "machine", "other_cores"), 2),
        )
    return t


def _latency_table(results: dict[str, Any]) -> Table:
    t = Table(
        title="Latency at a fixed event rate (publish sent → arrival, ms; "
        "call = the POST /api/v1/events round trip)"
    )
    for col in (
        "run",
        "target/s",
        "per call",
        "achieved/s",
        "arrived/expected",
        "p50",
        "p95",
        "p99",
        "max",
        "call p50",
        "call p99",
        "hookd CPU",
    ):
        t.add_column(col, justify="right" if col != "run" else "left")
    for backend, run in results.get("runs", {}).items():
        lat = run.get("latency_run")
        if not lat:
            continue
        d = lat["delivery"]
        req = lat["publish"]["request_latency"]
        t.add_row(
            backend,
            _n(lat["rate_events_per_s"], 1),
            _n(lat.get("events_per_request", 1)),
            _n(lat["publish"]["events_per_s"], 1)
            + (" (saturated)" if lat.get("saturated") else ""),
            f"{_n(d['arrived'])}/{_n(d['expected'])}",
            _ms(d["latency"]["p50_ms"]),
            _ms(d["latency"]["p95_ms"]),
            _ms(d["latency"]["p99_ms"]),
            _ms(d["latency"]["max_ms"]),
            _ms(req["p50_ms"]),
            _ms(req["p99_ms"]),
            _n(_get(lat["cpu"], "hookd", "cpu_s_per_1000"), 3),
        )
    return t


def _backlog_table(results: dict[str, Any]) -> Table:
    t = Table(title="claims under a backlog (batches of 200)", title_justify="left")
    for column in (
        "backend",
        "pending",
        "claim p50 empty",
        "claim p50 backlog",
        "ratio",
        "worker RSS peak",
    ):
        t.add_column(column, justify="right")
    for backend, run in (results.get("backlog") or {}).items():
        if "skipped" in run:
            continue
        t.add_row(
            backend,
            _n(run["pending"]),
            _ms(run["claim_ms_empty_p50"]),
            _ms(run["claim_ms_backlog_p50"]),
            f"{run['claim_ratio']:.2f}",
            f"{run['worker']['rss_peak_mib']:.0f} MiB",
        )
    return t


def _bound(value: object, lower: bool) -> str:
    return ("≥ " if lower and value is not None else "") + _ms(value)


def _ratio(value: object, lower: bool) -> str:
    if not isinstance(value, int | float):
        return "–"
    return f"{'≥ ' if lower else ''}{value:,.2f}×"


def print_isolation(
    results: dict[str, Any], console: Console | None = None, warn_busy: bool = True
) -> None:
    """The isolation scenario (bench/isolation.py): a healthy webhook alone and beside bad ones."""
    if console is None:
        console = Console()
        if not console.is_terminal:
            console = Console(width=220)
    iso = results["isolation"]
    cfg = iso["config"]
    t = Table(
        title=f"Isolation: one healthy webhook at {cfg['rate']:g} events/s for "
        f"{cfg['window_s']:g} s, alone and beside bad receivers (+{cfg['drain_s']:g} s drain)",
        caption="rate: healthy deliveries arrived inside the window ÷ window · missing: "
        "published − arrived · p50/p99: publish sent → arrival, ms, of what arrived by the end "
        "of the drain · incl. missing: the still missing counted as arriving at drain end "
        "(≥: a lower bound) · ratios use those · target: p50, p99 ≤ 2×, rate ≥ 0.95×",
    )
    for col in (
        "store",
        "run",
        "published",
        "rate/s",
        "missing at window end",
        "missing after drain",
        "p50",
        "p99",
        "p50 incl. missing",
        "p99 incl. missing",
        "call p50/p99",
        "hookd cores",
        "other cores",
    ):
        t.add_column(col, justify="left" if col in ("store", "run") else "right")
    notes: list[str] = []
    for backend, run in iso.get("runs", {}).items():
        if "skipped" in run or "error" in run:
            notes.append(f"{backend}: {run.get('skipped') or 'FAILED — ' + str(run.get('error'))}")
            continue
        for label in ("alone", "beside"):
            part = run[label]
            h, call = part["healthy"], part["publish"]["request_latency"]
            low = bool(h["incl_missing"]["lower_bound"])
            t.add_row(
                f"{backend} ×{run['workers']}",
                label,
                _n(h["published"]),
                _n(h["rate_per_s"], 1),
                _n(h["missing_at_window_end"]),
                _n(h["missing_after_drain"]),
                _ms(h["latency_of_arrived"]["p50_ms"]),
                _ms(h["latency_of_arrived"]["p99_ms"]),
                _bound(h["incl_missing"]["p50_ms"], low),
                _bound(h["incl_missing"]["p99_ms"], low),
                f"{_ms(call['p50_ms'])} / {_ms(call['p99_ms'])}",
                _n(_get(part, "cpu_cores", "hookd"), 2),
                _n(part.get("other_cores"), 2),
            )
        r = run["ratios"]
        low = bool(r["lower_bound"])
        t.add_row(
            "",
            "beside ÷ alone",
            "",
            _ratio(r["rate"], False),
            "",
            "",
            "",
            "",
            _ratio(r["p50"], low),
            _ratio(r["p99"], low),
            "target met" if r["target_met"] else "target NOT met",
            "",
            "",
        )
    console.print(t)
    bad = Table(
        title="Isolation: the bad webhooks during the beside window "
        "(requests/s each receiver read; held: mean seconds hookd kept a connection, "
        "to the end of the drain)",
        title_justify="left",
    )
    for col in (
        "store",
        "backlog queued",
        "refused at window start: pending / delivering / retrying",
        "hang req/s",
        "hang held s",
        "500 req/s",
        "close req/s",
        "trickle req/s",
        "trickle held s",
        "bad rx cores",
    ):
        bad.add_column(col, justify="left" if col == "store" else "right")
    for backend, run in iso.get("runs", {}).items():
        if "beside" not in run:
            continue
        part = run["beside"]
        seen = part.get("bad_receivers", {})
        start = part.get("refused_at_window_start") or {}
        bad.add_row(
            backend,
            _n(_get(run, "backlog", "deliveries_queued")),
            " / ".join(_n(start.get(k)) for k in ("pending", "delivering", "retrying")),
            _n(_get(seen, "hang", "requests_per_s"), 1),
            _n(_get(seen, "hang", "held_mean_s"), 2),
            _n(_get(seen, "500", "requests_per_s"), 1),
            _n(_get(seen, "close", "requests_per_s"), 1),
            _n(_get(seen, "trickle", "requests_per_s"), 1),
            _n(_get(seen, "trickle", "held_mean_s"), 2),
            _n(_get(part, "cpu_cores", "bad_receivers"), 2),
        )
    if bad.row_count:
        console.print(bad)
    if warn_busy:  # print_tables warns for every phase itself
        busy = [p for p in _busy_phases(results) if p.startswith("isolation")]
        if busy:
            console.print(
                f"[yellow]The machine was busy with other work during {', '.join(busy)} "
                f"(> {NOISY_CORES} cores on average): those figures are noisy.[/yellow]"
            )
    for note in notes:
        console.print(f"[yellow]isolation {note}[/yellow]")
