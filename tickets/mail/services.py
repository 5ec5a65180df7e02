"""Every write of the mail app: storing and processing inbound mail, quarantine, rules, sending.

Inbound mail goes through two steps, each committed on its own:
1. ``inbound_store``: the raw bytes are saved (deduplicated by content hash). From here on the
   mail cannot be lost; only after this commit may a mail server delete its copy.
2. ``inbound_process``: one transaction turns it into a ticket or a follow-up (or an ignored
   auto-reply, or a matched bounce). Any failure rolls that back and quarantines the message
   with its reason, for a supervisor to look at and re-process.
"""

from __future__ import annotations

import contextlib
import datetime
import hashlib
import logging
import secrets
import smtplib
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from email.parser import BytesHeaderParser
from email.policy import compat32

from django.conf import settings
from django.core.exceptions import PermissionDenied
from django.core.mail import get_connection
from django.db import connection, transaction
from django.db.models import Count, DateTimeField, ExpressionWrapper, F, Q
from django.db.models.functions import Now
from django.utils import timezone

from crm import normalize
from crm.access import is_operator_admin, is_supervisor, require_write, visible_municipality_ids
from crm.models import Donor, Municipality, MunicipalityEmailAddress, User
from donations_sync.models import Donation, Shipment
from tickets import memo
from tickets import services as ticket_services
from tickets.mail import decoding, outbound, selectors, signals, sniffing, threads, triage
from tickets.mail.decoding import ParsedMail
from tickets.mail.models import (
    FlaggedAddress,
    InboundAttachment,
    InboundMessage,
    Mailbox,
    MunicipalityMailSettings,
    OutboundMessage,
    TriageRule,
)
from tickets.models import Category, Channel, Inquiry

logger = logging.getLogger(__name__)


class Quarantine(Exception):
    """A reason to keep the message aside for a supervisor (the text is shown to them)."""


# --- Routing --------------------------------------------------------------------------------


def _base_address(address: str) -> str:
    # The same normalisation the inbound addresses are stored with (MunicipalityEmailAddress).
    local, _, domain = normalize.normalize_email(address).partition("@")
    return f"{local.split('+', 1)[0]}@{domain}"


def route(*, raw: bytes, recipient: str | None = None) -> list[MunicipalityEmailAddress]:
    """Which of our inbound addresses a piped/maildir message was delivered to.

    The MTA's envelope recipient wins when given; otherwise Delivered-To / X-Original-To /
    To / Cc are matched (plus-parts stripped).
    """
    if recipient:
        candidates = [recipient]
    else:
        headers = BytesHeaderParser(policy=compat32).parsebytes(raw)
        candidates = []
        for key in ("delivered-to", "x-original-to", "envelope-to", "to", "cc"):
            for value in headers.get_all(key) or []:
                candidates += [a for _, a in decoding.parse_addresses(value)]
    bases = tuple(dict.fromkeys(_base_address(a) for a in candidates if "@" in a))
    return memo.remembered(("mail-route", bases), lambda: _addresses(bases))


def _addresses(bases: tuple[str, ...]) -> list[MunicipalityEmailAddress]:
    rows = MunicipalityEmailAddress.objects.filter(address__in=bases).select_related(
        "municipality", "mailbox"
    )
    found = {a.address: a for a in rows}
    return [found[b] for b in bases if b in found]


# --- Storing --------------------------------------------------------------------------------


def _peek(raw: bytes) -> tuple[str, str, str]:
    headers = BytesHeaderParser(policy=compat32).parsebytes(raw)
    raw_items = dict((k.lower(), v) for k, v in headers.raw_items())
    ids = decoding.parse_message_ids(raw_items.get("message-id"))
    sender = decoding.parse_addresses(raw_items.get("from"))
    subject = decoding.decode_header_value(raw_items.get("subject"))
    return (ids[0] if ids else "")[:500], (sender[0][1] if sender else "")[:254], subject[:500]


@dataclass
class Delivery:
    """One raw message as delivered to one municipality's inbox (or to none we know)."""

    raw: bytes
    municipality: Municipality | None
    mailbox: Mailbox | None = None
    recipient: str = ""

    @property
    def content_hash(self) -> str:
        scope = str(self.municipality.pk if self.municipality else 0).encode()
        return hashlib.sha256(scope + b":" + self.raw).hexdigest()


def _deliveries(raw: bytes, mailbox: Mailbox | None, recipient: str | None) -> list[Delivery]:
    if mailbox is not None:
        return [Delivery(raw, mailbox.municipality, mailbox, mailbox.address.address)]
    addresses = route(raw=raw, recipient=recipient)
    return [
        Delivery(raw, a.municipality, getattr(a, "mailbox", None), a.address) for a in addresses
    ] or [Delivery(raw, None, None, recipient or "")]


