"""Matching the receiver's log lines to published events: completeness, rates, latencies."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field

from bench.receiver import ArrivalLog
from bench.stats import latency_ms, rate


@dataclass
class ArrivalTally:
    """Arrivals of the deliveries we expect: (event id, path) → first arrival time."""

    sent_at: dict[str, float]
    paths: frozenset[str]
    first: dict[tuple[str, str], float] = field(default_factory=dict)
    duplicates: int = 0
    retried: int = 0  # arrivals whose X-Hookd-Attempt was > 1
    non_2xx: int = 0
    stray: int = 0  # lines of this run's prefix we did not expect

    @property
    def expected(self) -> int:
        return len(self.sent_at) * len(self.paths)

    @property
    def arrived(self) -> int:
        return len(self.first)

    def add(self, log: ArrivalLog, prefix: str) -> int:
        """Reads what the receiver logged since the last call; returns how many lines were ours."""
        ours = 0
        for a in log.read_new():
            if not a.webhook_id.startswith(prefix):
                continue
            ours += 1
            if a.attempt is not None and a.attempt > 1:
                self.retried += 1
            if not 200 <= a.status < 300:
                self.non_2xx += 1
                continue
            if a.webhook_id not in self.sent_at or a.path not in self.paths:
                self.stray += 1
                continue
            key = (a.webhook_id, a.path)
            seen = self.first.get(key)
            if seen is None:
                self.first[key] = a.msec
            else:
                self.duplicates += 1
                self.first[key] = min(seen, a.msec)
        return ours

    def missing(self, limit: int = 20) -> tuple[int, list[str]]:
        gone = [
            f"{event_id} → {path}"
            for event_id in self.sent_at
            for path in sorted(self.paths)
            if (event_id, path) not in self.first
        ]
        return len(gone), gone[:limit]

    def figures(self, first_publish: float | None) -> dict[str, object]:
        latencies = [t - self.sent_at[eid] for (eid, _), t in self.first.items()]
        last = max(self.first.values(), default=None)
        wall = (last - first_publish) if (last is not None and first_publish is not None) else 0.0
        n_missing, sample = self.missing()
        return {
            "expected": self.expected,
            "arrived": self.arrived,
            "missing": n_missing,
            "missing_sample": sample,
            "duplicates": self.duplicates,
            "retried_arrivals": self.retried,
            "non_2xx": self.non_2xx,
            "stray": self.stray,
            "end_to_end_s": round(wall, 3),
            "deliveries_per_s": rate(self.arrived, wall),
            "latency": latency_ms(latencies),
        }


async def wait_for_all(
    tally: ArrivalTally, log: ArrivalLog, prefix: str, stop_at: float, poll_s: float = 0.1
) -> bool:
    """Polls the log until every expected delivery arrived (True) or ``stop_at`` passed (False)."""
    while True:
        tally.add(log, prefix)
        if tally.arrived >= tally.expected:
            return True
        if time.monotonic() >= stop_at:
            return False
        await asyncio.sleep(poll_s)
