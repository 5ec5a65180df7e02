"""Which ticket a mail belongs to, strictly inside the municipality whose inbox received it.

Order of trust: our own Message-IDs (random, stored for every outbound mail) in In-Reply-To /
References; then the unguessable reply token (Reply-To plus-part or subject); last, the visible
ticket number tag — which only counts when the sender is the ticket's own requester.
"""

from __future__ import annotations

import re
import secrets

from tickets.mail.decoding import ParsedMail
from tickets.mail.models import InboundMessage, InquiryMailThread, OutboundMessage
from tickets.models import Inquiry

TOKEN_ALPHABET = "abcdefghijklmnopqrstuvwxyz234567"
TOKEN_LENGTH = 20  # 100 bits
_TOKEN = re.compile(r"(?<![a-z0-9])t([a-z2-7]{" + str(TOKEN_LENGTH) + r"})(?![a-z0-9])")
_SUBJECT_TAG = re.compile(r"\[#(\d{1,12})(?::t[a-z2-7]{" + str(TOKEN_LENGTH) + r"})?\]")


def new_token() -> str:
    return "".join(secrets.choice(TOKEN_ALPHABET) for _ in range(TOKEN_LENGTH))


def subject_tag(inquiry_id: int, token: str) -> str:
    return f"[#{inquiry_id}:t{token}]"


def strip_tags(subject: str) -> str:
    return _SUBJECT_TAG.sub("", subject).strip()


def _tokens(mail: ParsedMail) -> list[str]:
    found = []
    for addr in mail.recipients:
        local = addr.split("@", 1)[0]
        if "+" in local:
            found += _TOKEN.findall(local.split("+", 1)[1])
    found += _TOKEN.findall(mail.subject.lower())
    return list(dict.fromkeys(found))


def has_thread_markers(mail: ParsedMail) -> bool:
    """Whether the mail carries anything that could tie it to an existing ticket."""
    return bool(
        mail.in_reply_to or mail.references or _tokens(mail) or _SUBJECT_TAG.search(mail.subject)
    )


def find_inquiry(*, municipality_id: int, mail: ParsedMail) -> tuple[Inquiry | None, str]:
    """(inquiry, how it matched) or (None, "")."""
    referenced = [*mail.in_reply_to, *mail.references][-50:]
    if referenced:
        out = (
            OutboundMessage.objects.filter(
                municipality_id=municipality_id, message_id__in=referenced
            )
            .order_by("-created_at")
            .values_list("inquiry_id", flat=True)
            .first()
        )
        if out:
            return Inquiry.objects.get(pk=out), "message-id"
        # The requester replying to their own earlier mail: their Message-IDs are theirs to
        # choose, so this only counts for the same sender.
        inbound = (
            InboundMessage.objects.filter(
                municipality_id=municipality_id,
                message_id__in=referenced,
                from_address=mail.from_address,
                inquiry__isnull=False,
            )
            .order_by("-received_at")
            .values_list("inquiry_id", flat=True)
            .first()
        )
        if inbound:
            return Inquiry.objects.get(pk=inbound), "message-id"
    for token in _tokens(mail):
        thread = (
            InquiryMailThread.objects.filter(token=token, municipality_id=municipality_id)
            .select_related("inquiry")
            .first()
        )
        if thread:
            return thread.inquiry, "token"
    m = _SUBJECT_TAG.search(mail.subject)
    if m and mail.from_address:
        inquiry = (
            Inquiry.objects.filter(pk=int(m.group(1)), municipality_id=municipality_id)
            .select_related("ticket")
            .first()
        )
        if inquiry is not None:
            owner = {(inquiry.ticket.submitter_email or "").lower()}
            owner |= set(
                InquiryMailThread.objects.filter(inquiry=inquiry).values_list(
                    "requester_address", flat=True
                )
            )
            if mail.from_address in owner:
                return inquiry, "subject-tag"
    return None, ""


def ensure_thread(*, inquiry: Inquiry, requester_address: str = "") -> InquiryMailThread:
    thread, _ = InquiryMailThread.objects.get_or_create(
        inquiry=inquiry,
        defaults={
            "municipality_id": inquiry.municipality_id,
            "token": new_token(),
            "requester_address": requester_address,
        },
    )
    return thread


def new_threads(opened: list[tuple[Inquiry, str]]) -> list[InquiryMailThread]:
    """For inquiries just opened from mail (they cannot have a thread yet), with the address
    each came from."""
    return InquiryMailThread.objects.bulk_create(
        InquiryMailThread(
            inquiry=inquiry,
            municipality_id=inquiry.municipality_id,
            token=new_token(),
            requester_address=requester_address,
        )
        for inquiry, requester_address in opened
    )