def inbound_store_many(
    *, deliveries: Sequence[Delivery], source: str
) -> list[tuple[InboundMessage, bool]]:
    """Save raw messages in one transaction: (message, created) for each delivery.

    The same bytes for the same municipality are stored once. The returned rows carry
    everything but the raw bytes (the caller has them).
    """
    rows = {}
    for d in deliveries:
        if d.content_hash in rows:
            continue
        try:
            message_id, sender, subject = _peek(d.raw)
        except Exception:  # headers so broken they cannot be peeked at: still kept
            message_id, sender, subject = "", "", ""
        rows[d.content_hash] = InboundMessage(
            municipality=d.municipality,
            mailbox=d.mailbox,
            source=source,
            recipient=d.recipient[:254],
            raw=d.raw,
            content_hash=d.content_hash,
            message_id=message_id,
            from_address=sender,
            subject=subject,
        )
    with transaction.atomic():
        existing = set(
            InboundMessage.objects.filter(content_hash__in=rows).values_list(
                "content_hash", flat=True
            )
        )
        # ignore_conflicts: another worker may be storing the same bytes at this moment.
        InboundMessage.objects.bulk_create(
            [row for key, row in rows.items() if key not in existing], ignore_conflicts=True
        )
    stored = (
        InboundMessage.objects.defer("raw")
        .select_related("municipality")
        .in_bulk(list(rows), field_name="content_hash")
    )
    return [(stored[d.content_hash], d.content_hash not in existing) for d in deliveries]


def inbound_store(
    *,
    raw: bytes,
    source: str,
    municipality: Municipality | None,
    mailbox: Mailbox | None = None,
    recipient: str = "",
) -> tuple[InboundMessage, bool]:
    """Save one raw message; (message, created)."""
    delivery = Delivery(raw, municipality, mailbox, recipient)
    return inbound_store_many(deliveries=[delivery], source=source)[0]


def inbound_receive(
    *,
    raw: bytes,
    source: str,
    mailbox: Mailbox | None = None,
    recipient: str | None = None,
) -> list[InboundMessage]:
    """Store then process one raw message for every municipality inbox it was delivered to."""
    return inbound_receive_many(raws=[raw], source=source, mailbox=mailbox, recipient=recipient)[0]


def inbound_receive_many(
    *,
    raws: Sequence[bytes],
    source: str,
    mailbox: Mailbox | None = None,
    recipient: str | None = None,
) -> list[list[InboundMessage]]:
    """Store then process fetched messages; for each, its rows (one per inbox it reached).

    Returns after everything is committed; raises only if the raw bytes could not be stored,
    so a caller may delete its copies once this returns.
    """
    with memo.reusing_lookups():
        per_raw = [_deliveries(raw, mailbox, recipient) for raw in raws]
        flat = [d for ds in per_raw for d in ds]
        stored = inbound_store_many(deliveries=flat, source=source)
        raw_of: dict[int, bytes] = {}
        for (message, created), delivery in zip(stored, flat, strict=True):
            if created or message.status == InboundMessage.Status.RECEIVED:
                raw_of.setdefault(message.pk, delivery.raw)
        done = _process_fresh([message for message, _ in stored if message.pk in raw_of], raw_of)
    results, start = [], 0
    for ds in per_raw:
        results.append([done.get(m.pk, m) for m, _ in stored[start : start + len(ds)]])
        start += len(ds)
    return results


# --- Processing -----------------------------------------------------------------------------


def inbound_process(*, message_pk: int, force: bool = False) -> InboundMessage:
    """Turn a stored message into a ticket/follow-up, or quarantine it. Never raises."""
    try:
        with transaction.atomic():
            message = (
                InboundMessage.objects.select_for_update(of=("self",))
                .select_related("municipality")
                .get(pk=message_pk)
            )
            allowed = {InboundMessage.Status.RECEIVED}
            if force:
                allowed.add(InboundMessage.Status.QUARANTINED)
            if message.status not in allowed:
                return message
            _process(message, force=force)
            return message
    except Quarantine as exc:
        return _quarantine(message_pk, str(exc))
    except Exception as exc:
        logger.exception("mail %s could not be processed", message_pk)
        return _quarantine(message_pk, f"処理中にエラーが発生しました: {type(exc).__name__}: {exc}")


def _quarantine(message_pk: int, reason: str) -> InboundMessage:
    with transaction.atomic():
        message = InboundMessage.objects.select_for_update().get(pk=message_pk)
        message.status = InboundMessage.Status.QUARANTINED
        message.reason = decoding.storable(reason)[:2000]
        message.attempts += 1
        message.processed_at = timezone.now()
        message.save(update_fields=["status", "reason", "attempts", "processed_at"])
    return message


_PROCESSED_FIELDS = [
    "status",
    "reason",
    "attempts",
    "processed_at",
    "message_id",
    "from_address",
    "subject",
    "inquiry",
    "followup_id",
    "created_inquiry",
]

_COUNTED_STATUSES = [InboundMessage.Status.PROCESSED, InboundMessage.Status.QUARANTINED]
_HANDLED_STATUSES = [
    InboundMessage.Status.PROCESSED,
    InboundMessage.Status.AUTO_REPLY,
    InboundMessage.Status.BOUNCE,
]


def _mark(message: InboundMessage, status: str, reason: str = "") -> None:
    message.status = status
    message.reason = decoding.storable(reason)[:2000]
    message.attempts += 1
    message.processed_at = timezone.now()


