"""Listening sockets for `hookd serve` and `hookd listen`: bound before anything is announced,
with one line saying what to do when the address cannot be had."""

from __future__ import annotations

import errno
import socket


class CannotListen(Exception):
    """The address cannot be listened on; the message says why and what to do."""


def cannot_listen(host: str, port: int, exc: OSError, options: str) -> str:
    """One line saying why listening on host:port failed, naming the `options` that change it."""
    if exc.errno == errno.EADDRINUSE:
        return f"port {port} on {host} is in use by another program; stop it or choose {options}"
    if exc.errno == errno.EACCES:
        return f"not allowed to listen on port {port} of {host}; choose a port above 1023"
    reason = exc.strerror or str(exc)
    return f"cannot listen on {host}:{port} ({reason}); choose {options}"


def bind(host: str, port: int, options: str) -> socket.socket:
    """A TCP socket bound to host:port (not yet listening, so nothing connects before the
    server is ready); CannotListen naming `options` when it cannot be bound."""
    try:
        family, kind, proto, _, address = socket.getaddrinfo(
            host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
        )[0]
    except socket.gaierror as exc:
        raise CannotListen(f"cannot listen on {host}: {exc.strerror}; choose {options}") from None
    sock = socket.socket(family, kind, proto)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
    except OSError as exc:
        sock.close()
        raise CannotListen(cannot_listen(host, port, exc, options)) from None
    sock.set_inheritable(True)
    return sock
