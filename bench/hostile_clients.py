"""Hostile clients of bench.hostile, one kind per process (started by `python -m bench.hostile`).

    python -m bench.hostile_clients --kind KIND --port P --start-at T0 --stop-at T1 --out FILE

runs ``--clients`` clients of one kind against hookd on 127.0.0.1:P from epoch T0 to T1 and
writes what they saw (requests, statuses, dropped connections…) as JSON to FILE. Requests are
written with raw sockets, since aiohttp refuses to send some of them (an 8 MB header) and would
hide how the server ends a connection. Big request parts are built once per process and sent
from the same buffer every time. A token, where a kind needs one, comes in HOOKD_BENCH_TOKEN.

Every loop stops at T1 and after a fixed number of requests; whatever is in flight at T1 is
abandoned (its socket closed) and counted as ``unanswered``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import functools
import os
import random
import socket
import sys
import time
from collections import Counter
from collections.abc import Callable, Coroutine, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
import uvloop

from bench.payload import EVENT_TYPE
from bench.procs import LOOPBACK

KINDS = ("huge-accept", "huge-headers", "bad-login", "big-body", "slow-loris", "slow-hook")

ACCEPT_BYTES = 8 * 1024 * 1024
HEADER_BLOCK_BYTES = 1024 * 1024
BIG_BODY_BYTES = 32 * 1024 * 1024  # hookd's request limit today: a larger Content-Length is refused
MAX_EVENT_BYTES = 1024 * 1024  # hookd's default HOOKD_MAX_EVENT_BYTES
LORIS_CONNECTIONS = 20  # per slow-loris client
LORIS_INTERVAL_S = 2.0
MAX_REQUESTS_PER_CLIENT = 100_000
# Requests per second per client at most: a server that refuses at once must not turn a kind into
# a connection flood, which on 2 cores would measure the machine rather than hookd.
MAX_RATE = 20.0
SLOW_HOOK_INFLIGHT = 4  # triggers each slow-hook client keeps waiting at once
MAX_HEAD = 64 * 1024
TRIGGER_PATH = "/r/{repo}/events/document.beforecreate/trigger"


@dataclass
class Tally:
    """What one kind's clients saw. ``outcomes``: ``"401"``… for answered requests, else
    ``dropped`` (closed without an answer), ``reset`` (connection reset), ``unanswered`` (still
    waiting at the end), ``connect-failed``."""

    requests: int = 0
    outcomes: Counter[str] = field(default_factory=Counter)
    bytes_sent: int = 0
    first_error: str | None = None
    extra: dict[str, object] = field(default_factory=dict)
    loris: LorisTally | None = None

    def note(self, outcome: str, error: BaseException | None = None) -> None:
        self.outcomes[outcome] += 1
        if error is not None and self.first_error is None:
            self.first_error = f"{type(error).__name__}: {error}"[:300]

    def as_dict(self) -> dict[str, object]:
        return {
            "requests": self.requests,
            "outcomes": dict(sorted(self.outcomes.items())),
            "bytes_sent": self.bytes_sent,
            "first_error": self.first_error,
            **self.extra,
            **({"slow_loris": self.loris.as_dict()} if self.loris else {}),
        }


def _status(head: bytes) -> str | None:
    """``"431"`` from ``HTTP/1.1 431 …``; None when no status line has arrived."""
    line = head.split(b"\r\n", 1)[0].split(b" ")
    if len(line) >= 2 and line[0].startswith(b"HTTP/") and line[1].isdigit():
        return line[1].decode()
    return None


async def _read_head(loop: asyncio.AbstractEventLoop, sock: socket.socket) -> bytes:
    """Up to the end of the response head (or EOF, or MAX_HEAD bytes)."""
    head = b""
    while b"\r\n\r\n" not in head and len(head) < MAX_HEAD:
        chunk = await loop.sock_recv(sock, 16 * 1024)
        if not chunk:
            break
        head += chunk
    return head


async def exchange(
    port: int, parts: Sequence[bytes | memoryview], stop_at: float, tally: Tally
) -> None:
    """One request on a fresh connection: sends ``parts``, reads the status, closes."""
    loop = asyncio.get_running_loop()
    tally.requests += 1
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setblocking(False)
    try:
        async with asyncio.timeout_at(loop.time() + max(0.0, stop_at - time.time())):
            try:
                await loop.sock_connect(sock, (LOOPBACK, port))
            except OSError as exc:
                tally.note("connect-failed", exc)
                return
            send_error: OSError | None = None
            try:
                for part in parts:
                    await loop.sock_sendall(sock, part)
                    tally.bytes_sent += len(part)
            except OSError as exc:  # the server may answer (413, 431…) and close mid-request
                send_error = exc
            try:
                head = await _read_head(loop, sock)
            except OSError as exc:
                tally.note("reset", exc)
                return
            status = _status(head)
            if status is not None:
                tally.note(status)
            elif send_error is not None:
                tally.note("reset", send_error)
            else:
                tally.note("dropped")
    except TimeoutError:
        tally.note("unanswered")
    finally:
        sock.close()


def _request_head(method: str, path: str, headers: Sequence[tuple[str, str]]) -> bytes:
    lines = [f"{method} {path} HTTP/1.1", f"Host: {LOOPBACK}", "Connection: close"]
    lines += [f"{name}: {value}" for name, value in headers]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


@dataclass(frozen=True)
class Target:
    port: int
    token: str
    slow_repo: str
    stop_at: float
    min_gap_s: float = 1 / MAX_RATE  # between the starts of one client's requests
    inflight: int = SLOW_HOOK_INFLIGHT


Client = Callable[[Target, int, Tally], Coroutine[Any, Any, None]]


async def _repeat(
    target: Target, tally: Tally, request: Callable[[int], Sequence[bytes | memoryview]]
) -> None:
    next_at = time.time()
    for n in range(MAX_REQUESTS_PER_CLIENT):
        await asyncio.sleep(max(0.0, next_at - time.time()))
        if time.time() >= target.stop_at:
            return
        next_at = time.time() + target.min_gap_s
        await exchange(target.port, request(n), target.stop_at, tally)


# -- huge-accept: GET /r/x with an 8 MB Accept header, before any authentication -----------------


@functools.cache
def _accept_filler() -> bytes:
    return b"a/b;q=0.5, " * (ACCEPT_BYTES // 11)


async def huge_accept(target: Target, client: int, tally: Tally) -> None:
    # Each request's header differs in its first item, as an attacker's would, so a cache of
    # parsed Accept values does not spare the server the parsing.
    tag = f"{os.getpid()}-{client}"
    filler = memoryview(_accept_filler())

    def request(n: int) -> Sequence[bytes | memoryview]:
        head = f"GET /r/x HTTP/1.1\r\nHost: {LOOPBACK}\r\nConnection: close\r\n"
        first = f"Accept: x/{tag}-{n}, ".encode()
        return (head.encode(), first, filler, b"\r\n\r\n")

    await _repeat(target, tally, request)


# -- huge-headers: GET /healthz with a 1 MB block of other headers ---------------------------------


@functools.cache
def _filler_headers() -> bytes:
    line = 1017  # b"X-Filler-0000: " + 1000 bytes + CRLF
    return b"".join(
        b"X-Filler-%04d: " % i + b"f" * 1000 + b"\r\n" for i in range(HEADER_BLOCK_BYTES // line)
    )


async def huge_headers(target: Target, client: int, tally: Tally) -> None:
    head = f"GET /healthz HTTP/1.1\r\nHost: {LOOPBACK}\r\nConnection: close\r\n".encode()
    parts = (head, memoryview(_filler_headers()), b"\r\n")
    await _repeat(target, tally, lambda n: parts)


# -- bad-login: the real admin name with wrong passwords, back to back ----------------------------


async def bad_login(target: Target, client: int, tally: Tally) -> None:
    def request(n: int) -> Sequence[bytes]:
        body = orjson.dumps({"username": "admin", "password": f"wrong-{client}-{n}"})
        headers = [("Content-Type", "application/json"), ("Content-Length", str(len(body)))]
        return (_request_head("POST", "/api/v1/login", headers), body)

    await _repeat(target, tally, request)


# -- big-body: a logged-in publish of 32 MiB that hookd refuses only after parsing it all ---------


@functools.cache
def _big_body(size: int) -> bytes:
    """A JSON array of 1000 events, ``size`` bytes in all: 999 events of ~32 KB, each valid,
    and a last one over hookd's per-event limit, so the request is parsed and checked event by
    event and then refused with 413: nothing is stored."""
    small = (size - 2 * MAX_EVENT_BYTES) // 999
    shell = len(orjson.dumps({"type": EVENT_TYPE, "data": {"pad": ""}}))
    events = [{"type": EVENT_TYPE, "data": {"pad": "p" * (small - shell)}} for _ in range(999)]
    used = len(orjson.dumps([*events, {"type": EVENT_TYPE, "data": {"pad": ""}}]))
    events.append({"type": EVENT_TYPE, "data": {"pad": "P" * (size - used)}})
    body = orjson.dumps(events)
    assert len(body) == size, (len(body), size)
    return body


async def big_body(target: Target, client: int, tally: Tally) -> None:
    body = memoryview(_big_body(BIG_BODY_BYTES))
    headers = [
        ("Authorization", f"Bearer {target.token}"),
        ("Content-Type", "application/json"),
        ("Content-Length", str(len(body))),
    ]
    parts = (_request_head("POST", "/api/v1/events", headers), body)
    await _repeat(target, tally, lambda n: parts)


# -- slow-loris: partial request heads, a byte every 2 s, never finished --------------------------


@dataclass
class LorisTally:
    opened: int = 0
    closed_by_server: int = 0
    answered: Counter[str] = field(default_factory=Counter)
    open_at_end: int = 0
    open_whole_window: int = 0  # opened in the first interval and still open at the end
    lifetimes_s: list[float] = field(default_factory=list)  # of connections the server closed

    def closed(self, tally: Tally, opened_at: float, answer: bytes) -> None:
        self.closed_by_server += 1
        self.lifetimes_s.append(time.time() - opened_at)
        status = _status(answer)
        self.answered[status or "none"] += 1
        tally.note(status or "dropped")

    def as_dict(self) -> dict[str, object]:
        lifetimes = sorted(self.lifetimes_s)
        return {
            "connections_opened": self.opened,
            "closed_by_server": self.closed_by_server,
            "answers_before_close": dict(self.answered),
            "open_at_end": self.open_at_end,
            "open_whole_window": self.open_whole_window,
            "median_s_to_close": round(lifetimes[len(lifetimes) // 2], 1) if lifetimes else None,
        }


def _peek_closed(sock: socket.socket) -> tuple[bool, bytes]:
    """(closed, what the server sent) without blocking."""
    try:
        data = sock.recv(MAX_HEAD, socket.MSG_DONTWAIT)
    except BlockingIOError:
        return False, b""
    except OSError:
        return True, b""
    return True, data  # b"" is EOF; anything else is an answer, after which we stop


async def _loris_connection(target: Target, tally: Tally, loris: LorisTally, first: float) -> None:
    """One slow connection: the head's start, then a byte every ~2 s until the server closes
    the connection or the window ends (at most one byte per interval: bounded)."""
    loop = asyncio.get_running_loop()
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setblocking(False)
    tally.requests += 1
    opened_at = time.time()
    try:
        try:
            await loop.sock_connect(sock, (LOOPBACK, target.port))
        except OSError as exc:
            tally.note("connect-failed", exc)
            return
        loris.opened += 1
        chunk = f"GET /healthz HTTP/1.1\r\nHost: {LOOPBACK}\r\nX-Slow: ".encode()
        for _ in range(int((target.stop_at - opened_at) / LORIS_INTERVAL_S) + 2):
            try:
                await loop.sock_sendall(sock, chunk)
                tally.bytes_sent += len(chunk)
            except OSError:
                loris.closed(tally, opened_at, b"")
                return
            closed, answer = _peek_closed(sock)
            if closed:
                loris.closed(tally, opened_at, answer)
                return
            chunk = b"a"
            # jittered, so 400 connections do not send in lock-step
            wait = min(LORIS_INTERVAL_S * random.uniform(0.9, 1.1), target.stop_at - time.time())
            await asyncio.sleep(max(0.0, wait))
            if time.time() >= target.stop_at:
                break
        closed, answer = _peek_closed(sock)
        if closed:
            loris.closed(tally, opened_at, answer)
        else:
            loris.open_at_end += 1
            loris.open_whole_window += opened_at < first + LORIS_INTERVAL_S
            tally.note("open-at-end")
    finally:
        sock.close()


async def slow_loris(target: Target, client: int, tally: Tally) -> None:
    """LORIS_CONNECTIONS slow connections; one the server closes is opened again after a pause."""
    if tally.loris is None:
        tally.loris = LorisTally()
    loris = tally.loris
    first = time.time()

    async def slot() -> None:
        for _ in range(1000):
            if time.time() >= target.stop_at - LORIS_INTERVAL_S:
                return
            await _loris_connection(target, tally, loris, first)
            await asyncio.sleep(LORIS_INTERVAL_S)

    await asyncio.gather(*(slot() for _ in range(LORIS_CONNECTIONS)))


# -- slow-hook: triggers of a repository whose blocking hook takes 8 s ----------------------------


async def slow_hook(target: Target, client: int, tally: Tally) -> None:
    body = b"{}"
    headers = [
        ("Authorization", f"Bearer {target.token}"),
        ("Content-Type", "application/json"),
        ("Content-Length", str(len(body))),
    ]
    path = TRIGGER_PATH.format(repo=target.slow_repo)
    parts = (_request_head("POST", path, headers), body)
    await asyncio.gather(*(_repeat(target, tally, lambda n: parts) for _ in range(target.inflight)))


CLIENTS: dict[str, Client] = {
    "huge-accept": huge_accept,
    "huge-headers": huge_headers,
    "bad-login": bad_login,
    "big-body": big_body,
    "slow-loris": slow_loris,
    "slow-hook": slow_hook,
}


def prepare(kind: str) -> None:
    """Builds the kind's big buffers before the clock starts."""
    if kind == "huge-accept":
        _accept_filler()
    elif kind == "huge-headers":
        _filler_headers()
    elif kind == "big-body":
        _big_body(BIG_BODY_BYTES)


