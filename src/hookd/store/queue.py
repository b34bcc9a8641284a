"""The delivery queue: claim due deliveries in batches under a lease, record their outcomes.

A claimed delivery stays `delivering` with `due_at` set to the end of its lease; if the worker
dies, the lease runs out and the row is simply due again. All of a batch's outcomes are
written in one transaction.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import case, text, update
from sqlalchemy.ext.asyncio import AsyncConnection

from hookd.domain.states import DeliveryState, WebhookStatus
from hookd.store import stats
from hookd.store.database import Database
from hookd.store.schema import CLAIMABLE_STATES, deliveries, webhooks

_DELIVERING = f"'{DeliveryState.DELIVERING.value}'"

# Claim on PostgreSQL: one statement; SKIP LOCKED lets any number of workers share the queue.
_CLAIM_POSTGRES = text(f"""
WITH due AS (
    SELECT id FROM deliveries
    WHERE state IN {CLAIMABLE_STATES} AND due_at <= :now
    ORDER BY due_at
    LIMIT :limit
    FOR UPDATE SKIP LOCKED
), claimed AS (
    UPDATE deliveries AS d
    SET state = {_DELIVERING}, due_at = :lease_until, updated_at = :now
    FROM due WHERE d.id = due.id
    RETURNING d.id, d.event_seq, d.webhook_id, d.attempts
)
SELECT c.id, c.attempts, c.webhook_id, e.id AS event_id, e.body,
       w.url, w.secret, w.timeout_ms, w.headers, w.max_retries, w.bearer_token, w.status
FROM claimed AS c
JOIN events AS e ON e.seq = c.event_seq
LEFT JOIN webhooks AS w ON w.id = c.webhook_id
""")

# Claim on SQLite: the write lock is the process's, so claim ids first, then read what they need.
_CLAIM_SQLITE = text(f"""
UPDATE deliveries
SET state = {_DELIVERING}, due_at = :lease_until, updated_at = :now
WHERE id IN (
    SELECT id FROM deliveries
    WHERE state IN {CLAIMABLE_STATES} AND due_at <= :now
    ORDER BY due_at
    LIMIT :limit
)
RETURNING id
""")

_CLAIMED_SQLITE = text("""
SELECT d.id, d.attempts, d.webhook_id, e.id AS event_id, e.body,
       w.url, w.secret, w.timeout_ms, w.headers, w.max_retries, w.bearer_token, w.status
FROM deliveries AS d
JOIN events AS e ON e.seq = d.event_seq
LEFT JOIN webhooks AS w ON w.id = d.webhook_id
WHERE d.id IN (SELECT value FROM json_each(:ids))
""")


@dataclass(slots=True)
class Claimed:
    """A delivery a worker holds, with everything its send needs."""

    id: int
    attempt: int  # the number of the attempt about to be made, from 1
    webhook_id: int
    event_id: str
    body: bytes
    url: str
    secret: str | None
    timeout_ms: int
    headers: str
    max_retries: int
    bearer_token: str | None
    webhook_active: bool


@dataclass(slots=True)
class Outcome:
    """What became of one claimed delivery; `attempt` is None when no request was made."""

    delivery_id: int
    webhook_id: int
    state: DeliveryState  # succeeded | retrying | failed
    due_at: float
    attempt: int | None
    started_at: float
    duration_ms: float
    status_code: int | None
    response_body: str | None
    error: str | None


async def claim_due(db: Database, limit: int, now: float, lease: float) -> list[Claimed]:
    params = {"now": now, "limit": limit, "lease_until": now + lease}
    async with db.transaction(durable=False) as conn:
        if db.is_sqlite:
            ids = (await conn.execute(_CLAIM_SQLITE, params)).scalars().all()
            if not ids:
                return []
            rows = await conn.execute(_CLAIMED_SQLITE, {"ids": f"[{','.join(map(str, ids))}]"})
        else:
            rows = await conn.execute(_CLAIM_POSTGRES, params)
        return [
            Claimed(
                id=row.id,
                attempt=row.attempts + 1,
                webhook_id=row.webhook_id,
                event_id=row.event_id,
                body=bytes(row.body),
                url=row.url or "",
                secret=db.secrets.open(row.secret),
                timeout_ms=row.timeout_ms or 0,
                headers=row.headers or "{}",
                max_retries=row.max_retries or 0,
                bearer_token=db.secrets.open(row.bearer_token),
                webhook_active=row.status == WebhookStatus.ACTIVE,
            )
            for row in rows
        ]


async def release(db: Database, delivery_ids: Sequence[int], now: float) -> None:
    """Give back claimed deliveries that were never sent (a stopping worker): due at once."""
    if not delivery_ids:
        return
    async with db.transaction(durable=False) as conn:
        await conn.execute(
            update(deliveries)
            .where(
                deliveries.c.id.in_(delivery_ids),
                deliveries.c.state == DeliveryState.DELIVERING.value,
            )
            .values(
                state=case(
                    (deliveries.c.attempts > 0, DeliveryState.RETRYING.value),
                    else_=DeliveryState.PENDING.value,
                ),
                due_at=now,
                updated_at=now,
            )
        )


# Recording outcomes is set-based too: one statement per kind of write for the whole batch.
_PG_FINISH = text("""
UPDATE deliveries AS d
SET state = u.state, attempts = COALESCE(u.attempts, d.attempts), due_at = u.due_at,
    updated_at = :now, last_status_code = u.status_code, last_error = u.error
