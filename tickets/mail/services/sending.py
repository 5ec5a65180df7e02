"""Sending mail: the outbound queue, sending each mail at most once, retries and their sweep."""

from __future__ import annotations

import contextlib
import datetime
import logging
import secrets
import smtplib

from django.conf import settings
from django.core.mail import get_connection
from django.db import transaction
from django.db.models import DateTimeField, ExpressionWrapper, F, Q
from django.db.models.functions import Now
from django.utils import timezone

from crm.access import require_write
from crm.models import User
from jobs.services import job_enqueue
from tickets.mail import outbound, selectors, signals, threads
from tickets.mail.decoding import ParsedMail
from tickets.mail.models import InboundMessage, Mailbox, OutboundMessage
from tickets.models import Inquiry

logger = logging.getLogger(__name__)


def _new_message_id(domain: str, inquiry_id: int) -> str:
    return f"{secrets.token_hex(12)}.{inquiry_id}@{domain}"


def _queue(
    *, inquiry: Inquiry, kind: str, subject: str, body: str, followup_id: int | None = None
) -> OutboundMessage | None:
    thread = threads.ensure_thread(
        inquiry=inquiry, requester_address=inquiry.ticket.submitter_email or ""
    )
    to = thread.requester_address or inquiry.ticket.submitter_email or ""
    box = selectors.sending_mailbox(inquiry)
    from_address = box.address.address if box else settings.DEFAULT_FROM_EMAIL
    domain = settings.MAIL_MESSAGE_ID_DOMAIN or from_address.rpartition("@")[2]
    in_reply_to, references = selectors.thread_message_ids(inquiry)
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


def outbound_acknowledge(*, inquiry: Inquiry, mail: ParsedMail) -> None:
    """A new inquiry from mail gets the municipality's acknowledgement, if it sends one (never to
    an address our mail bounced from)."""
    prefs = selectors.mail_settings(inquiry.municipality_id)
    if prefs is None or not prefs.acknowledgement_enabled:
        return
    if selectors.address_flagged(inquiry.municipality_id, mail.from_address):
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


# --- The notice to senders while their municipality is suspended -------------------------------

SUSPENDED_SUBJECT = "【自動送信】受付停止のお知らせ"


def suspended_notice_promise(*, message: InboundMessage, mail: ParsedMail) -> bool:
    """Tell the sender of mail held for a suspended municipality why nobody will answer: once
    per sender and suspension, never to an address our mail bounced from (machine answers and
    bounces never get here). Sent by a durable job after the commit."""
    municipality = message.municipality
    sender = mail.from_address
    if not sender or municipality.suspended_at is None:
        return False
    if selectors.address_flagged(municipality.pk, sender):
        return False
    told = (
        InboundMessage.objects.filter(
            municipality=municipality,
            from_address=sender,
            received_at__gte=municipality.suspended_at,
            suspended_notice_at__isnull=False,
        )
        .exclude(pk=message.pk)
        .exists()
    )
    if told:
        return False
    message.suspended_notice_at = timezone.now()
    message.save(update_fields=["suspended_notice_at"])
    job_enqueue(
        target="tickets.mail.services.sending.suspended_notice_send",
        key=f"mail-suspended-notice:{message.pk}",
        message_id=message.pk,
    )
    return True


def suspended_notice_send(*, message_id: int) -> None:
    message = InboundMessage.objects.select_related("municipality", "mailbox__address").get(
        pk=message_id
    )
    municipality = message.municipality
    box = message.mailbox or (
        Mailbox.objects.filter(municipality=municipality, active=True)
        .select_related("address")
        .order_by("id")
        .first()
    )
    from_address = box.address.address if box else settings.DEFAULT_FROM_EMAIL
    domain = settings.MAIL_MESSAGE_ID_DOMAIN or from_address.rpartition("@")[2]
    body = (
        f"{municipality.suspended_notice}\n\n"
        "このメールは送信専用です。いただいたメールは受信しておりますが、"
        "ご返信できかねますことをご了承ください。\n"
    )
    mime, _ = outbound.build(
        from_name=(box.display_name if box else "") or f"{municipality.name} ふるさと納税",
        from_address=from_address,
        to_address=message.from_address,
        subject=SUSPENDED_SUBJECT,
        body=body,
        message_id=f"{secrets.token_hex(12)}.suspended@{domain}",
        charset=box.outbound_charset if box else "utf-8",
        in_reply_to=message.message_id.strip("<>") if message.message_id else "",
        auto_submitted=True,
    )
    backend = get_connection(fail_silently=False, timeout=settings.MAIL_SMTP_TIMEOUT)
    backend.send_messages(
        [outbound.PrebuiltEmail(mime, from_email=from_address, to=[message.from_address])]
    )
