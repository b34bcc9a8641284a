"""Prometheus metrics of the delivery path."""

from __future__ import annotations

from prometheus_client import Counter, Histogram

from hookd.domain.states import DeliveryState

ATTEMPTS = Counter(
    "hookd_delivery_attempts_total",
    "Delivery attempts made, by what became of the delivery",
    ["outcome"],
)
ATTEMPT_SECONDS = Histogram(
    "hookd_delivery_attempt_seconds",
    "Duration of delivery attempts",
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
)
EVENTS_PUBLISHED = Counter("hookd_events_published_total", "Events accepted for delivery")

_by_outcome = {
    state: ATTEMPTS.labels(state.value)
    for state in (DeliveryState.SUCCEEDED, DeliveryState.RETRYING, DeliveryState.FAILED)
}


def attempt_finished(outcome: DeliveryState, duration_ms: float) -> None:
    _by_outcome[outcome].inc()
    ATTEMPT_SECONDS.observe(duration_ms / 1000)
