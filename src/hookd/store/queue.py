"""The delivery queue: claim due deliveries in batches under a lease, record their outcomes.

A claimed delivery stays `delivering` with `due_at` set to the end of its lease; if the worker
dies, the lease runs out and the row is simply due again. That lease is also the claim's fencing
token: an outcome is written only while the row still carries it, so a worker that wakes after
its lease ran out (and another worker took the delivery) writes nothing.

A claim is made in two steps: first the webhooks with claimable deliveries are listed (an index
probe or two each), and `domain.sharing` decides how many to take from each; then those are
claimed in one statement. All of a batch's outcomes are written in one transaction.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import orjson
from sqlalchemy import Connection, bindparam, case, text, update

from hookd.domain.sharing import Queued, Take, plan_claim, rate_schedules
from hookd.domain.states import DeliveryState, Ordering, WebhookStatus
from hookd.store import announcements, stats
from hookd.store.database import Database
from hookd.store.schema import CLAIMABLE_STATES, deliveries, webhooks

_DELIVERING = f"'{DeliveryState.DELIVERING.value}'"
_PENDING = f"'{DeliveryState.PENDING.value}'"
_RETRYING = f"'{DeliveryState.RETRYING.value}'"
_ACTIVE = WebhookStatus.ACTIVE.value

# The webhooks with claimable deliveries, each with its earliest due time, found by a skip scan
# of the claim index, and their delivery controls. Only a fifo webhook's latest due time is needed.
_QUEUED = f"""
WITH RECURSIVE {{queued}}
SELECT q.webhook_id, q.first_due,
       CASE WHEN w.ordering = '{Ordering.FIFO.value}' THEN (
           SELECT d.due_at FROM deliveries AS d
           WHERE d.state IN {CLAIMABLE_STATES} AND d.webhook_id = q.webhook_id
           ORDER BY d.due_at DESC LIMIT 1) END AS last_due,
       w.status, w.ordering, w.rate_limit, w.rate_next_at, w.probe_at, w.fifo_from
