"""The store's key salts, and the stored secrets kept sealed with the current key.

`unlock` gives a Database's SecretBox what it needs to seal: the salt of the current seal
version, made (randomly, once per store) by the first hookd that starts with HOOKD_SECRET_KEY.
`seal_stored_secrets` runs at start: it opens every sealed value (a wrong key is found at once,
not at the first delivery that needs one) and re-seals what is not sealed as `seal()` would seal
it now: values sealed by an older version, and values stored in clear before a key was set.
"""

from __future__ import annotations

import base64
import secrets
import time
from typing import Any

from sqlalchemy import Column, Table, insert, select, update
from sqlalchemy.exc import IntegrityError

from hookd.store.database import Database
from hookd.store.schema import keyring, webhooks
from hookd.store.secret_box import CURRENT_VERSION, SecretBox

SALT_BYTES = 16
# Every column that holds a secret or an API key: (table, its key column, the secret columns).
SEALED_COLUMNS: tuple[tuple[Table, Column[Any], tuple[Column[Any], ...]], ...] = (
    (
        webhooks,
        webhooks.c.id,
        (webhooks.c.secret, webhooks.c.previous_secret, webhooks.c.bearer_token),
    ),
)


async def salts(db: Database) -> dict[int, bytes]:
    """The store's salts, by seal version."""
    async with db.read() as conn:
        rows = (await conn.execute(select(keyring.c.version, keyring.c.salt))).all()
    return {row.version: base64.b64decode(row.salt) for row in rows}


async def unlock(db: Database, box: SecretBox | None = None) -> None:
    """Let `db` seal with HOOKD_SECRET_KEY (or `box` with its key): read the store's salts,
    making the current one if the store has none yet. Nothing to do without a key."""
    box = box or db.secrets
    if not box.has_key:
        return
    for _ in range(3):
        found = await salts(db)
        if CURRENT_VERSION in found:
            box.unlock(found)
            return
        salt = base64.b64encode(secrets.token_bytes(SALT_BYTES)).decode()
        try:
            async with db.transaction() as conn:
                await conn.execute(
                    insert(keyring).values(
                        version=CURRENT_VERSION, salt=salt, created_at=int(time.time())
                    )
                )
        except IntegrityError:
            pass  # another process made it first: read that one
    raise RuntimeError("the store's key salt could not be made")


async def seal_stored_secrets(db: Database) -> int:
    """Open every sealed value (SecretKeyError if the key does not open one), and seal anew the
    values not sealed as they would be now. Returns how many values were re-sealed."""
    resealed = 0
    async with db.transaction() as conn:
        for table, key, columns in SEALED_COLUMNS:
            rows = (await conn.execute(select(key, *columns))).all()
            for row in rows:
                changes = {}
                for column in columns:
                    value = row._mapping[column]
                    opened = db.secrets.open(value)
                    if not db.secrets.is_current(value):
                        changes[column.name] = db.secrets.seal(opened)
                if changes:
                    row_key = row._mapping[key]
                    await conn.execute(update(table).where(key == row_key).values(changes))
                    resealed += len(changes)
    return resealed
