"""The pages work under their Content-Security-Policy in Chromium, which enforces it."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from tickets import services
from tickets.models import Channel

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True, serialized_rollback=True)]


def test_wallboard_filter_and_styles_work_without_inline_code(
    page, browser_login, supervisor, city_a, city_b, csp_violations
):
    browser_login(page, supervisor)
    page.goto("/telephony/wallboard/")
    # The tiles' rules come from a stylesheet of ours now, not an inline <style>.
    assert page.locator("#wallboard").evaluate("e => getComputedStyle(e).display") == "grid"
    with page.expect_navigation():
        page.select_option("select[name=municipality]", str(city_b.pk))
    assert re.search(rf"[?&]municipality={city_b.pk}\b", page.url)
    expect(page.locator("#wallboard-connection")).to_be_attached()
    assert csp_violations == []


def test_an_injected_inline_script_is_refused_and_reported(
    page, browser_login, agent_a, city_a, csp_violations
):
    inquiry = services.inquiry_open(
        actor=agent_a, municipality=city_a, channel=Channel.PHONE, title="住所変更", description=""
    )
    browser_login(page, agent_a)
    page.goto(f"/tickets/{inquiry.pk}/")
    expect(page.locator("#timeline")).to_be_visible()
    assert csp_violations == []
    # As markup injected into a page would: the browser does not run it, and says so.
    page.evaluate(
        """() => {
            const s = document.createElement("script");
            s.textContent = "window.injected = true";
            document.body.append(s);
        }"""
    )
    assert page.evaluate("() => window.injected === true") is False
    for _ in range(50):  # the console report arrives asynchronously
        if csp_violations:
            break
        page.wait_for_timeout(100)
    assert any("inline script" in v for v in csp_violations), csp_violations