FROM queued AS q LEFT JOIN webhooks AS w ON w.id = q.webhook_id
"""
# On PostgreSQL each probe lands on the webhook's earliest due delivery: it walks past the index
# entries of the webhook's deliveries claimed since the last vacuum once, not once for the
# webhook and again for its earliest due time. (The statement has no parameters, so its plan is
# made once, often on an empty table: a LATERAL probe stays an index scan, where a join on a
# probed id became a sequential scan of the whole table per webhook.)
_QUEUED_POSTGRES = text(
    _QUEUED.format(
        queued=f"""queued(webhook_id, first_due) AS (
    (SELECT webhook_id, due_at FROM deliveries WHERE state IN {CLAIMABLE_STATES}
     ORDER BY webhook_id, due_at LIMIT 1)
    UNION ALL
    SELECT n.webhook_id, n.due_at FROM queued AS q CROSS JOIN LATERAL (
        SELECT d.webhook_id, d.due_at FROM deliveries AS d
        WHERE d.state IN {CLAIMABLE_STATES} AND d.webhook_id > q.webhook_id
        ORDER BY d.webhook_id, d.due_at LIMIT 1) AS n
)"""
    )
)
# SQLite has no LATERAL: a probe per webhook, and one for its earliest due time.
_QUEUED_SQLITE = text(
    _QUEUED.format(
        queued=f"""listed(webhook_id) AS (
    SELECT (SELECT webhook_id FROM deliveries WHERE state IN {CLAIMABLE_STATES}
            ORDER BY webhook_id LIMIT 1)
    UNION ALL
    SELECT (SELECT d.webhook_id FROM deliveries AS d
            WHERE d.state IN {CLAIMABLE_STATES} AND d.webhook_id > l.webhook_id
            ORDER BY d.webhook_id LIMIT 1)
    FROM listed AS l WHERE l.webhook_id IS NOT NULL
), queued(webhook_id, first_due) AS (
    SELECT l.webhook_id, (SELECT d.due_at FROM deliveries AS d
                          WHERE d.state IN {CLAIMABLE_STATES} AND d.webhook_id = l.webhook_id
                          ORDER BY d.due_at LIMIT 1)
    FROM listed AS l WHERE l.webhook_id IS NOT NULL
)"""
    )
)

# On PostgreSQL, a webhook whose controls keep state across workers (rate, order, probe) is
# claimed by one worker at a time: the others skip it until that claim commits.
_LOCK_CONTROLLED = text("""
SELECT id AS webhook_id, status, ordering, rate_limit, rate_next_at, probe_at, fifo_from
FROM webhooks
WHERE id = ANY(CAST(:ids AS bigint[]))
FOR NO KEY UPDATE SKIP LOCKED
""")

# A fifo webhook's next delivery goes only when none of its deliveries is in flight (a live
# lease) or waiting for a retry: both have a due time still to come. Its head is its claimable
# delivery with the lowest id, found by walking the webhook's deliveries in id order from
# `webhooks.fifo_from`, which each fifo claim moves up to the head it took (and a delivery
# queued again by hand moves down to it).
#
# SQLite commits in id order. PostgreSQL takes ids before commit, so a lower id can become
# visible after a higher one was taken, below `fifo_from`: its walk starts at the webhook's
# earliest-due claimable delivery if that is lower. Such a delivery is taken once those due
# before it have gone: a delivery is never left behind, and ids committed in order go in order.
# (A partial index of claimable deliveries by id did this before: written at every delivery's
# publish and again at its claim, it made a burst write 18 % more WAL; docs/performance.md.)
_FIFO_FREE = f"""NOT EXISTS (
    SELECT 1 FROM deliveries AS x
    WHERE x.webhook_id = {{hook}} AND x.state IN {CLAIMABLE_STATES} AND x.due_at > :now)"""

# What a claimed delivery's send needs, after the delivery's id, attempts and webhook: in the
# order `_claimed` unpacks it (by position: a row's attributes cost ~0.7 µs each to look up).
_CLAIMED_COLUMNS = """e.id AS event_id, e.body, e.created_at, w.dialect, w.url, w.secret,
       w.previous_secret, w.previous_secret_until, w.timeout_ms, w.headers, w.max_retries,
       w.bearer_token, w.status"""

# A claim's takes on PostgreSQL: a share of each webhook's due deliveries, oldest first. The walk
# starts at the webhook's earliest due time as the listing found it, past the index entries of
# the deliveries claimed before; one committed since with an earlier due time waits for the next
# claim, whose listing sees it...
_PG_TAKES = f"""
    SELECT picked.id FROM plan AS p CROSS JOIN LATERAL (
        SELECT d.id FROM deliveries AS d
        WHERE NOT p.fifo AND d.webhook_id = p.webhook_id
          AND d.state IN {CLAIMABLE_STATES} AND d.due_at >= p.first_due AND d.due_at <= :now
        ORDER BY d.due_at LIMIT p.n
        FOR UPDATE SKIP LOCKED
    ) AS picked"""
# ... and each fifo webhook's head.
_PG_HEADS = f"""
    SELECT head.id FROM plan AS p CROSS JOIN LATERAL (
        -- The webhook as a range, not `=`: with `=` the planner may walk the primary key from
        -- the bound instead, through every other webhook's deliveries since.
        SELECT d.id FROM deliveries AS d
        WHERE p.fifo AND d.webhook_id >= p.webhook_id AND d.webhook_id <= p.webhook_id
          AND d.id >= LEAST(p.fifo_from, (
              SELECT f.id FROM deliveries AS f
              WHERE f.webhook_id = p.webhook_id AND f.state IN {CLAIMABLE_STATES}
              ORDER BY f.due_at LIMIT 1))
          AND d.state IN {CLAIMABLE_STATES} AND {_FIFO_FREE.format(hook="p.webhook_id")}
        ORDER BY d.webhook_id, d.id LIMIT 1
        FOR UPDATE SKIP LOCKED
    ) AS head"""
_PG_CLAIM = f"""
WITH plan AS (
    SELECT * FROM unnest(CAST(:hook AS bigint[]), CAST(:n AS int[]), CAST(:fifo AS bool[]),
                         CAST(:fifo_from AS bigint[]), CAST(:first_due AS float8[]))
        AS p(webhook_id, n, fifo, fifo_from, first_due)
), due AS ({{due}}
), claimed AS (
    -- By id through an array: a join with `due` would be planned for the 10 % of the table
    -- that a LIMIT from a column is guessed to return (a million-row backlog: a seq scan).
    UPDATE deliveries AS d
    SET state = {_DELIVERING}, due_at = :lease_until, updated_at = :now
    WHERE d.id = ANY(ARRAY(SELECT id FROM due))
    RETURNING d.id, d.event_seq, d.webhook_id, d.attempts
)
SELECT c.id, c.attempts, c.webhook_id, {_CLAIMED_COLUMNS}
FROM claimed AS c
JOIN events AS e ON e.seq = c.event_seq
LEFT JOIN webhooks AS w ON w.id = c.webhook_id
"""
# Every claim is planned for its parameters (store/database.py): a claim with no fifo take
# leaves the heads out, which halves its planning (0.5 against 1.2 ms with ten webhooks).
_CLAIM_POSTGRES = text(_PG_CLAIM.format(due=_PG_TAKES))
_CLAIM_POSTGRES_WITH_HEADS = text(_PG_CLAIM.format(due=f"{_PG_TAKES}\n    UNION ALL{_PG_HEADS}"))

_SQLITE_TAKE = (
    "SELECT id FROM (SELECT id FROM deliveries WHERE webhook_id = :w{i} "
    f"AND state IN {CLAIMABLE_STATES} AND due_at <= :now ORDER BY due_at LIMIT :n{{i}})"
)
_SQLITE_HEAD = (
    "SELECT id FROM (SELECT id FROM deliveries INDEXED BY ix_deliveries_webhook_id_id "
    f"WHERE webhook_id = :w{{i}} AND id >= :f{{i}} AND state IN {CLAIMABLE_STATES} "
    f"AND {_FIFO_FREE.format(hook=':w{i}')} ORDER BY id LIMIT 1)"
)
# SQLite allows 500 terms in a compound SELECT.
_SQLITE_TAKES_PER_STATEMENT = 400

_CLAIMED_SQLITE = text(f"""
SELECT d.id, d.attempts, d.webhook_id, {_CLAIMED_COLUMNS}
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
    lease: float = 0.0  # the claim's lease end: the fencing token its outcome is written with
    # The secret before a rotation, while its grace period lasts: deliveries are signed with both.
    previous_secret: str | None = None
    probe: bool = False  # claimed as the one probe of a suspended webhook
    fifo: bool = False  # its webhook's next delivery waits for this one's outcome
    published_at: float = 0.0  # when its event was accepted
    dialect: str = ""  # its webhook's


