"""Charts drawn on the server as SVG: no script, no external file.

The SVG holds only the marks and stretches to its box; the axis labels are HTML beside it, so
they stay readable at any width. Each chart carries a title and a one-line summary for screen
readers.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from markupsafe import Markup, escape

# The drawing's own units; the SVG is stretched to its box (lines keep their width).
WIDTH, HEIGHT = 1000, 300


@dataclass(frozen=True, slots=True)
class Series:
    name: str
    css: str  # the class that colours it
    values: Sequence[float | None]


@dataclass(frozen=True, slots=True)
class Chart:
    ident: str
    title: str
    svg: Markup
    y_labels: tuple[str, str, str]  # top, middle, bottom
    x_labels: tuple[str, str, str]  # start, middle, end
    legend: tuple[tuple[str, str], ...]  # (css, name) of each series


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
    step = WIDTH / max(points, 1)

    def y(value: float) -> float:
        return HEIGHT - HEIGHT * min(value, y_max) / y_max

    parts = [
        f'<svg class="chart" viewBox="0 0 {WIDTH} {HEIGHT}" preserveAspectRatio="none" '
        f'role="img" aria-labelledby="{ident}-title {ident}-desc">',
        f'<title id="{ident}-title">{escape(title)}</title>',
        f'<desc id="{ident}-desc">{escape(summary)}</desc>',
    ]
    for fraction in (0.0, 0.5, 1.0):
        line_y = min(max(y(y_max * fraction), 0.5), HEIGHT - 0.5)
        parts.append(
            f'<line class="grid" x1="0" x2="{WIDTH}" y1="{line_y:.1f}" y2="{line_y:.1f}" '
            'vector-effect="non-scaling-stroke"/>'
        )
    if kind == "bars":
        gap = min(step * 0.15, 2.0)
        for index in range(points):
            base = 0.0
            for s in series:
                value = s.values[index] or 0.0
                if value <= 0:
                    continue
                top, bottom = y(base + value), y(base)
                parts.append(
                    f'<rect class="{s.css}" x="{index * step + gap / 2:.2f}" y="{top:.2f}" '
                    f'width="{max(step - gap, 0.5):.2f}" height="{max(bottom - top, 1.0):.2f}"/>'
                )
                base += value
    else:
        for s in series:
            run: list[tuple[float, float]] = []
            for index, point in enumerate(s.values):
                if point is None:
                    parts.extend(_line(s.css, run, step))
                    run = []
                    continue
                run.append(((index + 0.5) * step, y(point)))
            parts.extend(_line(s.css, run, step))
    parts.append("</svg>")
    end_minute = start_minute + points * minutes_per_point
    return Chart(
        ident,
        title,
        Markup("".join(parts)),
        (y_label(y_max), y_label(y_max / 2), y_label(0.0)),
        (_clock(start_minute), _clock((start_minute + end_minute) // 2), _clock(end_minute)),
        tuple((s.css, s.name) for s in series),
    )


def _line(css: str, run: list[tuple[float, float]], step: float) -> list[str]:
    if not run:
        return []
    if len(run) == 1:  # a lone point: a short dash across its slot
        x, y = run[0]
        run = [(x - max(step * 0.4, 3), y), (x + max(step * 0.4, 3), y)]
    points = " ".join(f"{x:.1f},{y:.1f}" for x, y in run)
    return [f'<polyline class="{css}" points="{points}" vector-effect="non-scaling-stroke"/>']
