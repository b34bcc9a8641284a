"""Users and their bearer tokens."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from sqlalchemy import delete, func, insert, select, update
from sqlalchemy.exc import IntegrityError

from hookd.store.database import Database
from hookd.store.schema import tokens, users


@dataclass(slots=True, frozen=True)
class User:
    id: int
    username: str
    role: str


class UsernameTaken(Exception):
    pass


async def create_user(db: Database, username: str, password_hash: str, role: str) -> User:
    try:
        async with db.transaction() as conn:
            result = await conn.execute(
                insert(users)
                .values(
                    username=username,
                    password_hash=password_hash,
                    role=role,
                    created_at=int(time.time()),
                )
                .returning(users.c.id)
            )
            user_id = result.scalar_one()
    except IntegrityError:
        raise UsernameTaken(username) from None
    return User(user_id, username, role)


@dataclass(slots=True, frozen=True)
class Account:
    """A user as operators see it."""

    id: int
    username: str
    role: str
    created_at: int
    disabled_at: int | None


async def list_accounts(db: Database) -> list[Account]:
    async with db.read() as conn:
        rows = await conn.execute(
            select(
                users.c.id, users.c.username, users.c.role, users.c.created_at, users.c.disabled_at
            ).order_by(users.c.username)
        )
        return [Account(*row) for row in rows]


class LastAdmin(Exception):
    """The change would leave no enabled admin."""


async def _check_an_admin_is_left(conn: Any, username: str) -> None:
    others = (
        await conn.execute(
            select(func.count())
            .select_from(users)
            .where(
                users.c.role == "admin",
                users.c.disabled_at.is_(None),
                users.c.username != username,
            )
        )
    ).scalar_one()
    if not others:
        raise LastAdmin(username)


async def set_disabled(db: Database, username: str, disabled: bool) -> bool:
    """Disable an account (its tokens are revoked; it cannot log in) or enable it again; False
    when there is no such user. Refuses (LastAdmin) to disable the last enabled admin."""
    async with db.transaction() as conn:
        if disabled:
            await _check_an_admin_is_left(conn, username)
        found = (
            await conn.execute(
                update(users)
                .where(users.c.username == username)
                .values(disabled_at=int(time.time()) if disabled else None)
                .returning(users.c.id)
            )
        ).first()
        if found is None:
            return False
        if disabled:
            await conn.execute(delete(tokens).where(tokens.c.user_id == found.id))
    return True


async def delete_user(db: Database, username: str) -> bool:
    """Delete an account and its tokens; refuses (LastAdmin) to delete the last enabled admin."""
    async with db.transaction() as conn:
        await _check_an_admin_is_left(conn, username)
        user_id = (
            await conn.execute(select(users.c.id).where(users.c.username == username))
        ).scalar()
        if user_id is None:
            return False
        await conn.execute(delete(tokens).where(tokens.c.user_id == user_id))
        await conn.execute(delete(users).where(users.c.id == user_id))
    return True


async def set_password(db: Database, username: str, password_hash: str) -> bool:
    """Change a password; the account's tokens are revoked (every session logs in again)."""
    async with db.transaction() as conn:
        user_id = (
            await conn.execute(
                update(users)
                .where(users.c.username == username)
                .values(password_hash=password_hash)
                .returning(users.c.id)
            )
        ).scalar()
        if user_id is None:
            return False
        await conn.execute(delete(tokens).where(tokens.c.user_id == user_id))
    return True


async def count_users(db: Database) -> int:
    async with db.read() as conn:
        return (await conn.execute(select(func.count()).select_from(users))).scalar_one()


async def find_login(db: Database, username: str) -> tuple[User, str] | None:
    """The user and their password hash, for checking a login."""
    async with db.read() as conn:
        row = (
            await conn.execute(
                select(users.c.id, users.c.username, users.c.role, users.c.password_hash).where(
                    users.c.username == username, users.c.disabled_at.is_(None)
                )
            )
        ).first()
    if row is None:
        return None
    return User(row.id, row.username, row.role), row.password_hash


async def store_token(db: Database, user_id: int, digest: str, expires_at: float) -> None:
    async with db.transaction() as conn:
        await conn.execute(tokens.delete().where(tokens.c.expires_at < time.time()))
        await conn.execute(
            insert(tokens).values(token_hash=digest, user_id=user_id, expires_at=expires_at)
        )


async def find_token(db: Database, digest: str, now: float) -> tuple[User, float] | None:
    """The user a live token belongs to, and when the token expires."""
    query = (
        select(users.c.id, users.c.username, users.c.role, tokens.c.expires_at)
        .join(tokens, tokens.c.user_id == users.c.id)
        .where(
            tokens.c.token_hash == digest,
            tokens.c.expires_at > now,
            users.c.disabled_at.is_(None),
        )
    )
    # On every request whose token is not cached: one pass of the event loop (`run_read`).
    row = await db.run_read(lambda conn: conn.execute(query).first())
    return None if row is None else (User(row.id, row.username, row.role), row.expires_at)


async def revoke_token(db: Database, digest: str) -> None:
    async with db.transaction() as conn:
        await conn.execute(delete(tokens).where(tokens.c.token_hash == digest))
