"""Audit/timeline rows: one helpdesk FollowUp (+ TicketChange rows) and one InquiryEvent each.

helpdesk's own ``update_ticket`` e-mails submitters, CCs and assignees and several of its write
paths leave no FollowUp at all; our services write through here instead, so every change is
audited and nothing is mailed except what the mail app sends on ``inquiry_replied``.
"""

from __future__ import annotations

import datetime
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from django.utils import timezone
from helpdesk.models import FollowUp, Ticket, TicketChange

from tickets.models import Inquiry, InquiryEvent
from tickets.search import normalize_for_search

if TYPE_CHECKING:
    from crm.models import User

# (field, old value, new value) as shown in the timeline.
Change = tuple[str, str, str]

Kind = InquiryEvent.Kind


@dataclass
class Entry:
    """One timeline entry; the caller has already changed the ticket/inquiry rows."""

    inquiry: Inquiry
    actor: User | None
    kind: str
    title: str
    comment: str = ""
    public: bool = False
    operator_only: bool = False
    changes: Iterable[Change] = ()
    new_status: int | None = None
    channel: str = ""
    sender: str = ""
    message_id: str | None = None


def record(**fields: Any) -> FollowUp:
    """Write one timeline entry (``fields`` are those of ``Entry``)."""
    return record_many([Entry(**fields)])[0]


def record_many(entries: Sequence[Entry]) -> list[FollowUp]:
    """Write timeline entries, a statement per table rather than per entry (mail intake adds a
    batch of replies at a time). Entries for one inquiry are applied in order."""
    now = timezone.now()
    followups = _insert_rows(entries, at=now)
    # What helpdesk's FollowUp.save() would do per entry (save the whole ticket to bump
    # ``modified``), in one statement. It is the only write helpdesk gets, and it sends nothing.
    Ticket.objects.filter(pk__in={e.inquiry.ticket_id for e in entries}).update(modified=now)
    touched: dict[int, tuple[Inquiry, set[str]]] = {}
    for e in entries:
        inquiry, fields = touched.setdefault(e.inquiry.pk, (e.inquiry, {"last_activity_at"}))
        inquiry.last_activity_at = now
        if e.comment:
            # Keep the search text in step with what was written, split by who may read it.
            if e.operator_only:
                inquiry.search_text_internal = _append(inquiry.search_text_internal, e.comment)
                fields.add("search_text_internal")
            else:
                inquiry.search_text = _append(inquiry.search_text, e.comment)
                fields.add("search_text")
        if e.inquiry is not inquiry:  # the caller's copy sees the same values
            for field in fields:
                setattr(e.inquiry, field, getattr(inquiry, field))
    # Inquiries whose only change is their activity time share one statement (a beat writing
    # entries on many tickets); those whose search text grew are written one by one.
    activity_only = [i.pk for i, fields in touched.values() if fields == {"last_activity_at"}]
    if activity_only:
        Inquiry.objects.filter(pk__in=activity_only).update(last_activity_at=now)
    for inquiry, fields in touched.values():
        if fields != {"last_activity_at"}:
            Inquiry.objects.filter(pk=inquiry.pk).update(**{f: getattr(inquiry, f) for f in fields})
    return followups


def record_opened(*, inquiries: Sequence[Inquiry], actor: User | None) -> None:
    """The 受付 entry of inquiries inserted just now, in bulk.

    Their ticket and inquiry rows already carry the opening time and search text, so unlike
    ``record`` nothing is saved again (``FollowUp.save()`` would re-save each ticket).
    """
    entries = [
        Entry(
            inquiry=inquiry,
            actor=actor,
            kind=Kind.OPENED,
            title="受付",
            channel=inquiry.channel,
            new_status=inquiry.status,
        )
        for inquiry in inquiries
    ]
    if entries:  # opened together, so they share one opening time
        _insert_rows(entries, at=inquiries[0].created_at)


def _insert_rows(entries: Sequence[Entry], *, at: datetime.datetime) -> list[FollowUp]:
    """The FollowUp, TicketChange and InquiryEvent rows of the entries, a statement per table."""
    followups = FollowUp.objects.bulk_create(
        FollowUp(
            ticket=e.inquiry.ticket,
            date=at,
            title=e.title[:200],
            comment=e.comment,
            public=e.public,
            user=e.actor,
            new_status=e.new_status,
            message_id=e.message_id,
        )
        for e in entries
    )
    TicketChange.objects.bulk_create(
        TicketChange(followup=followup, field=field, old_value=old, new_value=new)
        for followup, e in zip(followups, entries, strict=True)
        for field, old, new in e.changes
    )
    InquiryEvent.objects.bulk_create(
        InquiryEvent(
            followup=followup,
            inquiry=e.inquiry,
            municipality_id=e.inquiry.municipality_id,
            kind=e.kind,
            operator_only=e.operator_only,
            channel=e.channel,
            sender=e.sender[:254],
            actor=e.actor,
            at=at,
        )
        for followup, e in zip(followups, entries, strict=True)
    )
    return followups


def _append(existing: str, text: str) -> str:
    added = normalize_for_search(text)
    return f"{existing}\n{added}" if existing else added
