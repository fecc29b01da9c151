"""Bar charts as inline SVG, drawn on the server: no script, no library, nothing to load.

A chart is a ``<svg role="img">`` with a horizontal grid (0, half, the top of a rounded scale),
one bar per period (and, optionally, a second series drawn inside it, e.g. the paid part of the
invoices created), every few periods a label, and a ``<title>`` per bar that browsers show on
hover and screen readers read. Colours come from classes (``admin.css``): the page's Content
Security Policy allows no inline style, and none is needed.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from markupsafe import Markup, escape

WIDTH, HEIGHT = 640, 190
LEFT, RIGHT, TOP, BOTTOM = 56, 8, 10, 24
BAR_SHARE = 0.72
"""The part of each period's width its bar fills."""


def nice_top(value: float) -> float:
    """The smallest of 1, 2, 2.5, 5 times a power of ten that is at least ``value`` (1 for 0)."""
    if value <= 0:
        return 1.0
    power = 10 ** math.floor(math.log10(value))
    for step in (1, 2, 2.5, 5, 10):
        if step * power >= value:
            return step * power
    return 10 * power  # pragma: no cover - the loop always returns


@dataclass(frozen=True, slots=True)
class Bar:
    """One period: its label, its value, the value of the inner series, and its tooltip."""

    label: str
    value: float
    inner: float | None = None
    tip: str = ""


def _number(value: float) -> str:
    return f"{value:.1f}".rstrip("0").rstrip(".")


def bar_chart(bars: Sequence[Bar], *, title: str, kind: str, axis: Callable[[float], str],
              label_every: int = 1) -> Markup:
    """The SVG of ``bars``: ``kind`` names the colour class (``volume``, ``revenue``),
    ``axis`` writes the scale's values, a label every ``label_every`` bars."""
    top = nice_top(max((b.value for b in bars), default=0))
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM
    slot = plot_w / max(len(bars), 1)
    parts = [f'<svg class="chart {escape(kind)}" viewBox="0 0 {WIDTH} {HEIGHT}" role="img" '
             f'aria-label="{escape(title)}" preserveAspectRatio="xMidYMid meet">',
             f"<title>{escape(title)}</title>"]
    for fraction in (0, 0.5, 1):
        y = TOP + plot_h * (1 - fraction)
        value = top * fraction
        parts.append(f'<line class="gridline" x1="{LEFT}" x2="{WIDTH - RIGHT}" y1="{_number(y)}" '
                     f'y2="{_number(y)}"/>')
        parts.append(f'<text class="axis" x="{LEFT - 6}" y="{_number(y + 4)}" '
                     f'text-anchor="end">{escape(axis(value))}</text>')
    for index, bar in enumerate(bars):
        x = LEFT + index * slot + slot * (1 - BAR_SHARE) / 2
        width = slot * BAR_SHARE
        height = plot_h * bar.value / top
        parts.append(f"<g><title>{escape(bar.tip or bar.label)}</title>")
        # An empty period still gets a transparent bar, so its tooltip can be hovered.
        parts.append(f'<rect class="hit" x="{_number(LEFT + index * slot)}" y="{TOP}" '
                     f'width="{_number(slot)}" height="{plot_h}"/>')
        if bar.value > 0:
            parts.append(f'<rect class="bar" x="{_number(x)}" y="{_number(TOP + plot_h - height)}" '
                         f'width="{_number(width)}" height="{_number(height)}" rx="2"/>')
        if bar.inner:
            inner = plot_h * bar.inner / top
            parts.append(f'<rect class="inner" x="{_number(x + width * 0.2)}" '
                         f'y="{_number(TOP + plot_h - inner)}" width="{_number(width * 0.6)}" '
                         f'height="{_number(inner)}" rx="1"/>')
        parts.append("</g>")
        if index % label_every == 0:
            parts.append(f'<text class="label" x="{_number(x + width / 2)}" '
                         f'y="{HEIGHT - 6}" text-anchor="middle">{escape(bar.label)}</text>')
    parts.append("</svg>")
    return Markup("".join(parts))
