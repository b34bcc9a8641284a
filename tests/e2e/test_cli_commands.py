"""The `hookd` command as a user runs it: a subprocess in a fresh directory, SQLite store."""

from __future__ import annotations

import re
import socket
import sqlite3
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
from argon2 import PasswordHasher

from hookd import __version__
from hookd.app import create_app
from hookd.config import load_settings
from hookd.store import migrate
from hookd.store.database import Database
from hookd.store.migrate import head_revision
from support import environment, free_port, hookd

pytestmark = pytest.mark.slow  # subprocesses: seconds each


def sqlite_env(tmp_path: Path, name: str = "x.db") -> dict[str, str]:
    return environment(HOOKD_DATABASE_URL=f"sqlite:///{tmp_path}/{name}")


async def migrated(tmp_path: Path) -> dict[str, str]:
    """A store migrated in-process (quicker than `hookd migrate`, tested on its own below)."""
    env = sqlite_env(tmp_path)
    db = Database(env["HOOKD_DATABASE_URL"], pool_size=1)
    try:
        await migrate.upgrade(db)
    finally:
        await db.close()
    return env


def assert_clear_error(result: subprocess.CompletedProcess[str], *words: str) -> str:
    """Exit code ≠ 0, no traceback, and a message on stderr holding every one of `words`."""
    assert result.returncode != 0, result
    assert "Traceback" not in result.stderr, result.stderr
    message = " ".join(result.stderr.split())
    for word in words:
        assert word in message, message
    return message


def assert_one_line_error(result: subprocess.CompletedProcess[str], *words: str) -> str:
    """A clear error, on exactly one line of stderr."""
    message = assert_clear_error(result, *words)
    assert len(result.stderr.splitlines()) == 1, result.stderr
    return message


def rows(database: Path, query: str) -> list[tuple[object, ...]]:
    with sqlite3.connect(database) as conn:
        return conn.execute(query).fetchall()


async def login(database_url: str, username: str, password: str) -> httpx.Response:
    app = create_app(load_settings(database_url=database_url), run_worker=False)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://hookd.test") as client:
            return await client.post(
                "/api/v1/login", json={"username": username, "password": password}
            )


def test_version(tmp_path: Path) -> None:
    result = hookd(tmp_path, "--version")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == f"hookd {__version__}"


def test_python_dash_m(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "hookd", "--version"],
        cwd=tmp_path,
        env=environment(),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == f"hookd {__version__}"


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        pytest.param(
            "HOOKD_PORT",
            "abc",
            id="port",
        ),
        pytest.param("HOOKD_RETRY_SCHEDULE", "5x", id="retry-schedule"),
        pytest.param("HOOKD_ALLOW_TARGETS", "nonsense", id="allow-targets"),
        pytest.param("HOOKD_DATABASE_URL", "mysql://x", id="database-url"),
        pytest.param("HOOKD_DATABASE_URL", "sqlite://./var/x.db", id="sqlite-two-slashes"),
        pytest.param("HOOKD_DATABASE_URL", "sqlite:///:memory:", id="sqlite-in-memory"),
        pytest.param("HOOKD_RETRY_SCHEDULE", "5s,,1m", id="retry-schedule-gap"),
        pytest.param("HOOKD_RETRY_SCHEDULE", "0s", id="retry-schedule-zero"),
    ],
)
def test_bad_setting_stops_serve(tmp_path: Path, variable: str, value: str) -> None:
    env = {**sqlite_env(tmp_path), variable: value}
    # --port would override HOOKD_PORT; elsewhere it keeps a wrongly started serve off 8080.
    port = [] if variable == "HOOKD_PORT" else ["--port", str(free_port())]
    result = hookd(tmp_path, "serve", *port, env=env, timeout=30)
    assert_clear_error(result, variable)
    assert not (tmp_path / "x.db").exists(), "nothing was started"
    assert not (tmp_path / "var").exists()
    assert_one_line_error(result, variable)


def test_migrate_creates_the_store_and_is_idempotent(tmp_path: Path) -> None:
    # The store is named in a .env file of the working directory, not in the environment.
    (tmp_path / ".env").write_text(f"HOOKD_DATABASE_URL=sqlite:///{tmp_path}/from-dotenv.db\n")
    database = tmp_path / "from-dotenv.db"
    first = hookd(tmp_path, "migrate")
    assert first.returncode == 0, first.stderr
    head = head_revision()
    assert head is not None
    assert "Migrated" in first.stdout and head in first.stdout, first.stdout
    assert database.is_file()
    assert not (tmp_path / "var").exists(), "the .env file was read"
    assert rows(database, "SELECT version_num FROM alembic_version") == [(head,)]

    second = hookd(tmp_path, "migrate")
    assert second.returncode == 0, second.stderr
    assert "up to date" in second.stdout, second.stdout
    assert "Migrated" not in second.stdout
    assert rows(database, "SELECT version_num FROM alembic_version") == [(head,)]