@dataclass(slots=True)
class Claim:
    """What one claim took, and when something it left waiting may be taken."""

    deliveries: list[Claimed]
    next_due: float | None = None
    # More may be due than this claim took: its shares held some back (`ClaimPlan.held_back`),
    # or a webhook gave all that was asked of it. A claim that came back short for another
    # reason (other webhooks ran dry) is no sign that nothing is left.
    more_due: bool = False


@dataclass(slots=True)
class Sharing:
    """How a worker shares its slots: what it holds per webhook, how many it may hold in all,
    and the most one webhook may hold."""

    held: Mapping[int, int] = field(default_factory=dict)
    slots: int = 1 << 30
    per_webhook: int = 1 << 30


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
    lease: float  # the claim's lease end (fencing token)
    gone: bool = False  # the receiver answered 410 Gone: disable its webhook
    probe: bool = False  # the attempt probed a suspended webhook


@dataclass(slots=True)
class Recorded:
    """What a batch of outcomes changed about webhooks."""

    disabled: list[int] = field(default_factory=list)
    # Those of `disabled` whose receiver answered 410 Gone (the others kept failing).
    gone: list[int] = field(default_factory=list)
    suspended: list[int] = field(default_factory=list)
    recovered: list[int] = field(default_factory=list)
    # Outcomes not written because their claim's lease had been lost.
    stale: int = 0
    # Deliveries of hookd's own events queued about these changes (`store.announcements`).
    announced: int = 0


