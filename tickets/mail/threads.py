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


def has_references(mail: ParsedMail) -> bool:
    return bool(mail.in_reply_to or mail.references)


def has_token_or_tag(mail: ParsedMail) -> bool:
    """A reply token or a visible ticket tag (read one message at a time, in ``find_inquiry``)."""
    return bool(_tokens(mail) or _SUBJECT_TAG.search(mail.subject))


def _referenced(mail: ParsedMail) -> list[str]:
    return [*mail.in_reply_to, *mail.references][-50:]


def find_by_references(*, municipality_id: int, mails: list[ParsedMail]) -> list[Inquiry | None]:
    """For each mail, the inquiry its In-Reply-To/References point at, or None.

    Our own outbound Message-IDs count for anyone (they are random); the requester's own
    earlier Message-IDs only for the same sender (they are theirs to choose). Two statements
    for the lot.
    """
    referenced = {mid for mail in mails for mid in _referenced(mail)}
    if not referenced:
        return [None] * len(mails)
    ours = {}
    for mid, inquiry_id, at in OutboundMessage.objects.filter(
        municipality_id=municipality_id, message_id__in=referenced
    ).values_list("message_id", "inquiry_id", "created_at"):
        if inquiry_id and (mid not in ours or at > ours[mid][1]):
            ours[mid] = (inquiry_id, at)
    theirs = {}
    for mid, sender, inquiry_id, at in InboundMessage.objects.filter(
        municipality_id=municipality_id, message_id__in=referenced, inquiry__isnull=False
    ).values_list("message_id", "from_address", "inquiry_id", "received_at"):
        key = (mid, sender)
        if key not in theirs or at > theirs[key][1]:
            theirs[key] = (inquiry_id, at)
    found = []
    for mail in mails:
        refs = _referenced(mail)
        hits = [ours[m] for m in refs if m in ours] or [
            theirs[(m, mail.from_address)] for m in refs if (m, mail.from_address) in theirs
        ]
        found.append(max(hits, key=lambda hit: hit[1])[0] if hits else None)
    inquiries = Inquiry.objects.in_bulk({i for i in found if i})
    return [inquiries.get(i) if i else None for i in found]


def find_inquiry(*, municipality_id: int, mail: ParsedMail) -> tuple[Inquiry | None, str]:
    """(inquiry, how it matched) or (None, "")."""
    (inquiry,) = find_by_references(municipality_id=municipality_id, mails=[mail])
    if inquiry is not None:
        return inquiry, "message-id"
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
