"""hookd's own events (`domain.operational`), published in the transaction that records what
they announce: a webhook disabled or recovered, a delivery whose retries are spent.

Written with the transition, they are never lost (a rolled-back transition announces nothing)
and never doubled (the fenced outcome that makes a transition is written by one worker only).
One that no webhook subscribes to is not stored.
Failures of deliveries of hookd's own events announce nothing, so no subscriber feeds itself.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from typing import Any

import orjson
from sqlalchemy import Connection, select

from hookd.domain import operational
from hookd.domain.event import delivery_body, new_event_id, rfc3339
from hookd.domain.operational import WebhookRef
from hookd.domain.states import DeliveryState
from hookd.store import events as event_store
from hookd.store.events import NewEvent
from hookd.store.schema import deliveries, events, webhooks


def announce(
    conn: Connection,
    now: float,
    *,
    failed: Mapping[int, int],
    exhausted: Collection[int],
    disabled_failing: Sequence[int] = (),
    disabled_gone: Sequence[int] = (),
    recovered: Sequence[int] = (),
) -> int:
    """Publish the events for what a batch of outcomes changed, inside its recording's
    (synchronous) transaction; returns the deliveries queued.

    `failed` maps the deliveries whose attempt failed in the batch to their webhooks;
    `exhausted` are those of them that failed for good (if no retry was asked for meanwhile).
    """
    disabled = {**dict.fromkeys(disabled_failing, operational.CAUSE_FAILING)}
    disabled.update(dict.fromkeys(disabled_gone, operational.CAUSE_GONE))
    looked_up = set(exhausted) | {d for d, hook in failed.items() if hook in disabled}
    found = _deliveries(conn, looked_up)
    # A webhook disabled only by failures of hookd's own events is not announced.
    announced_hooks = {
        found[d].webhook_id
        for d in looked_up
        if d in found and not operational.is_operational(found[d].topic)
    }
    spent = [
        found[d]
        for d in sorted(exhausted)
        if d in found
        and found[d].state == DeliveryState.FAILED.value
        and not operational.is_operational(found[d].topic)
    ]
    wanted = {hook for hook in disabled if hook in announced_hooks}
    hooks = _webhooks(conn, wanted | set(recovered) | {row.webhook_id for row in spent})
    drafts: list[tuple[str, dict[str, Any]]] = []
    for hook in sorted(wanted):
        ref, reason = hooks[hook]
        drafts.append(
            (
                operational.WEBHOOK_DISABLED,
                operational.disabled_data(ref, disabled[hook], reason or ""),
            )
        )
    for hook in recovered:
        if hook in hooks:
            drafts.append(
                (operational.WEBHOOK_RECOVERED, operational.recovered_data(hooks[hook][0]))
            )
    for row in spent:
        if row.webhook_id not in hooks:
            continue
        drafts.append(
            (
                operational.DELIVERY_EXHAUSTED,
                operational.exhausted_data(
                    hooks[row.webhook_id][0],
                    delivery_id=row.id,
                    event_id=row.event_id,
                    event_type=_event_type(row.body, row.topic),
                    attempts=row.attempts,
                    status_code=row.last_status_code,
                    error=row.last_error,
                ),
            )
        )
    if not drafts:
        return 0
    created_at = rfc3339(now)
    new_events = []
    for event_type, data in drafts:
        event_id = new_event_id()
        body = delivery_body(event_id, event_type, created_at, data)
        new_events.append(NewEvent(event_id, event_type, body))
    return sum(event_store.store_in(conn, new_events, now, unless_unsubscribed=True))


def _deliveries(conn: Connection, ids: Collection[int]) -> dict[int, Any]:
    if not ids:
        return {}
    rows = conn.execute(
        select(
            deliveries.c.id,
            deliveries.c.state,
            deliveries.c.webhook_id,
            deliveries.c.attempts,
            deliveries.c.last_status_code,
            deliveries.c.last_error,
            events.c.id.label("event_id"),
            events.c.type.label("topic"),
            events.c.body,
        )
        .join(events, events.c.seq == deliveries.c.event_seq)
        .where(deliveries.c.id.in_(ids))
    )
    return {row.id: row for row in rows}


def _webhooks(conn: Connection, ids: Collection[int]) -> dict[int, tuple[WebhookRef, str | None]]:
    if not ids:
        return {}
    rows = conn.execute(
        select(
            webhooks.c.id,
            webhooks.c.dialect,
            webhooks.c.url,
            webhooks.c.public_id,
            webhooks.c.disabled_reason,
        ).where(webhooks.c.id.in_(ids))
    )
    return {
        row.id: (WebhookRef(row.id, row.dialect, row.url, row.public_id), row.disabled_reason)
        for row in rows
    }


def _event_type(body: bytes, topic: str) -> str:
    """The type the event's body names (a dialect may qualify the topic it is stored under)."""
    try:
        found = orjson.loads(bytes(body)).get("type")
    except (orjson.JSONDecodeError, AttributeError):
        return topic
    return found if isinstance(found, str) else topic
