"""Celery tasks: poll mailboxes, send outbound mail, retry, and pick up stranded messages."""

from __future__ import annotations

import datetime
import logging

from celery import shared_task
from django.core.cache import cache
from django.utils import timezone

from tickets.mail import intake, selectors
from tickets.mail.models import InboundMessage, Mailbox
from tickets.mail.services import inbound, sending

logger = logging.getLogger(__name__)


@shared_task
def mail_poll_all() -> int:
    ids = list(
        Mailbox.objects.filter(active=True)
        .exclude(protocol=Mailbox.Protocol.NONE)
        .values_list("id", flat=True)
    )
    for mailbox_id in ids:
        mail_poll_mailbox.delay(mailbox_id)
    return len(ids)


@shared_task
def mail_poll_mailbox(mailbox_id: int) -> int:
    # One poller per mailbox at a time: two would fetch the same messages.
    lock = f"mail:poll:{mailbox_id}"
    if not cache.add(lock, "1", timeout=600):
        return 0
    try:
        box = Mailbox.objects.select_related("address", "municipality").get(pk=mailbox_id)
        return intake.poll(box).fetched
    except Exception:
        logger.exception("polling mailbox %s failed", mailbox_id)
        return 0
    finally:
        cache.delete(lock)


@shared_task
def mail_send_outbound(outbound_id: int) -> str:
    # Idempotent: a duplicate or redelivered task finds the row claimed or sent and does nothing.
    return sending.outbound_send(outbound_pk=outbound_id).status


@shared_task
def mail_retry_due() -> int:
    """Flag mails whose worker died mid-send, then dispatch due retries and lost pending mails.

    Rows are the durable record: a reply queued while the broker was down is sent from here.
    Dispatching a row twice is harmless, as only one worker can claim it.
    """
    stranded = sending.outbound_mark_stranded()
    if stranded:
        logger.warning("%s outbound mails were interrupted mid-send: 送信結果不明", stranded)
    due = selectors.outbound_due_ids()
    for outbound_id in due:
        mail_send_outbound.delay(outbound_id)
    return len(due)


@shared_task
def mail_process_stranded() -> int:
    """Messages stored but never processed (a worker died in between) are processed now."""
    cutoff = timezone.now() - datetime.timedelta(minutes=5)
    stranded = list(
        InboundMessage.objects.filter(status=InboundMessage.Status.RECEIVED, received_at__lt=cutoff)
        # Mail held for a suspended municipality waits for its resumption, without taking the
        # places of stranded mail of others.
        .exclude(municipality__suspended_at__isnull=False)
        .values_list("id", flat=True)[:200]
    )
    for pk in stranded:
        inbound.inbound_process(message_pk=pk)
    return len(stranded)


# Receiver of tickets.mail.signals (connected in TicketMailConfig.ready): queue after the commit.
def queue_mail_send_outbound(sender, *, outbound_id: int, **kwargs) -> None:
    mail_send_outbound.delay(outbound_id)