async def run_kind(kind: str, target: Target, clients: int, start_at: float) -> Tally:
    tally = Tally()
    prepare(kind)
    await asyncio.sleep(max(0.0, start_at - time.time()))
    started = time.time()
    tasks = [asyncio.create_task(CLIENTS[kind](target, n, tally)) for n in range(clients)]
    # Each request is bounded by stop_at already; this is the backstop.
    _, pending = await asyncio.wait(tasks, timeout=max(0.0, target.stop_at - time.time()) + 5.0)
    for task in pending:
        task.cancel()
    results = await asyncio.gather(*tasks, return_exceptions=True)
    errors = [r for r in results if isinstance(r, BaseException)]
    for error in errors:
        if not isinstance(error, asyncio.CancelledError | TimeoutError):
            tally.first_error = tally.first_error or f"{type(error).__name__}: {error}"[:300]
    tally.extra["clients"] = clients
    tally.extra["ran_s"] = round(time.time() - started, 1)
    tally.extra["max_rate_per_client"] = 1 / target.min_gap_s
    if kind == "slow-hook":
        tally.extra["inflight_per_client"] = target.inflight
    return tally


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.hostile_clients", description=__doc__)
    parser.add_argument("--kind", choices=KINDS, required=True)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--clients", type=int, default=20)
    parser.add_argument("--start-at", type=float, required=True, help="epoch seconds")
    parser.add_argument("--stop-at", type=float, required=True, help="epoch seconds")
    parser.add_argument("--slow-repo", default="slow")
    parser.add_argument("--rate", type=float, default=MAX_RATE, help="requests/s per client, max")
    parser.add_argument("--inflight", type=int, default=SLOW_HOOK_INFLIGHT, help="slow-hook")
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args(argv)
    if args.stop_at - time.time() > 600:
        parser.error("--stop-at: at most 10 minutes from now")
    target = Target(
        port=args.port,
        token=os.environ.get("HOOKD_BENCH_TOKEN", ""),
        slow_repo=args.slow_repo,
        stop_at=args.stop_at,
        min_gap_s=1 / min(max(args.rate, 0.1), 1000.0),
        inflight=min(max(args.inflight, 1), 50),
    )
    tally = uvloop.run(run_kind(args.kind, target, max(1, args.clients), args.start_at))
    args.out.write_bytes(orjson.dumps({"kind": args.kind, **tally.as_dict()}))
    return 0


if __name__ == "__main__":
    with contextlib.suppress(KeyboardInterrupt):
        sys.exit(main())
