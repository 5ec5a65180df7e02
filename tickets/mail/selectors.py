"""Reads of the mail app.

The supervisor's pages read through the access policy (the ``user`` argument); intake and sending
read on behalf of the system (a message already routed to its municipality, a queued mail).
"""

from __future__ import annotations

import datetime
from collections import Counter
from collections.abc import Collection

from django.conf import settings
from django.db.models import Count, Q, QuerySet
from django.db.models.functions import Now
from django.utils import timezone

from crm.access import is_operator_admin
from crm.models import MunicipalityEmailAddress, User
from tickets import memo
from tickets.mail.models import (
    FlaggedAddress,
    InboundAttachment,
    InboundMessage,
    Mailbox,
    MunicipalityMailSettings,
    OutboundMessage,
    TriageRule,
)
from tickets.models import Channel, Inquiry

# Mail that counts towards a sender's hourly limit, and mail whose Message-ID makes a later copy
# a duplicate.
COUNTED_STATUSES = [InboundMessage.Status.PROCESSED, InboundMessage.Status.QUARANTINED]
HANDLED_STATUSES = [
    InboundMessage.Status.PROCESSED,
    InboundMessage.Status.AUTO_REPLY,
    InboundMessage.Status.BOUNCE,
]


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


# --- Intake ---------------------------------------------------------------------------------


def inbound_addresses(bases: tuple[str, ...]) -> list[MunicipalityEmailAddress]:
    """Our registered inbound addresses among these (normalised, plus-part stripped), in order."""

    def read() -> list[MunicipalityEmailAddress]:
        rows = MunicipalityEmailAddress.objects.filter(address__in=bases).select_related(
            "municipality", "mailbox"
        )
        found = {a.address: a for a in rows}
        return [found[b] for b in bases if b in found]

    return memo.remembered(("mail-route", bases), read)


def handled_originals(
    *,
    municipality_ids: Collection[int],
    message_ids: Collection[str],
    exclude_pk: int | None = None,
) -> dict[tuple[int, str, str], tuple[int, int | None]]:
    """Mail already handled under these Message-IDs: (municipality, Message-ID, sender) → the
    newest such message's (pk, inquiry id)."""
    if not message_ids:
        return {}
    rows = InboundMessage.objects.filter(
        municipality_id__in=municipality_ids,
        message_id__in=message_ids,
        status__in=HANDLED_STATUSES,
    )
    if exclude_pk is not None:
        rows = rows.exclude(pk=exclude_pk)
    rows = rows.order_by("-received_at", "-id").values_list(
        "municipality_id", "message_id", "from_address", "pk", "inquiry_id"
    )
    found: dict[tuple[int, str, str], tuple[int, int | None]] = {}
    for municipality_id, message_id, sender, pk, inquiry_id in rows:
        found.setdefault((municipality_id, message_id, sender), (pk, inquiry_id))
    return found


def rate_window_start() -> datetime.datetime:
    return timezone.now() - datetime.timedelta(hours=1)


def recent_counts(
    *, municipality_ids: Collection[int], senders: Collection[str]
) -> Counter[tuple[int, str]]:
    """How much mail each (municipality, sender) sent within the rate window."""
    if not senders:
        return Counter()
    return Counter(
        {
            (row["municipality_id"], row["from_address"]): row["n"]
            for row in InboundMessage.objects.filter(
                municipality_id__in=municipality_ids,
                from_address__in=senders,
                received_at__gte=rate_window_start(),
                status__in=COUNTED_STATUSES,
            )
            .values("municipality_id", "from_address")
            .annotate(n=Count("id"))
        }
    )


def active_triage_rules(municipality_id: int) -> list[TriageRule]:
    return memo.remembered(
        ("mail-rules", municipality_id),
        lambda: list(
            TriageRule.objects.filter(municipality_id=municipality_id, active=True).select_related(
                "category"
            )
        ),
    )


def mail_settings(municipality_id: int) -> MunicipalityMailSettings | None:
    return memo.remembered(
        ("mail-settings", municipality_id),
        lambda: MunicipalityMailSettings.objects.filter(municipality_id=municipality_id).first(),
    )


def address_flagged(municipality_id: int, address: str) -> bool:
    """Whether mail of this municipality to this address has bounced."""
    return FlaggedAddress.objects.filter(municipality_id=municipality_id, address=address).exists()


# --- Sending --------------------------------------------------------------------------------


def sending_mailbox(inquiry: Inquiry) -> Mailbox | None:
    """The inbox a ticket's mail goes out from: the one its requester last wrote to, else the
    municipality's first active one."""
    last = (
        InboundMessage.objects.filter(inquiry=inquiry, mailbox__isnull=False)
        .order_by("-received_at")
        .select_related("mailbox__address")
        .first()
    )
    if last and last.mailbox and last.mailbox.municipality_id == inquiry.municipality_id:
        return last.mailbox
    return (
        Mailbox.objects.filter(municipality_id=inquiry.municipality_id, active=True)
        .select_related("address")
        .order_by("id")
        .first()
    )


def thread_message_ids(inquiry: Inquiry) -> tuple[str, list[str]]:
    """(In-Reply-To, References) for the next mail of a ticket's thread."""
    inbound = list(
        InboundMessage.objects.filter(inquiry=inquiry)
        .exclude(message_id="")
        .order_by("received_at")
        .values_list("received_at", "message_id")
    )
    sent = list(
        OutboundMessage.objects.filter(inquiry=inquiry)
        .order_by("created_at")
        .values_list("created_at", "message_id")
    )
    ordered = [mid for _, mid in sorted(inbound + sent)]
    in_reply_to = inbound[-1][1] if inbound else (ordered[-1] if ordered else "")
    return in_reply_to, ordered[-20:]


def outbound_due_ids(*, limit: int = 200) -> list[int]:
    """Mails to dispatch now: retries that are due, and pending ones whose task was lost."""
    pending_since = timezone.now() - datetime.timedelta(
        seconds=settings.MAIL_PENDING_DISPATCH_SECONDS
    )
    return list(
        OutboundMessage.objects.filter(
            Q(status=OutboundMessage.Status.RETRYING, next_attempt_at__lte=Now())
            | Q(status=OutboundMessage.Status.PENDING, created_at__lte=pending_since)
        )
        .filter(Q(lease_until__isnull=True) | Q(lease_until__lte=Now()))
        .order_by("created_at")
        .values_list("id", flat=True)[:limit]
    )
