"""The overview: attempts, success rate and latency over the last hours, the queue, and the
webhooks hookd disabled. Read from per-minute counters and the claim's index: the same cost
with a thousand deliveries in the store as with millions."""

from __future__ import annotations

import time

from fastapi import APIRouter, Request
from starlette.responses import Response

from hookd.console import changes
from hookd.console.charts import Series, chart, nice_ceiling
from hookd.console.render import ms, number, page, percent
from hookd.console.session import Hookd, back_to_login, session_viewer
from hookd.store import stats
from hookd.store import webhooks as core_store

router = APIRouter(include_in_schema=False)

# Hours shown → minutes per point of the charts.
RANGES = {1: 1, 6: 3, 24: 12}
DEFAULT_HOURS = 6
# The queue is counted up to this many deliveries (in the order they come due).
QUEUE_COUNT_CAP = 10_000
DISABLED_WITHIN = 24 * 3600.0


@router.get("/")
async def overview(request: Request, hookd: Hookd) -> Response:
    # "/" belongs to no path prefix with an error page of its own: it redirects by itself.
    looking = await session_viewer(request, hookd)
    if looking is None:
        return back_to_login(request)
    hours = request.query_params.get("hours", "")
    shown_hours = int(hours) if hours.isdigit() and int(hours) in RANGES else DEFAULT_HOURS
    per_point = RANGES[shown_hours]
    now = time.time()
    last = int(now // 60)
    first = last - shown_hours * 60 + 1
    spans = await stats.minutes(hookd.db, first, last, per_point)
    total = stats.Minutes(first, shown_hours * 60)
    for span in spans:
        total.add(span)
    depth = await stats.queue_depth(hookd.db, QUEUE_COUNT_CAP)
    oldest = await stats.oldest_due(hookd.db, now)
    disabled = await changes.shown(
        hookd.db, await core_store.disabled_since(hookd.db, now - DISABLED_WITHIN)
    )

    succeeded = [s.succeeded / per_point for s in spans]
    failed = [(s.attempts - s.succeeded) / per_point for s in spans]
    rates = [None if s.success_rate is None else s.success_rate * 100 for s in spans]
    p95s = [s.latency_quantile(0.95) for s in spans]
    busiest = max((a + b for a, b in zip(succeeded, failed, strict=True)), default=0.0)
    slowest = max((p for p in p95s if p is not None), default=0.0)
    unit = "minute" if per_point == 1 else f"{per_point} minutes"
    charts = [
        chart(
            "attempts",
            "Delivery attempts per minute",
            f"{number(total.attempts)} attempts in the last {shown_hours} h, "
            f"{number(total.attempts - total.succeeded)} of them failed; one bar per {unit}.",
            start_minute=first,
            minutes_per_point=per_point,
            series=[
                Series("answered 2xx", "ok", succeeded),
                Series("failed attempts", "bad", failed),
            ],
            kind="bars",
            y_max=nice_ceiling(busiest),
            y_label=number,
        ),
        chart(
            "success",
            "Success rate",
            f"{percent(total.success_rate)} of attempts answered 2xx in the last "
            f"{shown_hours} h; one point per {unit}.",
            start_minute=first,
            minutes_per_point=per_point,
            series=[Series("success rate", "line-ok", rates)],
            kind="line",
            y_max=100.0,
            y_label=lambda v: f"{v:.0f} %",
        ),
        chart(
            "latency",
            "p95 attempt latency",
            f"95 % of attempts took at most {ms(total.latency_quantile(0.95))} in the last "
            f"{shown_hours} h; one point per {unit}.",
            start_minute=first,
            minutes_per_point=per_point,
            series=[Series("p95 latency", "line-latency", p95s)],
            kind="line",
            y_max=nice_ceiling(slowest),
            y_label=ms,
        ),
    ]
    return page(
        request,
        "overview.html",
        viewer=looking,
        hours=shown_hours,
        ranges=list(RANGES),
        total=total,
        charts=charts,
        depth=depth,
        oldest_wait=None if oldest is None else now - oldest,
        disabled=disabled,
    )