def _finish(message: InboundMessage, status: str, reason: str = "") -> None:
    _mark(message, status, reason)
    message.save(update_fields=_PROCESSED_FIELDS)  # not the raw bytes again


def _take_headers(message: InboundMessage, mail: ParsedMail) -> bool:
    """Take the headers as fully parsed; whether they differ from what was peeked at."""
    parsed = (mail.message_id[:500], mail.from_address[:254], mail.subject[:500])
    changed = parsed != (message.message_id, message.from_address, message.subject)
    message.message_id, message.from_address, message.subject = parsed
    return changed


def _rate_window_start() -> datetime.datetime:
    return timezone.now() - datetime.timedelta(hours=1)


def _process(message: InboundMessage, *, force: bool) -> None:
    if message.municipality_id is None:
        raise Quarantine("宛先の自治体が特定できません（受信アドレスが登録されていません）")
    try:
        mail = decoding.parse(bytes(message.raw))
    except Exception as exc:
        raise Quarantine(f"メールを解析できません: {exc}") from exc
    _take_headers(message, mail)
    municipality = message.municipality

    if mail.message_id:
        earlier = (
            InboundMessage.objects.filter(
                municipality=municipality,
                message_id=mail.message_id,
                from_address=mail.from_address,
                status__in=_HANDLED_STATUSES,
            )
            .exclude(pk=message.pk)
            .first()
        )
        if earlier:
            message.inquiry_id = earlier.inquiry_id
            _finish(
                message,
                InboundMessage.Status.DUPLICATE,
                f"処理済みのメール（#{earlier.pk}）と同じMessage-IDです",
            )
            return

    if triage.is_bounce(mail):
        _finish(message, InboundMessage.Status.BOUNCE, _record_bounce(municipality, mail))
        return
    reason = triage.auto_reply_reason(mail)
    if reason:
        _finish(message, InboundMessage.Status.AUTO_REPLY, reason)
        return
    if not mail.from_address:
        raise Quarantine("差出人アドレスがありません")

    if not force:
        limit = settings.MAIL_RATE_LIMIT_PER_HOUR
        recent = InboundMessage.objects.filter(
            municipality=municipality,
            from_address=mail.from_address,
            received_at__gte=_rate_window_start(),
            status__in=_COUNTED_STATUSES,
        ).count()
        if recent >= limit:
            raise Quarantine(f"同じ差出人からのメールが1時間に{limit}通を超えました（受信制限）")

    inquiry, how = threads.find_inquiry(municipality_id=municipality.pk, mail=mail)
    if inquiry is not None:
        _add_to_inquiries([(message, mail, inquiry)], how)
        message.save(update_fields=_PROCESSED_FIELDS)
    else:
        _open_inquiries(municipality, [(message, mail)])
        message.save(update_fields=_PROCESSED_FIELDS)


# --- New inquiries and replies from mail, one or a batch at a time ---------------------------


def _body(mail: ParsedMail) -> str:
    return mail.body.strip() or "（本文なし）"


def _add_to_inquiries(joined: Sequence[tuple[InboundMessage, ParsedMail, Inquiry]], how: str):
    """Each mail joins its inquiry's timeline, attachments stored; each message is marked
    processed in memory, for the caller to save."""
    followups = ticket_services.inquiries_add_customer_messages(
        [
            ticket_services.CustomerMessage(
                inquiry=inquiry,
                body=_body(mail),
                channel=Channel.EMAIL,
                sender=mail.from_address,
                title=mail.subject[:200] or "メール",
                message_id=mail.message_id[:256] or None,
            )
            for _, mail, inquiry in joined
        ]
    )
    attachments = []
    for (message, mail, inquiry), followup in zip(joined, followups, strict=True):
        message.created_inquiry = False
        message.inquiry = inquiry
        message.followup_id = followup.pk
        _mark(message, InboundMessage.Status.PROCESSED, f"既存の問合せに追加（{how}）")
        attachments += _attachment_rows(message, mail)
    InboundAttachment.objects.bulk_create(attachments)


