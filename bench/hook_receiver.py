"""Validation-hook receiver of bench.hostile: `python -m bench.hook_receiver --port P --slow-s S`.

Answers ``POST /slow`` with 200 after sleeping ``--slow-s`` seconds (the hostile repository's
hook) and every other request with 200 at once (the well-behaved repository's hook). HTTP/1.1
keep-alive with Content-Length bodies only, which is all hookd's sender uses. 127.0.0.1 only.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import signal

import uvloop

from bench.procs import LOOPBACK

OK = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Type: text/plain\r\n\r\nok"
MAX_HEAD = 64 * 1024
MAX_BODY = 4 * 1024 * 1024


async def _serve_connection(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, slow_s: float
) -> None:
    try:
        while True:
            head = await reader.readuntil(b"\r\n\r\n")
            if len(head) > MAX_HEAD:
                return
            lines = head.split(b"\r\n")
            path = lines[0].split(b" ")[1] if lines[0].count(b" ") >= 2 else b"/"
            length = 0
            for line in lines[1:]:
                name, _, value = line.partition(b":")
                if name.strip().lower() == b"content-length":
                    length = int(value.strip() or b"0")
            if length > MAX_BODY:
                return
            if length:
                await reader.readexactly(length)
            if path.startswith(b"/slow"):
                await asyncio.sleep(slow_s)
            writer.write(OK)
            await writer.drain()
    except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, ConnectionError, ValueError):
        pass
    finally:
        writer.close()
        with contextlib.suppress(ConnectionError):
            await writer.wait_closed()


async def _main(port: int, slow_s: float) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    server = await asyncio.start_server(
        lambda r, w: _serve_connection(r, w, slow_s), LOOPBACK, port, backlog=1024, limit=MAX_HEAD
    )
    async with server:
        await stop.wait()


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.hook_receiver", description=__doc__)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--slow-s", type=float, default=8.0, help="how long /slow takes")
    args = parser.parse_args()
    uvloop.run(_main(args.port, args.slow_s))


if __name__ == "__main__":
    main()
