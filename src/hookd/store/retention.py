"""Pruning: events whose deliveries have all finished are deleted once they are old enough."""

from __future__ import annotations

from sqlalchemy import delete, text

from hookd.store.database import Database
from hookd.store.schema import CLAIMABLE_STATES, attempts, deliveries, events

_PRUNABLE = text(f"""
SELECT e.seq FROM events AS e
WHERE e.created_at < :cutoff
  AND NOT EXISTS (
      SELECT 1 FROM deliveries AS d
      WHERE d.event_seq = e.seq AND d.state IN {CLAIMABLE_STATES}
  )
ORDER BY e.seq
LIMIT :limit
""")


async def prune_finished(db: Database, cutoff: float, limit: int = 1000) -> int:
    """Delete up to `limit` finished events created before `cutoff`, with their deliveries and
    attempts; returns how many events."""
    async with db.transaction(durable=False) as conn:
        seqs = list((await conn.execute(_PRUNABLE, {"cutoff": cutoff, "limit": limit})).scalars())
        if not seqs:
            return 0
        doomed = deliveries.c.event_seq.in_(seqs)
        await conn.execute(
            delete(attempts).where(
                attempts.c.delivery_id.in_(
                    deliveries.select().with_only_columns(deliveries.c.id).where(doomed)
                )
            )
        )
        await conn.execute(delete(deliveries).where(doomed))
        await conn.execute(delete(events).where(events.c.seq.in_(seqs)))
    return len(seqs)
