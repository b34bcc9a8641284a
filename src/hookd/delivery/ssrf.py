"""The SSRF guard: which addresses a delivery may connect to.

Names are checked by `GuardedResolver` at connect time, on the very addresses aiohttp then connects
to (so DNS rebinding gains nothing); aiohttp never asks the resolver about IP-literal hosts, so
those go through `check_literal_host` before the request.
"""

import errno
import socket
from collections.abc import Sequence
from ipaddress import IPv4Address, IPv4Network, IPv6Address, IPv6Network, ip_address

from aiohttp.abc import AbstractResolver, ResolveResult
from aiohttp.resolver import DefaultResolver

IPAddress = IPv4Address | IPv6Address
IPNetwork = IPv4Network | IPv6Network

_PRIVATE: tuple[IPNetwork, ...] = (
    IPv4Network("10.0.0.0/8"),
    IPv4Network("172.16.0.0/12"),
    IPv4Network("192.168.0.0/16"),
    IPv6Network("fc00::/7"),
)
_SHARED = IPv4Network("100.64.0.0/10")
_NAT64 = IPv6Network("64:ff9b::/96")


def _embedded_ipv4(address: IPv6Address) -> IPv4Address | None:
    """The IPv4 address an IPv4-mapped, NAT64 (64:ff9b::/96) or 6to4 address leads to."""
    if address.ipv4_mapped is not None:
        return address.ipv4_mapped
    if address in _NAT64:
        return IPv4Address(int(address) & 0xFFFF_FFFF)
    return address.sixtofour


def _category(address: IPAddress) -> str | None:
    """Why an address is off limits, as a noun phrase; None for a public address."""
    if address.is_unspecified:
        return "an unspecified address"
    if address.is_loopback:
        return "a loopback address"
    if address.is_link_local:
        return "a link-local address"
    if any(address in network for network in _PRIVATE):
        return "a private address"
    if address in _SHARED:
        return "a shared address (RFC 6598)"
    if address.is_multicast:
        return "a multicast address"
    if address.is_reserved:
        return "a reserved address"
    if isinstance(address, IPv6Address) and address.is_site_local:
        return "a site-local address"
    if not address.is_global:
        return "not a public address"
    return None


def _shown(address: IPAddress) -> str:
    # Python < 3.13 prints an IPv4-mapped address in hex (::ffff:7f00:1).
    if isinstance(address, IPv6Address) and address.ipv4_mapped is not None:
        return f"::ffff:{address.ipv4_mapped}"
    return str(address)


class TargetGuard:
    """Decides whether delivery may reach an address: public ones only, plus an allow list."""

    def __init__(self, allow: Sequence[IPNetwork] = (), enabled: bool = True) -> None:
        self._allow = tuple(allow)
        self._enabled = enabled

    @property
    def enabled(self) -> bool:
        return self._enabled

    def _allowed(self, address: IPAddress) -> bool:
        return any(address in network for network in self._allow)

    def refusal(self, address: str | IPAddress) -> str | None:
        """None when the address may be reached, else a short reason."""
        if not self._enabled:
            return None
        if isinstance(address, str):
            try:
                address = ip_address(address)
            except ValueError:
                return f"{address} is not an IP address"
        embedded = _embedded_ipv4(address) if isinstance(address, IPv6Address) else None
        judged = address if embedded is None else embedded
        if self._allowed(address) or self._allowed(judged):
            return None
        category = _category(judged)
        if category is None:
            return None
        if embedded is None:
            return f"{address} is {category}"
        return f"{_shown(address)} leads to {embedded}, {category}"


class TargetRefused(OSError):
    """The guard refused every address of a target; `reason` says why."""

    def __init__(self, reason: str) -> None:
        # aiohttp's ClientConnectorError keeps only errno and strerror of the OSError it wraps.
        super().__init__(errno.EACCES, reason)
        self.reason = reason

    def __str__(self) -> str:
        return self.reason

    def __reduce__(self) -> tuple[type["TargetRefused"], tuple[str]]:
        return type(self), (self.reason,)


class GuardedResolver(AbstractResolver):
    """A resolver that hands aiohttp only the addresses the guard permits."""

    def __init__(self, guard: TargetGuard, inner: AbstractResolver | None = None) -> None:
        self._guard = guard
        self._inner = inner

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        if self._inner is None:
            # Created here, not in __init__, because it needs the running loop.
            self._inner = DefaultResolver()
        permitted: list[ResolveResult] = []
        reasons: list[str] = []
        for result in await self._inner.resolve(host, port, family):
            reason = self._guard.refusal(result["host"])
            if reason is None:
                permitted.append(result)
            else:
                reasons.append(reason)
        if reasons and not permitted:
            raise TargetRefused(f"{host} refused: " + "; ".join(dict.fromkeys(reasons)))
        return permitted

    async def close(self) -> None:
        if self._inner is not None:
            await self._inner.close()


def _looks_like_ip(host: str) -> bool:
    # As aiohttp (3.14) decides "this host is an IP literal, skip the resolver".
    return ":" in host or host.replace(".", "").isdigit()


def check_literal_host(guard: TargetGuard, host: str) -> str | None:
    """The guard's refusal for an IP-literal URL host; None for a name (the resolver checks it).

    Hosts aiohttp takes for literals although they are no canonical IP (`127.1`, `2130706433`)
    are refused: they skip the resolver, and the socket layer would map them onto an address.
    """
    if not guard.enabled:
        return None
    literal = host[1:-1] if host.startswith("[") and host.endswith("]") else host
    try:
        address = ip_address(literal)
    except ValueError:
        return f"{host} is not a canonical IP address" if _looks_like_ip(literal) else None
    return guard.refusal(address)
