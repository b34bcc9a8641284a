"""How a worker's send slots are shared out among the webhooks that have deliveries due.

A claim takes a share from each webhook with due deliveries, oldest waiting first, instead of
the globally oldest deliveries: a webhook with a deep backlog or a slow receiver holds at most
its share of a worker's slots, and every other webhook keeps flowing. Within that share each
webhook's own controls apply:

- a suspended webhook (failing continuously) gets one probe when its probe is due, else nothing;
- a `fifo` webhook gets its oldest delivery, and only when none of its deliveries is in flight
  or waiting for a retry;
- a rate-limited webhook gets what its rate allows now (a virtual schedule with a burst of half
  a second's deliveries, so that over any 10 s it sends at most 5–10 % over its rate).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from hookd.domain.states import Ordering


@dataclass(slots=True, frozen=True)
class Queued:
    """A webhook with claimable deliveries, as the claim sees it."""

    webhook_id: int
    first_due: float  # the earliest due time of its claimable deliveries
    # The latest (a lease end or a retry time when one is pending); looked up for fifo only.
    last_due: float | None = None
    controlled: bool = False  # active, so its controls apply (else it is drained as it is)
    ordering: Ordering = Ordering.NONE
    rate_limit: int | None = None
    rate_next_at: float | None = None
    probe_at: float | None = None  # set while suspended


@dataclass(slots=True, frozen=True)
class Take:
    webhook_id: int
    count: int
    fifo: bool = False


@dataclass(slots=True)
class ClaimPlan:
    takes: list[Take] = field(default_factory=list)
    # The rate-limited webhooks taken from, with their limit and schedule before this claim.
    rates: dict[int, tuple[int, float | None]] = field(default_factory=dict)
    # The suspended webhooks probed, and when another probe may go if this one never ends.
    probe_at: dict[int, float] = field(default_factory=dict)
    # When something held back now may be claimed (None: nothing known).
    next_due: float | None = None
    # Deliveries are due that only this worker's shares held back: claim again when some of
    # what it holds has been sent.
    held_back: bool = False


def rate_burst(rate_limit: int) -> int:
    """How many deliveries a rate-limited webhook may start at once."""
    return max(1, rate_limit // 2)


def rate_allowance(rate_limit: int, next_at: float | None, now: float) -> tuple[int, float]:
    """How many deliveries may start now under `rate_limit`/s, and when the next one may
    start if none may now."""
    burst = rate_burst(rate_limit)
    tolerance = burst / rate_limit
    scheduled = now if next_at is None else max(next_at, now)
    allowed = math.floor((now + tolerance - scheduled) * rate_limit + 1e-6)
    return max(allowed, 0), scheduled - tolerance + 1 / rate_limit


def advance_rate(rate_limit: int, next_at: float | None, now: float, count: int) -> float:
    scheduled = now if next_at is None else max(next_at, now)
    return scheduled + count / rate_limit


def plan_claim(
    queued: Sequence[Queued],
    held: Mapping[int, int],
    *,
    limit: int,
    slots: int,
    per_webhook: int,
    now: float,
    lease: float,
) -> ClaimPlan:
    """What to claim from each webhook.

    `held` is what this worker holds per webhook (claimed, not yet sent); `slots` how many it
    may hold in all; `per_webhook` the most any one webhook may hold. Slots are shared evenly
    among the webhooks that can use them now, and a claim of `limit` is spread round-robin.
    """
    plan = ClaimPlan()
    wants: list[tuple[Queued, int]] = []
    for hook in sorted(queued, key=lambda q: q.first_due):
        most = _most_now(hook, held.get(hook.webhook_id, 0), now, plan)
        if most > 0:
            wants.append((hook, most))
    busy = {hook.webhook_id for hook, _ in wants} | {w for w, n in held.items() if n > 0}
    share = max(1, min(per_webhook, slots // max(1, len(busy))))
    rooms = [
        (hook, min(most, share - held.get(hook.webhook_id, 0)))
        for hook, most in wants
        if share - held.get(hook.webhook_id, 0) > 0
    ]
    plan.held_back = len(rooms) < len(wants)
    for (hook, _), count in zip(rooms, _spread(limit, [room for _, room in rooms]), strict=True):
        if count <= 0:
            continue
        fifo = hook.controlled and hook.ordering == Ordering.FIFO
        plan.takes.append(Take(hook.webhook_id, count, fifo))
        if not hook.controlled:
            continue
        if hook.probe_at is not None:
            plan.probe_at[hook.webhook_id] = now + lease  # no second probe while this one runs
        if hook.rate_limit is not None:
            plan.rates[hook.webhook_id] = (hook.rate_limit, hook.rate_next_at)
    return plan


def rate_schedules(plan: ClaimPlan, claimed: Mapping[int, int], now: float) -> dict[int, float]:
    """The rate schedules to write after a claim took `claimed` deliveries per webhook (what it
    took, which may be less than it planned)."""
    return {
        webhook_id: advance_rate(rate_limit, next_at, now, claimed[webhook_id])
        for webhook_id, (rate_limit, next_at) in plan.rates.items()
        if claimed.get(webhook_id)
    }


def _most_now(hook: Queued, held: int, now: float, plan: ClaimPlan) -> int:
    """How many of `hook`'s deliveries its own controls allow now (before sharing)."""
    if hook.first_due > now:
        _later(plan, hook.first_due)
        return 0
    if not hook.controlled:
        return 1 << 30
    most = 1 << 30
    if hook.probe_at is not None:
        if hook.probe_at > now or held:
            _later(plan, hook.probe_at)
            return 0
        most = 1
    if hook.ordering == Ordering.FIFO:
        if hook.last_due is None or hook.last_due > now or held:
            return 0  # its head is in flight or waiting for a retry
        most = 1
    if hook.rate_limit is not None:
        allowed, next_at = rate_allowance(hook.rate_limit, hook.rate_next_at, now)
        if allowed == 0:
            _later(plan, next_at)
            return 0
        most = min(most, allowed)
    return most


def _later(plan: ClaimPlan, when: float) -> None:
    if plan.next_due is None or when < plan.next_due:
        plan.next_due = when


def _spread(total: int, rooms: Sequence[int]) -> list[int]:
    """Share `total` out among `rooms` as evenly as their sizes allow (water-filling); the
    remainder goes to the first ones."""
    counts = [0] * len(rooms)
    left = total
    order = sorted(range(len(rooms)), key=lambda i: rooms[i])
    for position, index in enumerate(order):
        fair = left // (len(order) - position)
        if rooms[index] > fair:  # this one and every larger one get the level
            for other in order[position:]:
                counts[other] = fair
            left -= fair * (len(order) - position)
            break
        counts[index] = rooms[index]
        left -= rooms[index]
    for index in range(len(rooms)):
        if left <= 0:
            break
        extra = min(rooms[index] - counts[index], left)
        counts[index] += extra
        left -= extra
    return counts
