"""What a validation hook costs on top of the hook itself: `python -m bench.trigger_overhead`.

Starts `hookd serve` (fresh SQLite store in a temp dir, or a throwaway PostgreSQL database with
`--postgres URL`) and a minimal HTTP receiver on 127.0.0.1 that answers 200 at once and times
its own handling (first byte of a request in → answer written). Sets up one repository with
one enabled STATUS webhook on the blocking event `document.beforecreate`, then sends N
sequential triggers over one keep-alive connection and reports the median and p99 of

    overhead = trigger round trip (client) − the receiver's handling of that call

i.e. everything hookd adds to a validation call: the API request, auth, the lookups, the
outgoing HTTP call and the answer. Traffic stays on 127.0.0.1; the child is killed at exit.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import http.client
import json
import os
import secrets
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from types import FrameType
from typing import Any

LOOPBACK = "127.0.0.1"
EVENT = "document.beforecreate"
START_TIMEOUT_S = 60.0
RESPONSE = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Type: text/plain\r\n\r\nok"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((LOOPBACK, 0))
        return int(sock.getsockname()[1])


class _ReceiverProtocol(asyncio.Protocol):
    """HTTP/1.1 keep-alive, Content-Length bodies only: just enough for hookd's calls."""

    def __init__(self, handled: list[float]) -> None:
        self.handled = handled
        self.buffer = b""
        self.started: float | None = None
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        started = self.started = self.started or time.perf_counter()
        self.buffer += data
        while True:
            end = self.buffer.find(b"\r\n\r\n")
            if end < 0:
                return
            length = 0
            for line in self.buffer[:end].split(b"\r\n")[1:]:
                name, _, value = line.partition(b":")
                if name.strip().lower() == b"content-length":
                    length = int(value.strip())
            total = end + 4 + length
            if len(self.buffer) < total:
                return
            self.buffer = self.buffer[total:]
            assert self.transport is not None
            # Counted before the answer goes out, so the client always finds it.
            self.handled.append((time.perf_counter() - started) * 1000)
            self.transport.write(RESPONSE)
            started = time.perf_counter()
            self.started = started if self.buffer else None


class Receiver:
    """Runs in its own thread and event loop, so the client never delays it."""

    def __init__(self) -> None:
        self.handled: list[float] = []
        self.port = free_port()
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._run, name="receiver", daemon=True)

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        server = self._loop.run_until_complete(
            self._loop.create_server(
                lambda: _ReceiverProtocol(self.handled), LOOPBACK, self.port, backlog=64
            )
        )
        self._ready.set()
        try:
            self._loop.run_forever()
        finally:
            server.close()
            self._loop.run_until_complete(server.wait_closed())
            self._loop.close()

    def start(self) -> None:
        self._thread.start()
        if not self._ready.wait(10):
            raise RuntimeError("the receiver did not start")

    def stop(self) -> None:
        if self._thread.is_alive():
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(10)

    def url(self, path: str = "/validate") -> str:
        return f"http://{LOOPBACK}:{self.port}{path}"


class Client:
    """One keep-alive HTTP/1.1 connection to hookd."""

    def __init__(self, port: int) -> None:
        self.conn = http.client.HTTPConnection(LOOPBACK, port, timeout=30)
        self.headers: dict[str, str] = {"Content-Type": "application/json"}

    def call(self, method: str, path: str, body: Any = None) -> tuple[int, Any]:
        payload = None if body is None else json.dumps(body).encode()
        self.conn.request(method, path, body=payload, headers=self.headers)
        response = self.conn.getresponse()
        content = response.read()
        return response.status, json.loads(content) if content else None

    def close(self) -> None:
        self.conn.close()


def reset_postgres(url: str) -> None:
    """Empty the throwaway database's public schema (so `serve` migrates it afresh)."""
    import asyncpg

    async def reset() -> None:
        conn = await asyncpg.connect(url)
        try:
            await conn.execute("DROP SCHEMA public CASCADE; CREATE SCHEMA public")
        finally:
            await conn.close()

    asyncio.run(reset())


