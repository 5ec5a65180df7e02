"""Two agents on one ticket see each other live (Channels over the real server)."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from tests.factories import UserFactory
from tickets import services
from tickets.models import Channel

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True, serialized_rollback=True)]
LIVE_MS = 15_000


def test_other_agent_viewing_then_editing_is_shown(
    page, browser, browser_login, live_server_url, agent_a, city_a
):
    colleague = UserFactory(
        username="agent_a2", display_name="佐藤", role="agent", municipalities=[city_a]
    )
    inquiry = services.inquiry_open(
        actor=agent_a, municipality=city_a, channel=Channel.PHONE, title="住所変更", description=""
    )
    browser_login(page, agent_a)
    page.goto(f"/tickets/{inquiry.pk}/")
    presence = page.locator("#presence")
    expect(presence).to_be_hidden()

    context = browser.new_context(base_url=live_server_url)
    other = context.new_page()
    browser_login(other, colleague)
    other.goto(f"/tickets/{inquiry.pk}/")
    # Live updates cross two browser contexts, the server and Redis: on a loaded machine that
    # can take longer than Playwright's default 5 s.
    expect(presence).to_have_text("⚠ 佐藤さんも表示しています", timeout=LIVE_MS)
    expect(other.locator("#presence")).to_have_text(
        "⚠ agent_aさんも表示しています", timeout=LIVE_MS
    )

    other.locator("#reply-body").fill("新しい住所は")
    expect(presence).to_have_text("⚠ 佐藤さんが編集中です", timeout=LIVE_MS)
    expect(presence).to_have_class("presence editing")

    context.close()
    expect(presence).to_be_hidden(timeout=LIVE_MS)