async def test_user_add(tmp_path: Path) -> None:
    env = await migrated(tmp_path)
    database = tmp_path / "x.db"

    added = hookd(tmp_path, "user", "add", "bob", "--role", "user", "--password", "pw", env=env)
    assert added.returncode == 0, added.stderr
    assert "bob" in added.stdout
    response = await login(env["HOOKD_DATABASE_URL"], "bob", "pw")
    assert response.status_code == 200, response.text
    assert response.json()["account_type"] == "user"
    ((stored,),) = rows(database, "SELECT password_hash FROM users WHERE username = 'bob'")
    assert isinstance(stored, str)
    assert stored.startswith("$argon2id$")
    assert not PasswordHasher().check_needs_rehash(stored), "the production Argon2 cost"

    again = hookd(tmp_path, "user", "add", "bob", "--role", "admin", "--password", "x", env=env)
    assert_one_line_error(again, "bob", "exists")
    assert rows(database, "SELECT username, role FROM users") == [("bob", "user")]

    boss = hookd(tmp_path, "user", "add", "carl", "--role", "boss", "--password", "x", env=env)
    assert_one_line_error(boss, "--role", "admin", "user")
    assert rows(database, "SELECT count(*) FROM users WHERE username = 'carl'") == [(0,)]


async def test_user_add_generates_a_password(tmp_path: Path) -> None:
    env = await migrated(tmp_path)
    added = hookd(tmp_path, "user", "add", "dana", "--role", "admin", env=env)
    assert added.returncode == 0, added.stderr
    match = re.search(r"Password: (\S+)", added.stdout)
    assert match, added.stdout
    response = await login(env["HOOKD_DATABASE_URL"], "dana", match.group(1))
    assert response.status_code == 200, response.text
    assert response.json()["account_type"] == "admin"


async def unknown_revision_store(tmp_path: Path) -> dict[str, str]:
    env = await migrated(tmp_path)
    with sqlite3.connect(tmp_path / "x.db") as conn:
        conn.execute("UPDATE alembic_version SET version_num = 'ffff0000'")
    return env


@pytest.mark.parametrize("command", ["worker", "serve"])
async def test_refuses_a_store_at_an_unknown_revision(tmp_path: Path, command: str) -> None:
    env = await unknown_revision_store(tmp_path)
    args = [command] if command == "worker" else [command, "--port", str(free_port())]
    result = hookd(tmp_path, *args, env=env, timeout=30)
    assert_clear_error(result, "ffff0000", "hookd migrate")


def test_worker_refuses_a_store_without_schema(tmp_path: Path) -> None:
    result = hookd(tmp_path, "worker", env=sqlite_env(tmp_path), timeout=30)
    assert_one_line_error(result, "no hookd schema", "hookd migrate")


@pytest.mark.parametrize("command", [["serve"], ["migrate"], ["user", "add", "eve"]])
def test_a_store_in_a_missing_directory_is_refused(tmp_path: Path, command: list[str]) -> None:
    missing = tmp_path / "nonexistent" / "dir"
    env = environment(HOOKD_DATABASE_URL=f"sqlite:///{missing}/x.db")
    port = ["--port", str(free_port())] if command == ["serve"] else []
    result = hookd(tmp_path, *command, *port, env=env, timeout=30)
    assert_one_line_error(
        result, "HOOKD_DATABASE_URL", f"the directory {missing} does not exist", "create it"
    )
    assert not (tmp_path / "nonexistent").exists(), "no directory, store or admin was created"
    assert not (tmp_path / "var").exists()


def test_an_unknown_setting_is_named_with_the_closest_one(tmp_path: Path) -> None:
    env = {**sqlite_env(tmp_path), "HOOKD_PROT": "9999", "HOOKD_NOISE": "1"}
    result = hookd(tmp_path, "migrate", env=env)
    assert result.returncode == 0, result.stderr
    assert result.stderr.splitlines() == [
        "hookd: HOOKD_NOISE is not a setting of hookd and is ignored; "
        "see the settings in README.md",
        "hookd: HOOKD_PROT is not a setting of hookd and is ignored; did you mean HOOKD_PORT?",
    ]


