"""The server's limits (`hookd.http.server`), on a real uvicorn server on 127.0.0.1: head and
request-target sizes, head and body deadlines, connections and requests in progress. Requests
are written on raw sockets, as a hostile client writes them."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import replace
from typing import Any

import orjson
import pytest
import uvicorn

from hookd.http.server import ServerLimits, protocol
from support import free_port

LIMITS = ServerLimits(
    max_header_bytes=4096,
    max_url_bytes=1024,
    max_body_bytes=300_000,
    header_timeout=0.5,
    body_timeout=0.5,
    max_connections=20,
    max_requests=20,
)
Serve = Callable[..., Awaitable[int]]


class App:
    """Reads the whole body (after `delay` s), then answers 200 with its length; `gate`, when
    set, holds every request until it opens."""

    def __init__(self) -> None:
        self.calls = 0
        self.delay = 0.0
        self.gate: asyncio.Event | None = None

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        self.calls += 1
        if self.gate is not None:
            await self.gate.wait()
        await asyncio.sleep(self.delay)
        size, more = 0, True
        while more:
            message = await receive()
            size += len(message.get("body", b""))
            more = message.get("more_body", False)
        body = orjson.dumps({"size": size})
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(body)).encode()),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})


@pytest.fixture
def app() -> App:
    return App()


@pytest.fixture
async def serve(app: App) -> AsyncIterator[Serve]:
    servers: list[tuple[uvicorn.Server, asyncio.Task[None]]] = []

    async def start(**changes: Any) -> int:
        port = free_port()
        config = uvicorn.Config(
            app,
            host="127.0.0.1",
            port=port,
            http=protocol(replace(LIMITS, **changes)),
            ws="none",
            lifespan="off",
            log_level="warning",
        )
        server = uvicorn.Server(config)
        task = asyncio.create_task(server.serve())
        servers.append((server, task))
        for _ in range(100):
            if server.started:
                return port
            await asyncio.sleep(0.02)
        raise AssertionError("the server did not start")

    yield start
    for server, task in servers:
        server.should_exit = True
        with contextlib.suppress(Exception):
            await asyncio.wait_for(task, 10)


async def connect(port: int) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    return await asyncio.open_connection("127.0.0.1", port)


async def answer(reader: asyncio.StreamReader, timeout: float = 5.0) -> tuple[int | None, bytes]:
    """The status of the next answer and its body (None, b"" when the server closed first)."""
    async with asyncio.timeout(timeout):
        try:
            head = await reader.readuntil(b"\r\n\r\n")
        except asyncio.IncompleteReadError:
            return None, b""
        lines = head.decode().split("\r\n")
        status = int(lines[0].split()[1])
        length = next(
            (
                int(line.split(":")[1])
                for line in lines
                if line.lower().startswith("content-length")
            ),
            0,
        )
        return status, await reader.readexactly(length)


async def closed(reader: asyncio.StreamReader, timeout: float = 5.0) -> bool:
    async with asyncio.timeout(timeout):
        try:
            return await reader.read(1) == b""
        except ConnectionError:
            return True


def request(path: str = "/", headers: str = "", body: bytes = b"") -> bytes:
    length = f"Content-Length: {len(body)}\r\n" if body else ""
    return f"POST {path} HTTP/1.1\r\nHost: x\r\n{length}{headers}\r\n".encode() + body


async def test_requests_within_the_limits_are_served(serve: Serve, app: App) -> None:
    reader, writer = await connect(await serve())
    for _ in range(2):  # one keep-alive connection
        writer.write(request(headers="X-Fits: " + "a" * 3000 + "\r\n", body=b"12345"))
        assert await answer(reader) == (200, b'{"size":5}')
    writer.close()
    assert app.calls == 2


async def test_a_head_over_the_limit_is_refused_before_the_application(
    serve: Serve, app: App
) -> None:
    reader, writer = await connect(await serve())
    writer.write(b"GET / HTTP/1.1\r\nHost: x\r\nAccept: " + b"a/b, " * 200_000)
    status, body = await answer(reader)
    assert status == 431
    assert orjson.loads(body) == {"error": "Request header fields too large"}
    assert await closed(reader)
    assert app.calls == 0


async def test_many_headers_over_the_limit_are_refused(serve: Serve, app: App) -> None:
    reader, writer = await connect(await serve())
    headers = "".join(f"X-Filler-{i}: {'f' * 100}\r\n" for i in range(100))
    writer.write(request(headers=headers))
    assert (await answer(reader))[0] == 431
    assert app.calls == 0


async def test_a_head_whose_end_is_past_the_limit_is_refused_in_one_read(
    serve: Serve, app: App
) -> None:
    reader, writer = await connect(await serve())
    # Head and body in one write: the head ends within the limit, the rest is body.
    writer.write(request(headers="X-Fits: " + "a" * 3000 + "\r\n", body=b"b" * 200_000))
    assert await answer(reader) == (200, b'{"size":200000}')
    writer.write(b"GET / HTTP/1.1\r\nHost: x\r\nX-Big: " + b"c" * 100_000 + b"\r\n\r\n")
    assert (await answer(reader))[0] == 431
    assert app.calls == 1


async def test_a_body_declared_over_the_ceiling_is_refused_with_the_head(
    serve: Serve, app: App
) -> None:
    reader, writer = await connect(await serve())
    writer.write(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 300001\r\n\r\n" + b"x" * 1000)
    status, body = await answer(reader)
    assert status == 413
    assert orjson.loads(body) == {"error": "Request body too large"}
    assert app.calls == 0


async def test_a_request_target_over_the_limit_is_refused(serve: Serve, app: App) -> None:
    reader, writer = await connect(await serve())
    writer.write(request(path="/" + "p" * 2000))
    status, body = await answer(reader)
    assert status == 414
    assert orjson.loads(body) == {"error": "Request target too long"}
    assert app.calls == 0


async def test_a_head_sent_slowly_is_cut_off_at_its_deadline(serve: Serve, app: App) -> None:
    reader, writer = await connect(await serve())
    writer.write(b"GET / HTTP/1.1\r\nHost: x\r\nX-Slow: ")
    for _ in range(3):  # a byte now and then, as a slow-loris client sends them
        await asyncio.sleep(0.2)
        writer.write(b"a")
    status, body = await answer(reader, timeout=2)
    assert status == 408
    assert orjson.loads(body) == {"error": "Request not received in time"}
    assert await closed(reader)
    assert app.calls == 0


async def test_a_connection_that_sends_nothing_is_closed(serve: Serve) -> None:
    reader, _ = await connect(await serve())
    assert await answer(reader, timeout=2) == (None, b"")


async def test_a_body_sent_slowly_is_cut_off_at_its_deadline(serve: Serve, app: App) -> None:
    reader, writer = await connect(await serve())
    writer.write(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n0123456789")
    for _ in range(3):
        await asyncio.sleep(0.2)
        writer.write(b"a")
    assert (await answer(reader, timeout=2))[0] == 408
    assert await closed(reader)


async def test_a_body_waiting_for_the_application_is_not_the_client_s_delay(
    serve: Serve, app: App
) -> None:
    app.delay = 1.0  # twice the body deadline before it reads the body
    reader, writer = await connect(await serve())
    writer.write(request(body=b"x" * 200_000))  # more than uvicorn buffers before pausing
    assert await answer(reader, timeout=5) == (200, b'{"size":200000}')


async def test_connections_beyond_the_limit_are_refused_at_once(serve: Serve) -> None:
    port = await serve(max_connections=3, header_timeout=10)
    held = [await connect(port) for _ in range(3)]  # kept: a writer let go of closes
    reader, _ = await connect(port)
    status, body = await answer(reader)
    assert status == 503
    assert orjson.loads(body) == {"error": "Too many connections"}
    # Those already open are served.
    first_reader, first_writer = held[0]
    first_writer.write(request())
    assert (await answer(first_reader))[0] == 200


async def test_requests_beyond_the_limit_in_progress_are_refused(serve: Serve, app: App) -> None:
    port = await serve(max_requests=2)
    app.gate = asyncio.Event()
    waiting = []
    for _ in range(2):
        reader, writer = await connect(port)
        writer.write(request())
        waiting.append((reader, writer))  # a writer let go of closes its connection
    await asyncio.sleep(0.2)
    reader, writer = await connect(port)
    writer.write(request())
    status, body = await answer(reader)
    assert status == 503
    assert orjson.loads(body) == {"error": "Too many requests in progress"}
    app.gate.set()
    for each, _ in waiting:
        assert (await answer(each))[0] == 200
