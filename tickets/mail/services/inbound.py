"""Received mail: routing, storing and processing, one message or a fetched batch at a time.

Inbound mail goes through two steps, each committed on its own:
1. ``inbound_store``: the raw bytes are saved (deduplicated by content hash). From here on the
   mail cannot be lost; only after this commit may a mail server delete its copy.
2. ``inbound_process``: one transaction turns it into a ticket or a follow-up (or an ignored
   auto-reply, or a matched bounce). Any failure rolls that back and quarantines the message
   with its reason, for a supervisor to look at and re-process.

What becomes of a message is decided in one place, ``decide``, for both paths: a fetched batch
handles the plain new mail and replies together in a few statements, and hands everything else
to ``inbound_process``.
"""

from __future__ import annotations

import enum
import hashlib
import logging
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from email.parser import BytesHeaderParser
from email.policy import compat32

from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone

from crm import normalize
from crm.models import Donor, Municipality, MunicipalityEmailAddress, User
from donations_sync.models import Donation, Shipment
from tickets import memo
from tickets import services as ticket_services
from tickets.mail import decoding, selectors, sniffing, threads, triage
from tickets.mail.decoding import ParsedMail
from tickets.mail.models import (
    FlaggedAddress,
    InboundAttachment,
    InboundMessage,
    Mailbox,
    OutboundMessage,
)
from tickets.mail.services import sending
from tickets.mail.services.configuration import require_supervisor
from tickets.models import Channel, Inquiry

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
    return selectors.inbound_addresses(bases)


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


# --- Deciding what becomes of a message ---------------------------------------------------


class Action(enum.Enum):
    QUARANTINE = "quarantine"  # kept aside with a reason for a supervisor
    DUPLICATE = "duplicate"  # its Message-ID was handled already
    BOUNCE = "bounce"  # a delivery report about our own mail
    AUTO_REPLY = "auto_reply"  # an out-of-office or other machine answer: ignored
    HOLD = "hold"  # its municipality is suspended: kept as received, routed to nobody
    NEW = "new"  # no thread reference: a new inquiry
    REPLY = "reply"  # In-Reply-To/References may lead to an inquiry
    THREADED = "threaded"  # a reply token or subject tag names an inquiry to check


@dataclass
class Decision:
    action: Action
    mail: ParsedMail | None = None
    reason: str = ""
    earlier: tuple[int, int | None] | None = None  # the duplicate's original: (pk, inquiry id)


@dataclass
class History:
    """What deciding needs to know about mail received before: handled Message-IDs and each
    sender's count within the rate window. Read once for a whole batch; what the batch decides
    to process is noted, so a copy or a flood within the batch is seen as well."""

    handled: dict[tuple[int, str, str], tuple[int, int | None]] = field(default_factory=dict)
    recent: Counter[tuple[int, str]] = field(default_factory=Counter)

    @classmethod
    def read(
        cls,
        mails: Sequence[tuple[int, ParsedMail]],
        *,
        exclude_pk: int | None = None,
        count_recent: bool = True,
    ) -> History:
        municipality_ids = {municipality_id for municipality_id, _ in mails}
        handled = selectors.handled_originals(
            municipality_ids=municipality_ids,
            message_ids={mail.message_id for _, mail in mails if mail.message_id},
            exclude_pk=exclude_pk,
        )
        senders = {mail.from_address for _, mail in mails if mail.from_address}
        recent = (
            selectors.recent_counts(municipality_ids=municipality_ids, senders=senders)
            if count_recent
            else Counter()
        )
        return cls(handled, recent)


def parse(message: InboundMessage, raw: bytes) -> ParsedMail | Decision:
    """The parsed mail, or the quarantine of a message that has no inbox or cannot be read."""
    if message.municipality_id is None:
        return Decision(
            Action.QUARANTINE,
            reason="宛先の自治体が特定できません（受信アドレスが登録されていません）",
        )
    try:
        return decoding.parse(raw)
    except Exception as exc:
        return Decision(Action.QUARANTINE, reason=f"メールを解析できません: {exc}")


