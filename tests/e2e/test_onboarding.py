"""An operator admin onboards a municipality through the pages in Chromium; the result works: a
signed Twilio call to its new number hears its greeting, a mail to its new address becomes its
ticket."""

from __future__ import annotations

import xml.etree.ElementTree as ET

import pytest
from django.test import Client
from django.urls import reverse
from playwright.sync_api import expect
from twilio.request_validator import RequestValidator

from crm.models import AuditLog, Municipality
from tests.factories import UserFactory
from tests.tickets.mail.conftest import make_mail
from tickets.mail.models import InboundMessage
from tickets.mail.services import inbound

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True, serialized_rollback=True)]

PUBLIC_BASE = "https://calls.example.jp"
AUTH_TOKEN = "e2e-twilio-auth-token"


def test_onboarding_through_the_pages_makes_a_working_municipality(
    page, browser_login, operator_admin, csp_violations, settings
):
    agent = UserFactory(username="fujisawa_agent", role="agent")
    browser_login(page, operator_admin)
    page.goto("/administration/")
    with page.expect_navigation():
        page.click("text=新しい自治体の受付開始（順番に入力）")
    form = page.locator("form#onboard")
    legends = form.locator("legend").all_inner_texts()
    assert [t.split(". ", 1)[1] for t in legends][:4] == [
        "自治体",
        "着信番号",
        "受信メールアドレス",
        "受付時間",
    ]
    values = {
        "code": "142051",
        "name": "藤沢市",
        "name_kana": "フジサワシ",
        "prefecture": "神奈川県",
        "answer_name": "藤沢市ふるさと納税コールセンター",
        "contract_start": "2026-04-01",
        "contract_end": "2027-03-31",
        "phone_number": "0466-25-1111",
        "inbound_address": "furusato@city.fujisawa.example.jp",
        "opens": "00:00",
        "closes": "23:59",
        "contact_name": "藤沢 太郎",
        "contact_department": "財務部",
    }
    for name, value in values.items():
        form.locator(f"[name={name}]").fill(value)
    form.locator("select[name=calendar_preset]").select_option("every_day_including_holidays")
    form.locator(f"input[name=staff][value='{agent.pk}']").check()
    with page.expect_navigation():
        form.locator("button[type=submit]").click()

    expect(page.locator("h1")).to_contain_text("藤沢市（142051）")
    expect(page.locator(".messages")).to_contain_text("受付を開始できる状態になりました")
    expect(page.locator("#numbers")).to_contain_text("+81466251111")
    webhook = page.locator("#numbers dl.webhooks input").first.input_value()
    assert webhook.endswith("/telephony/webhooks/voice/inbound/")
    expect(page.locator("#calendar-preview tbody tr")).to_have_count(14)
    expect(page.locator("#contacts")).to_contain_text("藤沢 太郎")
    expect(page.locator("#staff")).to_contain_text("fujisawa_agent")
    assert csp_violations == []

    city = Municipality.objects.get(code="142051")
    assert list(city.staff.all()) == [agent]
    assert AuditLog.objects.filter(detail__what="municipality.create", user=operator_admin).exists()

    # Twilio calls the new number: signed as Twilio signs, answered with the new greeting.
    settings.TWILIO_PUBLIC_BASE_URL = PUBLIC_BASE
    settings.TWILIO_AUTH_TOKEN = AUTH_TOKEN
    settings.TELEPHONY_SAY_VOICE = ""
    path = reverse("telephony:voice_inbound")
    params = {"CallSid": "CAe2eonboard", "To": "+81466251111", "From": "+819011112222"}
    signature = RequestValidator(AUTH_TOKEN).compute_signature(PUBLIC_BASE + path, params)
    answered = Client().post(path, params, HTTP_X_TWILIO_SIGNATURE=signature)
    assert answered.status_code == 200
    said = " ".join(el.text or "" for el in ET.fromstring(answered.content).iter("Say"))
    assert "お電話ありがとうございます。藤沢市ふるさと納税コールセンターでございます。" in said

    # A mail delivered to the new address (as the MTA pipe hands it over) becomes its ticket.
    [message] = inbound.inbound_receive(
        raw=make_mail(to="furusato@city.fujisawa.example.jp", subject="寄附金受領証明書について"),
        source=InboundMessage.Source.PIPE,
    )
    assert message.status == InboundMessage.Status.PROCESSED
    assert message.inquiry.municipality == city

    # The agent assigned on the page sees that ticket in the browser.
    page.context.clear_cookies()
    browser_login(page, agent)
    page.goto("/tickets/")
    expect(page.locator("main")).to_contain_text("寄附金受領証明書について")
