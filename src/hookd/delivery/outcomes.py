"""What the worker tells about each batch of outcomes it wrote: the metrics and the log lines.

Failures are logged at INFO, successes at DEBUG (`HOOKD_LOG_LEVEL=debug` shows them): a line per
success costs a high-volume worker more than the rest of the bookkeeping (see
docs/performance.md). Every line carries the event, delivery and webhook ids, the attempt and
the outcome; never the URL (its userinfo or query may hold credentials) nor what came back.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

from hookd.delivery import metrics
from hookd.domain.states import DeliveryState
from hookd.store.queue import Claimed, Outcome

log = logging.getLogger("hookd.delivery")


def recorded(batch: Sequence[tuple[Outcome, Claimed]]) -> None:
    metrics.outcomes_recorded(
        (claimed.dialect, outcome.state, outcome.attempt is not None) for outcome, claimed in batch
    )
    observe_attempt = metrics.ATTEMPT_SECONDS.observe
    observe_delay = metrics.FIRST_ATTEMPT_DELAY.observe
    for outcome, claimed in batch:
        if outcome.attempt is None:
            continue
        observe_attempt(outcome.duration_ms / 1000)
        if outcome.attempt == 1 and claimed.published_at:
            observe_delay(max(0.0, outcome.started_at - claimed.published_at))
    successes = log.isEnabledFor(logging.DEBUG)
    if not (successes or log.isEnabledFor(logging.INFO)):
        return
    for outcome, claimed in batch:
        succeeded = outcome.state == DeliveryState.SUCCEEDED
        if succeeded and not successes:
            continue
        log.log(
            logging.DEBUG if succeeded else logging.INFO,
            "delivery %s of event %s to webhook %s: attempt %s %s (status %s, %.0f ms)",
            outcome.delivery_id,
            claimed.event_id,
            outcome.webhook_id,
            outcome.attempt,
            outcome.state.value,
            outcome.status_code,
            outcome.duration_ms,
            extra={
                "event_id": claimed.event_id,
                "delivery_id": outcome.delivery_id,
                "webhook_id": outcome.webhook_id,
                "attempt": outcome.attempt,
                "outcome": outcome.state.value,
                "status_code": outcome.status_code,
                "duration_ms": round(outcome.duration_ms, 1),
            },
        )
