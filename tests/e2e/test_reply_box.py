"""The reply box in a real browser: 定型文 placeholders block Ctrl+Enter; a reply's mail failing
while the page is open shows without reloading."""

from __future__ import annotations

import re
import socket

import pytest
from playwright.sync_api import expect

from crm.models import MunicipalityEmailAddress
from tests.factories import DonorFactory
from tickets import services as ticket_services
from tickets.mail.models import Mailbox, OutboundMessage
from tickets.mail.services import sending as mail_sending
from tickets.models import InquiryEvent

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True, serialized_rollback=True)]


def test_t_enter_ctrl_enter_does_not_send_placeholders(page, browser_login, agent_a, city_a):
    donor = DonorFactory(municipality=city_a, name="山田 太郎")
    # A ticket about a shipment that is not linked: the 定型文 cannot fill its shipment fields.
    inquiry = ticket_services.inquiry_open(
        actor=agent_a,
        municipality=city_a,
        channel="phone",
        title="いつ届く？",
        description="発送状況を知りたい",
        donor=donor,
    )
    browser_login(page, agent_a)
    page.goto(f"/tickets/{inquiry.pk}/")
    page.locator("body").press("t")
    expect(page.locator("#canned-q")).to_be_focused()
    page.keyboard.type("発送状況")
    expect(page.locator("#canned-missing")).to_contain_text("{伝票番号}")
    page.keyboard.press("Enter")
    body = page.locator("#reply-body")
    expect(body).to_have_value(re.compile(r"\{伝票番号\}"))
    body.press("Control+Enter")
    error = page.locator("#reply-error")
    expect(error).to_be_visible()
    expect(error).to_contain_text(
        "未入力の変数があります: {返礼品名} {発送日} {配送業者} {伝票番号}"
    )
    expect(body).to_have_value(re.compile(r"\{伝票番号\}"))
    assert not InquiryEvent.objects.filter(inquiry=inquiry, kind="reply").exists()

    body.fill("山田 太郎 様\n返礼品の発送状況を事業者に確認し、折り返しご連絡いたします。")
    expect(error).to_be_hidden()
    body.press("Control+Enter")
    expect(page.locator("#timeline")).to_contain_text("折り返しご連絡いたします")
    expect(page.locator(".messages")).to_contain_text("メールは送信していません")
    assert InquiryEvent.objects.filter(inquiry=inquiry, kind="reply").count() == 1


def test_a_reply_failing_while_the_page_is_open_is_shown(
    page, browser_login, agent_a, city_a, settings
):
    address = MunicipalityEmailAddress.objects.create(
        municipality=city_a, address="furusato@otaru.example.jp"
    )
    Mailbox.objects.create(address=address, display_name="小樽市ふるさと納税")
    inquiry = ticket_services.inquiry_open(
        actor=agent_a,
        municipality=city_a,
        channel="email",
        title="受領証明書について",
        description="再発行できますか",
        submitter_email="donor@example.jp",
    )
    browser_login(page, agent_a)
    page.goto(f"/tickets/{inquiry.pk}/")
    page.locator("input[name=kind][value=reply]").check()
    page.locator("#reply-body").fill("再発行いたします。")
    page.locator("#reply-body").press("Control+Enter")
    expect(page.locator(".messages")).to_contain_text("送信待ち")
    expect(page.locator("[data-delivery-state=pending]")).to_contain_text("送信待ち")

    # The mail worker's attempt fails (nobody listens on the mail port).
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST, settings.EMAIL_PORT = "127.0.0.1", port
    settings.MAIL_SEND_MAX_ATTEMPTS = 1
    out = OutboundMessage.objects.get(inquiry=inquiry)
    assert mail_sending.outbound_send(outbound_pk=out.pk).status == "failed"

    expect(page.locator("[data-delivery-state=failed]")).to_contain_text("送信失敗")
    expect(page.locator("#delivery-alert")).to_be_visible()
    expect(page.locator("[data-delivery-state=failed] button")).to_have_text("再送")
