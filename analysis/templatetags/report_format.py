"""Figures of the monthly report as the city reads them: 1,234件, 3.5時間, 12.3%, ＋5."""

from __future__ import annotations

from django import template

register = template.Library()

DASH = "—"


@register.filter
def num(value: float | int | None) -> str:
    if value is None:
        return DASH
    if isinstance(value, float) and not value.is_integer():
        return f"{value:,.1f}"
    return f"{int(value):,}"


@register.filter
def hours(seconds: float | None) -> str:
    if seconds is None:
        return DASH
    return f"{seconds / 3600:,.1f}時間"


@register.filter
def pct(value: float | None) -> str:
    return DASH if value is None else f"{value:.1f}%"


@register.filter
def signed_pct(value: float | None) -> str:
    if value is None:
        return DASH
    return f"{'+' if value > 0 else ''}{value:.1f}%"


@register.filter
def seconds(value: float | None) -> str:
    return DASH if value is None else f"{value:,.0f}秒"