def _open_inquiries(
    municipality: Municipality, items: Sequence[tuple[InboundMessage, ParsedMail]]
) -> None:
    """Open one inquiry per mail (records linked, rules applied), attachments stored; each
    message is marked processed in memory, for the caller to save."""
    rules = memo.remembered(
        ("mail-rules", municipality.pk),
        lambda: list(
            TriageRule.objects.filter(municipality=municipality, active=True).select_related(
                "category"
            )
        ),
    )
    texts = [f"{mail.subject}\n{_body(mail)}" for _, mail in items]
    found = triage.find_links_many(
        municipality_id=municipality.pk,
        mails=[(mail.from_address, text) for (_, mail), text in zip(items, texts, strict=True)],
    )
    # The named records, read once for the batch (find_links kept to this municipality).
    # Several candidate donors means the sender is ambiguous: that is left to the agent.
    donors = Donor.objects.in_bulk({f.donor_ids[0] for f in found if len(f.donor_ids) == 1})
    donations = Donation.objects.in_bulk({i for f in found for i in f.donation_ids})
    shipments = Shipment.objects.in_bulk({i for f in found for i in f.shipment_ids})
    new, suggestions = [], []
    for (_, mail), text, links in zip(items, texts, found, strict=True):
        suggestion = triage.suggest(rules, text)
        suggestions.append(suggestion)
        new.append(
            ticket_services.NewInquiry(
                channel=Channel.EMAIL,
                title=threads.strip_tags(mail.subject) or "（件名なし）",
                description=_body(mail),
                category=suggestion.category_code,
                severity=suggestion.severity,
                donor=donors.get(links.donor_ids[0]) if len(links.donor_ids) == 1 else None,
                donations=[donations[i] for i in links.donation_ids],
                shipments=[shipments[i] for i in links.shipment_ids],
                submitter_email=mail.from_address,
                requester_name=mail.from_name,
            )
        )
    inquiries = ticket_services.inquiries_open(actor=None, municipality=municipality, new=new)
    threads.new_threads(
        [(inquiry, mail.from_address) for inquiry, (_, mail) in zip(inquiries, items, strict=True)]
    )
    attachments = []
    for inquiry, (message, mail), suggestion in zip(inquiries, items, suggestions, strict=True):
        message.inquiry = inquiry
        message.followup_id = None
        message.created_inquiry = True
        _mark(
            message,
            InboundMessage.Status.PROCESSED,
            "、".join(f"ルール「{n}」" for n in suggestion.rule_names),
        )
        attachments += _attachment_rows(message, mail)
        _maybe_acknowledge(inquiry=inquiry, message=message, mail=mail)
    InboundAttachment.objects.bulk_create(attachments)


def _process_fresh(
    messages: Sequence[InboundMessage], raw_of: dict[int, bytes]
) -> dict[int, InboundMessage]:
    """Process just-stored messages of a batch.

    New inquiries are opened together in one transaction, then replies that point at a ticket by
    In-Reply-To/References join it together in another (a few statements for each lot).
    Everything else — tokens and tags, noise, anything unusual, whatever a batch step left or
    failed on — goes one by one through ``inbound_process``, which quarantines with a reason.
    """
    plain = _batchable(messages, raw_of)
    done: dict[int, InboundMessage] = {}
    for step, items in (
        (_open_plain, [(m, mail) for m, mail in plain if not threads.has_references(mail)]),
        (_add_replies, [(m, mail) for m, mail in plain if threads.has_references(mail)]),
    ):
        if not items:
            continue
        try:
            done.update(step(items))
        except Exception:
            logger.exception("a batch of %d mails failed; processing them one by one", len(items))
    for message in sorted(messages, key=lambda m: m.pk):
        if message.pk not in done:
            done[message.pk] = inbound_process(message_pk=message.pk)
    return done


def _batchable(
    messages: Sequence[InboundMessage], raw_of: dict[int, bytes]
) -> list[tuple[InboundMessage, ParsedMail]]:
    """The mails that a batch step may handle: from someone, not noise, not thread-tied by token
    or tag, not a duplicate, within the sender's rate limit (the last two looked up for the whole
    batch at once). The rest is left to ``inbound_process``."""
    candidates = []
    for message in messages:
        mail = None
        if message.municipality_id is not None:
            try:
                mail = decoding.parse(raw_of[message.pk])
            except Exception:  # inbound_process records why
                mail = None
        plain = (
            mail is not None
            and bool(mail.from_address)
            and not triage.is_bounce(mail)
            and not triage.auto_reply_reason(mail)
            and not threads.has_token_or_tag(mail)
        )
        if plain:
            candidates.append((message, mail))
    if not candidates:
        return []

    municipality_ids = {m.municipality_id for m, _ in candidates}
    senders = {mail.from_address for _, mail in candidates}
    message_ids = {mail.message_id for _, mail in candidates if mail.message_id}
    seen = set(
        InboundMessage.objects.filter(
            municipality_id__in=municipality_ids,
            message_id__in=message_ids,
            status__in=_HANDLED_STATUSES,
        ).values_list("municipality_id", "message_id", "from_address")
    )
    recent = Counter(
        {
            (row["municipality_id"], row["from_address"]): row["n"]
            for row in InboundMessage.objects.filter(
                municipality_id__in=municipality_ids,
                from_address__in=senders,
                received_at__gte=_rate_window_start(),
                status__in=_COUNTED_STATUSES,
            )
            .values("municipality_id", "from_address")
            .annotate(n=Count("id"))
        }
    )
    limit = settings.MAIL_RATE_LIMIT_PER_HOUR
    plain = []
    for message, mail in candidates:
        key = (message.municipality_id, mail.message_id, mail.from_address)
        sender = (message.municipality_id, mail.from_address)
        if (mail.message_id and key in seen) or recent[sender] >= limit:
            continue  # judged one by one, where the reason is recorded
        seen.add(key)
        recent[sender] += 1
        plain.append((message, mail))
    return plain


