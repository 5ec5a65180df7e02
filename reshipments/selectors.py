"""Reads of re-shipments and returned mail, always scoped to what the user may see."""

from __future__ import annotations

import datetime
from dataclasses import dataclass, field
from typing import Any

from django.db.models import Count, Prefetch, Q, QuerySet, Sum
from django.utils import timezone

from crm.access import is_city_official, is_supervisor
from crm.models import DonorPhone
from reshipments.models import CallbackAttempt, Reshipment, ReturnedItem

Status = Reshipment.Status


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


def _with_records(qs: QuerySet[Reshipment]) -> QuerySet[Reshipment]:
    return qs.select_related(
        "municipality",
        "inquiry__ticket",
        "original__gift_item",
        "original__donation__donor",
        "replacement__carrier",
        "replacement__gift_item",
        "gift_item",
        "requested_by",
    )


def reshipment_list(user: Any, *, state: str = "") -> QuerySet[Reshipment]:
    """The re-shipments the user may see. ``state``: "mine" (waiting for this user's
    decision), "pending", "done" or "" (all)."""
    qs = Reshipment.objects.visible_to(user)
    if state == "mine":
        qs = qs.filter(status__in=awaiting_statuses(user))
    elif state == "pending":
        qs = qs.filter(status__in=Reshipment.PENDING)
    elif state == "done":
        qs = qs.exclude(status__in=Reshipment.PENDING)
    return _with_records(qs).order_by("-requested_at", "-id")


def awaiting_statuses(user: Any) -> list[str]:
    """The step at which this user decides: supervisors first, then the city."""
    if is_city_official(user):
        return [Status.CITY_PENDING]
    if is_supervisor(user):
        return [Status.SUPERVISOR_PENDING]
    return []


def awaiting_count(user: Any) -> int:
    statuses = awaiting_statuses(user)
    if not statuses:
        return 0
    return Reshipment.objects.visible_to(user).filter(status__in=statuses).count()


def reshipments_of_inquiry(user: Any, inquiry_id: int) -> list[Reshipment]:
    return list(
        _with_records(Reshipment.objects.visible_to(user).filter(inquiry_id=inquiry_id)).order_by(
            "requested_at", "id"
        )
    )


def open_reshipment_of_shipment(user: Any, shipment_id: int) -> Reshipment | None:
    return (
        Reshipment.objects.visible_to(user)
        .filter(original_id=shipment_id, status__in=Reshipment.PENDING)
        .first()
    )


def returned_worklist(user: Any, *, state: str = "open") -> QuerySet[ReturnedItem]:
    """The call-back tasks for returned mail, each with the donor's phones and the attempts."""
    qs = ReturnedItem.objects.visible_to(user)
    if state == "open":
        qs = qs.filter(status=ReturnedItem.Status.OPEN)
    elif state == "done":
        qs = qs.exclude(status=ReturnedItem.Status.OPEN)
    return (
        qs.select_related("municipality", "donor", "donation", "shipment__gift_item", "reshipment")
        .prefetch_related(
            Prefetch("donor__phones", queryset=DonorPhone.objects.order_by("id")),
            Prefetch("attempts", queryset=CallbackAttempt.objects.select_related("by")),
        )
        .annotate(attempt_count=Count("attempts"))
        .order_by("created_at", "id")
    )


# --- figures for the monthly analysis ---------------------------------------------------------


@dataclass
class ReshipmentFigures:
    count: int = 0
    by_reason: dict[str, int] = field(default_factory=dict)
    by_fault: dict[str, int] = field(default_factory=dict)
    billable_count: int = 0
    billable_cost: int = 0
    non_billable_count: int = 0
    non_billable_cost: int = 0


# Re-shipments that went ahead: approved by everyone needed, whatever the core did next.
_COUNTED = (Status.APPROVED, Status.ACCEPTED, Status.SHIPPED, Status.DELIVERED, Status.CORE_REFUSED)


def reshipment_figures(*, municipality_id: int, month: str) -> ReshipmentFigures:
    """The re-shipments of one municipality approved in ``month`` (Asia/Tokyo, "YYYY-MM"):
    counts by reason and by fault, and the cost (gift + shipping) billable to the city and not.
    A re-shipment the core refused was decided and is counted; its cost is what was approved."""
    bounds = month_bounds(month)
    if bounds is None:
        raise ValueError(f"not a month: {month!r}")
    qs = Reshipment.objects.filter(
        municipality_id=municipality_id,
        approved_at__gte=bounds[0],
        approved_at__lt=bounds[1],
        status__in=_COUNTED,
    )
    billable = Q(billable_to_city=True)
    totals = qs.aggregate(
        count=Count("pk"),
        billable_count=Count("pk", filter=billable),
        billable_gift=Sum("gift_cost", filter=billable, default=0),
        billable_shipping=Sum("shipping_cost", filter=billable, default=0),
        other_gift=Sum("gift_cost", filter=~billable, default=0),
        other_shipping=Sum("shipping_cost", filter=~billable, default=0),
    )

    def counts(column: str) -> dict[str, int]:
        return dict(qs.order_by().values_list(column).annotate(n=Count("pk")))

    return ReshipmentFigures(
        count=totals["count"],
        by_reason=counts("reason"),
        by_fault=counts("fault"),
        billable_count=totals["billable_count"],
        billable_cost=totals["billable_gift"] + totals["billable_shipping"],
        non_billable_count=totals["count"] - totals["billable_count"],
        non_billable_cost=totals["other_gift"] + totals["other_shipping"],
    )