FROM unnest(CAST(:id AS bigint[]), CAST(:state AS text[]), CAST(:attempts AS int[]),
            CAST(:due_at AS float8[]), CAST(:status_code AS int[]), CAST(:error AS text[]))
     AS u(id, state, attempts, due_at, status_code, error)
WHERE d.id = u.id
""")
_SQLITE_FINISH = (
    "UPDATE deliveries SET state = ?, attempts = COALESCE(?, attempts), due_at = ?, "
    "updated_at = ?, last_status_code = ?, last_error = ? WHERE id = ?"
)

_PG_INSERT_ATTEMPTS = text("""
INSERT INTO attempts (delivery_id, number, started_at, duration_ms, status_code, response_body,
                      error)
SELECT * FROM unnest(CAST(:delivery_id AS bigint[]), CAST(:number AS int[]),
                     CAST(:started_at AS float8[]), CAST(:duration_ms AS float8[]),
                     CAST(:status_code AS int[]), CAST(:response_body AS text[]),
                     CAST(:error AS text[]))
""")
_SQLITE_INSERT_ATTEMPTS = (
    "INSERT INTO attempts (delivery_id, number, started_at, duration_ms, status_code, "
    "response_body, error) VALUES (?, ?, ?, ?, ?, ?, ?)"
)


async def record_outcomes(
    db: Database, outcomes: Sequence[Outcome], now: float, disable_after: float
) -> list[int]:
    """Write a batch of outcomes; returns the webhooks this batch switched to disabled.

    A webhook whose attempts have all failed for `disable_after` seconds is disabled.
    """
    if not outcomes:
        return []
    made = [o for o in outcomes if o.attempt is not None]
    succeeded = {o.webhook_id for o in made if o.state == DeliveryState.SUCCEEDED}
    failing = {o.webhook_id for o in made if o.state != DeliveryState.SUCCEEDED}
    failing -= succeeded
    async with db.transaction(durable=False) as conn:
        await _finish(db, conn, outcomes, now)
        stats.count_outcomes(db, outcomes, now)
        if succeeded:
            await conn.execute(
                update(webhooks)
                .where(webhooks.c.id.in_(succeeded), webhooks.c.failing_since.is_not(None))
                .values(failing_since=None)
            )
        if not failing:
            return []
        await conn.execute(
            update(webhooks)
            .where(webhooks.c.id.in_(failing), webhooks.c.failing_since.is_(None))
            .values(failing_since=now)
        )
        disabled = await conn.execute(
            update(webhooks)
            .where(
                webhooks.c.id.in_(failing),
                webhooks.c.status == WebhookStatus.ACTIVE.value,
                webhooks.c.failing_since <= now - disable_after,
            )
            .values(
                status=WebhookStatus.DISABLED.value,
                updated_at=int(now),
                disabled_reason=(
                    f"disabled by hookd: every delivery attempt failed for {disable_after:g}s"
                ),
            )
            .returning(webhooks.c.id)
        )
        return list(disabled.scalars().all())


async def _finish(
    db: Database, conn: AsyncConnection, outcomes: Sequence[Outcome], now: float
) -> None:
    """Write each delivery's new state, and log the attempts that were made."""
    made = [f for f in outcomes if f.attempt is not None]
    if db.is_sqlite:
        await conn.exec_driver_sql(
            _SQLITE_FINISH,
            [
                (f.state, f.attempt, f.due_at, now, f.status_code, f.error, f.delivery_id)
                for f in outcomes
            ],
        )
        if made:
            await conn.exec_driver_sql(
                _SQLITE_INSERT_ATTEMPTS,
                [
                    (f.delivery_id, f.attempt, f.started_at, f.duration_ms, f.status_code,
                     f.response_body, f.error)
                    for f in made
                ],
            )  # fmt: skip
        return
    await conn.execute(
        _PG_FINISH,
        {
            "id": [f.delivery_id for f in outcomes],
            "state": [f.state for f in outcomes],
            "attempts": [f.attempt for f in outcomes],
            "due_at": [f.due_at for f in outcomes],
            "status_code": [f.status_code for f in outcomes],
            "error": [f.error for f in outcomes],
            "now": now,
        },
    )
    if made:
        await conn.execute(
            _PG_INSERT_ATTEMPTS,
            {
                "delivery_id": [f.delivery_id for f in made],
                "number": [f.attempt for f in made],
                "started_at": [f.started_at for f in made],
                "duration_ms": [f.duration_ms for f in made],
                "status_code": [f.status_code for f in made],
                "response_body": [f.response_body for f in made],
                "error": [f.error for f in made],
            },
        )
