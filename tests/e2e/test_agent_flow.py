"""An agent takes a call end to end in a real browser; another city cannot see the result."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from tests.factories import (
    DonorFactory,
    DonorPhoneFactory,
    ShipmentFactory,
    tracking_with_check_digit,
)
from tickets.models import Inquiry, InquiryEvent, Status

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True, serialized_rollback=True)]


def test_agent_call_to_closed_ticket_and_other_city_is_refused(
    page, browser, browser_login, live_server_url, agent_a, city_a, city_official_b, csp_violations
):
    donor = DonorFactory(municipality=city_a, name="山田 太郎", name_kana="ヤマダ タロウ")
    DonorPhoneFactory(donor=donor, e164="+819012345678")
    tracking = tracking_with_check_digit("12345678901")
    shipment = ShipmentFactory(donation__donor=donor, tracking_number=tracking)
    ShipmentFactory(
        donation=shipment.donation, tracking_number=tracking_with_check_digit("12345678902")
    )

    browser_login(page, agent_a)

    # Find the caller by the number as they read it out, in full-width digits.
    page.goto("/console/")
    page.keyboard.press("/")
    expect(page.locator("#q")).to_be_focused()
    page.locator("#q").fill("０９０−１２３４−５６７８")
    expect(page.locator(".hits a").first).to_contain_text("山田 太郎")
    page.locator("#q").press("Enter")
    page.wait_for_url(re.compile(rf"/donors/{donor.id}/"))
    expect(page.locator(".flags, h1").first).to_be_visible()

    # A ticket about one of the two shipments, links prefilled.
    page.locator(f"#shipment-{shipment.id} >> text=この配送で問合せ").click()
    page.wait_for_url(re.compile(r"/tickets/new/"))
    checked = page.locator("input[name=shipments]:checked")
    expect(checked).to_have_count(1)
    expect(checked).to_have_value(str(shipment.id))
    page.select_option("select[name=category]", "damaged")
    page.fill("input[name=title]", "いくらの容器が割れていた")
    page.fill("textarea[name=description]", "箱がつぶれて届いた。写真あり。")
    page.locator("textarea[name=description]").press("Control+Enter")
    page.wait_for_url(re.compile(r"/tickets/\d+/$"))
    inquiry = Inquiry.objects.get(donor=donor)
    assert list(inquiry.shipments.values_list("id", flat=True)) == [shipment.id]

    # Insert a canned reply: variables come filled from the ticket's records.
    page.locator("#canned-q").fill("破損")
    expect(page.locator("#canned-text")).to_contain_text("山田 太郎 様")
    expect(page.locator("#canned-text")).to_contain_text(
        f"{tracking[:4]}-{tracking[4:8]}-{tracking[8:]}"
    )
    page.click("#canned-insert")
    body = page.locator("#reply-body")
    expect(body).to_have_value(re.compile("山田 太郎 様"))
    expect(page.locator("input[name=kind][value=reply]")).to_be_checked()
    body.press("Control+Enter")
    expect(page.locator("#timeline")).to_contain_text("山田 太郎 様")

    page.select_option("#status-select", str(Status.CLOSED))
    page.click("#status-submit")
    expect(page.locator("#ticket-status")).to_have_text("完了")
    inquiry.refresh_from_db()
    assert inquiry.status == Status.CLOSED
    assert InquiryEvent.objects.filter(inquiry=inquiry, kind="reply").count() == 1
    # The console, donor and ticket pages did all that under the Content-Security-Policy.
    assert csp_violations == []

    # A city official of another municipality: the page and the API both refuse.
    context = browser.new_context(base_url=live_server_url)
    other = context.new_page()
    browser_login(other, city_official_b)
    response = other.goto(f"/tickets/{inquiry.pk}/")
    assert response.status in (403, 404)
    assert "いくらの容器" not in other.content()
    api = other.request.get(f"/api/tickets/{inquiry.pk}/")
    assert api.status in (403, 404)
    assert "いくらの容器" not in api.text()
    context.close()
