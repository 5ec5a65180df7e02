"""A decided mail reaches the donor at most once: no SMTP inside a transaction, a committed
claim before connecting, and a send whose outcome is unknown waits for a person."""

from __future__ import annotations

import datetime
import email
import time

import psycopg
import pytest
from django.db import connection
from django.urls import reverse
from django.utils import timezone

from tests.mailserver import SmtpSink, running_smtp
from tests.processes import free_port
from tickets import services as ticket_services
from tickets.mail import tasks
from tickets.mail.models import OutboundMessage

pytestmark = [pytest.mark.django_db(transaction=True, serialized_rollback=True)]


def _message_id(raw: bytes) -> str:
    return email.message_from_bytes(raw)["Message-ID"].strip("<>")


def _row_as_seen_by_another_connection(message_id: str) -> tuple:
    db = connection.settings_dict
    with psycopg.connect(
        dbname=db["NAME"],
        user=db.get("USER") or None,
        password=db.get("PASSWORD") or None,
        host=db.get("HOST") or "127.0.0.1",
        port=db.get("PORT") or 5432,
        connect_timeout=5,
    ) as other:
        return other.execute(
            "SELECT status, attempts, lease_until > now() FROM ticketmail_outboundmessage"
            " WHERE message_id = %s",
            [message_id],
        ).fetchone()


@pytest.fixture
def smtp(settings):
    def _start(sink: SmtpSink):
        server = running_smtp(sink)
        port = server.__enter__()
        settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
        settings.EMAIL_HOST, settings.EMAIL_PORT = "127.0.0.1", port
        settings.EMAIL_USE_TLS = settings.EMAIL_USE_SSL = False
        settings.EMAIL_HOST_USER = settings.EMAIL_HOST_PASSWORD = ""
        started.append(server)
        return sink

    started: list = []
    yield _start
    for server in started:
        server.__exit__(None, None, None)


def test_the_claim_is_committed_as_sending_before_the_server_gets_the_mail(
    smtp, requester_reply, agent_a
):
    seen: list[tuple] = []
    sink = smtp(
        SmtpSink(
            on_data=lambda raw: seen.append(_row_as_seen_by_another_connection(_message_id(raw)))
        )
    )
    _, inquiry = requester_reply()
    ticket_services.inquiry_reply(actor=agent_a, inquiry=inquiry, body="回答します")
    out = OutboundMessage.objects.get(inquiry=inquiry)
    assert len(sink.messages) == 1
    # Committed, visible to any other connection, while the SMTP conversation is going on.
    assert seen == [("sending", 1, True)]
    assert out.status == OutboundMessage.Status.SENT and out.lease_until is None
    # A second task for the same row (a redelivery, a sweep) sends nothing more.
    assert tasks.mail_send_outbound(out.pk) == "sent"
    assert len(sink.messages) == 1


def test_a_reply_lost_in_the_conversation_is_unknown_and_never_resent_by_the_sweep(
    smtp, requester_reply, agent_a, settings
):
    settings.MAIL_SMTP_TIMEOUT = 1
    # The server takes the mail but its 250 never reaches us in time.
    sink = smtp(SmtpSink(on_data=lambda raw: time.sleep(2)))
    _, inquiry = requester_reply()
    ticket_services.inquiry_reply(actor=agent_a, inquiry=inquiry, body="回答します")
    out = OutboundMessage.objects.get(inquiry=inquiry)
    assert out.status == OutboundMessage.Status.UNKNOWN, out.last_error
    assert "送信結果不明" in out.last_error
    OutboundMessage.objects.filter(pk=out.pk).update(
        created_at=timezone.now() - datetime.timedelta(hours=1)
    )
    assert tasks.mail_retry_due() == 0
    assert tasks.mail_send_outbound(out.pk) == "unknown"
    sink.received.wait(5)
    time.sleep(1.5)  # the server is still finishing the first conversation
    assert len(sink.messages) == 1


def test_a_send_interrupted_past_its_lease_waits_for_a_supervisor_who_may_resend_it(
    smtp, requester_reply, agent_a, supervisor, login, settings
):
    _, inquiry = requester_reply()
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST, settings.EMAIL_PORT = "127.0.0.1", free_port()
    ticket_services.inquiry_reply(actor=agent_a, inquiry=inquiry, body="回答します")
    out = OutboundMessage.objects.get(inquiry=inquiry)
    assert out.status == OutboundMessage.Status.RETRYING  # nobody listening: certainly not sent
    # A worker that claimed its retry died mid-send, leaving it claimed past its lease.
    OutboundMessage.objects.filter(pk=out.pk).update(
        status=OutboundMessage.Status.SENDING,
        attempts=2,
        lease_until=timezone.now() - datetime.timedelta(seconds=1),
        next_attempt_at=None,
    )
    sink = smtp(SmtpSink())
    assert tasks.mail_retry_due() == 0
    out.refresh_from_db()
    assert out.status == OutboundMessage.Status.UNKNOWN
    assert sink.messages == []
    assert tasks.mail_retry_due() == 0  # idempotent: still nothing to send

    client = login(supervisor)
    page = client.get(reverse("mail_quarantine")).content.decode()
    assert "送信結果不明" in page and ">再送</button>" in page
    client.post(reverse("mail_outbound_retry", args=[out.pk]))
    out.refresh_from_db()
    assert out.status == OutboundMessage.Status.SENT
    (raw,) = sink.messages
    assert _message_id(raw) == out.message_id  # the same Message-ID: one thread, one mail
