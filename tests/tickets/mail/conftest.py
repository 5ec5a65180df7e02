"""Mail fixtures: each test city has an inbound address; mails are built as raw bytes."""

from __future__ import annotations

from email.message import EmailMessage
from email.utils import format_datetime, make_msgid

import pytest
from django.utils import timezone

from crm.models import MunicipalityEmailAddress
from tickets.mail.models import InboundMessage, Mailbox
from tickets.mail.services import inbound

ADDRESS_A = "furusato@otaru.example.jp"
ADDRESS_B = "furusato@fukuyama.example.jp"


@pytest.fixture
def mailbox_a(city_a):
    address = MunicipalityEmailAddress.objects.create(municipality=city_a, address=ADDRESS_A)
    return Mailbox.objects.create(address=address, display_name="小樽市ふるさと納税")


@pytest.fixture
def mailbox_b(city_b):
    address = MunicipalityEmailAddress.objects.create(municipality=city_b, address=ADDRESS_B)
    return Mailbox.objects.create(address=address)


def make_mail(
    *,
    sender: str = "donor@example.jp",
    to: str = ADDRESS_A,
    subject: str = "お問い合わせ",
    body: str = "返礼品について教えてください。",
    headers: dict[str, str] | None = None,
    message_id: str | None = None,
) -> bytes:
    msg = EmailMessage()
    msg["From"] = sender
    msg["To"] = to
    msg["Subject"] = subject
    msg["Date"] = format_datetime(timezone.now())
    msg["Message-ID"] = message_id or make_msgid(domain="example.jp")
    for key, value in (headers or {}).items():
        msg[key] = value
    msg.set_content(body)
    return msg.as_bytes()


def deliver(raw: bytes, recipient: str | None = None) -> InboundMessage:
    """What the MTA pipe does: one message in, stored and processed."""
    messages = inbound.inbound_receive(
        raw=raw, source=InboundMessage.Source.PIPE, recipient=recipient
    )
    assert len(messages) == 1
    return messages[0]


@pytest.fixture(autouse=True)
def celery_eager():
    """Tasks run in-process, as the demo runs them without Redis."""
    from config.celery import app

    previous = app.conf.task_always_eager
    app.conf.task_always_eager = True
    yield
    app.conf.task_always_eager = previous


@pytest.fixture
def requester_reply(mailbox_a):
    """A donor's first mail, as processed: returns (inbound message, inquiry)."""

    def _open(**kwargs):
        message = deliver(make_mail(**kwargs))
        assert message.status == InboundMessage.Status.PROCESSED, message.reason
        return message, message.inquiry

    return _open
