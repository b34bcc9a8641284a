"""When a failed attempt is tried again, and when a delivery has failed for good."""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence
from email.utils import parsedate_to_datetime

from hookd.domain.states import DeliveryState

# A receiver may ask for a pause, but not for one longer than this.
MAX_RETRY_AFTER = 3600.0


def parse_retry_after(value: str | None, now: float) -> float | None:
    """A `Retry-After` header (seconds, or an HTTP date) as a delay in seconds."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return min(float(value), MAX_RETRY_AFTER)
    try:
        when = parsedate_to_datetime(value).timestamp()
    except (TypeError, ValueError):
        return None
    return min(max(when - now, 0.0), MAX_RETRY_AFTER)


class RetryPolicy:
    """`schedule[i]` is the delay before retry i+1, the last repeating; ±`jitter` spreads them."""

    def __init__(
        self,
        schedule: Sequence[float],
        *,
        jitter: float = 0.1,
        rng: Callable[[], float] = random.random,
    ) -> None:
        if not schedule:
            raise ValueError("the retry schedule needs at least one delay")
        self.schedule = tuple(schedule)
        self.jitter = jitter
        self._rng = rng

    def delay(self, retry_number: int) -> float:
        """The delay before retry `retry_number` (1 for the first retry)."""
        base = self.schedule[min(retry_number, len(self.schedule)) - 1]
        return base * (1.0 + self.jitter * (2.0 * self._rng() - 1.0))

    def after_failure(
        self, attempt: int, max_retries: int, now: float, retry_after: float | None = None
    ) -> tuple[DeliveryState, float]:
        """The state and due time of a delivery whose attempt number `attempt` failed."""
        if attempt > max_retries:
            return DeliveryState.FAILED, now
        delay = retry_after if retry_after is not None else self.delay(attempt)
        return DeliveryState.RETRYING, now + delay