async def claim_due(
    db: Database,
    limit: int,
    now: float,
    lease: float,
    sharing: Sharing | None = None,
) -> list[Claimed]:
    """Claim up to `limit` due deliveries (see `claim`)."""
    return (await claim(db, limit, now, lease, sharing)).deliveries


async def claim(
    db: Database, limit: int, now: float, lease: float, sharing: Sharing | None = None
) -> Claim:
    """Claim up to `limit` due deliveries, shared out among webhooks as `sharing` says."""
    chosen = sharing or Sharing()
    return await db.run(lambda conn: _claim(db, conn, limit, now, lease, chosen), durable=False)


def _claim(
    db: Database, conn: Connection, limit: int, now: float, lease: float, sharing: Sharing
) -> Claim:
    """The claim's transaction: synchronous statements, so that SQLite runs it in one round
    trip of the event loop (`Database.run`)."""
    rows = list(conn.execute(_QUEUED_SQLITE if db.is_sqlite else _QUEUED_POSTGRES))
    if not rows:
        return Claim([])
    queued = [_queued(row) for row in rows]
    fifo_from = {row.webhook_id: row.fifo_from or 0 for row in rows}
    first_due = {row.webhook_id: row.first_due for row in rows}
    if not db.is_sqlite:
        queued = _lock_controlled(conn, queued, fifo_from)
    plan = plan_claim(
        queued,
        sharing.held,
        limit=limit,
        slots=sharing.slots,
        per_webhook=sharing.per_webhook,
        now=now,
        lease=lease,
    )
    if not plan.takes:
        return Claim([], plan.next_due)
    params = {"now": now, "lease_until": now + lease}
    if db.is_sqlite:
        rows = _claim_sqlite(conn, plan.takes, fifo_from, params)
    else:
        with_heads = any(take.fifo for take in plan.takes)
        rows = list(
            conn.execute(
                _CLAIM_POSTGRES_WITH_HEADS if with_heads else _CLAIM_POSTGRES,
                {
                    **params,
                    "hook": [take.webhook_id for take in plan.takes],
                    "n": [take.count for take in plan.takes],
                    "fifo": [take.fifo for take in plan.takes],
                    "fifo_from": [fifo_from.get(take.webhook_id, 0) for take in plan.takes],
                    "first_due": [first_due[take.webhook_id] for take in plan.takes],
                },
            )
        )
    found = [_claimed(db, row, now + lease, now) for row in rows]
    per_webhook = Counter(claimed.webhook_id for claimed in found)
    fifo = {take.webhook_id for take in plan.takes if take.fifo}
    for claimed in found:
        claimed.probe = claimed.webhook_id in plan.probe_at
        claimed.fifo = claimed.webhook_id in fifo
    _write_controls(
        conn,
        rate_schedules(plan, per_webhook, now),
        {hook: at for hook, at in plan.probe_at.items() if per_webhook.get(hook)},
        {claimed.webhook_id: claimed.id for claimed in found if claimed.fifo},
    )
    more_due = plan.held_back or any(
        per_webhook[take.webhook_id] >= take.count for take in plan.takes
    )
    return Claim(found, plan.next_due, more_due)


def _queued(row: Any) -> Queued:
    return Queued(
        webhook_id=row.webhook_id,
        first_due=row.first_due,
        last_due=row.last_due,
        controlled=row.status == _ACTIVE,
        ordering=Ordering(row.ordering or Ordering.NONE),
        rate_limit=row.rate_limit,
        rate_next_at=row.rate_next_at,
        probe_at=row.probe_at,
    )


def _has_controls(hook: Queued) -> bool:
    return hook.controlled and (
        hook.ordering == Ordering.FIFO or hook.rate_limit is not None or hook.probe_at is not None
    )


