"""aiohttp or httpx for delivery? `python -m bench.http_client URL [--connections N]`.

Posts the same signed 1 KiB requests with each client (N pooled connections, default 64, uvloop)
to a receiver on 127.0.0.1 (start one, e.g. nginx `return 200`, and pass its URL) and prints
requests/s and CPU per request. hookd delivers with aiohttp because of this measurement
(docs/performance.md). `--clients aiohttp,hookd` compares a bare aiohttp loop with hookd's own
`Sender` (headers, signature, timeout, SSRF guard).
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import hashlib
import hmac
import ipaddress
import resource
import time
from collections.abc import Awaitable, Callable
from urllib.parse import urlsplit

import aiohttp
import httpx
import uvloop

CONNECTIONS = 64
BODY = b'{"data": "' + b"a" * 1000 + b'"}'
KEY = b"k" * 32
SECRET = "whsec_" + base64.b64encode(KEY).decode()


def _cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _headers(number: int) -> dict[str, str]:
    timestamp = str(int(time.time()))
    mac = hmac.new(KEY, f"e{number}.{timestamp}.".encode() + BODY, hashlib.sha256).digest()
    return {
        "content-type": "application/json",
        "webhook-id": f"e{number}",
        "webhook-timestamp": timestamp,
        "webhook-signature": "v1," + base64.b64encode(mac).decode(),
    }


async def _with_aiohttp(url: str, count: int, connections: int) -> None:
    connector = aiohttp.TCPConnector(limit=connections)
    async with aiohttp.ClientSession(connector=connector) as session:
        numbers = iter(range(count))

        async def sender() -> None:
            for number in numbers:
                async with session.post(
                    url, data=BODY, headers=_headers(number), timeout=aiohttp.ClientTimeout(10)
                ) as response:
                    await response.read()

        await asyncio.gather(*(sender() for _ in range(connections)))


async def _with_httpx(url: str, count: int, connections: int) -> None:
    limits = httpx.Limits(max_connections=connections, max_keepalive_connections=connections)
    async with httpx.AsyncClient(limits=limits, timeout=10) as client:
        numbers = iter(range(count))

        async def sender() -> None:
            for number in numbers:
                response = await client.post(url, content=BODY, headers=_headers(number))
                await response.aread()

        await asyncio.gather(*(sender() for _ in range(connections)))


async def _with_hookd_sender(url: str, count: int, connections: int) -> None:
    from hookd.delivery.sender import Attempt, Sender
    from hookd.delivery.ssrf import TargetGuard

    sender = Sender(TargetGuard([ipaddress.ip_network("127.0.0.0/8")]), connections=connections)
    await sender.open()
    numbers = iter(range(count))

    async def one() -> None:
        for number in numbers:
            attempt = Attempt(
                url=url, body=BODY, event_id=f"e{number}", number=1, timeout_ms=10_000,
                secret=SECRET,
            )  # fmt: skip
            result = await sender.send(attempt)
            if not result.ok:
                raise SystemExit(f"hookd sender: {result.status_code} {result.error}")

    try:
        await asyncio.gather(*(one() for _ in range(connections)))
    finally:
        await sender.close()


CLIENTS: dict[str, Callable[[str, int, int], Awaitable[None]]] = {
    "aiohttp": _with_aiohttp,
    "httpx": _with_httpx,
    "hookd": _with_hookd_sender,
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("url", help="a receiver on 127.0.0.1, e.g. http://127.0.0.1:8999/")
    parser.add_argument("-n", "--requests", type=int, default=10_000)
    parser.add_argument("--connections", type=int, default=CONNECTIONS)
    parser.add_argument("--clients", default="aiohttp,httpx", help="from aiohttp, httpx, hookd")
    args = parser.parse_args()
    connections = max(1, args.connections)
    names = [name.strip() for name in args.clients.split(",")]
    unknown = [name for name in names if name not in CLIENTS]
    if unknown:
        raise SystemExit(f"unknown client(s) {unknown}; choose from {sorted(CLIENTS)}")
    if urlsplit(args.url).hostname not in ("127.0.0.1", "localhost", "::1"):
        raise SystemExit("the receiver must be on loopback")
    uvloop.install()
    for name in names * 2:
        run = CLIENTS[name]
        count = max(1, args.requests // 10) if name == "httpx" else args.requests
        cpu, started = _cpu(), time.perf_counter()
        asyncio.run(run(args.url, count, connections))
        elapsed = time.perf_counter() - started
        print(
            f"{name:8} {connections:4} connections {count / elapsed:8.0f} requests/s "
            f"{(_cpu() - cpu) / count * 1e6:7.0f} µs CPU"
        )


if __name__ == "__main__":
    main()