def _lock_received(
    items: Sequence[tuple[InboundMessage, ParsedMail]],
) -> dict[int, list[tuple[InboundMessage, ParsedMail]]]:
    """Lock the rows still waiting (one another worker took meanwhile is left to it), take their
    fully parsed headers, and group them by municipality."""
    free = set(
        InboundMessage.objects.select_for_update(of=("self",))
        .filter(pk__in=[m.pk for m, _ in items], status=InboundMessage.Status.RECEIVED)
        .values_list("pk", flat=True)
    )
    by_municipality: dict[int, list[tuple[InboundMessage, ParsedMail]]] = {}
    for message, mail in items:
        if message.pk in free:
            # Headers were peeked at when storing; the full parse rarely reads them otherwise.
            if _take_headers(message, mail):
                message.save(update_fields=["message_id", "from_address", "subject"])
            by_municipality.setdefault(message.municipality_id, []).append((message, mail))
    return by_municipality


def _open_plain(plain: Sequence[tuple[InboundMessage, ParsedMail]]) -> dict[int, InboundMessage]:
    with transaction.atomic():
        by_municipality = _lock_received(plain)
        for items in by_municipality.values():
            _open_inquiries(items[0][0].municipality, items)
        opened = [message for items in by_municipality.values() for message, _ in items]
        _save_processed(opened)
    return {message.pk: message for message in opened}


def _add_replies(replies: Sequence[tuple[InboundMessage, ParsedMail]]) -> dict[int, InboundMessage]:
    """Replies whose In-Reply-To/References lead to a ticket join it; the others are left (their
    ticket may be a reply of this very batch, which one by one will find)."""
    added = []
    with transaction.atomic():
        for municipality_id, items in _lock_received(replies).items():
            mails = [mail for _, mail in items]
            found = threads.find_by_references(municipality_id=municipality_id, mails=mails)
            joined = [
                (message, mail, inquiry)
                for (message, mail), inquiry in zip(items, found, strict=True)
                if inquiry is not None
            ]
            if joined:
                _add_to_inquiries(joined, "message-id")
            added += [message for message, _, _ in joined]
        _save_processed(added)
    return {message.pk: message for message in added}


def _save_processed(processed: Sequence[InboundMessage]) -> None:
    """Save the result of messages a batch step processed, in one UPDATE from a VALUES list.

    Django's ``bulk_update`` builds a CASE expression per row and field, which for a chunk costs
    more Python time than everything else the chunk does; this statement is plain SQL that
    PostgreSQL and SQLite (3.33+) both run, every value a bound parameter.
    """
    if not processed:
        return
    table = connection.ops.quote_name(InboundMessage._meta.db_table)
    rows = ", ".join(["(%s, %s, %s, %s, %s)"] * len(processed))
    params: list = []
    for m in processed:
        params += [m.pk, m.inquiry_id, m.reason, m.followup_id, m.created_inquiry]
    sql = f"""
        WITH v(id, inquiry_id, reason, followup_id, created_inquiry) AS (VALUES {rows})
        UPDATE {table} SET
            status = %s, processed_at = %s, attempts = {table}.attempts + 1,
            inquiry_id = CAST(v.inquiry_id AS bigint), reason = CAST(v.reason AS text),
            followup_id = CAST(v.followup_id AS integer),
            created_inquiry = CAST(v.created_inquiry AS boolean)
        FROM v
        WHERE {table}.id = CAST(v.id AS bigint)
    """  # noqa: S608 - the table name comes from the model; every value is a bound parameter
    with connection.cursor() as cursor:
        cursor.execute(sql, [*params, InboundMessage.Status.PROCESSED, processed[0].processed_at])


def _attachment_rows(message: InboundMessage, mail: ParsedMail) -> list[InboundAttachment]:
    limit = settings.MAIL_MAX_ATTACHMENT_BYTES
    rows = []
    for att in mail.attachments:
        verdict = sniffing.judge(
            filename=att.filename,
            declared_type=att.content_type,
            data=att.data,
            max_bytes=limit,
            context_text=f"{mail.subject}\n{mail.body}",
        )
        rows.append(
            InboundAttachment(
                message=message,
                municipality_id=message.municipality_id,
                inquiry=message.inquiry,
                filename=att.filename[:255],
                declared_type=att.content_type[:100],
                sniffed_type=verdict.sniffed_type,
                size=att.size,
                data=att.data if verdict.kept else b"",
                status=InboundAttachment.Status.KEPT
                if verdict.kept
                else InboundAttachment.Status.REFUSED,
                refused_reason=verdict.refused_reason,
                restricted=verdict.restricted,
            )
        )
    return rows


def _record_bounce(municipality: Municipality, mail) -> str:
    report = mail.delivery_report
    out = None
    if report.original_message_id:
        out = OutboundMessage.objects.filter(
            municipality=municipality, message_id=report.original_message_id
        ).first()
    now = timezone.now()
    failed = report.failed_recipients or ([out.to_address] if out else [])
    for address in failed:
        flag, _ = FlaggedAddress.objects.get_or_create(
            municipality=municipality, address=address, defaults={"last_bounced_at": now}
        )
        flag.bounce_count += 1
        flag.last_bounced_at = now
        flag.reason = (report.diagnostic or report.status)[:500]
        flag.outbound = out or flag.outbound
        flag.save()
    if out is None:
        return f"不達通知（対応する送信メールなし）: {', '.join(failed)}"
    out.bounced_at = now
    out.last_error = f"不達: {report.status} {report.diagnostic}".strip()[:2000]
    out.save(update_fields=["bounced_at", "last_error"])
    return f"送信メール #{out.pk} の不達: {', '.join(failed)}"