def _lock_controlled(
    conn: Connection, queued: list[Queued], fifo_from: dict[int, int]
) -> list[Queued]:
    """Lock the webhooks whose controls keep state, re-read under the lock (`fifo_from` too);
    skip those another worker is claiming now."""
    controlled = {hook.webhook_id: hook for hook in queued if _has_controls(hook)}
    if not controlled:
        return queued
    rows = list(conn.execute(_LOCK_CONTROLLED, {"ids": list(controlled)}))
    fifo_from.update((row.webhook_id, row.fifo_from) for row in rows)
    fresh = {
        row.webhook_id: replace(
            controlled[row.webhook_id],
            controlled=row.status == _ACTIVE,
            ordering=Ordering(row.ordering),
            rate_limit=row.rate_limit,
            rate_next_at=row.rate_next_at,
            probe_at=row.probe_at,
        )
        for row in rows
    }
    return [
        fresh.get(hook.webhook_id, hook)
        for hook in queued
        if hook.webhook_id not in controlled or hook.webhook_id in fresh
    ]


def _claim_sqlite(
    conn: Connection,
    takes: list[Take],
    fifo_from: Mapping[int, int],
    params: dict[str, float],
) -> list[Any]:
    """The write lock is the process's: claim ids per webhook, then read what they need."""
    ids: list[int] = []
    for start in range(0, len(takes), _SQLITE_TAKES_PER_STATEMENT):
        chunk = takes[start : start + _SQLITE_TAKES_PER_STATEMENT]
        terms = []
        values: dict[str, Any] = dict(params)
        for i, take in enumerate(chunk):
            terms.append((_SQLITE_HEAD if take.fifo else _SQLITE_TAKE).format(i=i))
            values[f"w{i}"] = take.webhook_id
            if take.fifo:
                values[f"f{i}"] = fifo_from.get(take.webhook_id, 0)
            else:
                values[f"n{i}"] = take.count
        statement = (
            f"UPDATE deliveries SET state = {_DELIVERING}, due_at = :lease_until, "
            f"updated_at = :now WHERE id IN ({' UNION ALL '.join(terms)}) RETURNING id"
        )
        ids.extend(conn.execute(text(statement), values).scalars().all())
    if not ids:
        return []
    return list(conn.execute(_CLAIMED_SQLITE, {"ids": orjson.dumps(ids).decode()}))


def _write_controls(
    conn: Connection,
    rate_next_at: dict[int, float],
    probe_at: dict[int, float],
    fifo_from: dict[int, int],
) -> None:
    """The controls' bookkeeping: rate schedules advanced, probes under way, fifo heads taken."""
    for column, values in (
        (webhooks.c.rate_next_at, rate_next_at),
        (webhooks.c.probe_at, probe_at),
        (webhooks.c.fifo_from, fifo_from),
    ):
        for webhook_id, value in values.items():
            conn.execute(
                update(webhooks).where(webhooks.c.id == webhook_id).values({column: value})
            )


def _claimed(db: Database, row: Any, lease_until: float, now: float) -> Claimed:
    (
        delivery_id, attempts, webhook_id,
        event_id, body, created_at, dialect, url, secret,
        previous_secret, previous_secret_until, timeout_ms, headers, max_retries,
        bearer_token, status,
    ) = row  # fmt: skip
    previous = None
    if previous_secret is not None and (previous_secret_until or 0) > now:
        previous = db.secrets.open(previous_secret)
    return Claimed(
        id=delivery_id,
        attempt=attempts + 1,
        webhook_id=webhook_id,
        event_id=event_id,
        body=bytes(body),
        url=url or "",
        secret=db.secrets.open(secret),
        timeout_ms=timeout_ms or 0,
        headers=headers or "{}",
        max_retries=max_retries or 0,
        bearer_token=db.secrets.open(bearer_token),
        webhook_active=status == _ACTIVE,
        lease=lease_until,
        previous_secret=previous,
        published_at=created_at,
        dialect=dialect or "",
    )


async def release(db: Database, claimed: Sequence[Claimed], now: float) -> None:
    """Give back claimed deliveries that were never sent (a stopping worker, a webhook just
    suspended): due at once, their attempts unspent. Only claims still held are given back."""
    if not claimed:
        return
    async with db.transaction(durable=False) as conn:
        await conn.execute(
            update(deliveries)
            .where(
                deliveries.c.id == bindparam("b_id"),
                deliveries.c.state == DeliveryState.DELIVERING.value,
                deliveries.c.due_at == bindparam("b_lease"),
            )
            .values(
                state=case(
                    (deliveries.c.retry_requested, DeliveryState.PENDING.value),
                    (deliveries.c.attempts > 0, DeliveryState.RETRYING.value),
                    else_=DeliveryState.PENDING.value,
                ),
                due_at=now,
                updated_at=now,
                retry_requested=False,
            ),
            [{"b_id": c.id, "b_lease": c.lease} for c in claimed],
        )


