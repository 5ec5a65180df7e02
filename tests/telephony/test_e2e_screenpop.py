"""A signed Twilio webhook makes the screen pop appear in a logged-in agent's browser."""

from __future__ import annotations

import urllib.parse
import urllib.request
import xml.etree.ElementTree as ET

import pytest
from playwright.sync_api import expect

import config.settings as project_settings
from crm.templatetags.ja import ja_date
from telephony import calendar_services
from tests.factories import DonorPhoneFactory, ShipmentFactory
from tests.telephony.conftest import new_call_sid

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True, serialized_rollback=True)]


class LiveTwilio:
    """Posts signed webhooks to the live server as Twilio would, through its public base URL."""

    def __init__(self, server_url: str) -> None:
        from twilio.request_validator import RequestValidator

        # The server process runs with the project's settings as loaded from the environment,
        # not the overrides of this test process.
        self.public_base = project_settings.TWILIO_PUBLIC_BASE_URL.rstrip("/")
        self.validator = RequestValidator(project_settings.TWILIO_AUTH_TOKEN)
        self.server_url = server_url

    def post(self, url: str, params: dict[str, str]) -> str:
        if not url.startswith("http"):
            url = self.public_base + url
        signature = self.validator.compute_signature(url, params)
        target = self.server_url + url.removeprefix(self.public_base)
        request = urllib.request.Request(
            target,
            data=urllib.parse.urlencode(params).encode(),
            headers={"X-Twilio-Signature": signature},
            method="POST",
        )
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.read().decode()

    def ring(self, caller: str, to: str) -> tuple[dict[str, str], ET.Element]:
        """Dial in and press 1; returns the call's parameters and the <Dial> ringing agents."""
        params = {"CallSid": new_call_sid(), "From": caller, "To": to, "CallStatus": "ringing"}
        menu = ET.fromstring(self.post("/telephony/webhooks/voice/inbound/", params))
        action = menu.find("Gather").get("action")
        routed = ET.fromstring(self.post(action, {**params, "Digits": "1"}))
        assert routed.find("Dial") is not None
        return params, routed.find("Dial")

    def answer_and_hang_up(self, params: dict[str, str], dial: ET.Element, agent_id: int) -> None:
        """The agent picks up their leg; later the caller hangs up."""
        target = next(t for t in dial if t.text == f"agent-{agent_id}")
        leg = {
            **params,
            "CallSid": params["CallSid"] + "-leg",
            "ParentCallSid": params["CallSid"],
            "CallStatus": "in-progress",
            "Direction": "outbound-dial",
        }
        self.post(target.get("url"), leg)
        self.post(
            target.get("statusCallback"), {**leg, "CallStatus": "completed", "SequenceNumber": "2"}
        )
        self.post(
            "/telephony/webhooks/status/call/",
            {**params, "CallStatus": "completed", "SequenceNumber": "5", "CallDuration": "95"},
        )


def _states(area) -> dict[str, str]:
    return {
        node.get_attribute("data-state"): node.inner_text()
        for node in area.locator("[data-state]").all()
    }


@pytest.fixture(autouse=True)
def current_site(db, settings):
    """The sites framework's row, which the log-in page needs.

    After an earlier transactional test's flush, the serialized rollback does not reach the
    connection these browser tests use (Playwright runs an event loop in this thread, so
    Django's connection is a different object), so the row may be missing here.
    """
    from django.contrib.sites.models import Site

    Site.objects.get_or_create(
        pk=settings.SITE_ID, defaults={"domain": "example.com", "name": "example.com"}
    )


@pytest.fixture
def open_line(line_a, city_a):
    # Open round the clock, whatever time the test runs.
    import datetime

    calendar_services.business_calendar_apply_preset(
        municipality=city_a,
        preset="every_day_including_holidays",
        opens=datetime.time(0, 0),
        closes=datetime.time(23, 59, 59),
    )
    return line_a


