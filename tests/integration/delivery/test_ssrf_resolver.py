"""GuardedResolver end to end, against a server on loopback only."""

import socket
from collections.abc import AsyncIterator

import aiohttp
import pytest
from aiohttp import web
from aiohttp.abc import AbstractResolver, ResolveResult
from aiohttp.test_utils import TestServer

from hookd.config import load_settings
from hookd.delivery.ssrf import (
    GuardedResolver,
    TargetGuard,
    TargetRefused,
    check_literal_host,
)

TIMEOUT = aiohttp.ClientTimeout(total=10)


@pytest.fixture
async def server() -> AsyncIterator[TestServer]:
    async def hello(request: web.Request) -> web.Response:
        return web.Response(text="hello")

    app = web.Application()
    app.router.add_get("/", hello)
    test_server = TestServer(app, host="127.0.0.1")
    await test_server.start_server()
    try:
        yield test_server
    finally:
        await test_server.close()


def _session(guard: TargetGuard, inner: AbstractResolver | None = None) -> aiohttp.ClientSession:
    resolver = GuardedResolver(guard, inner)
    return aiohttp.ClientSession(connector=aiohttp.TCPConnector(resolver=resolver), timeout=TIMEOUT)


class _FixedResolver(AbstractResolver):
    """Answers every name with fixed addresses; records calls. No sockets."""

    def __init__(self, *addresses: str) -> None:
        self.addresses = addresses
        self.calls: list[str] = []
        self.closed = False

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        self.calls.append(host)
        return [
            ResolveResult(
                hostname=host,
                host=address,
                port=port,
                family=socket.AF_INET6 if ":" in address else socket.AF_INET,
                proto=0,
                flags=socket.AI_NUMERICHOST,
            )
            for address in self.addresses
        ]

    async def close(self) -> None:
        self.closed = True


async def test_guard_refuses_localhost_with_reason_in_client_error(server: TestServer) -> None:
    async with _session(TargetGuard(allow=[])) as session:
        with pytest.raises(aiohttp.ClientConnectorError) as caught:
            await session.get(f"http://localhost:{server.port}/")
    error = caught.value
    assert "localhost refused" in str(error)
    assert "is a loopback address" in str(error)
    assert isinstance(error.os_error, TargetRefused)
    assert "127.0.0.1 is a loopback address" in error.os_error.reason


async def test_allow_list_lets_localhost_through(server: TestServer) -> None:
    guard = TargetGuard(allow=load_settings(allow_targets="127.0.0.0/8, ::1/128").allow_networks)
    async with _session(guard) as session, session.get(f"http://localhost:{server.port}/") as resp:
        assert resp.status == 200
        assert await resp.text() == "hello"


async def test_disabled_guard_lets_localhost_through(server: TestServer) -> None:
    async with (
        _session(TargetGuard(allow=[], enabled=False)) as session,
        session.get(f"http://localhost:{server.port}/") as resp,
    ):
        assert resp.status == 200


async def test_name_resolving_to_a_refused_address_never_connects(server: TestServer) -> None:
    # A public-looking name that "resolves" to loopback, as DNS rebinding would make it.
    inner = _FixedResolver("127.0.0.1")
    async with _session(TargetGuard(allow=[]), inner) as session:
        with pytest.raises(aiohttp.ClientConnectorError, match="loopback"):
            await session.get(f"http://rebind.example.com:{server.port}/")
    assert inner.calls == ["rebind.example.com"]


async def test_ip_literal_url_skips_the_resolver(server: TestServer) -> None:
    # Why check_literal_host exists: aiohttp connects to literals without asking the resolver.
    inner = _FixedResolver("127.0.0.1")
    async with (
        _session(TargetGuard(allow=[]), inner) as session,
        session.get(f"http://127.0.0.1:{server.port}/") as resp,
    ):
        assert resp.status == 200
    assert inner.calls == []
    assert check_literal_host(TargetGuard(allow=[]), "127.0.0.1") is not None


async def test_resolver_keeps_only_permitted_addresses() -> None:
    inner = _FixedResolver("127.0.0.1", "93.184.216.34", "::ffff:10.0.0.1", "2606:4700::1")
    resolver = GuardedResolver(TargetGuard(allow=[]), inner)
    results = await resolver.resolve("mixed.example", 443, socket.AF_UNSPEC)
    assert [result["host"] for result in results] == ["93.184.216.34", "2606:4700::1"]
    assert results[0]["port"] == 443


async def test_resolver_refusal_lists_each_reason_once() -> None:
    inner = _FixedResolver("127.0.0.1", "10.0.0.1", "127.0.0.1")
    resolver = GuardedResolver(TargetGuard(allow=[]), inner)
    with pytest.raises(TargetRefused) as caught:
        await resolver.resolve("internal.example", 80)
    assert caught.value.reason == (
        "internal.example refused: 127.0.0.1 is a loopback address; 10.0.0.1 is a private address"
    )


async def test_resolver_close_delegates() -> None:
    inner = _FixedResolver()
    await GuardedResolver(TargetGuard(allow=[]), inner).close()
    assert inner.closed


def test_check_literal_host_is_pure() -> None:
    guard = TargetGuard(allow=[])
    assert check_literal_host(guard, "127.0.0.1") == "127.0.0.1 is a loopback address"
    assert check_literal_host(guard, "example.com") is None
