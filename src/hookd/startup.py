"""What `serve` and `worker` do before they start: check the schema, make the first admin."""

from __future__ import annotations

from dataclasses import dataclass

from hookd.config import Settings
from hookd.domain.credentials import generate_password, hash_password
from hookd.store import accounts, migrate, webhooks
from hookd.store.database import Database
from hookd.store.secret_box import SecretKeyError


class StartupError(Exception):
    pass


@dataclass(slots=True)
class FirstAdmin:
    username: str
    generated_password: str | None


async def prepare_store(settings: Settings, *, first_start: bool) -> FirstAdmin | None:
    """Check the store is usable; with `first_start`, migrate a store that has no schema yet
    and create the first admin when there are no users. Returns the admin it created."""
    db = Database(settings.database_url, pool_size=1, secret_key=settings.secret_key)
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
            await webhooks.check_sealed_secrets(db)
        except SecretKeyError as exc:
            raise StartupError(str(exc)) from None
        if not first_start or await accounts.count_users(db):
            return None
        password = settings.admin_password or generate_password()
        await accounts.create_user(
            db, settings.admin_username, hash_password(password), role="admin"
        )
        return FirstAdmin(settings.admin_username, None if settings.admin_password else password)
    finally:
        await db.close()
