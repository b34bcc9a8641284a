"""aiohttp or httpx for delivery? `python -m bench.http_client [URL]`.

Posts the same signed 1 KiB requests with each client (64 pooled connections, uvloop) to a
receiver on 127.0.0.1 (start one, e.g. nginx `return 200`, and pass its URL) and prints
requests/s and CPU per request. hookd delivers with aiohttp because of this measurement
(docs/performance.md).
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import hashlib
import hmac
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


async def _with_aiohttp(url: str, count: int) -> None:
    connector = aiohttp.TCPConnector(limit=CONNECTIONS)
    async with aiohttp.ClientSession(connector=connector) as session:
        numbers = iter(range(count))

        async def sender() -> None:
            for number in numbers:
                async with session.post(
                    url, data=BODY, headers=_headers(number), timeout=aiohttp.ClientTimeout(10)
                ) as response:
                    await response.read()

        await asyncio.gather(*(sender() for _ in range(CONNECTIONS)))


async def _with_httpx(url: str, count: int) -> None:
    limits = httpx.Limits(max_connections=CONNECTIONS, max_keepalive_connections=CONNECTIONS)
    async with httpx.AsyncClient(limits=limits, timeout=10) as client:
        numbers = iter(range(count))

        async def sender() -> None:
            for number in numbers:
                response = await client.post(url, content=BODY, headers=_headers(number))
                await response.aread()

        await asyncio.gather(*(sender() for _ in range(CONNECTIONS)))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("url", help="a receiver on 127.0.0.1, e.g. http://127.0.0.1:8999/")
    parser.add_argument("-n", "--requests", type=int, default=10_000)
    args = parser.parse_args()
    if urlsplit(args.url).hostname not in ("127.0.0.1", "localhost", "::1"):
        raise SystemExit("the receiver must be on loopback")
    uvloop.install()
    clients: list[tuple[str, Callable[[str, int], Awaitable[None]]]] = [
        ("aiohttp", _with_aiohttp), ("httpx", _with_httpx),
    ]  # fmt: skip
    for name, run in clients * 2:
        count = args.requests if name == "aiohttp" else max(1, args.requests // 10)
        cpu, started = _cpu(), time.perf_counter()
        asyncio.run(run(args.url, count))
        elapsed = time.perf_counter() - started
        print(
            f"{name:8} {count / elapsed:8.0f} requests/s {(_cpu() - cpu) / count * 1e6:7.0f} µs CPU"
        )


if __name__ == "__main__":
    main()
