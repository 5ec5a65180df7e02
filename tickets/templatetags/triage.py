"""The ticket list's clocks: how old a ticket is and how long until (or since) its due time."""

from __future__ import annotations

import datetime

from django import template
from django.utils import timezone

register = template.Library()


def _span(delta: datetime.timedelta) -> str:
    minutes = int(abs(delta).total_seconds() // 60)
    days, minutes = divmod(minutes, 24 * 60)
    hours, minutes = divmod(minutes, 60)
    if days:
        return f"{days}日{hours}時間"
    if hours:
        return f"{hours}時間{minutes}分"
    return f"{minutes}分"


@register.filter
def elapsed(value: datetime.datetime | None) -> str:
    """経過: 2日3時間."""
    if not value:
        return ""
    return _span(timezone.now() - value)


@register.filter
def is_past(value: datetime.datetime | None) -> bool:
    return bool(value) and value < timezone.now()


@register.filter
def remaining(value: datetime.datetime | None) -> str:
    """あと3時間10分, or 1日2時間超過."""
    if not value:
        return ""
    delta = value - timezone.now()
    if delta.total_seconds() < 0:
        return f"{_span(delta)}超過"
    return f"あと{_span(delta)}"


@register.simple_tag(takes_context=True)
def municipality_providers(context, inquiry) -> list:
    """The providers a ticket may be linked to: its municipality's, as the user sees them."""
    from crm.models import Provider

    user = context["request"].user
    return list(
        Provider.objects.visible_to(user)
        .filter(municipality_id=inquiry.municipality_id)
        .order_by("name")[:500]
    )
