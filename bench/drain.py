"""A worker alone: `python -m bench.drain [--events N] [--backend sqlite|postgres] [--set K=V]`.

Queues ``events`` × 10 deliveries with `hookd serve --no-worker` (nothing delivers while they
are published), then starts one `hookd worker` and times it draining the queue into nginx on
127.0.0.1. Prints deliveries/s and the worker's CPU per 1000 deliveries, first arrival to last:
the delivery path with nothing else on the worker's event loop. Attach a profiler to the
printed worker pid, e.g. `py-spy record -p PID -f raw -o drain.txt -d 10`.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import tempfile
import time
from pathlib import Path

import uvloop

from bench import procstat
from bench.arrivals import ArrivalTally, wait_for_all
from bench.config import add_set_option, hookd_settings
from bench.console import say
from bench.hookd_api import client_session, create_webhooks, login, publish_batches
from bench.hookd_proc import HookdProcesses
from bench.payload import event_data, run_tag
from bench.postgres import ThrowAwayDatabase
from bench.receiver import Receiver

WEBHOOKS = 10
DEADLINE_S = 180.0


async def _queue_events(
    hookd: HookdProcesses, receiver: Receiver, events: int, prefix: str
) -> ArrivalTally:
    base = hookd.base_url
    paths = [f"/hook/{i}" for i in range(WEBHOOKS)]
    async with client_session(8) as session:
        token = await login(session, base, hookd.password)
        await create_webhooks(session, base, token, [receiver.url(p) for p in paths])
        ids = [f"{prefix}{i}" for i in range(events)]
        plog = await publish_batches(
            session, base, token, ids, event_data(1024), 100, 4, time.monotonic() + 120
        )
    say(f"drain: queued {len(plog.sent_at) * WEBHOOKS} deliveries")
    return ArrivalTally(plog.sent_at, frozenset(paths))


async def _drain(
    hookd: HookdProcesses, receiver: Receiver, tally: ArrivalTally, prefix: str
) -> dict[str, object]:
    receiver.log.mark()
    pid = hookd.start_worker(1)
    say(f"drain: hookd worker pid {pid}")
    stop_at = time.monotonic() + DEADLINE_S
    while not tally.arrived and time.monotonic() < stop_at:
        tally.add(receiver.log, prefix)
        await asyncio.sleep(0.01)
    started, cpu_before = time.monotonic(), procstat.cpu_seconds(pid) or 0.0
    complete = await wait_for_all(tally, receiver.log, prefix, stop_at, poll_s=0.05)
    elapsed = time.monotonic() - started
    cpu = (procstat.cpu_seconds(pid) or 0.0) - cpu_before
    return {
        "complete": complete,
        "deliveries": tally.arrived,
        "deliveries_per_s": round(tally.arrived / elapsed) if elapsed else 0,
        "worker_cpu_s_per_1000": round(1000 * cpu / tally.arrived, 3) if tally.arrived else 0,
        "duplicates": tally.duplicates,
    }


def run(backend: str, events: int, settings: dict[str, str]) -> dict[str, object]:
    with contextlib.ExitStack() as stack:
        tmp = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="hookd-drain-")))
        url = f"sqlite:///{tmp}/hookd.db"
        if backend == "postgres":
            url = stack.enter_context(ThrowAwayDatabase()).url
        receiver = stack.enter_context(Receiver(tmp))
        hookd = stack.enter_context(
            HookdProcesses(tmp, url, 1, settings=settings, serve_args=("--no-worker",))
        )
        hookd.start()
        prefix = f"drain-{run_tag()}-"
        tally = uvloop.run(_queue_events(hookd, receiver, events, prefix))
        return uvloop.run(_drain(hookd, receiver, tally, prefix))
    raise AssertionError("unreachable")


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.drain", description=__doc__)
    parser.add_argument("--events", type=int, default=10_000, help="events (× 10 webhooks)")
    parser.add_argument("--backend", choices=("sqlite", "postgres"), default="sqlite")
    add_set_option(parser)
    args = parser.parse_args()
    print(run(args.backend, args.events, hookd_settings(parser, args.set)))


if __name__ == "__main__":
    main()
