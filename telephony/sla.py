"""Service-level due times: tickets' targets are in business minutes, and the business hours
(weekly hours, national holidays, the municipality's exceptions) are telephony's calendar, so
the due times are computed here, when tickets announces an opening or a new category."""

from __future__ import annotations

from collections.abc import Collection

from telephony.calendar import BusinessCalendar
from tickets import selectors as ticket_selectors
from tickets import services as ticket_services


def inquiry_due_times_refresh(*, inquiry_ids: Collection[int]) -> None:
    inputs = ticket_selectors.sla_inputs(inquiry_ids)
    calendars: dict[int, BusinessCalendar] = {}
    due = {}
    for row in inputs:
        calendar = calendars.get(row.municipality_id)
        if calendar is None:
            calendar = calendars[row.municipality_id] = BusinessCalendar.for_municipality(
                row.municipality_id
            )
        due[row.inquiry_id] = tuple(
            calendar.add_business_minutes(row.created_at, minutes) if minutes is not None else None
            for minutes in (row.first_response_minutes, row.resolution_minutes)
        )
    if due:
        ticket_services.inquiries_set_due_times(due=due)


def on_inquiries_opened(sender, inquiry_ids, **kwargs) -> None:
    inquiry_due_times_refresh(inquiry_ids=inquiry_ids)


def on_inquiry_reclassified(sender, inquiry_id, field, **kwargs) -> None:
    if field == "category":
        inquiry_due_times_refresh(inquiry_ids=[inquiry_id])