# --- Supervisor actions ---------------------------------------------------------------------


def _require_supervisor(actor: User, municipality_id: int | None) -> None:
    if not is_supervisor(actor):
        raise PermissionDenied("監督者のみが操作できます。")
    if municipality_id is None:
        if not is_operator_admin(actor):
            raise PermissionDenied("宛先不明のメールは運営管理者のみが操作できます。")
    elif municipality_id not in visible_municipality_ids(actor):
        raise PermissionDenied("この自治体のデータを変更する権限がありません。")


def inbound_reprocess(*, actor: User, message: InboundMessage) -> InboundMessage:
    """Run a quarantined message through processing again (rate limits do not apply)."""
    _require_supervisor(actor, message.municipality_id)
    if message.municipality_id is None:
        # The inbox may have been registered since: route it again.
        targets = route(raw=bytes(message.raw), recipient=message.recipient or None)
        if targets:
            with transaction.atomic():
                message.municipality = targets[0].municipality
                message.save(update_fields=["municipality"])
    return inbound_process(message_pk=message.pk, force=True)


@transaction.atomic
def triage_rule_save(
    *,
    actor: User,
    municipality: Municipality,
    name: str,
    keywords: str,
    category: Category | None,
    severity: str,
    sort_order: int = 100,
    active: bool = True,
    rule: TriageRule | None = None,
) -> TriageRule:
    _require_supervisor(actor, municipality.pk)
    if rule is not None and rule.municipality_id != municipality.pk:
        raise PermissionDenied("他の自治体のルールです。")
    rule = rule or TriageRule(municipality=municipality)
    rule.name, rule.keywords, rule.category = name, keywords, category
    rule.severity, rule.sort_order, rule.active = severity, sort_order, active
    rule.save()
    return rule


@transaction.atomic
def triage_rule_delete(*, actor: User, rule: TriageRule) -> None:
    _require_supervisor(actor, rule.municipality_id)
    rule.delete()


@transaction.atomic
def triage_rules_add_defaults(*, actor: User, municipality: Municipality) -> int:
    _require_supervisor(actor, municipality.pk)
    existing = set(
        TriageRule.objects.filter(municipality=municipality).values_list("name", flat=True)
    )
    categories = {c.code: c for c in Category.objects.all()}
    added = 0
    for order, (name, keywords, code, severity) in enumerate(triage.DEFAULT_RULES, start=1):
        if name in existing:
            continue
        TriageRule.objects.create(
            municipality=municipality,
            name=name,
            keywords=keywords,
            category=categories.get(code),
            severity=severity,
            sort_order=order * 10,
        )
        added += 1
    return added


# --- Outbound -------------------------------------------------------------------------------


def _sending_mailbox(inquiry: Inquiry) -> Mailbox | None:
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


def _thread_ids(inquiry: Inquiry) -> tuple[str, list[str]]:
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


def _new_message_id(domain: str, inquiry_id: int) -> str:
    return f"{secrets.token_hex(12)}.{inquiry_id}@{domain}"


def _queue(
    *, inquiry: Inquiry, kind: str, subject: str, body: str, followup_id: int | None = None
) -> OutboundMessage | None:
    thread = threads.ensure_thread(
        inquiry=inquiry, requester_address=inquiry.ticket.submitter_email or ""
    )
    to = thread.requester_address or inquiry.ticket.submitter_email or ""
    box = _sending_mailbox(inquiry)
    from_address = box.address.address if box else settings.DEFAULT_FROM_EMAIL
    domain = settings.MAIL_MESSAGE_ID_DOMAIN or from_address.rpartition("@")[2]
    in_reply_to, references = _thread_ids(inquiry)
    tagged = f"{outbound.one_line(threads.strip_tags(subject))} {threads.subject_tag(inquiry.pk, thread.token)}"
    out = OutboundMessage.objects.create(
        municipality_id=inquiry.municipality_id,
        inquiry=inquiry,
        mailbox=box,
        kind=kind,
        followup_id=followup_id,
        message_id=_new_message_id(domain, inquiry.pk),
        from_address=from_address,
        to_address=to,
        subject=tagged[:300],
        body=body,
        in_reply_to=in_reply_to,
        references=" ".join(references),
        charset=box.outbound_charset if box else "utf-8",
    )
    if not to or box is None:
        out.status = OutboundMessage.Status.FAILED
        out.last_error = (
            "送信先のメールアドレスがありません"
            if not to
            else "送信元の受信アドレスが設定されていません"
        )
        out.save(update_fields=["status", "last_error"])
        return out
    transaction.on_commit(lambda: _enqueue_send(out.pk))
    return out


def _enqueue_send(outbound_pk: int) -> None:
    # The mail is committed as pending; if the broker is down, mail_retry_due sends it later.
    try:
        signals.outbound_mail_pending.send(OutboundMessage, outbound_id=outbound_pk)
    except Exception:
        logger.exception("outbound mail %s could not be queued; left pending", outbound_pk)


