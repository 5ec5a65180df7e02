"""Reads for the supervisor's mail pages, always narrowed by the access policy."""

from __future__ import annotations

from django.db.models import Q, QuerySet

from crm.access import is_operator_admin
from crm.models import User
from tickets.mail.models import (
    FlaggedAddress,
    InboundAttachment,
    InboundMessage,
    OutboundMessage,
)
from tickets.models import Channel, Inquiry


def inbound_visible_to(user: User) -> QuerySet[InboundMessage]:
    """Mail of the user's municipalities; unroutable mail (no municipality) only for admins."""
    qs = InboundMessage.objects.visible_to(user)
    if is_operator_admin(user):
        qs = InboundMessage.objects.filter(Q(pk__in=qs.values("pk")) | Q(municipality__isnull=True))
    return qs


def quarantined(user: User) -> QuerySet[InboundMessage]:
    return (
        inbound_visible_to(user)
        .filter(status=InboundMessage.Status.QUARANTINED)
        .select_related("municipality")
        .defer("raw")
        .order_by("-received_at", "-id")
    )


def outbound_problems(user: User) -> QuerySet[OutboundMessage]:
    return (
        OutboundMessage.objects.visible_to(user)
        .filter(
            Q(
                status__in=[
                    OutboundMessage.Status.FAILED,
                    OutboundMessage.Status.RETRYING,
                    OutboundMessage.Status.UNKNOWN,
                ]
            )
            | Q(bounced_at__isnull=False)
        )
        .select_related("municipality")
        .order_by("-created_at")
    )


def attachments_for_inquiry(user: User, inquiry_id: int) -> QuerySet[InboundAttachment]:
    """For the ticket timeline: the mail attachments of one ticket the user may see."""
    return (
        InboundAttachment.objects.visible_to(user)
        .filter(inquiry_id=inquiry_id)
        .defer("data")
        .order_by("id")
    )


def bounced_addresses(
    user: User, municipality_id: int, addresses: list[str]
) -> dict[str, FlaggedAddress]:
    """Which of these addresses our mail of this municipality bounced from (address → flag)."""
    wanted = {a.lower() for a in addresses if a}
    if not wanted:
        return {}
    flags = FlaggedAddress.objects.visible_to(user).filter(
        municipality_id=municipality_id, address__in=wanted
    )
    return {flag.address: flag for flag in flags}


def reply_recipient(inquiry: Inquiry) -> str:
    """The address a public reply on this ticket is mailed to; "" when replies are not mailed.

    Phone, FAX and letter tickets are answered by their own channel unless the requester has
    written to us by mail (a mail thread exists); a ticket without any address mails nothing.
    """
    thread = getattr(inquiry, "mail_thread", None)
    if inquiry.channel != Channel.EMAIL and thread is None:
        return ""
    return (thread.requester_address if thread else "") or inquiry.ticket.submitter_email or ""


def reply_deliveries(user: User, inquiry_id: int) -> dict[int, OutboundMessage]:
    """For the ticket timeline: the mail of each reply (follow-up id → its latest mail)."""
    rows = (
        OutboundMessage.objects.visible_to(user)
        .filter(inquiry_id=inquiry_id, kind=OutboundMessage.Kind.REPLY, followup_id__isnull=False)
        .defer("body")
        .order_by("created_at", "id")
    )
    return {row.followup_id: row for row in rows}
