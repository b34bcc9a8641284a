"""Misbehaving webhook receivers on 127.0.0.1, for the isolation scenario (bench/isolation.py).

``python -m bench.bad_receivers --stats FILE hang=PORT 500=PORT close=PORT trickle=PORT`` runs
one raw asyncio (uvloop) server per behaviour, in a process of its own so that its CPU is not
taken from the bench's publisher:

- ``hang``: accepts and reads each request, never answers;
- ``500``: answers ``500`` at once (keep-alive);
- ``close``: closes the connection as soon as a whole request has been read, without answering;
- ``trickle``: answers a status line (``200``) and headers announcing a 1 MiB body at once, then
  sends one byte of it per second.

Everything is bounded: at most ``MAX_CONNECTIONS`` open connections per server (any more are
closed at once and counted), at most ``MAX_HOLD_S`` per connection (then the server closes it),
at most ``MAX_BUFFER`` bytes buffered per connection. Counters per behaviour are written to the
stats file (JSON, replaced atomically) every second and at exit. SIGTERM/SIGINT stop it.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import signal
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import cast

import orjson

from bench.procs import LOOPBACK, ProcessGroup, free_port, tail, wait_port

BEHAVIOURS = ("hang", "500", "close", "trickle")
MAX_CONNECTIONS = 1024  # per server; hookd's whole pool is 128 per process by default
MAX_HOLD_S = 60.0  # a hung or trickling connection is closed by us after this long
MAX_BUFFER = 4 * 1024 * 1024  # bytes of unparsed request per connection
TRICKLE_BODY = 1024 * 1024
STATS_EVERY_S = 1.0

ANSWER_500 = (
    b"HTTP/1.1 500 Internal Server Error\r\nContent-Type: text/plain\r\n"
    b"Content-Length: 21\r\n\r\ninternal server error"
)
TRICKLE_HEAD = (
    f"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: {TRICKLE_BODY}\r\n\r\n"
).encode()


@dataclass
class Counters:
    connections: int = 0
    requests: int = 0  # whole requests read
    open_now: int = 0
    open_peak: int = 0
    over_cap: int = 0  # connections closed at once because MAX_CONNECTIONS were open
    closed_by_us: int = 0  # MAX_HOLD_S reached, or a request too large
    held_s: float = 0.0  # request read → connection gone, summed (hang and trickle)
    held_n: int = 0
    trickled_bytes: int = 0


def request_end(buf: bytearray) -> int | None:
    """Index just past the first whole request in ``buf``; None while incomplete.

    hookd sends a Content-Length body; anything else (chunked) counts as ending with its head.
    """
    head_end = buf.find(b"\r\n\r\n")
    if head_end < 0:
        return None
    length = 0
    for line in bytes(buf[:head_end]).split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            try:
                length = int(value.strip())
            except ValueError:
                length = 0
    end = head_end + 4 + max(0, length)
    return end if len(buf) >= end else None


class BadProtocol(asyncio.Protocol):
    def __init__(self, behaviour: str, counters: Counters, conns: set[BadProtocol]) -> None:
        self.behaviour = behaviour
        self.counters = counters
        self.conns = conns
        self.buf = bytearray()
        self.transport: asyncio.Transport | None = None
        self.expiry: asyncio.TimerHandle | None = None
        self.tick: asyncio.TimerHandle | None = None
        self.request_at: float | None = None
        self.trickled = 0

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's is not a subclass
        c = self.counters
        if len(self.conns) >= MAX_CONNECTIONS:
            c.over_cap += 1
            self.transport.abort()
            self.transport = None
            return
        self.conns.add(self)
        c.connections += 1
        c.open_now = len(self.conns)
        c.open_peak = max(c.open_peak, c.open_now)
        self.expiry = asyncio.get_running_loop().call_later(MAX_HOLD_S, self._expire)

    def connection_lost(self, exc: Exception | None) -> None:
        for timer in (self.expiry, self.tick):
            if timer is not None:
                timer.cancel()
        self.expiry = self.tick = None
        if self.request_at is not None and self.behaviour in ("hang", "trickle"):
            self.counters.held_s += time.monotonic() - self.request_at
            self.counters.held_n += 1
        self.conns.discard(self)
        self.counters.open_now = len(self.conns)
        self.transport = None

    def _expire(self) -> None:
        if self.transport is not None:
            self.counters.closed_by_us += 1
            self.transport.abort()

    def data_received(self, data: bytes) -> None:
        if self.transport is None:
            return
        self.buf += data
        if len(self.buf) > MAX_BUFFER:
            self.counters.closed_by_us += 1
            self.transport.abort()
            return
        while self.transport is not None:
            end = request_end(self.buf)
            if end is None:
                return
            del self.buf[:end]
            self.counters.requests += 1
            self._answer()

    def _answer(self) -> None:
        assert self.transport is not None
        if self.behaviour == "500":
            self.transport.write(ANSWER_500)
        elif self.behaviour == "close":
            self.transport.close()
            self.transport = None
        elif self.request_at is None:  # hang and trickle: the first request holds the line
            self.request_at = time.monotonic()
            if self.behaviour == "trickle":
                self.transport.write(TRICKLE_HEAD)
                self.tick = asyncio.get_running_loop().call_later(1.0, self._one_byte)

    def _one_byte(self) -> None:
        self.tick = None
        if self.transport is None or self.transport.is_closing():
            return
        self.transport.write(b"x")
        self.trickled += 1
        self.counters.trickled_bytes += 1
        if self.trickled < TRICKLE_BODY:
            self.tick = asyncio.get_running_loop().call_later(1.0, self._one_byte)


def _write_stats(path: Path, counters: dict[str, Counters]) -> None:
    data: dict[str, object] = {name: asdict(c) for name, c in counters.items()}
    data["written_at"] = time.time()
    tmp = path.with_suffix(".tmp")
    tmp.write_bytes(orjson.dumps(data))
    os.replace(tmp, path)


async def serve(ports: dict[str, int], stats: Path) -> None:
    loop = asyncio.get_running_loop()
    counters = {name: Counters() for name in ports}
    conns: dict[str, set[BadProtocol]] = {name: set() for name in ports}
    servers = []
    for name, port in ports.items():

        def factory(name: str = name) -> BadProtocol:
            return BadProtocol(name, counters[name], conns[name])

        servers.append(
            await loop.create_server(factory, LOOPBACK, port, backlog=1024, reuse_address=True)
        )
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    try:
        while not stop.is_set():
            _write_stats(stats, counters)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), STATS_EVERY_S)
    finally:
        for server in servers:
            server.close()
        for group in conns.values():
            for proto in list(group):
                if proto.transport is not None:
                    proto.transport.abort()
        _write_stats(stats, counters)


def _parse_ports(parser: argparse.ArgumentParser, items: list[str]) -> dict[str, int]:
    ports: dict[str, int] = {}
    for item in items:
        name, sep, port = item.partition("=")
        if not sep or name not in BEHAVIOURS or not port.isdigit():
            parser.error(f"{item!r}: expected BEHAVIOUR=PORT, BEHAVIOUR one of {BEHAVIOURS}")
        ports[name] = int(port)
    return ports


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.bad_receivers", description=__doc__)
    parser.add_argument("--stats", required=True, help="JSON counters, rewritten every second")
    parser.add_argument("servers", nargs="+", metavar="BEHAVIOUR=PORT")
    args = parser.parse_args()
    ports = _parse_ports(parser, args.servers)
    try:
        import uvloop
    except ImportError:
        asyncio.run(serve(ports, Path(args.stats)))
    else:
        uvloop.run(serve(ports, Path(args.stats)))


class BadReceivers:
    """The helper process above, one port per behaviour; close() kills it."""

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.ports = {name: free_port() for name in BEHAVIOURS}
        self.stats_path = workdir / "bad-receivers.json"
        self.group = ProcessGroup()
        argv = [sys.executable, "-m", "bench.bad_receivers", "--stats", str(self.stats_path)]
        argv += [f"{name}={port}" for name, port in self.ports.items()]
        root = Path(__file__).resolve().parent.parent
        env = dict(os.environ, PYTHONPATH=str(root))
        out = workdir / "bad-receivers.out"
        proc = self.group.start("bad-receivers", argv, log=out, env=env, cwd=root)
        if not all(wait_port(port, 10, proc) for port in self.ports.values()):
            self.group.close()
            raise RuntimeError(f"the bad receivers did not start:\n{tail(out)}")

    def url(self, behaviour: str) -> str:
        return f"http://{LOOPBACK}:{self.ports[behaviour]}/{behaviour}"

    def counters(self) -> dict[str, dict[str, float]]:
        """The latest counters the helper wrote (at most a second old)."""
        try:
            data = orjson.loads(self.stats_path.read_bytes())
        except (OSError, orjson.JSONDecodeError):
            return {}
        return {k: v for k, v in data.items() if isinstance(v, dict)}

    def pids(self) -> dict[int, str]:
        return self.group.pids()

    def close(self) -> None:
        self.group.close()

    def __enter__(self) -> BadReceivers:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


if __name__ == "__main__":
    main()
