"""An agent marks a damaged-gift ticket urgent; the city official gets the mail (a real SMTP
server), logs in through its link, acknowledges with an instruction, and the agent's open ticket
page shows the instruction without reloading."""

from __future__ import annotations

import email
import re

import pytest
from playwright.sync_api import expect

from escalation.models import Escalation, EscalationRule, Kind
from tests.e2e.conftest import LiveServer, _test_database_url
from tests.escalation.conftest import contacts_a  # noqa: F401 (fixture)
from tests.mailserver import SmtpSink, running_smtp
from tickets import services as ticket_services
from tickets.models import Category

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True, serialized_rollback=True)]

INSTRUCTION = "代替品を本日中に発送してください。事業者には市から連絡します。"


@pytest.fixture
def smtp_sink():
    sink = SmtpSink()
    with running_smtp(sink) as port:
        sink.port = port
        yield sink


@pytest.fixture
def escalation_server(smtp_sink):
    """A server of this test's own that mails through the SMTP server and runs tasks at once."""
    server = LiveServer(_test_database_url())
    server.env.update(
        {
            "EMAIL_BACKEND": "django.core.mail.backends.smtp.EmailBackend",
            "EMAIL_HOST": "127.0.0.1",
            "EMAIL_PORT": str(smtp_sink.port),
            "CELERY_TASK_ALWAYS_EAGER": "true",
            "ESCALATION_SITE_URL": server.url,
            "ESCALATION_MAIL_FROM": "escalation@cc.example.jp",
        }
    )
    server.start()
    try:
        yield server
    finally:
        server.stop()


def test_urgent_damaged_gift_reaches_the_city_and_its_instruction_the_agent_live(
    browser,
    browser_login,
    escalation_server,
    smtp_sink,
    city_a,
    agent_a,
    contacts_a,  # noqa: F811
):
    damaged = Category.objects.get(code="damaged")
    rule = EscalationRule.objects.create(
        municipality=city_a,
        name="破損（緊急）",
        kind=Kind.DAMAGED_GIFT,
        severities=["urgent"],
        on_reclassify=True,
    )
    rule.categories.set([damaged])
    inquiry = ticket_services.inquiry_open(
        actor=agent_a,
        municipality=city_a,
        channel="phone",
        title="いくらの瓶が割れていた",
        description="山田 太郎様。箱がつぶれて瓶が割れていた。",
        category="damaged",
    )

    agent_context = browser.new_context(
        base_url=escalation_server.url, locale="ja-JP", timezone_id="Asia/Tokyo"
    )
    agent_context.set_default_timeout(15_000)
    agent = agent_context.new_page()
    refused: list[str] = []

    def on_console(message) -> None:
        if "Content Security Policy" in message.text:
            refused.append(message.text)

    agent.on("console", on_console)
    browser_login(agent, agent_a)
    agent.goto(f"/tickets/{inquiry.pk}/")
    agent.select_option("select[name=severity]", "urgent")
    with agent.expect_navigation():
        agent.click("#status-submit")
    expect(agent.locator("#escalation-panel")).to_contain_text("確認待ち")
    # From here on the agent's page is never reloaded.
    agent.evaluate("window.__sameDocument = true")
    expect(agent.locator("#presence")).to_have_count(1)

    # The city official's mail, with its log-in link and no personal data.
    assert smtp_sink.received.wait(15), "no mail reached the SMTP server"
    [raw] = smtp_sink.messages
    message = email.message_from_bytes(raw)
    assert message["To"] == "primary@city.otaru.example.jp"
    body = message.get_payload(decode=True).decode(message.get_content_charset())
    assert message.get_content_charset() == "iso-2022-jp"
    assert "山田" not in body
    link = re.search(r"http://127\.0\.0\.1:\d+/escalation/\d+/", body).group(0)
    escalation = Escalation.objects.get(inquiry=inquiry)
    assert link.endswith(f"/escalation/{escalation.pk}/")

    city_context = browser.new_context(
        base_url=escalation_server.url, locale="ja-JP", timezone_id="Asia/Tokyo"
    )
    city_context.set_default_timeout(15_000)
    city = city_context.new_page()
    city.on("console", on_console)
    city.goto(link)
    assert "/login/" in city.url  # the link asks for a log-in first
    browser_login(city, contacts_a[0].user)
    city.goto(link)
    expect(city.locator("h1")).to_contain_text("返礼品の破損・傷み")
    city.fill("textarea[name=body]", INSTRUCTION)
    with city.expect_navigation():
        city.click("#instruct")
    expect(city.locator("#escalation-status")).to_have_text("確認済")
    expect(city.locator("#instructions")).to_contain_text(INSTRUCTION)

    # The agent sees the city's instruction on the open page, without a reload.
    expect(agent.locator("#escalation-panel")).to_contain_text(INSTRUCTION)
    expect(agent.locator("#escalation-panel")).to_contain_text("確認済")
    expect(agent.locator("#timeline")).to_contain_text(INSTRUCTION)  # and on the timeline
    expect(agent.locator("#timeline")).to_contain_text("市の指示")
    assert agent.evaluate("window.__sameDocument") is True
    escalation.refresh_from_db()
    assert escalation.status == "acknowledged"
    assert refused == []  # the panel, its script and the city's pages under the CSP
    agent_context.close()
    city_context.close()