@transaction.atomic
def outbound_reply_queue(*, inquiry: Inquiry, followup_id: int) -> OutboundMessage | None:
    """An agent's public reply (``inquiry_replied``) becomes a mail to the requester."""
    from helpdesk.models import FollowUp

    inquiry = Inquiry.objects.select_related("ticket").get(pk=inquiry.pk)
    if not selectors.reply_recipient(inquiry):
        # A phone/FAX/letter ticket's answer is given by its own channel, and a ticket without
        # an address has nobody to mail: the ticket page calls such a reply 対応記録.
        return None
    followup = FollowUp.objects.get(pk=followup_id, ticket_id=inquiry.pk)
    if OutboundMessage.objects.filter(inquiry=inquiry, followup_id=followup_id).exists():
        return None  # the signal fired twice; one mail only
    return _queue(
        inquiry=inquiry,
        kind=OutboundMessage.Kind.REPLY,
        subject=f"Re: {inquiry.ticket.title}",
        body=followup.comment or "",
        followup_id=followup_id,
    )


def _maybe_acknowledge(*, inquiry: Inquiry, message: InboundMessage, mail) -> None:
    prefs = memo.remembered(
        ("mail-settings", inquiry.municipality_id),
        lambda: MunicipalityMailSettings.objects.filter(
            municipality_id=inquiry.municipality_id
        ).first(),
    )
    if prefs is None or not prefs.acknowledgement_enabled:
        return
    if FlaggedAddress.objects.filter(
        municipality_id=inquiry.municipality_id, address=mail.from_address
    ).exists():
        return
    values = {
        "subject": outbound.one_line(mail.subject),
        "ticket_id": str(inquiry.pk),
        "municipality": inquiry.municipality.name,
    }

    def fill(template: str) -> str:
        # Plain replacement, not str.format: templates are edited by users.
        for key, value in values.items():
            template = template.replace("{" + key + "}", value)
        return template

    _queue(
        inquiry=Inquiry.objects.select_related("ticket", "municipality").get(pk=inquiry.pk),
        kind=OutboundMessage.Kind.ACKNOWLEDGEMENT,
        subject=fill(prefs.acknowledgement_subject),
        body=fill(prefs.acknowledgement_body),
    )


_CLAIMABLE = (OutboundMessage.Status.PENDING, OutboundMessage.Status.RETRYING)
_HELD = (OutboundMessage.Status.SENDING, OutboundMessage.Status.UNKNOWN)


def outbound_send(*, outbound_pk: int) -> OutboundMessage:
    """Send one queued mail at most once; refusals are kept and retried.

    Three short transactions, none open while the SMTP server is spoken to: the claim
    (``sending`` with a lease) commits before connecting, so a worker killed mid-send leaves a
    row the sweep turns into ``unknown`` rather than a pending one it would send again; the
    outcome is written afterwards, fenced by the claim's lease so a late worker cannot overwrite
    a newer claim. Any number of calls for one row send it once: the task is idempotent.
    """
    out = _claim(outbound_pk)
    if out is None:
        return OutboundMessage.objects.get(pk=outbound_pk)
    try:
        mime, used = _mime(out)
    except outbound.UnsafeHeader as exc:
        _settle(out, status=OutboundMessage.Status.FAILED, last_error=str(exc))
        return out
    backend = get_connection(fail_silently=False, timeout=settings.MAIL_SMTP_TIMEOUT)
    try:
        backend.open()
    except Exception as exc:  # unreachable, DNS, TLS, login: the server never saw the mail
        return _refused(out, exc)
    try:
        try:
            sent = backend.send_messages(
                [outbound.PrebuiltEmail(mime, from_email=out.from_address, to=[out.to_address])]
            )
        except (smtplib.SMTPResponseException, smtplib.SMTPRecipientsRefused) as exc:
            return _refused(out, exc)  # the server answered "no": it did not take the mail
        except Exception as exc:
            # The conversation broke off (timeout, reset): the server may have taken the mail.
            _settle(
                out,
                status=OutboundMessage.Status.UNKNOWN,
                last_error=f"送信結果不明（{type(exc).__name__}: {exc}）"[:2000],
            )
            return out
        if not sent:
            return _refused(out, RuntimeError("メールサーバーが受け付けませんでした"))
        _settle(
            out,
            status=OutboundMessage.Status.SENT,
            sent_at=timezone.now(),
            charset=used,
            last_error="",
        )
        return out
    finally:
        with contextlib.suppress(Exception):  # QUIT after acceptance changes nothing
            backend.close()


def _claim(outbound_pk: int) -> OutboundMessage | None:
    """Take the mail for this worker, committed before any SMTP traffic; None if not ours now.

    ``durable`` refuses to run inside a caller's transaction, whose rollback would silently
    turn a sent mail back into a pending one.
    """
    lease = datetime.timedelta(seconds=settings.MAIL_SEND_LEASE_SECONDS)
    with transaction.atomic(durable=True):
        claimed = (
            OutboundMessage.objects.filter(pk=outbound_pk, status__in=_CLAIMABLE)
            .filter(Q(lease_until__isnull=True) | Q(lease_until__lte=Now()))
            .filter(Q(next_attempt_at__isnull=True) | Q(next_attempt_at__lte=Now()))
            .update(
                status=OutboundMessage.Status.SENDING,
                lease_until=ExpressionWrapper(Now() + lease, output_field=DateTimeField()),
                attempts=F("attempts") + 1,
            )
        )
        if not claimed:
            return None
        # Read within the claim: this lease_until is the claim's fencing token.
        return OutboundMessage.objects.select_related("mailbox", "municipality", "inquiry").get(
            pk=outbound_pk
        )