async def release_abandoned(db: Database, now: float) -> int:
    """At the start of the only process of a SQLite store: every claim still held is one a
    crashed process left behind, so give it back now rather than after its lease."""
    async with db.transaction(durable=False) as conn:
        result = await conn.execute(
            update(deliveries)
            .where(deliveries.c.state == DeliveryState.DELIVERING.value)
            .values(
                state=case(
                    (deliveries.c.attempts > 0, DeliveryState.RETRYING.value),
                    else_=DeliveryState.PENDING.value,
                ),
                due_at=now,
                updated_at=now,
                retry_requested=False,
            )
        )
        # A probe that crashed with the process may go again now.
        await conn.execute(update(webhooks).where(webhooks.c.probe_at > now).values(probe_at=now))
    return int(result.rowcount or 0)


# Recording outcomes is set-based too: one statement per kind of write for the whole batch.
# Each is fenced: written only while the delivery still carries its claim's lease. A retry asked
# for while the attempt was in flight makes the delivery due again at once.
#
# On PostgreSQL the rows are found by id, and the fence's state is a column of the outcomes
# (`u.held`, the state a claimed delivery holds), so that it belongs to the join. As a condition
# on deliveries alone (`d.state = 'delivering'`) it lets the planner go through the claim's
# partial index, which it takes for small while its statistics predate the queue (a new store,
# a burst, autovacuum behind): every batch then read the whole queue to write a few hundred
# rows, 14 ms against 3 ms at 60 000 deliveries (docs/performance.md).
_PG_FINISH = text(f"""
UPDATE deliveries AS d
SET state = CASE WHEN d.retry_requested THEN {_PENDING} ELSE u.state END,
    attempts = COALESCE(u.attempts, d.attempts),
    due_at = CASE WHEN d.retry_requested THEN :now ELSE u.due_at END,
    retry_requested = false,
    updated_at = :now, last_status_code = u.status_code, last_error = u.error
FROM unnest(CAST(:id AS bigint[]), CAST(:state AS text[]), CAST(:attempts AS int[]),
            CAST(:due_at AS float8[]), CAST(:status_code AS int[]), CAST(:error AS text[]),
            CAST(:lease AS float8[]), CAST(:held AS text[]))
     AS u(id, state, attempts, due_at, status_code, error, lease, held)
WHERE d.id = ANY(CAST(:id AS bigint[]))
  AND d.id = u.id AND d.state = u.held AND d.due_at = u.lease
RETURNING d.id
""")
_SQLITE_FINISH = (
    f"UPDATE deliveries SET state = CASE WHEN retry_requested THEN {_PENDING} ELSE ? END, "
    "attempts = COALESCE(?, attempts), due_at = CASE WHEN retry_requested THEN ? ELSE ? END, "
    "retry_requested = 0, updated_at = ?, last_status_code = ?, last_error = ? "
    f"WHERE id = ? AND state = {_DELIVERING} AND due_at = ?"
)
# Which outcomes the fenced update applied, read back only when it changed fewer rows than it
# was given: those rows carry this recording's time (a float read back is the exact one written).
_SQLITE_APPLIED = text(f"""
SELECT id, updated_at FROM deliveries
WHERE id IN (SELECT value FROM json_each(:ids)) AND state != {_DELIVERING}
""")

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

GONE_REASON = "disabled by hookd: the receiver answered 410 Gone"


