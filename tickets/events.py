"""Audit/timeline rows: one helpdesk FollowUp (+ TicketChange rows) and one InquiryEvent each.

helpdesk's own ``update_ticket`` e-mails submitters, CCs and assignees and several of its write
paths leave no FollowUp at all; our services write through here instead, so every change is
audited and nothing is mailed except what the mail app sends on ``inquiry_replied``.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING

from django.utils import timezone
from helpdesk.models import FollowUp, TicketChange

from tickets.models import Inquiry, InquiryEvent
from tickets.search import normalize_for_search

if TYPE_CHECKING:
    from crm.models import User

# (field, old value, new value) as shown in the timeline.
Change = tuple[str, str, str]

Kind = InquiryEvent.Kind


def record(
    *,
    inquiry: Inquiry,
    actor: User | None,
    kind: str,
    title: str,
    comment: str = "",
    public: bool = False,
    operator_only: bool = False,
    changes: Iterable[Change] = (),
    new_status: int | None = None,
    channel: str = "",
    sender: str = "",
    message_id: str | None = None,
) -> FollowUp:
    """Write one timeline entry; the caller has already changed the ticket/inquiry rows."""
    now = timezone.now()
    followup = FollowUp(
        ticket=inquiry.ticket,
        date=now,
        title=title[:200],
        comment=comment,
        public=public,
        user=actor,
        new_status=new_status,
        message_id=message_id,
    )
    # FollowUp.save() also saves the ticket (to bump ``modified``); that is the only save
    # helpdesk gets from us, and it sends nothing.
    followup.save()
    TicketChange.objects.bulk_create(
        TicketChange(followup=followup, field=field, old_value=old, new_value=new)
        for field, old, new in changes
    )
    InquiryEvent.objects.create(
        followup=followup,
        inquiry=inquiry,
        municipality_id=inquiry.municipality_id,
        kind=kind,
        operator_only=operator_only,
        channel=channel,
        sender=sender[:254],
        actor=actor,
        at=now,
    )
    fields = ["last_activity_at"]
    inquiry.last_activity_at = now
    if comment:
        # Keep the search text in step with what was written, split by who may read it.
        if operator_only:
            inquiry.search_text_internal = _append(inquiry.search_text_internal, comment)
            fields.append("search_text_internal")
        else:
            inquiry.search_text = _append(inquiry.search_text, comment)
            fields.append("search_text")
    inquiry.save(update_fields=fields)
    return followup


def record_opened(*, inquiries: Sequence[Inquiry], actor: User | None) -> None:
    """The 受付 entry of inquiries inserted just now, in bulk.

    Their ticket and inquiry rows already carry the opening time and search text, so unlike
    ``record`` nothing is saved again (``FollowUp.save()`` would re-save each ticket).
    """
    followups = FollowUp.objects.bulk_create(
        FollowUp(
            ticket=inquiry.ticket,
            date=inquiry.created_at,
            title="受付",
            public=False,
            user=actor,
            new_status=inquiry.status,
        )
        for inquiry in inquiries
    )
    InquiryEvent.objects.bulk_create(
        InquiryEvent(
            followup=followup,
            inquiry=inquiry,
            municipality_id=inquiry.municipality_id,
            kind=Kind.OPENED,
            channel=inquiry.channel,
            actor=actor,
            at=inquiry.created_at,
        )
        for followup, inquiry in zip(followups, inquiries, strict=True)
    )


def _append(existing: str, text: str) -> str:
    added = normalize_for_search(text)
    return f"{existing}\n{added}" if existing else added
