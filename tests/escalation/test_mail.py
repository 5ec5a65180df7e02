"""Escalation mail through a real SMTP server: Japanese in ISO-2022-JP (or UTF-8 where
configured), a log-in link, and none of the donor's personal data."""

from __future__ import annotations

import email
from email.header import decode_header, make_header

import pytest

from escalation.models import Escalation, EscalationNotification
from tests.factories import DonorFactory, ProviderFactory

pytestmark = pytest.mark.django_db


def _decoded(raw: bytes) -> tuple[email.message.Message, str, str]:
    message = email.message_from_bytes(raw)
    subject = str(make_header(decode_header(message["Subject"])))
    body = message.get_payload(decode=True).decode(message.get_content_charset())
    return message, subject, body


def test_the_city_is_mailed_in_iso_2022_jp_without_personal_data(
    smtp, city_a, open_ticket, damaged_rule, contacts_a, django_capture_on_commit_callbacks
):
    donor = DonorFactory(municipality=city_a, name="髙橋 花子", address="小樽市稲穂9-9-9")
    with django_capture_on_commit_callbacks(execute=True):
        inquiry = open_ticket(
            category="damaged",
            severity="urgent",
            donor=donor,
            submitter_email="hanako@example.jp",
        )
    escalation = Escalation.objects.get(inquiry=inquiry)
    [raw] = smtp.messages
    message, subject, body = _decoded(raw)
    assert message.get_content_charset() == "iso-2022-jp"
    assert message["Content-Transfer-Encoding"] == "7bit"
    assert b"=?ISO-2022-JP?B?" in raw and raw.isascii()
    assert message["To"] == "primary@city.otaru.example.jp"
    assert message["From"].endswith("<escalation@cc.example.jp>")
    assert subject == f"【緊急】小樽市へのご報告：返礼品の破損・傷み 問合せ#{inquiry.pk}"
    assert "小樽 一郎 様" in body
    assert f"https://cc.example.jp/escalation/{escalation.pk}/" in body
    for personal in ("髙橋", "花子", "稲穂", "hanako@example.jp", "山田"):
        assert personal not in body and personal not in subject
    row = EscalationNotification.objects.get(escalation=escalation, channel="email")
    assert row.status == "sent" and row.sent_at is not None
    assert message["Message-ID"].strip("<>") == row.provider_sid


def test_utf8_where_configured_and_the_provider_is_told_too(
    smtp,
    settings,
    city_a,
    open_ticket,
    damaged_rule,
    contacts_a,
    django_capture_on_commit_callbacks,
):
    settings.ESCALATION_MAIL_CHARSET = "utf-8"
    damaged_rule.notify_provider = True
    damaged_rule.save()
    provider = ProviderFactory(municipality=city_a, email="shop@provider.example.jp")
    with django_capture_on_commit_callbacks(execute=True):
        open_ticket(category="damaged", severity="urgent", provider=provider)
    by_to = {email.message_from_bytes(raw)["To"]: raw for raw in smtp.messages}
    assert set(by_to) == {"primary@city.otaru.example.jp", "shop@provider.example.jp"}
    message, subject, body = _decoded(by_to["shop@provider.example.jp"])
    assert message.get_content_charset() == "utf-8"
    assert subject == "【緊急】返礼品に関するご連絡（小樽市）"
    assert "返礼品について寄附者様からご連絡がありました" in body
    assert "escalation/" not in body  # providers do not log in


def test_a_refusing_mail_server_is_retried_without_a_second_copy(
    settings, city_a, open_ticket, damaged_rule, contacts_a, django_capture_on_commit_callbacks
):
    from escalation import services
    from tests.mailserver import SmtpSink, running_smtp

    refusals = []

    class RefuseOnce(SmtpSink):
        async def handle_DATA(self, server, session, envelope) -> str:
            if not refusals:
                refusals.append(1)
                return "451 Try again later"
            return await super().handle_DATA(server, session, envelope)

    sink = RefuseOnce()
    with running_smtp(sink) as port:
        settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
        settings.EMAIL_HOST, settings.EMAIL_PORT = "127.0.0.1", port
        settings.EMAIL_USE_TLS = settings.EMAIL_USE_SSL = False
        damaged_rule.urgent = False
        damaged_rule.save()
        with django_capture_on_commit_callbacks(execute=True):
            inquiry = open_ticket(category="damaged", severity="urgent")
        row = EscalationNotification.objects.get(escalation__inquiry=inquiry, channel="email")
        assert row.status == "retrying" and "451" in row.last_error
        services.escalations_tick()
        services.escalations_tick()
    row.refresh_from_db()
    assert row.status == "sent" and row.tries == 2
    assert len(sink.messages) == 1
