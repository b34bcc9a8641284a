"""`hookd rotate-key`: every sealed value (`keyring.SEALED_COLUMNS`) re-sealed from the old
HOOKD_SECRET_KEY to a new one, and values stored in clear sealed, in batches.

Each batch is its own transaction, so an interrupted rotation keeps what it did; a value the new
key opens is left as it is, so running it again finishes the job. Both keys derive their
encryption keys with the store's own salt (`keyring`).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, select, update

from hookd.store import keyring
from hookd.store.database import Database
from hookd.store.secret_box import CURRENT_VERSION, SecretBox, SecretKeyError, version_of


class RotationError(Exception):
    pass


@dataclass(slots=True)
class Rotated:
    rows: int = 0  # rows read
    resealed: int = 0  # values sealed with the new key now
    kept: int = 0  # values the new key opened already (an earlier, interrupted run)


async def rows_to_read(db: Database) -> int:
    async with db.read() as conn:
        total = 0
        for table, key, _ in keyring.SEALED_COLUMNS:
            total += int(
                (await conn.execute(select(func.count(key)).select_from(table))).scalar_one()
            )
        return total


async def rotate(
    db: Database,
    new_key: str,
    *,
    batch_size: int,
    pause: float = 0.0,
    progress: Callable[[Rotated], None] = lambda _: None,
) -> Rotated:
    """Re-seal with `new_key` every value `db.secrets` (the old key, or none) or `new_key`
    opens; values stored in clear are sealed. Raises RotationError on a value neither opens."""
    await keyring.unlock(db)
    new = SecretBox(new_key)
    await keyring.unlock(db, new)
    done = Rotated()
    for table, key, columns in keyring.SEALED_COLUMNS:
        after: Any = None
        while True:
            async with db.transaction() as conn:
                query = select(key, *columns).order_by(key).limit(batch_size)
                if after is not None:
                    query = query.where(key > after)
                rows = (await conn.execute(query)).all()
                for row in rows:
                    changes = {}
                    for column in columns:
                        sealed = _resealed(db.secrets, new, row._mapping[column], done)
                        if sealed is not None:
                            changes[column.name] = sealed
                    if changes:
                        await conn.execute(
                            update(table).where(key == row._mapping[key]).values(changes)
                        )
            done.rows += len(rows)
            progress(done)
            if len(rows) < batch_size:
                break
            after = rows[-1]._mapping[key]
            if pause:
                await asyncio.sleep(pause)
    return done


def _resealed(old: SecretBox, new: SecretBox, value: str | None, done: Rotated) -> str | None:
    """`value` sealed with the new key, or None when it is to be left as it is."""
    if value is None:
        return None
    if version_of(value) == CURRENT_VERSION:
        try:
            new.open(value)
        except SecretKeyError:
            pass
        else:
            done.kept += 1
            return None
    try:
        opened = old.open(value)
    except SecretKeyError:
        raise RotationError(
            "HOOKD_SECRET_KEY: a stored secret opens with neither HOOKD_SECRET_KEY nor "
            "HOOKD_NEW_SECRET_KEY; set HOOKD_SECRET_KEY to the key the store was sealed with"
        ) from None
    done.resealed += 1
    return new.seal(opened)
