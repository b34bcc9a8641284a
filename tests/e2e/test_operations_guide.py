"""docs/operations.md's PostgreSQL set-up, followed literally: its marked shell blocks run as
written (database and user, migrate, the first admin, `serve --no-worker`, two `hookd worker`),
on a throw-away database, with the guide's own variables set to this machine's values. Then
events published through the API are delivered, signed, and both workers delivered some.

Blocks are marked in the guide with `<!-- ops-guide: KIND -->` before a ```sh fence: `settings`
(the variables, given here instead), `run` (run to completion) and `background` (a process
that keeps running)."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from aiohttp import web
from sqlalchemy.engine import make_url
from standardwebhooks.webhooks import Webhook as StandardWebhook

from support import HOOKD, POSTGRES_URL, REQUIRE_POSTGRES, environment, free_port

pytestmark = pytest.mark.slow  # several processes

GUIDE = Path(__file__).resolve().parents[2] / "docs" / "operations.md"
BLOCK = re.compile(r"<!-- ops-guide: (\w+) -->\n```sh\n(.*?)^```", re.M | re.S)
EVENTS = 30
SECRET = "guide-test-secret-0123"


def guide_blocks() -> list[tuple[str, str]]:
    return [(kind, body) for kind, body in BLOCK.findall(GUIDE.read_text())]


def the_guides_variables(settings_block: str) -> set[str]:
    return {
        name
        for line in settings_block.splitlines()
        if line.startswith("export ")
        for name in re.findall(r"(?:^export |\s)([A-Z_]+)=", line)
    }


def this_machines_values(port: int) -> dict[str, str]:
    """The guide's variables, for a throw-away database next to the test database."""
    assert POSTGRES_URL
    url = make_url(POSTGRES_URL)
    name = f"{url.database}_guide"
    values = {
        "PGHOST": url.host or "127.0.0.1",
        "PGPORT": str(url.port or 5432),
        "PGUSER": url.username or "postgres",
        "HOOKD_DB": name,
        "HOOKD_DB_USER": name,
        "HOOKD_DB_PASSWORD": "guide-password",
        "HOOKD_SECRET_KEY": "the guide test's key",
        "HOOKD_HOST": "127.0.0.1",
        "HOOKD_PORT": str(port),
        "ADMIN_PASSWORD": "guide-admin-password",
    }
    values["HOOKD_DATABASE_URL"] = (
        f"postgresql://{name}:guide-password@{values['PGHOST']}:{values['PGPORT']}/{name}"
    )
    return values


def drop(values: dict[str, str]) -> None:
    env = environment(**{k: values[k] for k in ("PGHOST", "PGPORT", "PGUSER")})
    for statement in (
        f'DROP DATABASE IF EXISTS "{values["HOOKD_DB"]}" WITH (FORCE)',
        f'DROP ROLE IF EXISTS "{values["HOOKD_DB_USER"]}"',
    ):
        subprocess.run(
            ["psql", "-v", "ON_ERROR_STOP=1", "-d", "postgres", "-c", statement],
            env=env,
            capture_output=True,
            timeout=60,
            check=True,
        )


# --- which process a delivery came from -----------------------------------------------------


def socket_inode(local_port: int) -> str | None:
    """The inode of the loopback TCP socket bound to `local_port` (the sender's end)."""
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with open(table) as lines:
            next(lines)
            for line in lines:
                fields = line.split()
                if int(fields[1].rsplit(":", 1)[1], 16) == local_port:
                    return fields[9]
    return None


def owner(inode: str, pids: list[int]) -> int | None:
    target = f"socket:[{inode}]"
    for pid in pids:
        try:
            for fd in os.listdir(f"/proc/{pid}/fd"):
                if os.readlink(f"/proc/{pid}/fd/{fd}") == target:
                    return pid
        except OSError:
            continue
    return None


