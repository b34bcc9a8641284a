"""`hookd rotate-key` on each store, killed with SIGKILL in the middle and run again: every
secret then opens with the new key and no longer with the old one, and the rows stored in clear
are sealed too."""

from __future__ import annotations

import asyncio
import signal
import time
from pathlib import Path
from subprocess import DEVNULL

import pytest
from sqlalchemy import insert, select

from hookd.store import keyring
from hookd.store.database import Database
from hookd.store.schema import webhooks
from hookd.store.secret_box import CURRENT_VERSION, SecretBox, SecretKeyError, version_of
from support import HOOKD, environment, hookd

pytestmark = pytest.mark.slow  # subprocesses

OLD = "the old key: correct horse battery staple"
NEW = "the new key: a much longer random passphrase"
SEALED_ROWS = 40
CLEAR_ROWS = 5
COLUMNS = ("secret", "previous_secret", "bearer_token")


def expected(n: int) -> dict[str, str | None]:
    """The secrets row `n` holds, in clear."""
    return {
        "secret": f"secret-{n}-0123456789",
        "previous_secret": f"previous-{n}" if n % 3 == 0 else None,
        "bearer_token": f"bearer-{n}" if n % 2 == 0 else None,
    }


async def seed(url: str) -> dict[int, dict[str, str | None]]:
    """SEALED_ROWS webhooks sealed with OLD, then CLEAR_ROWS stored in clear (from before a key
    was set); returns the stored values by webhook id."""
    db = Database(url, pool_size=1, secret_key=OLD)
    try:
        await keyring.unlock(db)
        rows = []
        for n in range(SEALED_ROWS + CLEAR_ROWS):
            values = expected(n)
            if n < SEALED_ROWS:
                values = {name: db.secrets.seal(value) for name, value in values.items()}
            rows.append(
                {
                    "dialect": "device", "url": f"http://127.0.0.1:9/{n}", "status": "active",
                    "timeout_ms": 1000, "max_retries": 0, "created_at": 1, "updated_at": 1,
                    **values,
                }
            )  # fmt: skip
        async with db.transaction() as conn:
            await conn.execute(insert(webhooks), rows)
        return await stored(db)
    finally:
        await db.close()


async def stored(db: Database) -> dict[int, dict[str, str | None]]:
    async with db.read() as conn:
        rows = await conn.execute(select(webhooks.c.id, *(webhooks.c[name] for name in COLUMNS)))
        return {row.id: {name: row._mapping[name] for name in COLUMNS} for row in rows}


async def changed_rows(url: str, before: dict[int, dict[str, str | None]]) -> int:
    db = Database(url, pool_size=1)
    try:
        now = await stored(db)
    finally:
        await db.close()
    return sum(1 for key, values in now.items() if values != before[key])


