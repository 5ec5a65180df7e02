"""Reads of city escalation, always scoped to the user's municipalities."""

from __future__ import annotations

import datetime
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from django.db import connection
from django.db.models import Q, QuerySet
from django.utils import timezone

from escalation.models import (
    CityInstruction,
    Escalation,
    EscalationNotification,
    EscalationRule,
    Kind,
)
from tickets.models import Category, Inquiry, Severity

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
    """A month's escalations of one municipality, for the monthly report.

    Escalations opened in the month (Asia/Tokyo). Times run from opening to the first
    notification sent and to the city's acknowledgement, in minutes; p50/p90 are continuous
    percentiles over the escalations that reached that point. ``unacknowledged``: not
    acknowledged by the month's end (a snapshot that does not change when regenerated later)."""

    opened: int
    acknowledged: int
    closed: int
    still_open: int
    avg_minutes_to_notify: float | None
    avg_minutes_to_acknowledge: float | None
    by_kind: dict[str, int]
    urgent: int = 0
    unacknowledged: int = 0
    notify_p50: float | None = None
    notify_p90: float | None = None
    acknowledge_p50: float | None = None
    acknowledge_p90: float | None = None
    # Rows of {"code", "label", "count"}, largest first.
    kinds: list[dict[str, Any]] = field(default_factory=list)
    categories: list[dict[str, Any]] = field(default_factory=list)
    severities: list[dict[str, Any]] = field(default_factory=list)
    # Notification attempts by channel: {"code", "label", "attempts", "sent", "failed"}.
    channels: list[dict[str, Any]] = field(default_factory=list)


_FIGURES_SQL = """
SELECT count(*),
    count(*) FILTER (WHERE e.acknowledged_at IS NOT NULL),
    count(*) FILTER (WHERE e.status = 'closed'),
    count(*) FILTER (WHERE e.status = 'open'),
    avg(extract(epoch FROM e.first_notified_at - e.opened_at)) / 60,
    avg(extract(epoch FROM e.acknowledged_at - e.opened_at)) / 60,
    count(*) FILTER (WHERE e.urgent),
    count(*) FILTER (WHERE e.acknowledged_at IS NULL OR e.acknowledged_at >= %(end)s),
    percentile_cont(0.5) WITHIN GROUP (ORDER BY extract(epoch FROM e.first_notified_at - e.opened_at)) / 60,
    percentile_cont(0.9) WITHIN GROUP (ORDER BY extract(epoch FROM e.first_notified_at - e.opened_at)) / 60,
    percentile_cont(0.5) WITHIN GROUP (ORDER BY extract(epoch FROM e.acknowledged_at - e.opened_at)) / 60,
    percentile_cont(0.9) WITHIN GROUP (ORDER BY extract(epoch FROM e.acknowledged_at - e.opened_at)) / 60
FROM {escalation} e
WHERE e.municipality_id = %(m)s AND e.opened_at >= %(start)s AND e.opened_at < %(end)s
"""

# Category and severity are the escalated ticket's; a cluster or a question may have none.
_BREAKDOWN_SQL = """
SELECT e.kind, c.code, c.name, i.severity, count(*)
FROM {escalation} e
LEFT JOIN {inquiry} i ON i.{inquiry_pk} = e.inquiry_id
LEFT JOIN {category} c ON c.id = i.category_id
WHERE e.municipality_id = %(m)s AND e.opened_at >= %(start)s AND e.opened_at < %(end)s
GROUP BY 1, 2, 3, 4
"""

_CHANNELS_SQL = """
SELECT n.channel, count(*), count(*) FILTER (WHERE n.status = 'sent'),
    count(*) FILTER (WHERE n.status IN ('failed', 'unknown'))
FROM {notification} n JOIN {escalation} e ON e.id = n.escalation_id
WHERE e.municipality_id = %(m)s AND e.opened_at >= %(start)s AND e.opened_at < %(end)s
GROUP BY 1
"""

NO_TICKET = "（問合せなし）"


def escalation_figures(*, municipality_id: int, month: str) -> Figures:
    """Counts, times to notify and to acknowledge (mean, p50, p90), and breakdowns by kind,
    category, severity and notification channel of the escalations opened in ``month``."""
    bounds = month_bounds(month)
    if bounds is None:
        raise ValueError(f"not a month: {month!r}")
    tables = {
        "escalation": Escalation._meta.db_table,
        "notification": EscalationNotification._meta.db_table,
        "inquiry": Inquiry._meta.db_table,
        "inquiry_pk": Inquiry._meta.pk.column,
        "category": Category._meta.db_table,
    }
    params = {"m": municipality_id, "start": bounds[0], "end": bounds[1]}
    with connection.cursor() as cursor:
        cursor.execute(_FIGURES_SQL.format(**tables), params)
        totals = cursor.fetchone()
        cursor.execute(_BREAKDOWN_SQL.format(**tables), params)
        breakdown = cursor.fetchall()
        cursor.execute(_CHANNELS_SQL.format(**tables), params)
        channels = cursor.fetchall()

    kinds: Counter[str] = Counter()
    categories: Counter[tuple[str, str]] = Counter()
    severities: Counter[str] = Counter()
    for kind, category_code, category_name, severity, n in breakdown:
        kinds[kind] += n
        categories[(category_code or "", category_name or NO_TICKET)] += n
        severities[severity or ""] += n
    kind_labels = dict(Kind.choices)
    severity_labels = dict(Severity.choices)
    channel_labels = dict(EscalationNotification.Channel.choices)

    def minutes(value: Any) -> float | None:
        return round(float(value), 1) if value is not None else None

    return Figures(
        opened=totals[0],
        acknowledged=totals[1],
        closed=totals[2],
        still_open=totals[3],
        avg_minutes_to_notify=minutes(totals[4]),
        avg_minutes_to_acknowledge=minutes(totals[5]),
        by_kind=dict(kinds),
        urgent=totals[6],
        unacknowledged=totals[7],
        notify_p50=minutes(totals[8]),
        notify_p90=minutes(totals[9]),
        acknowledge_p50=minutes(totals[10]),
        acknowledge_p90=minutes(totals[11]),
        kinds=[
            {"code": k, "label": kind_labels.get(k, k), "count": n} for k, n in kinds.most_common()
        ],
        categories=[
            {"code": code, "label": label, "count": n}
            for (code, label), n in categories.most_common()
        ],
        severities=[
            {"code": sev, "label": severity_labels.get(sev, NO_TICKET), "count": severities[sev]}
            for sev in [*(c for c, _ in reversed(Severity.choices)), ""]
            if severities[sev]
        ],
        channels=[
            {
                "code": code,
                "label": channel_labels.get(code, code),
                "attempts": attempts,
                "sent": sent,
                "failed": failed,
            }
            for code, attempts, sent, failed in sorted(channels)
        ],
    )


def console_alerts(user: Any, *, limit: int = 10) -> list[Escalation]:
    """Open complaint clusters and escalations still waiting for the city, oldest first."""
    return list(
        escalations_visible(user)
        .filter(Q(status=Status.OPEN) | Q(kind="cluster", status=Status.ACKNOWLEDGED))
        .order_by("opened_at")[:limit]
    )