def group_members(pgid: int) -> list[int]:
    members = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                stat = Path(f"/proc/{entry}/stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[2]) == pgid:
                members.append(int(entry))
    return members


# --- the test -------------------------------------------------------------------------------


@pytest.fixture
def guide_values() -> Iterator[dict[str, str]]:
    if not POSTGRES_URL:
        if REQUIRE_POSTGRES:
            pytest.fail("HOOKD_REQUIRE_POSTGRES=1 but HOOKD_TEST_DATABASE_URL is not set")
        pytest.skip("the guide's PostgreSQL set-up needs HOOKD_TEST_DATABASE_URL")
    values = this_machines_values(free_port())
    drop(values)
    yield values
    drop(values)


async def test_the_guides_postgresql_set_up_with_two_workers(
    guide_values: dict[str, str], tmp_path: Path
) -> None:
    blocks = guide_blocks()
    [settings] = [body for kind, body in blocks if kind == "settings"]
    assert the_guides_variables(settings) == set(guide_values)
    env = environment(
        **guide_values,
        PATH=f"{Path(HOOKD).parent}:{os.environ['PATH']}",
        # Not the guide's: the receiver below is on loopback, which hookd refuses by default,
        # and small worker batches so that both workers take part in 30 deliveries.
        HOOKD_ALLOW_TARGETS="127.0.0.0/8",
        HOOKD_WORKER_CONCURRENCY="2",
        HOOKD_POLL_INTERVAL="500ms",
    )
    started: list[subprocess.Popen[bytes]] = []
    try:
        follow(blocks, env, tmp_path, started)
        assert [body.strip() for kind, body in blocks if kind == "background"] == [
            "hookd serve --no-worker",
            "hookd worker",
            "hookd worker",
        ]
        await deliver_through(guide_values, started, tmp_path)
    finally:
        stop(started)


def follow(
    blocks: list[tuple[str, str]],
    env: dict[str, str],
    tmp_path: Path,
    started: list[subprocess.Popen[bytes]],
) -> None:
    """Run the guide's blocks in order: `run` ones to completion, `background` ones left
    running (each in its own process group, added to `started`)."""
    for kind, body in blocks:
        if kind == "run":
            done = subprocess.run(
                ["bash", "-e", "-c", body],
                cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120,
                stdin=subprocess.DEVNULL, check=False,
            )  # fmt: skip
            assert done.returncode == 0, f"{body}\n{done.stdout}\n{done.stderr}"
        elif kind == "background":
            log = (tmp_path / f"process-{len(started)}.log").open("wb")
            started.append(
                subprocess.Popen(
                    ["bash", "-e", "-c", body],
                    cwd=tmp_path, env=env, stdin=subprocess.DEVNULL, stdout=log,
                    stderr=subprocess.STDOUT, start_new_session=True,
                )
            )  # fmt: skip


def stop(started: list[subprocess.Popen[bytes]]) -> None:
    for process in started:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGTERM)
    for process in started:
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=10)


async def deliver_through(
    values: dict[str, str], started: list[subprocess.Popen[bytes]], tmp_path: Path
) -> None:
    serve, *workers = started
    base = f"http://127.0.0.1:{values['HOOKD_PORT']}"
    worker_pids = {process.pid: n for n, process in enumerate(workers)}
    senders: list[int | None] = []
    bodies: list[tuple[bytes, dict[str, str]]] = []

    async def handle(request: web.Request) -> web.Response:
        peer = request.transport.get_extra_info("peername") if request.transport else None
        inode = socket_inode(peer[1]) if peer else None
        members = [pid for pgid in worker_pids for pid in group_members(pgid)]
        pid = owner(inode, members) if inode else None
        senders.append(None if pid is None else worker_pids[os.getpgid(pid)])
        bodies.append((await request.read(), {k.lower(): v for k, v in request.headers.items()}))
        await asyncio.sleep(0.2)  # a receiver that takes a moment: the workers share the work
        return web.Response(text="ok")

    app = web.Application()
    app.router.add_post("/hook", handle)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    try:
        async with httpx.AsyncClient(base_url=base, timeout=30) as client:
            deadline = time.monotonic() + 60
            while True:
                assert serve.poll() is None, (tmp_path / "process-0.log").read_text()
                try:
                    if (await client.get("/healthz")).status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                assert time.monotonic() < deadline, "hookd serve did not answer within 60 s"
                await asyncio.sleep(0.2)
            login = await client.post(
                "/api/v1/login",
                json={"username": "admin", "password": values["ADMIN_PASSWORD"]},
            )
            assert login.status_code == 200, login.text
            admin = {"Authorization": f"Bearer {login.json()['token']}"}
            created = await client.post(
                "/api/v1/webhooks",
                json={
                    "url": f"http://127.0.0.1:{port}/hook",
                    "event_types": ["log.door_was_opened"],
                    "secret": SECRET,
                },
                headers=admin,
            )
            assert created.status_code == 201, created.text
            published = await client.post(
                "/api/v1/events",
                json=[{"type": "log.door_was_opened", "data": {"n": n}} for n in range(EVENTS)],
                headers=admin,
            )
            assert published.status_code == 202, published.text
            assert published.json()["deliveries"] == EVENTS
            deadline = time.monotonic() + 60
            while len(bodies) < EVENTS and time.monotonic() < deadline:
                await asyncio.sleep(0.1)
    finally:
        await runner.cleanup()
    assert len(bodies) >= EVENTS, f"{len(bodies)} of {EVENTS} deliveries arrived"
    numbers = sorted(
        StandardWebhook(SECRET).verify(body, headers)["data"]["n"] for body, headers in bodies
    )
    assert numbers == list(range(EVENTS))
    assert None not in senders, f"a delivery came from no worker: {senders}"
    assert set(senders) == {0, 1}, f"deliveries per worker: {senders}"
