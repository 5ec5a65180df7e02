"""A signed Twilio webhook makes the screen pop appear in a logged-in agent's browser."""

from __future__ import annotations

import urllib.parse
import urllib.request
import xml.etree.ElementTree as ET

import pytest
from playwright.sync_api import expect

import config.settings as project_settings
from telephony import services
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

    def ring(self, caller: str, to: str) -> None:
        params = {"CallSid": new_call_sid(), "From": caller, "To": to, "CallStatus": "ringing"}
        menu = ET.fromstring(self.post("/telephony/webhooks/voice/inbound/", params))
        action = menu.find("Gather").get("action")
        routed = ET.fromstring(self.post(action, {**params, "Digits": "1"}))
        assert routed.find("Dial") is not None


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

    services.business_calendar_apply_preset(
        municipality=city_a,
        preset="every_day_including_holidays",
        opens=datetime.time(0, 0),
        closes=datetime.time(23, 59, 59),
    )
    return line_a


def test_signed_webhook_pops_the_caller_in_the_agents_browser(
    page, browser_login, live_server_url, agent_a, city_a, open_line
):
    shipment = ShipmentFactory(
        donation__donor__municipality=city_a,
        donation__donor__name="架電 太郎",
        gift_item__municipality=city_a,
        gift_item__name="小樽産 ほたて 1kg",
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
    expect(pop.locator("a", has_text="追跡")).to_have_attribute(
        "href", shipment.carrier.tracking_url(shipment.tracking_number)
    )
    with page.expect_navigation():
        pop.locator("form.start-ticket button").click()
    assert "/tickets/" in page.url
    expect(page.locator("main")).to_contain_text("架電 太郎")


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
