"""`hookd serve` on a fresh directory: creates and migrates the store, makes the first admin,
prints its generated password once, and serves on the port it is given."""

from __future__ import annotations

import contextlib
import re
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from hookd.domain.credentials import hash_password
from hookd.store import accounts, migrate
from hookd.store.database import Database
from support import HOOKD, environment, free_port

pytestmark = pytest.mark.slow  # subprocesses: seconds each

STARTUP_SECONDS = 30


def wait_healthy(base: str, process: subprocess.Popen[bytes]) -> httpx.Response:
    deadline = time.monotonic() + STARTUP_SECONDS
    while time.monotonic() < deadline:
        assert process.poll() is None, "hookd serve exited early"
        try:
            return httpx.get(f"{base}/healthz", timeout=1)
        except httpx.TransportError:
            time.sleep(0.1)
    raise AssertionError(f"hookd serve did not answer within {STARTUP_SECONDS} s")


def stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)


class Serve:
    """Runs `hookd serve` in a directory; every process it starts is stopped at the end."""

    def __init__(self, cwd: Path) -> None:
        self.cwd = cwd
        self.processes: list[subprocess.Popen[bytes]] = []

    def start(self, port: int, run: int, *flags: str, **settings: str) -> subprocess.Popen[bytes]:
        process = subprocess.Popen(
            [HOOKD, "serve", *flags, "--port", str(port)],
            cwd=self.cwd,
            env=environment(**settings),
            stdin=subprocess.DEVNULL,
            stdout=(self.cwd / f"serve-{run}.out").open("wb"),
            stderr=(self.cwd / f"serve-{run}.err").open("wb"),
        )
        self.processes.append(process)
        return process

    def output(self, run: int) -> str:
        return (self.cwd / f"serve-{run}.out").read_text()

    def stop_all(self) -> None:
        for process in self.processes:
            stop(process)


@pytest.fixture
def serve(tmp_path: Path) -> Iterator[Serve]:
    running = Serve(tmp_path)
    try:
        yield running
    finally:
        running.stop_all()


def test_serve_on_a_fresh_directory(serve: Serve, tmp_path: Path) -> None:
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    first = serve.start(port, 1)
    health = wait_healthy(base, first)
    assert health.status_code == 200
    assert health.json() == {"status": "ok"}
    # The default store, ./var/hookd.db, was created in the working directory and migrated.
    assert (tmp_path / "var" / "hookd.db").is_file()
    stop(first)
    printed = serve.output(1)
    match = re.search(r"password\s+(\S+)", printed)
    assert match, printed
    password = match.group(1)
    assert len(password) >= 12

    second = serve.start(port, 2)
    assert wait_healthy(base, second).status_code == 200
    login = httpx.post(
        f"{base}/api/v1/login", json={"username": "admin", "password": password}, timeout=10
    )
    assert login.status_code == 200, login.text
    assert login.json()["account_type"] == "admin"
    stop(second)
    assert password not in serve.output(2), "the password is shown only once"
    assert "password" not in serve.output(2).lower()


def test_serve_with_a_given_admin_password(serve: Serve, tmp_path: Path) -> None:
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    process = serve.start(
        port,
        1,
        "--no-worker",
        HOOKD_DATABASE_URL=f"sqlite:///{tmp_path}/given.db",
        HOOKD_ADMIN_USERNAME="root",
        HOOKD_ADMIN_PASSWORD="given-password-1",
    )
    assert wait_healthy(base, process).status_code == 200
    login = httpx.post(
        f"{base}/api/v1/login",
        json={"username": "root", "password": "given-password-1"},
        timeout=10,
    )
    assert login.status_code == 200, login.text
    stop(process)
    assert "given-password-1" not in serve.output(1)
    assert "HOOKD_ADMIN_PASSWORD" not in (tmp_path / "serve-1.err").read_text(), "it was used"
    assert (tmp_path / "given.db").is_file()
    assert not (tmp_path / "var").exists()


