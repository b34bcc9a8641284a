"""Charts drawn on the server as SVG: no script, no external file, readable without colour
(each chart has a title and a one-line summary for screen readers)."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from markupsafe import Markup, escape

WIDTH, HEIGHT = 600, 170
LEFT, RIGHT, TOP, BOTTOM = 56, 8, 10, 26


@dataclass(frozen=True, slots=True)
class Chart:
    title: str
    svg: Markup


@dataclass(frozen=True, slots=True)
class Series:
    name: str
    css: str  # the class that colours it
    values: Sequence[float | None]


def nice_ceiling(value: float) -> float:
    """The smallest 1, 2 or 5 × 10^n at or above `value` (at least 1)."""
    if value <= 1:
        return 1.0
    power = 10 ** math.floor(math.log10(value))
    for step in (1, 2, 5, 10):
        if step * power >= value:
            return float(step * power)
    return float(10 * power)


def _clock(minute: int) -> str:
    return datetime.fromtimestamp(minute * 60, UTC).strftime("%H:%M")


def chart(
    ident: str,
    title: str,
    summary: str,
    *,
    start_minute: int,
    minutes_per_point: int,
    series: Sequence[Series],
    kind: str,
    y_max: float,
    y_label: Callable[[float], str],
) -> Chart:
    """`kind` "bars" stacks the series as bars; "line" draws each as a line (gaps where a value
    is None)."""
    points = max((len(s.values) for s in series), default=0)
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM
    step = plot_w / max(points, 1)

    def y(value: float) -> float:
        return TOP + plot_h - plot_h * min(value, y_max) / y_max

    parts = [
        f'<svg class="chart" viewBox="0 0 {WIDTH} {HEIGHT}" role="img" '
        f'aria-labelledby="{ident}-title {ident}-desc">',
        f'<title id="{ident}-title">{escape(title)}</title>',
        f'<desc id="{ident}-desc">{escape(summary)}</desc>',
    ]
    for fraction in (0.0, 0.5, 1.0):
        line_y = y(y_max * fraction)
        parts.append(
            f'<line class="grid" x1="{LEFT}" x2="{WIDTH - RIGHT}" y1="{line_y:.1f}" '
            f'y2="{line_y:.1f}"/>'
        )
        parts.append(
            f'<text class="axis" x="{LEFT - 6}" y="{line_y + 4:.1f}" text-anchor="end">'
            f"{escape(y_label(y_max * fraction))}</text>"
        )
    if kind == "bars":
        bar_w = max(step - 1, 1)
        for index in range(points):
            base = 0.0
            for s in series:
                value = s.values[index] or 0.0
                if value <= 0:
                    continue
                top, bottom = y(base + value), y(base)
                parts.append(
                    f'<rect class="{s.css}" x="{LEFT + index * step:.1f}" y="{top:.1f}" '
                    f'width="{bar_w:.1f}" height="{max(bottom - top, 0.5):.1f}"/>'
                )
                base += value
    else:
        for s in series:
            run: list[str] = []
            for index, point in enumerate(s.values):
                if point is None:
                    parts.extend(_polyline(s.css, run))
                    run = []
                    continue
                run.append(f"{LEFT + (index + 0.5) * step:.1f},{y(point):.1f}")
            parts.extend(_polyline(s.css, run))
    end_minute = start_minute + points * minutes_per_point
    for x, anchor, minute in (
        (LEFT, "start", start_minute),
        (LEFT + plot_w / 2, "middle", (start_minute + end_minute) // 2),
        (WIDTH - RIGHT, "end", end_minute),
    ):
        parts.append(
            f'<text class="axis" x="{x:.1f}" y="{HEIGHT - 8}" text-anchor="{anchor}">'
            f"{_clock(minute)}</text>"
        )
    parts.append("</svg>")
    return Chart(title, Markup("".join(parts)))


def _polyline(css: str, run: list[str]) -> list[str]:
    if not run:
        return []
    if len(run) == 1:
        x, y = run[0].split(",")
        return [f'<circle class="{css}" cx="{x}" cy="{y}" r="2.5"/>']
    return [f'<polyline class="{css}" points="{" ".join(run)}"/>']