async def record_outcomes(
    db: Database,
    outcomes: Sequence[Outcome],
    now: float,
    disable_after: float,
    *,
    suspend_after: int = 0,
    probe_delay: Callable[[int], float] | None = None,
) -> Recorded:
    """Write a batch of outcomes and what they tell about their webhooks.

    A webhook whose attempts have all failed for `disable_after` seconds is disabled, and so is
    one whose receiver answered 410 Gone. One with `suspend_after` failed attempts in a row
    (0: never) is suspended: its next probe goes after `probe_delay(n)` for the n-th probe, and
    a success ends the suspension and makes its waiting retries due at once.
    """
    if not outcomes:
        return Recorded()
    pace = probe_delay or (lambda _: 60.0)
    recorded, applied = await db.run(
        lambda conn: _record(conn, outcomes, now, disable_after, suspend_after, pace),
        durable=False,
    )
    if recorded.announced:
        db.wake()
    stats.count_outcomes(db, [o for o in outcomes if o.delivery_id in applied], now)
    return recorded


def _record(
    conn: Connection,
    outcomes: Sequence[Outcome],
    now: float,
    disable_after: float,
    suspend_after: int,
    probe_delay: Callable[[int], float],
) -> tuple[Recorded, set[int]]:
    """The recording's transaction: synchronous statements, so that SQLite runs it in one
    round trip of the event loop (`Database.run`). Returns it and the outcomes applied."""
    recorded = Recorded()
    applied = _finish(conn, outcomes, now)
    recorded.stale = len(outcomes) - len(applied)
    made = [o for o in outcomes if o.attempt is not None and o.delivery_id in applied]
    succeeded = {o.webhook_id for o in made if o.state == DeliveryState.SUCCEEDED}
    failed: dict[int, int] = {}
    for o in made:
        if o.webhook_id not in succeeded:
            failed[o.webhook_id] = failed.get(o.webhook_id, 0) + 1
    gone = {o.webhook_id for o in made if o.gone}
    probes = {o.webhook_id for o in made if o.probe}
    if succeeded:
        recorded.recovered = _succeeded(conn, sorted(succeeded), now)
    failing: list[int] = []
    if failed:
        recorded.suspended = _failed(conn, failed, probes, now, suspend_after, probe_delay)
        failing = _disable(
            conn,
            webhooks.c.id.in_(failed) & (webhooks.c.failing_since <= now - disable_after),
            now,
            f"disabled by hookd: every delivery attempt failed for {disable_after:g}s",
        )
    gone_disabled = _disable(conn, webhooks.c.id.in_(gone), now, GONE_REASON) if gone else []
    recorded.gone = gone_disabled
    recorded.disabled = failing + gone_disabled
    exhausted = [o.delivery_id for o in made if o.state == DeliveryState.FAILED and not o.gone]
    if exhausted or recorded.disabled or recorded.recovered:
        recorded.announced = announcements.announce(
            conn,
            now,
            failed={
                o.delivery_id: o.webhook_id for o in made if o.state != DeliveryState.SUCCEEDED
            },
            exhausted=exhausted,
            disabled_failing=failing,
            disabled_gone=gone_disabled,
            recovered=recorded.recovered,
        )
    return recorded, applied


def _succeeded(conn: Connection, hooks: list[int], now: float) -> list[int]:
    """Reset the failure counts; end suspensions, making their waiting retries due now.
    A healthy webhook has nothing to reset: one statement that changes no row."""
    reset = conn.execute(
        update(webhooks)
        .where(
            webhooks.c.id.in_(hooks),
            webhooks.c.failing_since.is_not(None)
            | (webhooks.c.failures > 0)
            | webhooks.c.probe_at.is_not(None),
        )
        .values(failing_since=None, failures=0)
        .returning(webhooks.c.id, webhooks.c.probe_at)
    )
    recovered = [row.id for row in reset if row.probe_at is not None]
    if recovered:
        conn.execute(update(webhooks).where(webhooks.c.id.in_(recovered)).values(probe_at=None))
        conn.execute(
            update(deliveries)
            .where(
                deliveries.c.webhook_id.in_(recovered),
                deliveries.c.state == DeliveryState.RETRYING.value,
                deliveries.c.due_at > now,
            )
            .values(due_at=now)
        )
    return recovered