def decide(
    message: InboundMessage, mail: ParsedMail, *, history: History, force: bool = False
) -> Decision:
    """What becomes of one parsed message of a known municipality; ``force`` (a supervisor's
    re-processing) lifts the rate limit."""
    key = (message.municipality_id, mail.message_id, mail.from_address)
    earlier = history.handled.get(key) if mail.message_id else None
    if earlier:
        return Decision(
            Action.DUPLICATE,
            mail,
            f"処理済みのメール（#{earlier[0]}）と同じMessage-IDです",
            earlier,
        )
    if triage.is_bounce(mail):
        return Decision(Action.BOUNCE, mail)
    reason = triage.auto_reply_reason(mail)
    if reason:
        return Decision(Action.AUTO_REPLY, mail, reason)
    if message.municipality.suspended_at is not None:
        return Decision(Action.HOLD, mail, "受付停止中の自治体宛てのため保留しています")
    if not mail.from_address:
        return Decision(Action.QUARANTINE, mail, "差出人アドレスがありません")
    sender = (message.municipality_id, mail.from_address)
    limit = settings.MAIL_RATE_LIMIT_PER_HOUR
    if not force and history.recent[sender] >= limit:
        return Decision(
            Action.QUARANTINE,
            mail,
            f"同じ差出人からのメールが1時間に{limit}通を超えました（受信制限）",
        )
    if mail.message_id:
        history.handled[key] = (message.pk, None)
    history.recent[sender] += 1
    if threads.has_token_or_tag(mail):
        return Decision(Action.THREADED, mail)
    return Decision(Action.REPLY if threads.has_references(mail) else Action.NEW, mail)


# --- Processing one message -----------------------------------------------------------------


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


def _process(message: InboundMessage, *, force: bool) -> None:
    mail = parse(message, bytes(message.raw))
    if isinstance(mail, Decision):
        raise Quarantine(mail.reason)
    _take_headers(message, mail)
    history = History.read(
        [(message.municipality_id, mail)], exclude_pk=message.pk, count_recent=not force
    )
    decision = decide(message, mail, history=history, force=force)
    match decision.action:
        case Action.QUARANTINE:
            raise Quarantine(decision.reason)
        case Action.DUPLICATE:
            message.inquiry_id = decision.earlier[1]
            _finish(message, InboundMessage.Status.DUPLICATE, decision.reason)
        case Action.BOUNCE:
            reason = _record_bounce(message.municipality, mail)
            _finish(message, InboundMessage.Status.BOUNCE, reason)
        case Action.AUTO_REPLY:
            _finish(message, InboundMessage.Status.AUTO_REPLY, decision.reason)
        case Action.HOLD:
            # Stays 受信（未処理）: nothing reaches agents; after resumption the stranded-mail
            # sweep processes it as if it had just arrived.
            message.reason = decision.reason
            message.save(update_fields=["reason", "message_id", "from_address", "subject"])
            sending.suspended_notice_promise(message=message, mail=mail)
        case _:
            inquiry, how = threads.find_inquiry(municipality_id=message.municipality_id, mail=mail)
            if inquiry is not None:
                _add_to_inquiries([(message, mail, inquiry)], how)
            else:
                _open_inquiries(message.municipality, [(message, mail)])
            message.save(update_fields=_PROCESSED_FIELDS)


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
    rules = selectors.active_triage_rules(municipality.pk)
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
        sending.outbound_acknowledge(inquiry=inquiry, mail=mail)
    InboundAttachment.objects.bulk_create(attachments)


# --- Processing a fetched batch -------------------------------------------------------------


def _process_fresh(
    messages: Sequence[InboundMessage], raw_of: dict[int, bytes]
) -> dict[int, InboundMessage]:
    """Process just-stored messages of a batch.

    New inquiries are opened together in one transaction, then replies that point at a ticket by
    In-Reply-To/References join it together in another (a few statements for each lot).
    Everything else — tokens and tags, noise, anything unusual, whatever a batch step left or
    failed on — goes one by one through ``inbound_process``, which records the reason.
    """
    parsed = [(message, parse(message, raw_of[message.pk])) for message in messages]
    readable = [(m, mail) for m, mail in parsed if not isinstance(mail, Decision)]
    history = History.read([(m.municipality_id, mail) for m, mail in readable])
    decided = [(m, decide(m, mail, history=history)) for m, mail in readable]
    done: dict[int, InboundMessage] = {}
    for step, action in ((_open_plain, Action.NEW), (_add_replies, Action.REPLY)):
        items = [(m, d.mail) for m, d in decided if d.action is action]
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


def inbound_reprocess(*, actor: User, message: InboundMessage) -> InboundMessage:
    """Run a quarantined message through processing again (rate limits do not apply)."""
    require_supervisor(actor, message.municipality_id)
    if message.municipality_id is None:
        # The inbox may have been registered since: route it again.
        targets = route(raw=bytes(message.raw), recipient=message.recipient or None)
        if targets:
            with transaction.atomic():
                message.municipality = targets[0].municipality
                message.save(update_fields=["municipality"])
    return inbound_process(message_pk=message.pk, force=True)
