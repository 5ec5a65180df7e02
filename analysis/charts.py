"""Bar charts as SVG, drawn on the server: no chart script to load, the same picture in the page
and in the PDF, and nothing the Content-Security-Policy refuses (attributes, no style)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from django.utils.html import escape
from django.utils.safestring import SafeString, mark_safe

BAR = "#2f6fb0"
GRID = "#d0d7de"
TEXT = "#333333"


@dataclass(frozen=True)
class Bar:
    label: str
    value: float
    href: str = ""
    tick: str = ""  # a shorter axis label (every bar still has its full label as a tooltip)


def _nice_max(value: float) -> float:
    """The axis top: four equal steps of 1, 2, 2.5 or 5 times a power of ten."""
    if value <= 4:
        return 4
    step = value / 4
    magnitude = 10 ** math.floor(math.log10(step))
    for m in (1, 2, 2.5, 5, 10):
        if step <= m * magnitude:
            return m * magnitude * 4
    return value  # not reached


def _wrap(bar: Bar, inner: str) -> str:
    title = f"<title>{escape(bar.label)}：{bar.value:g}</title>"
    if bar.href:
        return f'<a href="{escape(bar.href)}">{title}{inner}</a>'
    return f"<g>{title}{inner}</g>"


def column_chart(
    bars: Sequence[Bar], *, title: str, width: int = 720, height: int = 220
) -> SafeString:
    """Vertical bars (days of a month, hours of a day)."""
    left, right, top, bottom = 36, 8, 8, 24
    plot_w, plot_h = width - left - right, height - top - bottom
    top_value = _nice_max(max((b.value for b in bars), default=0))
    n = max(len(bars), 1)
    slot = plot_w / n
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="chart" viewBox="0 0 {width} {height}" '
        f'width="{width}" height="{height}" role="img" aria-label="{escape(title)}">',
    ]
    for i in range(5):
        y = top + plot_h - plot_h * i / 4
        parts.append(
            f'<line x1="{left}" y1="{y:.1f}" x2="{width - right}" y2="{y:.1f}" stroke="{GRID}"/>'
            f'<text x="{left - 4}" y="{y + 4:.1f}" font-size="10" text-anchor="end" fill="{TEXT}">'
            f"{top_value * i / 4:g}</text>"
        )
    for i, bar in enumerate(bars):
        h = plot_h * bar.value / top_value if top_value else 0
        x = left + i * slot + slot * 0.15
        rect = (
            f'<rect x="{x:.1f}" y="{top + plot_h - h:.1f}" width="{slot * 0.7:.1f}" '
            f'height="{h:.1f}" fill="{BAR}"/>'
        )
        parts.append(_wrap(bar, rect))
        if bar.tick:
            parts.append(
                f'<text x="{x + slot * 0.35:.1f}" y="{height - 8}" font-size="10" '
                f'text-anchor="middle" fill="{TEXT}">{escape(bar.tick)}</text>'
            )
    parts.append("</svg>")
    return mark_safe("".join(parts))  # noqa: S308 - every label is escaped above


def bar_chart(bars: Sequence[Bar], *, title: str, width: int = 720) -> SafeString:
    """Horizontal bars with their labels (categories, channels, words)."""
    row, label_w, right = 22, 210, 50
    height = max(len(bars), 1) * row + 8
    plot_w = width - label_w - right
    top_value = max((b.value for b in bars), default=0) or 1
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="chart" viewBox="0 0 {width} {height}" '
        f'width="{width}" height="{height}" role="img" aria-label="{escape(title)}">'
    ]
    for i, bar in enumerate(bars):
        y = 4 + i * row
        w = plot_w * bar.value / top_value
        inner = (
            f'<text x="{label_w - 6}" y="{y + 15}" font-size="12" text-anchor="end" '
            f'fill="{TEXT}">{escape(bar.label)}</text>'
            f'<rect x="{label_w}" y="{y + 3}" width="{w:.1f}" height="{row - 6}" fill="{BAR}"/>'
            f'<text x="{label_w + w + 4:.1f}" y="{y + 15}" font-size="12" fill="{TEXT}">'
            f"{bar.value:g}</text>"
        )
        parts.append(_wrap(bar, inner))
    parts.append("</svg>")
    return mark_safe("".join(parts))  # noqa: S308 - every label is escaped above