def _failed(
    conn: Connection,
    failed: dict[int, int],
    probes: set[int],
    now: float,
    suspend_after: int,
    probe_delay: Callable[[int], float],
) -> list[int]:
    """Count failures in a row; suspend a webhook that reached `suspend_after`, or put off the
    next probe of one whose probe failed. Returns the webhooks suspended now.

    While a webhook is suspended its count is `suspend_after` plus the probes that failed, so
    that probes follow the retry schedule: the n-th one after `probe_delay(n)`.
    """
    conn.execute(
        update(webhooks)
        .where(webhooks.c.id.in_(failed), webhooks.c.failing_since.is_(None))
        .values(failing_since=now)
    )
    if suspend_after <= 0:
        return []
    suspended = []
    for webhook_id, count in failed.items():
        row = conn.execute(
            update(webhooks)
            .where(webhooks.c.id == webhook_id)
            .values(
                failures=case(
                    (webhooks.c.probe_at.is_(None), webhooks.c.failures + count),
                    else_=webhooks.c.failures + (1 if webhook_id in probes else 0),
                )
            )
            .returning(webhooks.c.failures, webhooks.c.probe_at)
        ).first()
        if row is None or row.failures < suspend_after:
            continue
        if row.probe_at is None:
            suspended.append(webhook_id)
            values = {"failures": suspend_after, "probe_at": now + probe_delay(1)}
        elif webhook_id in probes:
            values = {"probe_at": now + probe_delay(row.failures - suspend_after + 1)}
        else:  # attempts started before the suspension: the probe's pace is not theirs
            continue
        conn.execute(update(webhooks).where(webhooks.c.id == webhook_id).values(values))
    return suspended


def _disable(conn: Connection, where: Any, now: float, reason: str) -> list[int]:
    disabled = conn.execute(
        update(webhooks)
        .where(where, webhooks.c.status == _ACTIVE)
        .values(status=WebhookStatus.DISABLED.value, updated_at=int(now), disabled_reason=reason)
        .returning(webhooks.c.id)
    )
    return list(disabled.scalars().all())


def _finish_sqlite(conn: Connection, outcomes: Sequence[Outcome], now: float) -> set[int]:
    """SQLite: the executemany update is fenced row by row (a lease bound as a parameter is
    compared exactly); the rows it changed are known without reading them back unless some
    lease was lost."""
    finished = conn.exec_driver_sql(
        _SQLITE_FINISH,
        [
            (f.state, f.attempt, now, f.due_at, now, f.status_code, f.error, f.delivery_id,
             f.lease)
            for f in outcomes
        ],
    )  # fmt: skip
    ids = {f.delivery_id for f in outcomes}
    if finished.rowcount == len(outcomes) == len(ids):
        held = ids
    else:
        rows = conn.execute(_SQLITE_APPLIED, {"ids": orjson.dumps(sorted(ids)).decode()})
        held = {row.id for row in rows if row.updated_at == now}
    made = [f for f in outcomes if f.attempt is not None and f.delivery_id in held]
    if made:
        conn.exec_driver_sql(
            _SQLITE_INSERT_ATTEMPTS,
            [
                (f.delivery_id, f.attempt, f.started_at, f.duration_ms, f.status_code,
                 f.response_body, f.error)
                for f in made
            ],
        )  # fmt: skip
    return held


def _finish(conn: Connection, outcomes: Sequence[Outcome], now: float) -> set[int]:
    """Write each delivery's new state, and log the attempts that were made; returns the
    deliveries whose claim was still held (the others are left as they are)."""
    if conn.dialect.name == "sqlite":
        return _finish_sqlite(conn, outcomes, now)
    applied = set(
        (
            conn.execute(
                _PG_FINISH,
                {
                    "id": [f.delivery_id for f in outcomes],
                    "state": [f.state for f in outcomes],
                    "attempts": [f.attempt for f in outcomes],
                    "due_at": [f.due_at for f in outcomes],
                    "status_code": [f.status_code for f in outcomes],
                    "error": [f.error for f in outcomes],
                    "lease": [f.lease for f in outcomes],
                    "held": [DeliveryState.DELIVERING.value] * len(outcomes),
                    "now": now,
                },
            )
        )
        .scalars()
        .all()
    )
    made = [f for f in outcomes if f.attempt is not None and f.delivery_id in applied]
    if made:
        conn.execute(
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
    return applied
