"""What `serve` and `worker` do before they start: find the store's directory, keep a SQLite
store to one process, check the schema, make the first admin."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

from hookd.config import Settings, sqlite_path
from hookd.domain.credentials import generate_password, hash_password
from hookd.store import accounts, keyring, migrate
from hookd.store.database import Database
from hookd.store.secret_box import SecretKeyError

# The default store's directory (./var), created when missing; any other must exist.
_DEFAULT_URL: str = Settings.model_fields["database_url"].default
DEFAULT_DIRECTORY = os.path.dirname(_DEFAULT_URL.removeprefix("sqlite:///"))


class StartupError(Exception):
    pass


@dataclass(slots=True)
class FirstAdmin:
    username: str
    generated_password: str | None


@dataclass(slots=True)
class Prepared:
    """What preparing the store did: the admin it created, and what the user should know."""

    admin: FirstAdmin | None = None
    notices: list[str] = field(default_factory=list)


def store_directory(settings: Settings) -> None:
    """A SQLite store's directory: the default one is created when missing; another must
    exist (a mistyped path should not silently get a new store and a new admin)."""
    if not settings.is_sqlite:
        return
    directory = sqlite_path(settings.database_url).parent
    if directory.is_dir():
        return
    if directory == Path(DEFAULT_DIRECTORY):
        directory.mkdir(parents=True, exist_ok=True)
        return
    raise StartupError(
        f"HOOKD_DATABASE_URL: the directory {directory} does not exist; create it first "
        f"or correct the path (hookd creates only its default {DEFAULT_DIRECTORY})"
    )


def lock_store(settings: Settings, command: str) -> IO[str] | None:
    """Keep a SQLite store to one `serve` or `worker` process: an exclusive lock on a file
    beside the database, held until the process exits (the system releases it however the
    process ends). Returns the open lock file, to be kept; None on PostgreSQL."""
    if not settings.is_sqlite:
        return None
    try:
        import fcntl
    except ImportError:  # no flock (Windows): nothing to lock with
        return None
    path = Path(f"{sqlite_path(settings.database_url)}.lock")
    lock = path.open("a+")
    try:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        lock.seek(0)
        holder = lock.read().strip() or "another process"
        lock.close()
        raise StartupError(
            f"{sqlite_path(settings.database_url)} is in use by {holder}; a SQLite store "
            "takes one hookd serve or worker at a time: stop that one first, or use "
            "PostgreSQL (HOOKD_DATABASE_URL) to run several"
        ) from None
    lock.truncate(0)
    lock.write(f"hookd {command} (pid {os.getpid()})\n")
    lock.flush()
    return lock


async def prepare_store(settings: Settings, *, first_start: bool) -> Prepared:
    """Check the store is usable; with `first_start`, migrate a store that has no schema yet
    and create the first admin when there are no users."""
    db = Database(
        settings.database_url,
        schema=settings.database_schema,
        pool_size=1,
        secret_key=settings.secret_key,
    )
    try:
        try:
            current = await migrate.current_revision(db)
        except Exception as exc:
            raise StartupError(f"HOOKD_DATABASE_URL: cannot open the store: {exc}") from None
        if current is None and first_start:
            await migrate.upgrade(db)
        problem = await migrate.schema_problem(db)
        if problem:
            raise StartupError(problem)
        try:
            await keyring.unlock(db)
            await keyring.seal_stored_secrets(db)
        except SecretKeyError as exc:
            raise StartupError(str(exc)) from None
        if not first_start:
            return Prepared()
        if await accounts.count_users(db):
            if settings.admin_password is None:
                return Prepared()
            return Prepared(
                notices=[
                    "HOOKD_ADMIN_PASSWORD is ignored: it sets the first admin's password only "
                    "when the store has no users yet; change a password with `hookd user "
                    "set-password NAME` and unset the variable"
                ]
            )
        password = settings.admin_password or generate_password()
        await accounts.create_user(
            db, settings.admin_username, hash_password(password), role="admin"
        )
        admin = FirstAdmin(settings.admin_username, None if settings.admin_password else password)
        return Prepared(admin=admin)
    finally:
        await db.close()
