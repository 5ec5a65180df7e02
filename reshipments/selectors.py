"""Reads of re-shipments and returned mail, always scoped to what the user may see."""

from __future__ import annotations

import datetime
from dataclasses import dataclass, field
from typing import Any

from django.db import models
from django.db.models import Count, F, Prefetch, QuerySet, Sum
from django.utils import timezone

from crm.access import is_city_official, is_supervisor
from crm.models import DonorPhone
from reshipments.models import CallbackAttempt, Reshipment, ReturnedItem
from reshipments.rules import Fault, Reason

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
class ReshipmentRow:
    """One reason or one fault party of the month: how many, what they cost (gift + shipping)
    and how many of them (and what cost) the city pays for."""

    code: str
    label: str
    count: int = 0
    cost: int = 0
    billable_count: int = 0
    billable_cost: int = 0


@dataclass
class ReshipmentFigures:
    count: int = 0
    by_reason: dict[str, int] = field(default_factory=dict)
    by_fault: dict[str, int] = field(default_factory=dict)
    billable_count: int = 0
    billable_cost: int = 0
    non_billable_count: int = 0
    non_billable_cost: int = 0
    # Rows in the order of the model's choices; only reasons/faults that occurred.
    reason_rows: list[ReshipmentRow] = field(default_factory=list)
    fault_rows: list[ReshipmentRow] = field(default_factory=list)

    @property
    def cost(self) -> int:
        return self.billable_cost + self.non_billable_cost


# Re-shipments that went ahead: approved by everyone needed, whatever the core did next.
_COUNTED = (Status.APPROVED, Status.ACCEPTED, Status.SHIPPED, Status.DELIVERED, Status.CORE_REFUSED)


def _rows(
    choices: type[models.TextChoices], cells: dict[str, ReshipmentRow]
) -> list[ReshipmentRow]:
    return [cells[code] for code in choices.values if code in cells]


def reshipment_figures(*, municipality_id: int, month: str) -> ReshipmentFigures:
    """The re-shipments of one municipality approved in ``month`` (Asia/Tokyo, "YYYY-MM"):
    count, cost (gift + shipping) and billable count/cost per reason and per fault party, and
    the month's totals billable to the city and not. One grouped query (reason × fault ×
    billable); the rows and totals are folded from its few cells.
    A re-shipment the core refused was decided and is counted; its cost is what was approved."""
    bounds = month_bounds(month)
    if bounds is None:
        raise ValueError(f"not a month: {month!r}")
    cells = (
        Reshipment.objects.filter(
            municipality_id=municipality_id,
            approved_at__gte=bounds[0],
            approved_at__lt=bounds[1],
            status__in=_COUNTED,
        )
        .order_by()
        .values("reason", "fault", "billable_to_city")
        .annotate(
            n=Count("pk"),
            cost=Sum(F("gift_cost") + F("shipping_cost"), default=0),
        )
    )
    reasons = dict(Reason.choices)
    faults = dict(Fault.choices)
    by_reason: dict[str, ReshipmentRow] = {}
    by_fault: dict[str, ReshipmentRow] = {}
    figures = ReshipmentFigures()
    for cell in cells:
        billable = cell["billable_to_city"]
        for rows, code, labels in (
            (by_reason, cell["reason"], reasons),
            (by_fault, cell["fault"], faults),
        ):
            row = rows.setdefault(code, ReshipmentRow(code=code, label=labels.get(code, code)))
            row.count += cell["n"]
            row.cost += cell["cost"]
            if billable:
                row.billable_count += cell["n"]
                row.billable_cost += cell["cost"]
        figures.count += cell["n"]
        if billable:
            figures.billable_count += cell["n"]
            figures.billable_cost += cell["cost"]
        else:
            figures.non_billable_count += cell["n"]
            figures.non_billable_cost += cell["cost"]
    figures.reason_rows = _rows(Reason, by_reason)
    figures.fault_rows = _rows(Fault, by_fault)
    figures.by_reason = {r.code: r.count for r in figures.reason_rows}
    figures.by_fault = {r.code: r.count for r in figures.fault_rows}
    return figures
