"""Japanese display formats: 2024年12月16日(月) 10:15, ¥10,000, 090-1234-5678, 123-4567."""

from __future__ import annotations

import datetime

from django import template
from django.utils import timezone

from crm import normalize

register = template.Library()

_WEEKDAYS = "月火水木金土日"


@register.filter
def ja_date(value: datetime.date | datetime.datetime | None) -> str:
    if not value:
        return ""
    if isinstance(value, datetime.datetime):
        value = timezone.localtime(value).date()
    return f"{value.year}年{value.month}月{value.day}日({_WEEKDAYS[value.weekday()]})"


@register.filter
def ja_datetime(value: datetime.datetime | None) -> str:
    if not value:
        return ""
    local = timezone.localtime(value)
    return f"{ja_date(local)} {local:%H:%M}"


@register.filter
def md(value: datetime.date | None) -> str:
    """12/20 style for dense rows."""
    if not value:
        return ""
    return f"{value.month}/{value.day}"


@register.filter
def yen(value: int | None) -> str:
    if value is None:
        return ""
    return f"¥{int(value):,}"


@register.filter
def phone(value: str | None) -> str:
    return normalize.format_phone_national(value)


@register.filter
def postal(value: str | None) -> str:
    return normalize.format_postal_code(value or "")


@register.filter
def tracking(value: str | None) -> str:
    return normalize.format_tracking_number(value or "")