def test_signed_webhook_pops_the_caller_in_the_agents_browser(
    page, browser_login, live_server_url, agent_a, city_a, open_line, csp_violations
):
    shipment = ShipmentFactory(
        donation__donor__municipality=city_a,
        donation__donor__name="架電 太郎",
        gift_item__municipality=city_a,
        gift_item__name="小樽産 ほたて 1kg",
    )
    # The second delivery's number fails its check digit (12345678901 mod 7 is 3, not 2).
    unchecked = ShipmentFactory(
        donation=shipment.donation,
        gift_item=shipment.gift_item,
        delivery_number=2,
        tracking_number="123456789012",
        tracking_valid=False,
    )
    DonorPhoneFactory(donor=shipment.donation.donor, e164="+819012345678")
    browser_login(page, agent_a)
    page.goto("/console/")
    expect(page.locator("body[data-phone-connected=true]")).to_have_count(1)
    page.click("#phone-bar button[data-presence=available]")
    expect(page.locator("#presence-state")).to_have_text("在席")

    LiveTwilio(live_server_url).ring("+819012345678", open_line.e164)

    pop = page.locator("#incoming-call .pop")
    expect(pop).to_contain_text(city_a.name)
    expect(pop.locator(".greeting")).to_have_text(city_a.greeting)
    expect(pop).to_contain_text("架電 太郎")
    expect(pop).to_contain_text("小樽産 ほたて 1kg")
    # One tracking link: none for the number whose check digit fails, which is flagged instead.
    expect(pop.locator("a", has_text="追跡")).to_have_attribute(
        "href", shipment.carrier.tracking_url(shipment.tracking_number)
    )
    expect(pop.locator("[data-tracking-invalid]")).to_have_text("伝票番号の検査数字が一致しません")
    # The server sends the amount and the date raw; the pop writes them the Japanese way.
    donation = shipment.donation
    expect(pop).to_contain_text(f"{ja_date(donation.donated_at)} 楽天ふるさと納税")
    expect(pop).to_contain_text("¥10,000・")
    # Word for word what the donor page says about the same donation and shipment.
    pop_states = _states(pop)
    assert set(pop_states) == {
        f"donation-{donation.id}",
        f"shipment-{shipment.id}",
        f"shipment-{unchecked.id}",
    }
    donor_page = page.context.new_page()
    donor_page.goto(f"/donors/{donation.donor_id}/")
    assert _states(donor_page.locator("main")) == pop_states
    donor_page.close()
    pop.locator("button.start-ticket").click()
    expect(page.locator("dialog.call-ticket")).to_be_visible()
    with page.expect_navigation():
        page.keyboard.press("Enter")
    assert "/tickets/" in page.url
    expect(page.locator("main")).to_contain_text("架電 太郎")
    # The websocket, the pop and the ticket page did all that under the policy.
    assert csp_violations == []


def test_unknown_caller_fills_the_search_box(
    page, browser_login, live_server_url, agent_a, open_line
):
    browser_login(page, agent_a)
    page.goto("/console/")
    expect(page.locator("body[data-phone-connected=true]")).to_have_count(1)
    page.click("#phone-bar button[data-presence=available]")
    expect(page.locator("#presence-state")).to_have_text("在席")
    LiveTwilio(live_server_url).ring("+819099998888", open_line.e164)
    expect(page.locator("#incoming-call .pop .no-match")).to_be_visible()
    search = page.locator("#universal-search input[name=q]")
    expect(search).to_have_value("090-9999-8888")
    expect(search).to_be_focused()


def test_wrap_up_form_after_the_call_records_the_code_and_frees_the_agent(
    page, browser_login, live_server_url, agent_a, city_a, open_line, resolved
):
    from telephony.models import AgentPresence, Call
    from tickets.models import Category

    # Seeded by migration; put back in case an earlier transactional test's flush took it.
    Category.objects.get_or_create(code="address_change", defaults={"name": "住所・氏名変更"})
    browser_login(page, agent_a)
    page.goto("/console/")
    expect(page.locator("body[data-phone-connected=true]")).to_have_count(1)
    page.click("#phone-bar button[data-presence=available]")
    expect(page.locator("#presence-state")).to_have_text("在席")
    twilio = LiveTwilio(live_server_url)
    params, dial = twilio.ring("+819077776666", open_line.e164)
    expect(page.locator("#incoming-call .pop")).to_be_visible()

    twilio.answer_and_hang_up(params, dial, agent_a.pk)
    form = page.locator("#incoming-call .pop form.wrap-up")
    expect(form).to_be_visible()
    expect(page.locator("#presence-state")).to_have_text("後処理")
    # The code is required: submitting without one keeps the form (the browser refuses).
    form.locator("button[type=submit]").click()
    expect(form).to_be_visible()
    form.locator("select[name=disposition]").select_option(resolved.code)
    form.locator("textarea[name=note]").fill("住所変更の案内済み")
    form.locator("input[name=inquiry][value=quick]").check()
    form.locator("select[name=answer_category]").select_option("address_change")
    form.locator("textarea[name=answer_note]").fill("住所変更の手続きを案内")
    form.locator("button[type=submit]").click()

    expect(page.locator("#incoming-call .pop")).to_have_count(0)
    expect(page.locator("#presence-state")).to_have_text("在席")
    call = Call.objects.get(call_sid=params["CallSid"])
    assert call.disposition == resolved
    assert call.disposition_note == "住所変更の案内済み"
    assert AgentPresence.objects.get(user=agent_a).state == AgentPresence.State.AVAILABLE
