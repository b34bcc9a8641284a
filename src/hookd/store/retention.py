"""Pruning: events whose deliveries have all finished are deleted once they are old enough."""

from __future__ import annotations

from sqlalchemy import text

from hookd.store.database import Database

# Deleting an event deletes its deliveries and their attempts (ON DELETE CASCADE).
_PRUNE = text("""
DELETE FROM events WHERE seq IN (
    SELECT e.seq FROM events AS e
    WHERE e.created_at < :cutoff
      AND NOT EXISTS (
          SELECT 1 FROM deliveries AS d
          WHERE d.event_seq = e.seq AND d.state IN ('pending', 'retrying', 'delivering')
      )
    ORDER BY e.seq
    LIMIT :limit
)
""")


async def prune_finished(db: Database, cutoff: float, limit: int = 1000) -> int:
    """Delete up to `limit` finished events created before `cutoff`; returns how many."""
    async with db.transaction() as conn:
        result = await conn.execute(_PRUNE, {"cutoff": cutoff, "limit": limit})
    return int(result.rowcount or 0)
