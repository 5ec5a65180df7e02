"""Background jobs: stranded messages are processed, due mail is re-sent."""

from __future__ import annotations

import datetime

from django.utils import timezone

from tests.tickets.mail.conftest import make_mail
from tickets.mail import tasks
from tickets.mail.models import InboundMessage, OutboundMessage
from tickets.mail.services import inbound, sending


def test_a_message_stored_but_never_processed_is_picked_up(mailbox_a, city_a):
    # A worker that died between storing and processing leaves the message "received".
    message, created = inbound.inbound_store(
        raw=make_mail(subject="取り残されたメール"),
        source=InboundMessage.Source.PIPE,
        municipality=city_a,
        mailbox=mailbox_a,
    )
    assert created
    InboundMessage.objects.filter(pk=message.pk).update(
        received_at=timezone.now() - datetime.timedelta(minutes=10)
    )
    assert tasks.mail_process_stranded() == 1
    message.refresh_from_db()
    assert message.status == InboundMessage.Status.PROCESSED
    assert message.inquiry.ticket.title == "取り残されたメール"


def test_due_and_forgotten_outbound_mail_is_sent(
    requester_reply, agent_a, mailoutbox, django_capture_on_commit_callbacks
):
    from tickets import services as ticket_services

    _, inquiry = requester_reply()
    # Broker down at reply time: the mail stays pending (no callbacks run here).
    ticket_services.inquiry_reply(actor=agent_a, inquiry=inquiry, body="遅れて届く回答")
    sending.outbound_reply_queue(
        inquiry=inquiry, followup_id=inquiry.ticket.followup_set.latest("id").pk
    )
    out = OutboundMessage.objects.get()
    assert out.status == OutboundMessage.Status.PENDING
    OutboundMessage.objects.filter(pk=out.pk).update(
        created_at=timezone.now() - datetime.timedelta(minutes=5)
    )
    assert tasks.mail_retry_due() == 1
    out.refresh_from_db()
    assert out.status == OutboundMessage.Status.SENT
    assert len(mailoutbox) == 1
