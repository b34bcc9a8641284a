"""hookd's Prometheus metrics: every series, defined once, in the process's default registry.

The store never counts (it sits below this module): what it knows reaches here through
`store.availability.observe`, and callers above it count what the store answered. Counting on
the hot path is cheap: label children are bound once, and the worker counts each batch of
outcomes after writing it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import Counter as Tally
from collections.abc import AsyncIterator, Iterable, Sequence

from prometheus_client import Counter, Gauge, Histogram

from hookd.domain.states import CLAIMABLE, DeliveryState
from hookd.store import availability, stats
from hookd.store.availability import Outage, StoreUnavailable
from hookd.store.database import Database

log = logging.getLogger("hookd.metrics")

_SECONDS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30)
_DELAY_SECONDS = (0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 1800, 3600)

# --- delivery ---------------------------------------------------------------------------------

ATTEMPTS = Counter(
    "hookd_delivery_attempts_total",
    "Delivery attempts made, by the webhook's dialect and what became of the delivery "
    "(succeeded, retrying, failed)",
    ["dialect", "outcome"],
)
DELIVERIES = Counter(
    "hookd_deliveries_total",
    "Deliveries that reached a final state (succeeded, failed), by the webhook's dialect",
    ["dialect", "outcome"],
)
ATTEMPT_SECONDS = Histogram(
    "hookd_delivery_attempt_seconds", "Duration of delivery attempts", buckets=_SECONDS
)
FIRST_ATTEMPT_DELAY = Histogram(
    "hookd_delivery_first_attempt_delay_seconds",
    "From an event's publication to the start of a delivery's first attempt",
    buckets=_DELAY_SECONDS,
)
CLAIM_BATCH = Histogram(
    "hookd_worker_claim_batch_size",
    "Deliveries taken by each claim that took any",
    buckets=(1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000),
)
WEBHOOKS_DISABLED = Counter(
    "hookd_webhooks_disabled_total",
    "Webhooks hookd disabled, by reason: gone (the receiver answered 410), failing (every "
    "attempt failed for HOOKD_DISABLE_AFTER)",
    ["reason"],
)
EVENTS_PUBLISHED = Counter("hookd_events_published_total", "Events accepted for delivery")

# --- validation hooks (blocking events) -------------------------------------------------------

VALIDATIONS = Counter(
    "hookd_validations_total",
    "Blocking triggers whose validation hooks were called, by verdict (allowed, vetoed, "
    "cancelled: the caller went away)",
    ["verdict"],
)
VALIDATION_SECONDS = Histogram(
    "hookd_validation_seconds",
    "Duration of a blocking trigger's validation calls, all hooks together",
    buckets=_SECONDS,
)

# --- the queue, sampled -----------------------------------------------------------------------

QUEUE_DEPTH = Gauge(
    "hookd_queue_deliveries",
    "Deliveries waiting or in flight, by state (sampled; counted up to QUEUE_DEPTH_CAP in all)",
    ["state"],
)
OLDEST_DUE_AGE = Gauge(
    "hookd_queue_oldest_due_age_seconds",
    "How long the delivery that has waited longest for an attempt has been due (sampled; 0: none)",
)

# --- the HTTP API -----------------------------------------------------------------------------

HTTP_REQUESTS = Counter(
    "hookd_http_requests_total",
    "HTTP requests answered, by method, route template and status",
    ["method", "route", "status"],
)
HTTP_SECONDS = Histogram(
    "hookd_http_request_seconds",
    "Time to answer HTTP requests, by method and route template",
    ["method", "route"],
    buckets=_SECONDS,
)

# --- the store --------------------------------------------------------------------------------

STORE_ERRORS = Counter(
    "hookd_store_errors_total",
    "Statements that failed because the store could not be used, by reason",
    ["reason"],
)
STORE_RECONNECTS = Counter(
    "hookd_store_reconnects_total", "Times the store answered again after an outage"
)

_DIALECTS = ("device", "repository")
_FINAL = (DeliveryState.SUCCEEDED, DeliveryState.FAILED)
_OUTCOMES = (DeliveryState.SUCCEEDED, DeliveryState.RETRYING, DeliveryState.FAILED)
_attempts = {(d, o): ATTEMPTS.labels(d, o.value) for d in _DIALECTS for o in _OUTCOMES}
_deliveries = {(d, o): DELIVERIES.labels(d, o.value) for d in _DIALECTS for o in _FINAL}
_depth = {state: QUEUE_DEPTH.labels(state.value) for state in CLAIMABLE}
for _reason in ("gone", "failing"):
    WEBHOOKS_DISABLED.labels(_reason)
for _verdict in ("allowed", "vetoed", "cancelled"):
    VALIDATIONS.labels(_verdict)


def _attempt_child(dialect: str, outcome: DeliveryState) -> Counter:
    child = _attempts.get((dialect, outcome))
    if child is None:  # a dialect added since: bound on first use
        child = _attempts[(dialect, outcome)] = ATTEMPTS.labels(dialect, outcome.value)
    return child


def _delivery_child(dialect: str, outcome: DeliveryState) -> Counter:
    child = _deliveries.get((dialect, outcome))
    if child is None:
        child = _deliveries[(dialect, outcome)] = DELIVERIES.labels(dialect, outcome.value)
    return child


def outcomes_recorded(outcomes: Iterable[tuple[str, DeliveryState, bool]]) -> None:
    """Count a written batch of outcomes: (dialect, state, whether an attempt was made)."""
    attempts: Tally[tuple[str, DeliveryState]] = Tally()
    finished: Tally[tuple[str, DeliveryState]] = Tally()
    for dialect, state, attempted in outcomes:
        if attempted:
            attempts[(dialect, state)] += 1
        if state in _FINAL:
            finished[(dialect, state)] += 1
    for (dialect, state), count in attempts.items():
        _attempt_child(dialect, state).inc(count)
    for (dialect, state), count in finished.items():
        _delivery_child(dialect, state).inc(count)


def attempt_finished(dialect: str, outcome: DeliveryState, duration_ms: float) -> None:
    """One attempt of a synchronous call (a validation hook)."""
    _attempt_child(dialect, outcome).inc()
    ATTEMPT_SECONDS.observe(duration_ms / 1000)


def webhooks_disabled(gone: Sequence[int], failing: Sequence[int]) -> None:
    if gone:
        WEBHOOKS_DISABLED.labels("gone").inc(len(gone))
    if failing:
        WEBHOOKS_DISABLED.labels("failing").inc(len(failing))


# --- store outages ----------------------------------------------------------------------------

_store_errors: dict[str, Counter] = {}


def _store_changed(kind: str, outage: Outage) -> None:
    if kind == "recovered":
        STORE_RECONNECTS.inc()
        return
    child = _store_errors.get(outage.reason)
    if child is None:
        child = _store_errors[outage.reason] = STORE_ERRORS.labels(outage.reason)
    child.inc()


availability.observe(_store_changed)

# --- the queue sampler ------------------------------------------------------------------------

# Queue depth reads at most this many deliveries of the claim's index per sample.
QUEUE_DEPTH_CAP = 10_000
SAMPLE_EVERY = 5.0


async def sample_queue(db: Database) -> None:
    """Set the queue's gauges from two bounded queries."""
    sample = await stats.sample_queue(db, QUEUE_DEPTH_CAP)
    for state, count in sample.by_state.items():
        _depth[state].set(count)
    due = sample.first_due
    OLDEST_DUE_AGE.set(0.0 if due is None else max(0.0, time.time() - due))


async def sample_queue_forever(db: Database, every: float = SAMPLE_EVERY) -> None:
    """The sampler's loop: a sample every `every` seconds until cancelled."""
    while True:
        try:
            await sample_queue(db)
        except StoreUnavailable:
            pass  # the store logs once that it went away
        except Exception:
            log.exception("sampling the queue for the metrics failed")
        await asyncio.sleep(every)


@contextlib.asynccontextmanager
async def queue_sampler(
    db: Database, every: float = SAMPLE_EVERY
) -> AsyncIterator[asyncio.Task[None]]:
    """Sample the queue in the background while the block runs."""
    task = asyncio.create_task(sample_queue_forever(db, every), name="hookd-queue-sampler")
    try:
        yield task
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