def test_a_port_in_use_is_one_line_before_anything_starts(serve: Serve, tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        process = serve.start(port, 1)
        assert process.wait(timeout=STARTUP_SECONDS) != 0
    error = (tmp_path / "serve-1.err").read_text()
    assert error.splitlines() == [
        f"hookd: port {port} on 127.0.0.1 is in use by another program; "
        "stop it or choose another --port or HOOKD_PORT"
    ]
    assert "serving on" not in serve.output(1)
    assert not list((tmp_path / "var").glob("*.db")), "no store, no admin"


def test_a_second_serve_on_one_sqlite_file_is_refused(serve: Serve, tmp_path: Path) -> None:
    port = free_port()
    first = serve.start(port, 1, "--no-worker")
    assert wait_healthy(f"http://127.0.0.1:{port}", first).status_code == 200
    second = serve.start(free_port(), 2, "--no-worker")
    assert second.wait(timeout=STARTUP_SECONDS) != 0
    error = (tmp_path / "serve-2.err").read_text()
    assert error.splitlines() == [
        f"hookd: var/hookd.db is in use by hookd serve (pid {first.pid}); a SQLite store takes "
        "one hookd serve or worker at a time: stop that one first, or use PostgreSQL "
        "(HOOKD_DATABASE_URL) to run several"
    ]
    assert "serving on" not in serve.output(2)
    stop(first)
    third = serve.start(port, 3, "--no-worker")
    assert wait_healthy(f"http://127.0.0.1:{port}", third).status_code == 200, "lock released"


async def test_an_admin_password_given_after_the_first_start_is_said_to_be_ignored(
    serve: Serve, tmp_path: Path
) -> None:
    url = f"sqlite:///{tmp_path}/started.db"
    db = Database(url, pool_size=1)
    try:
        await migrate.upgrade(db)
        await accounts.create_user(db, "admin", hash_password("the-first-password"), "admin")
    finally:
        await db.close()
    port = free_port()
    process = serve.start(
        port,
        1,
        "--no-worker",
        HOOKD_DATABASE_URL=url,
        HOOKD_ADMIN_PASSWORD="a-later-password",
    )
    assert wait_healthy(f"http://127.0.0.1:{port}", process).status_code == 200
    stop(process)
    notices = [
        line
        for line in (tmp_path / "serve-1.err").read_text().splitlines()
        if "HOOKD_ADMIN_PASSWORD" in line
    ]
    assert notices == [
        "hookd: HOOKD_ADMIN_PASSWORD is ignored: it sets the first admin's password only when "
        "the store has no users yet; change a password with `hookd user set-password NAME` "
        "and unset the variable"
    ]


def raw_exchange(port: int, request: bytes, *, timeout: float = 10.0) -> tuple[bytes, float]:
    """Send `request` on a new connection; what came back until the server closed it, and how
    long that took."""
    started = time.monotonic()
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        with contextlib.suppress(OSError):  # the server may answer and close mid-request
            sock.sendall(request)
        received = b""
        with contextlib.suppress(OSError):
            while chunk := sock.recv(65536):
                received += chunk
    return received, time.monotonic() - started


def start_api(serve: Serve, store: Path, **settings: str) -> int:
    """`hookd serve --no-worker` on a SQLite file of its own, the admin's password
    "given-password-1"; the port it answers on."""
    port = free_port()
    process = serve.start(
        port,
        1,
        "--no-worker",
        HOOKD_DATABASE_URL=f"sqlite:///{store}",
        HOOKD_ADMIN_PASSWORD="given-password-1",
        **settings,
    )
    assert wait_healthy(f"http://127.0.0.1:{port}", process).status_code == 200
    return port


def test_serve_keeps_its_request_limits(serve: Serve, tmp_path: Path) -> None:
    port = start_api(serve, tmp_path / "limits.db", HOOKD_HEADER_TIMEOUT="1s")

    # An 8 MB Accept header on a repository path, without logging in.
    huge = b"GET /r/x HTTP/1.1\r\nHost: h\r\nAccept: " + b"a/b;q=0.5, " * 800_000 + b"\r\n\r\n"
    answer, _ = raw_exchange(port, huge)
    assert answer.startswith(b"HTTP/1.1 431 "), answer[:200]

    # A request head sent slowly is cut off after HOOKD_HEADER_TIMEOUT.
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: h\r\nX-Slow: ")
        started = time.monotonic()
        received = b""
        for _ in range(20):
            time.sleep(0.25)
            with contextlib.suppress(OSError):
                sock.sendall(b"a")
            sock.settimeout(0.01)
            with contextlib.suppress(TimeoutError, OSError):
                received += sock.recv(65536)
            if received:
                break
        assert received.startswith(b"HTTP/1.1 408 "), received[:200]
        assert time.monotonic() - started < 3

    # A publish larger than HOOKD_MAX_PUBLISH_BYTES is refused before it is read.
    login = httpx.post(
        f"http://127.0.0.1:{port}/api/v1/login",
        json={"username": "admin", "password": "given-password-1"},
        timeout=10,
    )
    token = login.json()["token"]
    big = (
        b"POST /api/v1/events HTTP/1.1\r\nHost: h\r\nContent-Type: application/json\r\n"
        + f"Authorization: Bearer {token}\r\nContent-Length: {32 * 1024 * 1024}\r\n\r\n".encode()
        + b"[" * 65536
    )
    answer, _ = raw_exchange(port, big)
    assert answer.startswith(b"HTTP/1.1 413 "), answer[:200]
    assert httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=5).status_code == 200


def test_a_forwarded_for_header_does_not_change_the_client_s_address(
    serve: Serve, tmp_path: Path
) -> None:
    """Logins are throttled per connection address; a client naming other addresses in
    X-Forwarded-For (here from 127.0.0.1, the address a local proxy would have) still counts as
    itself."""
    port = start_api(serve, tmp_path / "forwarded.db", HOOKD_LOGIN_FAILURES_PER_ADDRESS="3")
    answers = [
        httpx.post(
            f"http://127.0.0.1:{port}/api/v1/login",
            json={"username": f"guess-{n}", "password": "wrong-password"},
            headers={"X-Forwarded-For": f"203.0.113.{n}"},
            timeout=10,
        ).status_code
        for n in range(5)
    ]
    assert answers[:3] == [401, 401, 401], answers
    assert answers[3:] == [429, 429], answers
