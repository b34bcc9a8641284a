"""What `hookd status` shows an operator: the queue by state, deliveries per minute over the
last hour (the overview's per-minute counts, `stats.py`), and the webhooks that are failing,
suspended or disabled."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import func, select

from hookd.domain.operational import shown_url
from hookd.domain.states import DeliveryState, WebhookStatus
from hookd.store import stats
from hookd.store.database import Database
from hookd.store.schema import deliveries, webhooks

QUEUED = (DeliveryState.PENDING, DeliveryState.RETRYING, DeliveryState.DELIVERING)
# Webhooks listed at most, per table.
LISTED = 50


@dataclass(slots=True)
class WebhookLine:
    uid: int
    dialect: str
    url: str  # without credentials (`shown_url`)
    # Failed attempts in a row, and since when every attempt has failed.
    failures: int
    failing_since: float | None
    suspended: bool
    reason: str | None = None
    updated_at: int | None = None


@dataclass(slots=True)
class Status:
    queue: dict[str, int]
    # When the delivery that has waited longest for an attempt became due (None: none).
    oldest_due: float | None
    # Per minute over the last hour, oldest first.
    minutes: list[stats.Minutes]
    failing: list[WebhookLine] = field(default_factory=list)
    disabled: list[WebhookLine] = field(default_factory=list)


async def status(db: Database, now: float, *, minutes: int = 60) -> Status:
    """The store's state now: counted in full (an operator's question, not a scrape)."""
    async with db.read() as conn:
        rows = await conn.execute(
            select(deliveries.c.state, func.count())
            .where(deliveries.c.state.in_([state.value for state in QUEUED]))
            .group_by(deliveries.c.state)
        )
        counted = {state: int(count) for state, count in rows}
        failing = await conn.execute(
            select(webhooks)
            .where(
                webhooks.c.status == WebhookStatus.ACTIVE.value,
                webhooks.c.failing_since.is_not(None) | webhooks.c.probe_at.is_not(None),
            )
            .order_by(webhooks.c.failing_since, webhooks.c.id)
            .limit(LISTED)
        )
        failing_lines = [_line(row) for row in failing]
        disabled = await conn.execute(
            select(webhooks)
            .where(webhooks.c.status == WebhookStatus.DISABLED.value)
            .order_by(webhooks.c.updated_at.desc(), webhooks.c.id)
            .limit(LISTED)
        )
        disabled_lines = [_line(row) for row in disabled]
    last = int(now // 60)
    return Status(
        queue={state.value: counted.get(state.value, 0) for state in QUEUED},
        oldest_due=await stats.oldest_due(db, now),
        minutes=await stats.minutes(db, last - minutes + 1, last, 1),
        failing=failing_lines,
        disabled=disabled_lines,
    )


def _line(row: Any) -> WebhookLine:
    return WebhookLine(
        uid=row.id,
        dialect=row.dialect,
        url=shown_url(row.url),
        failures=row.failures,
        failing_since=row.failing_since,
        suspended=row.probe_at is not None,
        reason=row.disabled_reason,
        updated_at=row.updated_at,
    )