def test_listen_on_a_port_in_use_is_one_line(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = hookd(tmp_path, "listen", "--port", str(port), timeout=30)
    assert_one_line_error(result, f"port {port} on 127.0.0.1 is in use", "another --port")
    assert result.stdout == ""


@pytest.mark.parametrize(
    "args",
    [[], ["serve"], ["user"], ["user", "add"], ["user", "set-password"], ["listen"], ["prune"]],
)
def test_help_shows_no_type_placeholders(tmp_path: Path, args: list[str]) -> None:
    result = hookd(tmp_path, *args, "--help")
    assert result.returncode == 0, result.stderr
    assert "<bool>" not in result.stdout
    assert "{" not in result.stdout and "}" not in result.stdout
    assert "Usage: hookd" in result.stdout
    if args[:1] == ["user"] and args[1:]:
        assert f"Usage: hookd user {args[1]} [OPTIONS] NAME" in result.stdout


async def test_operators_manage_users(tmp_path: Path) -> None:
    env = await migrated(tmp_path)
    for name, role in (("ann", "admin"), ("bob", "user")):
        added = hookd(tmp_path, "user", "add", name, "--role", role, "--password", "pw", env=env)
        assert added.returncode == 0, added.stderr
    listed = hookd(tmp_path, "user", "list", env=env)
    assert listed.returncode == 0, listed.stderr
    assert re.search(r"ann\s+admin", listed.stdout) and re.search(r"bob\s+user", listed.stdout)

    disabled = hookd(tmp_path, "user", "disable", "bob", env=env)
    assert disabled.returncode == 0, disabled.stderr
    assert (await login(env["HOOKD_DATABASE_URL"], "bob", "pw")).status_code == 401
    enabled = hookd(tmp_path, "user", "enable", "bob", env=env)
    assert enabled.returncode == 0, enabled.stderr
    assert (await login(env["HOOKD_DATABASE_URL"], "bob", "pw")).status_code == 200

    changed = hookd(tmp_path, "user", "set-password", "bob", env=env, stdin="n3w-pw\n")
    assert changed.returncode == 0, changed.stderr
    assert "n3w-pw" not in changed.stdout + changed.stderr
    assert (await login(env["HOOKD_DATABASE_URL"], "bob", "pw")).status_code == 401
    assert (await login(env["HOOKD_DATABASE_URL"], "bob", "n3w-pw")).status_code == 200
    empty = hookd(tmp_path, "user", "set-password", "bob", env=env, stdin="\n")
    assert_one_line_error(empty, "empty")

    assert_one_line_error(hookd(tmp_path, "user", "disable", "ann", env=env), "ann", "last")
    assert_one_line_error(hookd(tmp_path, "user", "delete", "ann", env=env), "ann", "last")
    assert_one_line_error(hookd(tmp_path, "user", "enable", "zed", env=env), "zed", "no user")
    deleted = hookd(tmp_path, "user", "delete", "bob", env=env)
    assert deleted.returncode == 0, deleted.stderr
    assert rows(tmp_path / "x.db", "SELECT username FROM users") == [("ann",)]


async def test_prune_deletes_old_finished_events_now(tmp_path: Path) -> None:
    env = await migrated(tmp_path)
    database = tmp_path / "x.db"
    with sqlite3.connect(database) as conn:
        conn.executemany(
            "INSERT INTO events (seq, id, type, body, deliveries, created_at)"
            " VALUES (?, ?, ?, ?, ?, ?)",
            [(1, "old", "t", b"{}", 1, 1000.0), (2, "new", "t", b"{}", 1, 4e9)],
        )
        conn.executemany(
            "INSERT INTO deliveries (event_seq, webhook_id, state, due_at, created_at, updated_at)"
            " VALUES (?, 1, ?, 0, 0, 0)",
            [(1, "succeeded"), (2, "succeeded")],
        )
    pruned = hookd(tmp_path, "prune", env=env)
    assert pruned.returncode == 0, pruned.stderr
    assert "Pruned 1 " in pruned.stdout, pruned.stdout
    assert rows(database, "SELECT id FROM events") == [("new",)]
    assert rows(database, "SELECT event_seq FROM deliveries") == [(2,)]
    bad = hookd(tmp_path, "prune", "--older-than", "soon", env=env)
    assert_one_line_error(bad, "--older-than")


async def test_user_add_reads_the_password_from_stdin_and_warns_about_the_option(
    tmp_path: Path,
) -> None:
    env = await migrated(tmp_path)
    added = hookd(
        tmp_path, "user", "add", "erin", "--password-stdin", env=env,
        stdin="from stdin, kept out of ps\n",
    )  # fmt: skip
    assert added.returncode == 0, added.stderr
    assert added.stderr == ""
    response = await login(env["HOOKD_DATABASE_URL"], "erin", "from stdin, kept out of ps")
    assert response.status_code == 200, response.text

    on_the_command_line = hookd(tmp_path, "user", "add", "fred", "--password", "pw", env=env)
    assert on_the_command_line.returncode == 0, on_the_command_line.stderr
    assert "warning" in on_the_command_line.stderr
    assert "--password-stdin" in on_the_command_line.stderr
