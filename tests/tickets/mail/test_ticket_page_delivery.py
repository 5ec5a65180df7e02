"""The ticket page says what became of each reply's mail: 送信待ち, 送信済み, 送信失敗 with 再送."""

from __future__ import annotations

import html

import pytest
from django.urls import reverse

from tests.factories import UserFactory
from tests.processes import free_port
from tickets import services as ticket_services
from tickets.mail.models import OutboundMessage
from tickets.models import Channel, InquiryEvent


@pytest.fixture
def unreachable_smtp(settings):
    """Mail goes to a port nobody listens on, and one attempt is all it gets."""
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST, settings.EMAIL_PORT = "127.0.0.1", free_port()
    settings.EMAIL_USE_TLS = settings.EMAIL_USE_SSL = False
    settings.MAIL_SEND_MAX_ATTEMPTS = 1
    return settings


def _messages(page: str) -> str:
    start = page.find('<ul class="messages">')
    return page[start : page.find("</ul>", start)] if start >= 0 else ""


def test_a_failed_reply_shows_on_the_ticket_and_the_console_and_is_sent_again(
    requester_reply,
    agent_a,
    city_official_a,
    login,
    unreachable_smtp,
    mailoutbox,
    django_capture_on_commit_callbacks,
):
    _, inquiry = requester_reply(sender="donor@example.jp", subject="受領証明書について")
    ticket_services.inquiry_assign(actor=agent_a, inquiry=inquiry, assignee=agent_a)
    client = login(agent_a)
    page = client.get(reverse("ticket_detail", args=[inquiry.pk])).content.decode()
    assert "返信（donor@example.jp へメール送信）" in page

    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(
            reverse("ticket_followup", args=[inquiry.pk]),
            {"kind": "reply", "body": "再発行いたします。"},
        )
    assert response.status_code == 302
    out = OutboundMessage.objects.get(inquiry=inquiry, kind="reply")
    assert out.status == OutboundMessage.Status.FAILED

    page = client.get(reverse("ticket_detail", args=[inquiry.pk])).content.decode()
    flash = _messages(page)
    assert "送信待ち" in flash and "送信しました" not in flash
    assert "送信失敗" in page
    assert html.escape(out.last_error) in page
    retry_url = reverse("ticket_reply_retry", args=[inquiry.pk, out.pk])
    assert f'action="{retry_url}"' in page

    console = client.get(reverse("console")).content.decode()
    assert "返信の送信失敗" in console

    # The city sees the state but may not send anything.
    city_page = login(city_official_a).get(reverse("ticket_detail", args=[inquiry.pk]))
    assert "送信失敗" in city_page.content.decode()
    assert retry_url not in city_page.content.decode()
    assert login(city_official_a).post(retry_url).status_code == 403

    # The mail server is back: 再送 from the ticket uses the mail app's own resend.
    unreachable_smtp.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(retry_url)
    assert response.status_code == 302
    out.refresh_from_db()
    assert out.status == OutboundMessage.Status.SENT
    assert [m.to for m in mailoutbox] == [["donor@example.jp"]]
    page = client.get(reverse("ticket_detail", args=[inquiry.pk])).content.decode()
    assert "送信済み" in page and "送信失敗" not in page
    assert "返信の送信失敗" not in client.get(reverse("console")).content.decode()


def test_the_open_page_follows_a_waiting_reply(
    requester_reply, agent_a, city_official_b, login, unreachable_smtp
):
    _, inquiry = requester_reply()
    # The reply is registered; its mail has not been attempted yet (the worker is busy).
    followup = ticket_services.inquiry_reply(actor=agent_a, inquiry=inquiry, body="回答")
    from tickets.mail.services import sending as mail_sending

    out = mail_sending.outbound_reply_queue(inquiry=inquiry, followup_id=followup.pk)
    client = login(agent_a)
    page = client.get(reverse("ticket_detail", args=[inquiry.pk])).content.decode()
    assert f'data-delivery="{followup.pk}" data-delivery-state="pending"' in page
    assert "送信待ち" in page

    url = reverse("ticket_deliveries", args=[inquiry.pk])
    assert client.get(url).json()["deliveries"][str(followup.pk)]["status"] == "pending"
    mail_sending.outbound_send(outbound_pk=out.pk)
    state = client.get(url).json()["deliveries"][str(followup.pk)]
    assert state["status"] == "failed"
    assert "送信失敗" in state["html"]
    assert reverse("ticket_reply_retry", args=[inquiry.pk, out.pk]) in state["html"]
    assert login(city_official_b).get(url).status_code in (403, 404)


@pytest.mark.parametrize(
    ("channel", "email"),
    [(Channel.PHONE, "donor@example.jp"), (Channel.FAX, ""), (Channel.EMAIL, "")],
)
def test_a_ticket_without_a_mail_address_records_the_answer_and_mails_nothing(
    open_inquiry, agent_a, login, mailoutbox, django_capture_on_commit_callbacks, channel, email
):
    inquiry = open_inquiry(channel=channel, submitter_email=email)
    client = login(agent_a)
    page = client.get(reverse("ticket_detail", args=[inquiry.pk])).content.decode()
    assert "対応記録（問合せ者への回答・メール送信なし）" in page
    assert "返信（問合せ者へ送る）" not in page and "へメール送信）" not in page

    with django_capture_on_commit_callbacks(execute=True):
        client.post(
            reverse("ticket_followup", args=[inquiry.pk]),
            {"kind": "reply", "body": "お電話で再発行の手続きをご案内しました。"},
        )
    assert InquiryEvent.objects.filter(inquiry=inquiry, kind="reply").exists()
    assert not OutboundMessage.objects.filter(inquiry=inquiry).exists()
    assert mailoutbox == []
    page = client.get(reverse("ticket_detail", args=[inquiry.pk])).content.decode()
    assert "メールは送信していません" in _messages(page)
    assert "対応記録（問合せ者への回答）" in page and "送信待ち" not in page


def test_another_citys_agent_cannot_send_a_reply_again(requester_reply, agent_a, login, city_b):
    _, inquiry = requester_reply()
    followup = ticket_services.inquiry_reply(actor=agent_a, inquiry=inquiry, body="回答")
    from tickets.mail.services import sending as mail_sending

    out = mail_sending.outbound_reply_queue(inquiry=inquiry, followup_id=followup.pk)
    OutboundMessage.objects.filter(pk=out.pk).update(status="failed")
    agent_b = UserFactory(role="agent", municipalities=[city_b])
    response = login(agent_b).post(reverse("ticket_reply_retry", args=[inquiry.pk, out.pk]))
    assert response.status_code == 404
    assert OutboundMessage.objects.get(pk=out.pk).status == "failed"