def start_hookd(
    binary: str,
    workdir: Path,
    database_url: str,
    password: str,
    port: int,
    *extra: str,
) -> subprocess.Popen[bytes]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("HOOKD_")}
    env.update(
        HOOKD_DATABASE_URL=database_url,
        HOOKD_ADMIN_USERNAME="admin",
        HOOKD_ADMIN_PASSWORD=password,
        HOOKD_ALLOW_TARGETS="127.0.0.0/8",
        HOOKD_HOST=LOOPBACK,
    )
    log = open(workdir / "hookd.log", "wb")  # noqa: SIM115 - the child keeps it
    try:
        return subprocess.Popen(
            [binary, "serve", "--port", str(port), *extra],
            cwd=workdir,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    finally:
        log.close()


def stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(15)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(5)


def wait_healthy(port: int, proc: subprocess.Popen[bytes], workdir: Path) -> None:
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            log = (workdir / "hookd.log").read_text(errors="replace")
            raise RuntimeError(f"hookd exited with {proc.returncode}:\n{log[-3000:]}")
        with contextlib.suppress(OSError):
            conn = http.client.HTTPConnection(LOOPBACK, port, timeout=2)
            try:
                conn.request("GET", "/healthz")
                if conn.getresponse().status == 200:
                    return
            finally:
                conn.close()
        time.sleep(0.1)
    raise RuntimeError(f"hookd did not become healthy within {START_TIMEOUT_S:g}s")


def set_up(client: Client, password: str, receiver: Receiver) -> None:
    status, body = client.call("POST", "/api/v1/login", {"username": "admin", "password": password})
    if status != 200:
        raise RuntimeError(f"login failed: {status} {body}")
    client.headers["Authorization"] = f"Bearer {body['token']}"
    status, body = client.call("PUT", "/r/bench", {"name": "bench"})
    if status not in (200, 201):
        raise RuntimeError(f"PUT /r/bench: {status} {body}")
    webhook = {
        "uri": receiver.url(),
        "description": "answers 200 at once",
        "handleResponse": "STATUS",
        "enabled": True,
    }
    status, body = client.call("POST", f"/r/bench/events/{EVENT}", webhook)
    if status != 201:
        raise RuntimeError(f"creating the webhook: {status} {body}")


def measure(
    client: Client, receiver: Receiver, count: int, deadline_s: float
) -> tuple[list[float], list[float]]:
    """(overheads, round trips) in ms for up to `count` triggers within `deadline_s`."""
    path = f"/r/bench/events/{EVENT}/trigger"
    payload = {"category": "invoices", "data": {"invoice": {"number": 42, "amount": "99.50"}}}
    overheads: list[float] = []
    round_trips: list[float] = []
    deadline = time.monotonic() + deadline_s
    for index in range(count):
        if time.monotonic() > deadline:
            print(f"deadline of {deadline_s:g}s reached after {len(overheads)} triggers")
            break
        before = len(receiver.handled)
        started = time.perf_counter()
        status, body = client.call("POST", path, payload)
        elapsed = (time.perf_counter() - started) * 1000
        if status != 200 or not body.get("allowed"):
            raise RuntimeError(f"trigger {index}: {status} {body}")
        if len(receiver.handled) != before + 1:
            raise RuntimeError(
                f"trigger {index}: the receiver saw {len(receiver.handled) - before}"
            )
        round_trips.append(elapsed)
        overheads.append(elapsed - receiver.handled[-1])
    return overheads, round_trips


def cpu_ms(pid: int) -> float | None:
    """CPU time (user + system, all threads) of a process so far; None off Linux."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK") * 1000


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(fraction * (len(ordered) - 1)))]


def _on_sigterm(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt  # unwinds through `finally`, which stops the children


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.trigger_overhead", description=__doc__)
    parser.add_argument("-n", "--triggers", type=int, default=2000)
    parser.add_argument("--warmup", type=int, default=100)
    parser.add_argument("--deadline", type=float, default=120.0, help="seconds for the loop")
    parser.add_argument(
        "--postgres",
        metavar="URL",
        help="run against this THROWAWAY PostgreSQL database (its public schema is dropped)",
    )
    parser.add_argument("--hookd", default=str(Path(sys.executable).parent / "hookd"))
    parser.add_argument("--keep", action="store_true", help="keep the temp dir (hookd.log)")
    args = parser.parse_args(argv)
    signal.signal(signal.SIGTERM, _on_sigterm)

    workdir = Path(tempfile.mkdtemp(prefix="hookd-trigger-"))
    database_url = args.postgres or f"sqlite:///{workdir}/h.db"
    if args.postgres:
        reset_postgres(args.postgres)
    password = secrets.token_urlsafe(18)
    port = free_port()
    receiver = Receiver()
    receiver.start()
    proc = start_hookd(args.hookd, workdir, database_url, password, port)
    client = Client(port)
    cpu_before = cpu_after = None
    try:
        wait_healthy(port, proc, workdir)
        set_up(client, password, receiver)
        measure(client, receiver, args.warmup, args.deadline)
        cpu_before = cpu_ms(proc.pid)
        overheads, round_trips = measure(client, receiver, args.triggers, args.deadline)
        time.sleep(0.2)  # the call log's last batch
        cpu_after = cpu_ms(proc.pid)
    finally:
        client.close()
        stop(proc)
        receiver.stop()
        if args.keep:
            print(f"kept {workdir}")
        else:
            for path in sorted(workdir.rglob("*"), reverse=True):
                with contextlib.suppress(OSError):
                    path.unlink() if path.is_file() else path.rmdir()
            with contextlib.suppress(OSError):
                workdir.rmdir()
    if not overheads:
        print("no measurements")
        return 1
    backend = "postgresql" if args.postgres else "sqlite"
    print(f"backend {backend}, {len(overheads)} sequential triggers (+{args.warmup} warm-up)")
    print(
        f"overhead     median {statistics.median(overheads):7.3f} ms   "
        f"p99 {percentile(overheads, 0.99):7.3f} ms"
    )
    print(
        f"round trip   median {statistics.median(round_trips):7.3f} ms   "
        f"p99 {percentile(round_trips, 0.99):7.3f} ms"
    )
    if cpu_before is not None and cpu_after is not None:
        # Steadier than wall time on a busy machine: what hookd itself spent per trigger.
        print(f"hookd CPU    {(cpu_after - cpu_before) / len(overheads):7.3f} ms per trigger")
    print(f"load average {' '.join(f'{x:.2f}' for x in os.getloadavg())} on {os.cpu_count()} CPUs")
    return 0


if __name__ == "__main__":
    sys.exit(main())
