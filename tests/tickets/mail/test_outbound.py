"""Agent replies leave by SMTP from the city's address, threaded, safely encoded."""

from __future__ import annotations

import datetime

import pytest
from aiosmtpd.controller import Controller
from django.utils import timezone

from tests.processes import free_port
from tests.tickets.mail.conftest import make_mail
from tickets import services as ticket_services
from tickets.mail import tasks
from tickets.mail.decoding import parse
from tickets.mail.models import InboundMessage, Mailbox, OutboundMessage
from tickets.mail.services import inbound as mail_inbound
from tickets.mail.services import sending


class _Collect:
    def __init__(self):
        self.envelopes = []

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if address.startswith("reject"):
            return "550 5.1.1 no such user"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        self.envelopes.append((envelope.mail_from, list(envelope.rcpt_tos), envelope.content))
        return "250 Message accepted"


@pytest.fixture
def smtp_server(settings):
    """A real SMTP server on loopback; Django's SMTP backend talks to it."""
    handler = _Collect()
    controller = Controller(handler, hostname="127.0.0.1", port=free_port())
    controller.start()
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST = "127.0.0.1"
    settings.EMAIL_PORT = controller.port
    settings.EMAIL_USE_TLS = settings.EMAIL_USE_SSL = False
    settings.EMAIL_HOST_USER = settings.EMAIL_HOST_PASSWORD = ""
    yield handler
    controller.stop()


def _reply(agent, inquiry, body, capture):
    with capture(execute=True):
        ticket_services.inquiry_reply(actor=agent, inquiry=inquiry, body=body)
    return OutboundMessage.objects.filter(inquiry=inquiry).latest("created_at")


def test_reply_goes_out_over_smtp_from_the_city_address_and_threads(
    smtp_server, requester_reply, agent_a, django_capture_on_commit_callbacks
):
    inbound, inquiry = requester_reply(
        message_id="<q1@example.jp>", subject="受領証明書について", body="再発行できますか"
    )
    out = _reply(
        agent_a,
        inquiry,
        "山田様\n再発行いたします。\nC:\\書類\\①",
        django_capture_on_commit_callbacks,
    )
    assert out.status == OutboundMessage.Status.SENT
    ((mail_from, rcpt, content),) = smtp_server.envelopes
    assert mail_from == "furusato@otaru.example.jp"
    assert rcpt == ["donor@example.jp"]
    parsed = parse(content)
    assert parsed.message_id == out.message_id
    assert parsed.in_reply_to == ["q1@example.jp"]
    assert parsed.references == ["q1@example.jp"]
    assert parsed.body == "山田様\n再発行いたします。\nC:\\書類\\①\n"
    assert parsed.subject.startswith("Re: 受領証明書について [#")
    assert parsed.from_name == "小樽市ふるさと納税"
    assert parsed.headers["content-type"].lower().startswith('text/plain; charset="utf-8"')
    assert parsed.reply_to == [f"furusato+t{inquiry.mail_thread.token}@otaru.example.jp"]
    # …and the donor's answer to it threads back by our Message-ID.
    back = mail_inbound.inbound_receive(
        raw=make_mail(subject="ありがとう", headers={"In-Reply-To": f"<{out.message_id}>"}),
        source=InboundMessage.Source.PIPE,
    )[0]
    assert back.inquiry == inquiry


def test_iso2022jp_where_the_city_asks_for_it(
    smtp_server, requester_reply, agent_a, mailbox_a, django_capture_on_commit_callbacks
):
    Mailbox.objects.filter(pk=mailbox_a.pk).update(outbound_charset="iso-2022-jp")
    _, inquiry = requester_reply(subject="髙﨑の件")
    out = _reply(agent_a, inquiry, "①㈱髙﨑～ ご確認ください。", django_capture_on_commit_callbacks)
    assert out.charset == "iso-2022-jp"
    content = smtp_server.envelopes[0][2]
    assert content.isascii()
    assert b"charset=ISO-2022-JP" in content
    parsed = parse(content)
    assert parsed.body == "①㈱髙﨑～ ご確認ください。\n"
    assert parsed.subject.startswith("Re: 髙﨑の件 [#")


