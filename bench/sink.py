"""Fallback receiver when nginx cannot be had: a raw asyncio/uvloop HTTP/1.1 sink.

``python -m bench.sink --port P --log FILE`` answers every request ``200`` with an empty body and
writes ``$msec $webhook_id $status $attempt $path`` lines, like the nginx access log of the bench.
It is deliberately not aiohttp.web: a hand-rolled protocol costs a fraction of the CPU.
"""

from __future__ import annotations

import argparse
import asyncio
import signal
import time
from typing import IO, cast

RESPONSE = b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\nContent-Type: text/plain\r\n\r\n"
RESPONSE_CLOSE = b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
MAX_HEAD = 64 * 1024


class ArrivalWriter:
    """Buffers log lines and flushes them every 100 ms (like nginx's ``buffer=… flush=…``)."""

    def __init__(self, out: IO[str], loop: asyncio.AbstractEventLoop) -> None:
        self.out = out
        self.loop = loop
        self.lines: list[str] = []
        self.loop.call_later(0.1, self._tick)

    def add(self, line: str) -> None:
        self.lines.append(line)

    def flush(self) -> None:
        if self.lines:
            self.out.write("".join(self.lines))
            self.out.flush()
            self.lines.clear()

    def _tick(self) -> None:
        self.flush()
        self.loop.call_later(0.1, self._tick)


def _chunked_end(buf: bytearray, start: int) -> int:
    """Index just past a complete chunked body starting at ``start``, or -1 if incomplete."""
    pos = start
    while True:
        eol = buf.find(b"\r\n", pos)
        if eol < 0:
            return -1
        size = int(bytes(buf[pos:eol]).split(b";")[0].strip() or b"0", 16)
        pos = eol + 2
        if size == 0:
            # optional trailers, then an empty line
            while True:
                eol = buf.find(b"\r\n", pos)
                if eol < 0:
                    return -1
                if eol == pos:
                    return pos + 2
                pos = eol + 2
        if len(buf) < pos + size + 2:
            return -1
        pos += size + 2


class SinkProtocol(asyncio.Protocol):
    def __init__(self, writer: ArrivalWriter) -> None:
        self.writer = writer
        self.buf = bytearray()
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's is not a subclass

    def data_received(self, data: bytes) -> None:
        self.buf += data
        while self.transport is not None and self._one_request():
            pass

    def _one_request(self) -> bool:
        end = self.buf.find(b"\r\n\r\n")
        if end < 0:
            if len(self.buf) > MAX_HEAD and self.transport is not None:
                self.transport.close()
            return False
        lines = bytes(self.buf[:end]).decode("latin-1").split("\r\n")
        parts = lines[0].split(" ")
        path = parts[1].split("?", 1)[0] if len(parts) > 1 else "-"
        length, chunked, close = 0, False, False
        webhook_id, attempt = "-", "-"
        for line in lines[1:]:
            name, _, value = line.partition(":")
            name = name.strip().lower()
            value = value.strip()
            if name == "content-length":
                length = int(value)
            elif name == "transfer-encoding":
                chunked = "chunked" in value.lower()
            elif name == "webhook-id":
                webhook_id = value or "-"
            elif name == "x-hookd-attempt":
                attempt = value or "-"
            elif name == "connection":
                close = value.lower() == "close"
        body_start = end + 4
        if chunked:
            done = _chunked_end(self.buf, body_start)
            if done < 0:
                return False
        else:
            done = body_start + length
            if len(self.buf) < done:
                return False
        del self.buf[:done]
        self.writer.add(f"{time.time():.3f} {webhook_id} 200 {attempt} {path}\n")
        assert self.transport is not None
        if close:
            self.transport.write(RESPONSE_CLOSE)
            self.transport.close()
            self.transport = None
            return False
        self.transport.write(RESPONSE)
        return True


async def serve(port: int, out: IO[str]) -> None:
    loop = asyncio.get_running_loop()
    writer = ArrivalWriter(out, loop)
    server = await loop.create_server(
        lambda: SinkProtocol(writer), "127.0.0.1", port, backlog=4096, reuse_address=True
    )
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    try:
        await stop.wait()
    finally:
        server.close()
        writer.flush()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--log", required=True)
    args = parser.parse_args()
    with open(args.log, "a", buffering=1 << 16) as out:
        try:
            import uvloop
        except ImportError:
            asyncio.run(serve(args.port, out))
        else:
            uvloop.run(serve(args.port, out))


if __name__ == "__main__":
    main()
