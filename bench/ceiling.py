"""The ceiling: a bare aiohttp + uvloop client, 64 pooled connections, HMAC per request.

No storage, no queue: what Python can send at best on this machine. Run in its own process
(``python -m bench.ceiling …``, which prints one JSON object) so its CPU and RSS are its own.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import os
import resource
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import orjson

from bench import procstat
from bench.console import say
from bench.payload import delivery_body, event_data, new_secret, signed_headers
from bench.receiver import Receiver
from bench.stats import rate

CONNECTIONS = 64


@dataclass
class CeilingCounts:
    ok: int = 0
    failed: int = 0


async def _send_all(
    url_base: str, count: int, paths: int, payload_bytes: int, deadline_s: float, tag: str
) -> dict[str, object]:
    key = new_secret().encode()
    data = event_data(payload_bytes)
    counts = CeilingCounts()
    numbers = itertools.count()
    stop_at = time.monotonic() + deadline_s
    connector = aiohttp.TCPConnector(limit=CONNECTIONS, limit_per_host=CONNECTIONS)
    timeout = aiohttp.ClientTimeout(total=10)
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:

        async def sender() -> None:
            while time.monotonic() < stop_at:
                i = next(numbers)
                if i >= count:
                    return
                msg_id = f"ceil-{tag}-{i}"
                body = delivery_body(msg_id, data)
                headers = signed_headers(key, msg_id, body)
                try:
                    async with session.post(
                        f"{url_base}/{i % paths}", data=body, headers=headers
                    ) as r:
                        await r.read()
                        if 200 <= r.status < 300:
                            counts.ok += 1
                        else:
                            counts.failed += 1
                except (aiohttp.ClientError, TimeoutError):
                    counts.failed += 1

        cpu0 = procstat.rusage_self_cpu()
        t0 = time.time()
        await asyncio.gather(*(sender() for _ in range(CONNECTIONS)))
        t1 = time.time()
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return {
        "requested": count,
        "ok": counts.ok,
        "failed": counts.failed,
        "start": t0,
        "end": t1,
        "wall_s": t1 - t0,
        "timed_out": counts.ok + counts.failed < count,
        "cpu_s": usage.ru_utime + usage.ru_stime - cpu0,  # the sending only, not the imports
        "rss_peak_kib": usage.ru_maxrss,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--url-base", required=True)
    parser.add_argument("--count", type=int, required=True)
    parser.add_argument("--paths", type=int, default=10)
    parser.add_argument("--payload-bytes", type=int, default=1024)
    parser.add_argument("--deadline", type=float, default=60)
    parser.add_argument("--tag", default="x")
    args = parser.parse_args()
    if not args.url_base.startswith("http://127.0.0.1:"):
        raise SystemExit("the ceiling only sends to 127.0.0.1")
    import uvloop

    result = uvloop.run(
        _send_all(
            args.url_base, args.count, args.paths, args.payload_bytes, args.deadline, args.tag
        )
    )
    sys.stdout.buffer.write(orjson.dumps(result) + b"\n")


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def run_ceiling(
    receiver: Receiver, count: int, paths: int, payload_bytes: int, deadline_s: float, tag: str
) -> dict[str, Any]:
    """Runs the bare client in a subprocess against ``receiver``; returns its figures."""
    say(f"ceiling: bare aiohttp+uvloop client, {count} signed POSTs, {CONNECTIONS} connections")
    root = Path(__file__).resolve().parent.parent
    argv = [sys.executable, "-m", "bench.ceiling", "--url-base", receiver.url("/ceiling")]
    argv += ["--count", str(count), "--paths", str(paths), "--payload-bytes", str(payload_bytes)]
    argv += ["--deadline", str(deadline_s), "--tag", tag]
    env = dict(os.environ, PYTHONPATH=str(root))
    receiver.log.mark()
    busy0, wall0, self0 = (
        procstat.machine_busy_seconds(),
        time.monotonic(),
        procstat.rusage_self_cpu(),
    )
    children0 = _children_cpu()
    sampler = procstat.Sampler({"receiver": receiver.pids}).start()
    proc = subprocess.Popen(argv, cwd=root, env=env, stdout=subprocess.PIPE, start_new_session=True)
    try:
        out, _ = proc.communicate(timeout=deadline_s + 30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        groups = sampler.stop()
    busy = procstat.machine_busy_seconds() - busy0
    elapsed = time.monotonic() - wall0
    bench_self = procstat.rusage_self_cpu() - self0
    child_cpu = _children_cpu() - children0  # the ceiling's whole life, imports too
    if proc.returncode != 0:
        raise RuntimeError(f"the ceiling client failed (exit {proc.returncode})")
    result: dict[str, Any] = orjson.loads(out)
    time.sleep(0.3)  # the receiver flushes its log every 100 ms
    arrivals = [a for a in receiver.log.read_new() if a.webhook_id.startswith(f"ceil-{tag}-")]
    ok, wall, cpu = int(result["ok"]), float(result["wall_s"]), float(result["cpu_s"])
    result.update(
        deliveries=ok,
        arrived=len(arrivals),
        deliveries_per_s=rate(ok, wall),
        cpu_per_1000=round(1000 * cpu / ok, 3) if ok else None,
        receiver_cpu_s=round(groups["receiver"].cpu, 3),
    )
    other = busy - child_cpu - groups["receiver"].cpu - bench_self
    result["other_cores"] = round(max(0.0, other) / elapsed, 2) if elapsed > 0 else None
    return result


if __name__ == "__main__":
    main()