def test_text_outside_iso2022jp_falls_back_to_utf8(
    smtp_server, requester_reply, agent_a, mailbox_a, django_capture_on_commit_callbacks
):
    Mailbox.objects.filter(pk=mailbox_a.pk).update(outbound_charset="iso-2022-jp")
    _, inquiry = requester_reply()
    out = _reply(agent_a, inquiry, "𠮷野様 🎁", django_capture_on_commit_callbacks)
    assert out.charset == "utf-8"
    assert parse(smtp_server.envelopes[0][2]).body == "𠮷野様 🎁\n"


def test_header_injection_in_the_subject_is_folded_into_one_line(
    smtp_server, requester_reply, agent_a, django_capture_on_commit_callbacks
):
    raw = make_mail(subject="x").replace(
        b"Subject: x", b"Subject: =?UTF-8?B?5Lu25ZCNDQpCY2M6IGV2aWxAZXhhbXBsZS5jb20=?="
    )  # "件名\r\nBcc: evil@example.com" as an encoded word
    inbound = mail_inbound.inbound_receive(raw=raw, source=InboundMessage.Source.PIPE)[0]
    inquiry = inbound.inquiry
    _reply(agent_a, inquiry, "回答", django_capture_on_commit_callbacks)
    mail_from, rcpt, content = smtp_server.envelopes[0]
    assert rcpt == ["donor@example.jp"]
    headers = content.split(b"\r\n\r\n", 1)[0]
    assert b"\r\nBcc:" not in headers and b"\nBcc:" not in headers
    assert "Bcc: evil@example.com" in parse(content).subject  # harmless text in one line


def test_a_recipient_address_with_line_breaks_is_refused(
    smtp_server, requester_reply, agent_a, django_capture_on_commit_callbacks
):
    _, inquiry = requester_reply()
    thread = inquiry.mail_thread
    thread.requester_address = "donor@example.jp\r\nBcc: evil@example.com"
    thread.save()
    out = _reply(agent_a, inquiry, "回答", django_capture_on_commit_callbacks)
    assert out.status == OutboundMessage.Status.FAILED
    assert "メールアドレスが正しくありません" in out.last_error
    assert smtp_server.envelopes == []


def test_smtp_refusal_is_retried_then_visibly_failed(
    smtp_server, requester_reply, agent_a, settings, django_capture_on_commit_callbacks
):
    settings.MAIL_SEND_MAX_ATTEMPTS = 2
    _, inquiry = requester_reply(sender="reject-me@example.jp")
    out = _reply(agent_a, inquiry, "回答", django_capture_on_commit_callbacks)
    assert out.status == OutboundMessage.Status.RETRYING
    assert out.next_attempt_at is not None and "550" in out.last_error
    # Not due yet: a stray task does not cut the back-off short.
    assert sending.outbound_send(outbound_pk=out.pk).status == OutboundMessage.Status.RETRYING
    OutboundMessage.objects.filter(pk=out.pk).update(
        next_attempt_at=timezone.now() - datetime.timedelta(seconds=1)
    )
    assert tasks.mail_retry_due() == 1
    out.refresh_from_db()
    assert out.status == OutboundMessage.Status.FAILED and out.attempts == 2
    assert out.lease_until is None and out.next_attempt_at is None


def test_unreachable_smtp_server_leaves_the_mail_for_retry(
    requester_reply, agent_a, settings, django_capture_on_commit_callbacks
):
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST, settings.EMAIL_PORT = "127.0.0.1", free_port()
    _, inquiry = requester_reply()
    out = _reply(agent_a, inquiry, "回答", django_capture_on_commit_callbacks)
    assert out.status == OutboundMessage.Status.RETRYING
    assert "Connection" in out.last_error or "refused" in out.last_error.lower()


def test_phone_ticket_replies_are_not_mailed(
    open_inquiry, agent_a, mailoutbox, django_capture_on_commit_callbacks
):
    inquiry = open_inquiry()
    with django_capture_on_commit_callbacks(execute=True):
        ticket_services.inquiry_reply(actor=agent_a, inquiry=inquiry, body="お電話で回答済み")
    assert mailoutbox == []
    assert not OutboundMessage.objects.exists()
