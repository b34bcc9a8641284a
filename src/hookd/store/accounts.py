"""Users and their bearer tokens."""

from __future__ import annotations

import time
from dataclasses import dataclass

from sqlalchemy import delete, func, insert, select
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


async def count_users(db: Database) -> int:
    async with db.read() as conn:
        return (await conn.execute(select(func.count()).select_from(users))).scalar_one()


async def find_login(db: Database, username: str) -> tuple[User, str] | None:
    """The user and their password hash, for checking a login."""
    async with db.read() as conn:
        row = (
            await conn.execute(
                select(users.c.id, users.c.username, users.c.role, users.c.password_hash).where(
                    users.c.username == username
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
    async with db.read() as conn:
        row = (
            await conn.execute(
                select(users.c.id, users.c.username, users.c.role, tokens.c.expires_at)
                .join(tokens, tokens.c.user_id == users.c.id)
                .where(tokens.c.token_hash == digest, tokens.c.expires_at > now)
            )
        ).first()
    return None if row is None else (User(row.id, row.username, row.role), row.expires_at)


async def revoke_token(db: Database, digest: str) -> None:
    async with db.transaction() as conn:
        await conn.execute(delete(tokens).where(tokens.c.token_hash == digest))
