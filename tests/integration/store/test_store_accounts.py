"""Users and tokens through the store functions, on each backend."""

from __future__ import annotations

import time

import pytest
from sqlalchemy import delete, func, select

from hookd.store import accounts
from hookd.store.accounts import User
from hookd.store.database import Database
from hookd.store.schema import tokens, users


async def test_create_and_find_user(db: Database) -> None:
    assert await accounts.count_users(db) == 0
    created = await accounts.create_user(db, "ann", "$argon2id$hash-of-ann", "admin")
    assert created == User(created.id, "ann", "admin")
    assert created.id >= 1
    assert await accounts.count_users(db) == 1
    assert await accounts.find_login(db, "ann") == (created, "$argon2id$hash-of-ann")
    assert await accounts.find_login(db, "ANN") is None
    assert await accounts.find_login(db, "bob") is None


async def test_duplicate_username(db: Database) -> None:
    await accounts.create_user(db, "ann", "h1", "user")
    with pytest.raises(accounts.UsernameTaken):
        await accounts.create_user(db, "ann", "h2", "admin")
    # The failed insert left nothing behind, and the store still takes writes.
    assert await accounts.count_users(db) == 1
    assert (await accounts.find_login(db, "ann")) is not None
    assert (await accounts.find_login(db, "ann"))[1] == "h1"  # type: ignore[index]
    await accounts.create_user(db, "bob", "h3", "user")
    assert await accounts.count_users(db) == 2


async def user_for_token(db: Database, digest: str, now: float) -> User | None:
    found = await accounts.find_token(db, digest, now)
    return None if found is None else found[0]


async def test_token_life_cycle(db: Database) -> None:
    ann = await accounts.create_user(db, "ann", "h", "user")
    now = time.time()
    await accounts.store_token(db, ann.id, "a" * 64, now + 60)
    assert await user_for_token(db, "a" * 64, now) == ann
    assert await user_for_token(db, "a" * 64, now + 59) == ann
    assert await user_for_token(db, "a" * 64, now + 60) is None
    assert await user_for_token(db, "b" * 64, now) is None
    await accounts.revoke_token(db, "a" * 64)
    assert await user_for_token(db, "a" * 64, now) is None


async def test_storing_a_token_purges_expired_ones(db: Database) -> None:
    ann = await accounts.create_user(db, "ann", "h", "user")
    now = time.time()
    await accounts.store_token(db, ann.id, "old" + "0" * 61, now - 1)
    await accounts.store_token(db, ann.id, "live" + "0" * 60, now + 3600)
    await accounts.store_token(db, ann.id, "new" + "0" * 61, now + 3600)
    async with db.read() as conn:
        kept = set((await conn.execute(select(tokens.c.token_hash))).scalars())
    assert kept == {"live" + "0" * 60, "new" + "0" * 61}


async def test_tokens_go_with_their_user(db: Database) -> None:
    ann = await accounts.create_user(db, "ann", "h", "user")
    bob = await accounts.create_user(db, "bob", "h", "admin")
    now = time.time()
    await accounts.store_token(db, ann.id, "a" * 64, now + 60)
    await accounts.store_token(db, bob.id, "b" * 64, now + 60)
    async with db.transaction() as conn:
        await conn.execute(delete(users).where(users.c.id == ann.id))
    async with db.read() as conn:
        left = (await conn.execute(select(func.count()).select_from(tokens))).scalar_one()
    assert left == 1
    assert await user_for_token(db, "b" * 64, now) == bob


async def test_operators_manage_accounts(db: Database) -> None:
    ann = await accounts.create_user(db, "ann", "h-ann", "admin")
    bob = await accounts.create_user(db, "bob", "h-bob", "user")
    now = time.time()
    await accounts.store_token(db, bob.id, "b" * 64, now + 60)
    assert [(a.username, a.role, a.disabled_at) for a in await accounts.list_accounts(db)] == [
        ("ann", "admin", None),
        ("bob", "user", None),
    ]

    assert await accounts.set_disabled(db, "bob", True) is True
    assert await accounts.find_login(db, "bob") is None
    assert await user_for_token(db, "b" * 64, now) is None
    listed = {a.username: a for a in await accounts.list_accounts(db)}
    assert listed["bob"].disabled_at is not None
    assert await accounts.set_disabled(db, "bob", False) is True
    assert await accounts.find_login(db, "bob") == (bob, "h-bob")
    assert await user_for_token(db, "b" * 64, now) is None, "disabling revoked the token"

    await accounts.store_token(db, bob.id, "c" * 64, now + 60)
    assert await accounts.set_password(db, "bob", "h-new") is True
    assert await accounts.find_login(db, "bob") == (bob, "h-new")
    assert await user_for_token(db, "c" * 64, now) is None, "a new password logs sessions out"

    assert await accounts.delete_user(db, "bob") is True
    assert await accounts.find_login(db, "bob") is None
    assert [a.username for a in await accounts.list_accounts(db)] == ["ann"]
    for change in (
        accounts.set_disabled(db, "nobody", True),
        accounts.set_password(db, "nobody", "h"),
        accounts.delete_user(db, "nobody"),
    ):
        assert await change is False
    assert await accounts.find_login(db, "ann") == (ann, "h-ann")


async def test_the_last_enabled_admin_stays(db: Database) -> None:
    await accounts.create_user(db, "ann", "h", "admin")
    await accounts.create_user(db, "bob", "h", "user")
    with pytest.raises(accounts.LastAdmin):
        await accounts.set_disabled(db, "ann", True)
    with pytest.raises(accounts.LastAdmin):
        await accounts.delete_user(db, "ann")
    await accounts.create_user(db, "cid", "h", "admin")
    assert await accounts.set_disabled(db, "cid", True) is True
    with pytest.raises(accounts.LastAdmin, match="ann"):
        await accounts.delete_user(db, "ann")
    assert await accounts.set_disabled(db, "cid", False) is True
    assert await accounts.delete_user(db, "ann") is True
    assert [a.username for a in await accounts.list_accounts(db)] == ["bob", "cid"]