def _settle(out: OutboundMessage, **fields) -> bool:
    """Write the outcome of our claim, unless someone has claimed the row since.

    A row the sweep marked ``unknown`` while we were slow still takes our outcome: we know it.
    """
    fields = {"lease_until": None, "next_attempt_at": None, **fields}
    with transaction.atomic(durable=True):
        updated = OutboundMessage.objects.filter(
            pk=out.pk, status__in=_HELD, lease_until=out.lease_until
        ).update(**fields)
    for name, value in fields.items():
        setattr(out, name, value)
    if not updated:
        logger.warning("outbound mail %s was claimed again before its outcome was written", out.pk)
    return bool(updated)


def _refused(out: OutboundMessage, exc: BaseException) -> OutboundMessage:
    error = f"{type(exc).__name__}: {exc}"[:2000]
    if out.attempts >= settings.MAIL_SEND_MAX_ATTEMPTS:
        _settle(out, status=OutboundMessage.Status.FAILED, last_error=error)
    else:
        _settle(
            out,
            status=OutboundMessage.Status.RETRYING,
            last_error=error,
            next_attempt_at=timezone.now() + datetime.timedelta(minutes=2 ** (out.attempts - 1)),
        )
    return out


def _mime(out: OutboundMessage):
    return outbound.build(
        from_name=(out.mailbox.display_name if out.mailbox else "")
        or f"{out.municipality.name} ふるさと納税",
        from_address=out.from_address,
        to_address=out.to_address,
        subject=out.subject,
        body=out.body,
        message_id=out.message_id,
        charset=out.charset,
        in_reply_to=out.in_reply_to,
        references=out.references.split(),
        reply_to=_reply_to(out),
        auto_submitted=out.kind == OutboundMessage.Kind.ACKNOWLEDGEMENT,
    )


def outbound_mark_stranded() -> int:
    """Mails still ``sending`` past their lease: their worker died mid-send, perhaps after the
    server had accepted the mail. They wait for a person's decision (送信結果不明), never for an
    automatic resend that could give the donor a second copy."""
    return OutboundMessage.objects.filter(
        status=OutboundMessage.Status.SENDING, lease_until__lte=Now()
    ).update(
        status=OutboundMessage.Status.UNKNOWN,
        last_error="送信中に処理が中断しました。先方に届いている可能性があります。",
    )


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


def _reply_to(out: OutboundMessage) -> str:
    if not out.mailbox or not out.mailbox.plus_addressing:
        return ""
    thread = threads.ensure_thread(inquiry=out.inquiry)
    local, _, domain = out.from_address.partition("@")
    return f"{local}+t{thread.token}@{domain}"


def outbound_retry(*, actor: User, out: OutboundMessage) -> None:
    """Operator staff of the municipality send a failed mail again (the attempt counter starts
    over; the agent who wrote the reply sees the failure on the ticket, not only supervisors), or
    decide that a mail of unknown outcome goes again: with its Message-ID, so the copies are one
    thread and mail clients that deduplicate by Message-ID show one."""
    require_write(actor, out.municipality_id)
    with transaction.atomic():
        out = OutboundMessage.objects.select_for_update().get(pk=out.pk)
        if out.status not in OutboundMessage.RESENDABLE or not out.to_address:
            return
        out.status = OutboundMessage.Status.RETRYING
        out.attempts = 0
        out.next_attempt_at = timezone.now()
        out.lease_until = None
        out.save()
        transaction.on_commit(lambda: _enqueue_send(out.pk))


@transaction.atomic
def mailbox_configure(*, address: str, **fields) -> Mailbox:
    """Create or update the fetch/send settings of one registered inbound address."""
    inbound = MunicipalityEmailAddress.objects.get(address=normalize.normalize_email(address))
    box = Mailbox.objects.filter(address=inbound).first() or Mailbox(
        address=inbound, municipality_id=inbound.municipality_id
    )
    for name, value in fields.items():
        if value is not None:
            setattr(box, name, value)
    box.full_clean()
    box.save()
    return box


@transaction.atomic
def mail_settings_save(
    *,
    actor: User,
    municipality: Municipality,
    acknowledgement_enabled: bool,
    acknowledgement_subject: str,
    acknowledgement_body: str,
) -> MunicipalityMailSettings:
    _require_supervisor(actor, municipality.pk)
    prefs, _ = MunicipalityMailSettings.objects.get_or_create(municipality=municipality)
    prefs.acknowledgement_enabled = acknowledgement_enabled
    prefs.acknowledgement_subject = outbound.one_line(acknowledgement_subject)
    prefs.acknowledgement_body = acknowledgement_body
    prefs.save()
    return prefs
