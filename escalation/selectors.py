"""Reads of city escalation, always scoped to the user's municipalities."""

from __future__ import annotations

import datetime
from dataclasses import dataclass
from typing import Any

from django.db.models import Avg, Count, F, Q, QuerySet
from django.utils import timezone

from escalation.models import CityInstruction, Escalation, EscalationNotification, EscalationRule

Status = Escalation.Status


def escalations_visible(user: Any) -> QuerySet[Escalation]:
    return Escalation.objects.visible_to(user).select_related(
        "municipality", "rule", "inquiry", "acknowledged_by"
    )


def month_bounds(month: str) -> tuple[datetime.datetime, datetime.datetime] | None:
    """'2026-11' → [Nov 1, Dec 1) in Asia/Tokyo; None when not a month."""
    try:
        year, mon = (int(x) for x in month.split("-", 1))
        start = datetime.datetime(year, mon, 1, tzinfo=timezone.get_current_timezone())
    except (ValueError, TypeError):
        return None
    end = datetime.datetime(
        year + (mon == 12), 1 if mon == 12 else mon + 1, 1, tzinfo=timezone.get_current_timezone()
    )
    return start, end


def escalation_list(
    user: Any,
    *,
    state: str = "",
    municipality_id: int | None = None,
    rule_id: int | None = None,
    month: str = "",
) -> QuerySet[Escalation]:
    """The escalations the user may see, filtered; the page orders them (keyset by opened_at)."""
    qs = escalations_visible(user)
    if state == "waiting":
        qs = qs.filter(status=Status.OPEN)
    elif state in (Status.ACKNOWLEDGED, Status.CLOSED):
        qs = qs.filter(status=state)
    elif state == "active":
        qs = qs.exclude(status=Status.CLOSED)
    if municipality_id:
        qs = qs.filter(municipality_id=municipality_id)
    if rule_id:
        qs = qs.filter(rule_id=rule_id)
    bounds = month_bounds(month) if month else None
    if bounds:
        qs = qs.filter(opened_at__gte=bounds[0], opened_at__lt=bounds[1])
    return qs


def escalations_for_inquiry(user: Any, inquiry_id: int) -> list[Escalation]:
    rows = list(
        escalations_visible(user)
        .filter(Q(inquiry_id=inquiry_id) | Q(related_inquiries__pk=inquiry_id))
        .distinct()
        .order_by("-opened_at")
    )
    instructions: dict[int, list[CityInstruction]] = {}
    for instruction in (
        CityInstruction.objects.visible_to(user)
        .filter(escalation__in=rows)
        .select_related("author")
    ):
        instructions.setdefault(instruction.escalation_id, []).append(instruction)
    for row in rows:
        row.instruction_list = instructions.get(row.pk, [])
    return rows


def notifications_of(user: Any, escalation: Escalation) -> QuerySet[EscalationNotification]:
    return EscalationNotification.objects.visible_to(user).filter(escalation=escalation)


def rules_visible(user: Any) -> QuerySet[EscalationRule]:
    return EscalationRule.objects.visible_to(user).select_related("municipality")


@dataclass(frozen=True)
class Figures:
    """A month's escalations of one municipality, for the monthly report."""

    opened: int
    acknowledged: int
    closed: int
    still_open: int
    avg_minutes_to_notify: float | None
    avg_minutes_to_acknowledge: float | None
    by_kind: dict[str, int]


def escalation_figures(*, municipality_id: int, month: str) -> Figures:
    """Time to notify, time to acknowledge and outcomes of the escalations opened in ``month``."""
    bounds = month_bounds(month)
    if bounds is None:
        raise ValueError(f"not a month: {month!r}")
    qs = Escalation.objects.filter(
        municipality_id=municipality_id, opened_at__gte=bounds[0], opened_at__lt=bounds[1]
    )
    totals = qs.aggregate(
        opened=Count("pk"),
        acknowledged=Count("pk", filter=Q(acknowledged_at__isnull=False)),
        closed=Count("pk", filter=Q(status=Status.CLOSED)),
        still_open=Count("pk", filter=Q(status=Status.OPEN)),
        notify=Avg(F("first_notified_at") - F("opened_at")),
        acknowledge=Avg(F("acknowledged_at") - F("opened_at")),
    )
    by_kind = dict(qs.values_list("kind").annotate(n=Count("pk")).values_list("kind", "n"))

    def minutes(value: datetime.timedelta | None) -> float | None:
        return round(value.total_seconds() / 60, 1) if value is not None else None

    return Figures(
        opened=totals["opened"],
        acknowledged=totals["acknowledged"],
        closed=totals["closed"],
        still_open=totals["still_open"],
        avg_minutes_to_notify=minutes(totals["notify"]),
        avg_minutes_to_acknowledge=minutes(totals["acknowledge"]),
        by_kind=by_kind,
    )


def console_alerts(user: Any, *, limit: int = 10) -> list[Escalation]:
    """Open complaint clusters and escalations still waiting for the city, oldest first."""
    return list(
        escalations_visible(user)
        .filter(Q(status=Status.OPEN) | Q(kind="cluster", status=Status.ACKNOWLEDGED))
        .order_by("opened_at")[:limit]
    )