async def test_rotate_key_killed_in_the_middle_then_run_again(
    database_url: str, tmp_path: Path
) -> None:
    before = await seed(database_url)
    env = environment(
        HOOKD_DATABASE_URL=database_url, HOOKD_SECRET_KEY=OLD, HOOKD_NEW_SECRET_KEY=NEW
    )
    # Batches of 3 rows, 0.3 s apart: 15 batches, killed once two or more are committed.
    process = await asyncio.create_subprocess_exec(
        HOOKD, "rotate-key", "--batch-size", "3", "--pause", "0.3",
        cwd=tmp_path, env=env, stdin=DEVNULL, stdout=DEVNULL, stderr=DEVNULL,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 60
        while (done := await changed_rows(database_url, before)) < 6:
            assert process.returncode is None, "rotate-key ended before it could be killed"
            assert time.monotonic() < deadline, "rotate-key did not get going"
            await asyncio.sleep(0.05)
        assert process.returncode is None, "rotate-key ended before it could be killed"
        process.kill()  # SIGKILL: no cleanup of any kind
    finally:
        if process.returncode is None:
            process.kill()
        await asyncio.wait_for(process.wait(), 10)
    assert process.returncode == -signal.SIGKILL
    left_at = await changed_rows(database_url, before)
    assert 6 <= done <= left_at < SEALED_ROWS + CLEAR_ROWS, "the kill came too late to test"

    # The rerun finishes the job.
    rerun = hookd(tmp_path, "rotate-key", "--batch-size", "7", env=env, timeout=120)
    assert rerun.returncode == 0, rerun.stderr
    assert "Re-sealed" in rerun.stdout, rerun.stdout
    assert "HOOKD_SECRET_KEY set to the new key" in " ".join(rerun.stdout.split())

    db = Database(database_url, pool_size=1, secret_key=NEW)
    try:
        await keyring.unlock(db)
        after = await stored(db)
        old = SecretBox(OLD)
        old.unlock(await keyring.salts(db))
        for n, (key, values) in enumerate(sorted(after.items())):
            for name, value in values.items():
                if value is None:
                    assert expected(n)[name] is None
                    continue
                assert version_of(value) == CURRENT_VERSION, (key, name, value)
                assert db.secrets.open(value) == expected(n)[name], (key, name)
                with pytest.raises(SecretKeyError):
                    old.open(value)
        # hookd starts with the new key: every value opens, none needs sealing again.
        assert await keyring.seal_stored_secrets(db) == 0
    finally:
        await db.close()

    # A third run has nothing left to do.
    again = hookd(tmp_path, "rotate-key", env=env, timeout=120)
    assert again.returncode == 0, again.stderr
    assert "Re-sealed 0 secrets" in again.stdout, again.stdout


def test_rotate_key_needs_the_new_key(tmp_path: Path) -> None:
    env = environment(HOOKD_DATABASE_URL=f"sqlite:///{tmp_path}/x.db", HOOKD_SECRET_KEY=OLD)
    assert hookd(tmp_path, "migrate", env=env).returncode == 0
    missing = hookd(tmp_path, "rotate-key", env=env)
    assert missing.returncode == 2
    assert missing.stderr.startswith("hookd: HOOKD_NEW_SECRET_KEY: ")
    same = hookd(tmp_path, "rotate-key", env={**env, "HOOKD_NEW_SECRET_KEY": OLD})
    assert same.returncode == 2
    assert "HOOKD_NEW_SECRET_KEY" in same.stderr


async def test_rotate_key_refuses_a_store_its_keys_do_not_open(
    database_url: str, tmp_path: Path
) -> None:
    await seed(database_url)
    env = environment(
        HOOKD_DATABASE_URL=database_url,
        HOOKD_SECRET_KEY="not the key",
        HOOKD_NEW_SECRET_KEY=NEW,
    )
    refused = hookd(tmp_path, "rotate-key", env=env, timeout=120)
    assert refused.returncode == 2
    assert "Traceback" not in refused.stderr
    assert "opens with neither" in refused.stderr


async def test_rotate_key_seals_a_store_that_never_had_a_key(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/clear.db"
    assert hookd(tmp_path, "migrate", env=environment(HOOKD_DATABASE_URL=url)).returncode == 0
    db = Database(url, pool_size=1)
    try:
        async with db.transaction() as conn:
            await conn.execute(
                insert(webhooks),
                [
                    {"dialect": "device", "url": "http://127.0.0.1:9/", "status": "active",
                     "timeout_ms": 1000, "max_retries": 0, "created_at": 1, "updated_at": 1,
                     **expected(n)}
                    for n in range(6)
                ],
            )  # fmt: skip
    finally:
        await db.close()

    rotated = hookd(
        tmp_path, "rotate-key", env=environment(HOOKD_DATABASE_URL=url, HOOKD_NEW_SECRET_KEY=NEW)
    )
    assert rotated.returncode == 0, rotated.stderr
    db = Database(url, pool_size=1, secret_key=NEW)
    try:
        await keyring.unlock(db)
        for n, values in enumerate((await stored(db)).values()):
            for name, value in values.items():
                assert value is None or version_of(value) == CURRENT_VERSION
                assert db.secrets.open(value) == expected(n)[name]
    finally:
        await db.close()
