"""How a claim shares a worker's slots among webhooks, and each webhook's controls."""

from __future__ import annotations

from hookd.domain.sharing import Queued, plan_claim, rate_allowance
from hookd.domain.states import Ordering

NOW = 1_000.0


def queued(webhook_id: int, first_due: float = NOW - 10, **controls: object) -> Queued:
    last_due = float(controls.pop("last_due", first_due))  # type: ignore[arg-type]
    return Queued(webhook_id, first_due, last_due, controlled=True, **controls)  # type: ignore[arg-type]


def takes(*hooks: Queued, held: dict[int, int] | None = None, **options: int) -> dict[int, int]:
    settings = {"limit": 100, "slots": 100, "per_webhook": 1000, **options}
    plan = plan_claim(hooks, held or {}, now=NOW, lease=30, **settings)
    return {take.webhook_id: take.count for take in plan.takes}


def test_a_webhook_alone_may_use_every_slot_up_to_its_cap() -> None:
    assert takes(queued(1)) == {1: 100}
    assert takes(queued(1), per_webhook=40) == {1: 40}


def test_slots_are_shared_evenly_among_webhooks_with_due_deliveries() -> None:
    assert takes(queued(1), queued(2), queued(3), queued(4)) == {1: 25, 2: 25, 3: 25, 4: 25}


def test_what_a_webhook_holds_counts_against_its_share() -> None:
    assert takes(queued(1), queued(2), held={1: 50}) == {2: 50}
    assert takes(queued(1), queued(2), held={1: 20}) == {1: 30, 2: 50}


def test_a_small_claim_is_spread_round_robin() -> None:
    assert takes(queued(1), queued(2), queued(3), limit=6) == {1: 2, 2: 2, 3: 2}
    assert takes(queued(1), queued(2), queued(3), limit=4) == {1: 2, 2: 1, 3: 1}


def test_nothing_is_taken_from_a_webhook_not_yet_due() -> None:
    plan = plan_claim(
        [queued(1, first_due=NOW + 5)], {}, limit=10, slots=10, per_webhook=10, now=NOW, lease=30
    )
    assert plan.takes == []
    assert plan.next_due == NOW + 5


def test_a_suspended_webhook_gets_one_probe_when_its_probe_is_due() -> None:
    assert takes(queued(1, probe_at=NOW - 1)) == {1: 1}
    assert takes(queued(1, probe_at=NOW + 1)) == {}
    assert takes(queued(1, probe_at=NOW - 1), held={1: 1}) == {}  # one probe at a time
    plan = plan_claim(
        [queued(1, probe_at=NOW - 1)], {}, limit=10, slots=10, per_webhook=10, now=NOW, lease=30
    )
    assert plan.probe_at == {1: NOW + 30}  # no second probe while this one runs


def test_a_fifo_webhook_gets_its_head_only_when_nothing_is_in_flight() -> None:
    assert takes(queued(1, ordering=Ordering.FIFO)) == {1: 1}
    assert takes(queued(1, ordering=Ordering.FIFO, last_due=NOW + 30)) == {}
    # Made fifo after the claim listed it without its latest due time: the next claim takes it.
    unknown = Queued(1, NOW - 10, None, controlled=True, ordering=Ordering.FIFO)
    assert takes(unknown) == {}
    plan = plan_claim(
        [queued(1, ordering=Ordering.FIFO)], {}, limit=9, slots=9, per_webhook=9, now=NOW, lease=1
    )
    assert plan.takes[0].fifo


def test_a_rate_limited_webhook_gets_what_its_rate_allows() -> None:
    assert takes(queued(1, rate_limit=10)) == {1: 5}  # a burst of half a second
    assert takes(queued(1, rate_limit=10, rate_next_at=NOW + 0.5)) == {}
    assert takes(queued(1, rate_limit=10, rate_next_at=NOW + 0.2)) == {1: 3}


def test_a_rate_limit_holds_over_any_ten_seconds() -> None:
    rate, next_at, sent = 7, None, 0
    for step in range(1000):  # claims every 10 ms for 10 s, taking all that is allowed
        now = NOW + step * 0.01
        allowed, _ = rate_allowance(rate, next_at, now)
        if allowed:
            sent += allowed
            next_at = max(next_at or now, now) + allowed / rate
    assert rate * 10 <= sent <= rate * 10 * 1.1


def test_a_webhook_without_controls_is_drained_as_it_is() -> None:
    disabled = Queued(1, NOW - 1, NOW - 1, controlled=False, probe_at=NOW + 100)
    assert takes(disabled) == {1: 100}
