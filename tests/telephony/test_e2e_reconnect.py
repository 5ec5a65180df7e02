"""The browser's sockets survive a server restart under an open page, and the phone bar goes
with the agent from page to page.

The server process is killed (as a crash would) and started again on the same port: the page says
再接続中…, comes back by itself with the current state, and a call that rings after the restart
pops. A session gone meanwhile is refused (4403): the page asks to log in again, once.
"""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

import pytest
from playwright.sync_api import expect

from telephony.models import AgentPresence
from tests.e2e.conftest import restartable_live_server  # noqa: F401
from tests.factories import DonorFactory, DonorPhoneFactory
from tests.telephony.test_e2e_screenpop import LiveTwilio, current_site, open_line  # noqa: F401

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True, serialized_rollback=True)]

BACK_WITHIN_MS = 40_000  # the server's start-up plus at most one ~10 s backoff step


@pytest.fixture
def own_server_page(browser, restartable_live_server):  # noqa: F811
    context = browser.new_context(
        base_url=restartable_live_server.url, locale="ja-JP", timezone_id="Asia/Tokyo"
    )
    context.set_default_timeout(15_000)
    yield context.new_page()
    context.close()


def test_sockets_come_back_after_a_server_restart_and_a_refused_one_asks_to_log_in(
    own_server_page,
    restartable_live_server,  # noqa: F811
    browser_login,
    agent_a,
    city_a,
    open_line,  # noqa: F811
):
    from django.contrib.sessions.models import Session

    page, server = own_server_page, restartable_live_server
    browser_login(page, agent_a)
    page.goto("/console/")
    expect(page.locator("body[data-phone-connected=true]")).to_have_count(1)
    page.click("#phone-bar button[data-presence=available]")
    expect(page.locator("#presence-state")).to_have_text("在席")

    server.kill()
    expect(page.locator("#phone-connection")).to_have_text("再接続中…")
    expect(page.locator("#console-connection")).to_have_text("再接続中…")
    expect(page.locator("body[data-phone-connected=false]")).to_have_count(1)

    server.start()
    expect(page.locator("body[data-phone-connected=true]")).to_have_count(1, timeout=BACK_WITHIN_MS)
    expect(page.locator("#phone-connection")).to_have_text("")
    expect(page.locator("#presence-state")).to_have_text("在席")
    expect(page.locator("#console-connection")).to_have_text("", timeout=BACK_WITHIN_MS)

    LiveTwilio(server.url).ring("+819055554444", open_line.e164)
    expect(page.locator("#incoming-call .pop")).to_contain_text(city_a.name)

    # Logged out while the server was away: the socket is refused, and not retried for ever.
    server.kill()
    expect(page.locator("#phone-connection")).to_have_text("再接続中…")
    Session.objects.all().delete()
    server.start()
    relogin = page.locator("#phone-connection a")
    expect(relogin).to_have_text("ログインし直してください", timeout=BACK_WITHIN_MS)
    # Back to the console after logging in, with whatever search the pop had put in its address.
    login = urlsplit(relogin.get_attribute("href"))
    assert login.path == "/login/"
    assert urlsplit(parse_qs(login.query)["next"][0]).path == "/console/"
    expect(page.locator("#console-connection a")).to_have_text(
        "ログインし直してください", timeout=BACK_WITHIN_MS
    )
    page.wait_for_timeout(1500)  # a retry would have replaced the link with 再接続中…
    expect(relogin).to_have_text("ログインし直してください")


def test_presence_and_the_pop_follow_the_agent_across_pages(
    page,
    browser_login,
    live_server_url,
    agent_a,
    city_a,
    open_line,  # noqa: F811
):
    donor = DonorFactory(municipality=city_a, name="架電 花子")
    DonorPhoneFactory(donor=donor, e164="+819011112222")
    browser_login(page, agent_a)
    page.goto(f"/donors/{donor.pk}/")
    expect(page.locator("body[data-phone-connected=true]")).to_have_count(1)
    page.click("#phone-bar button[data-presence=available]")
    expect(page.locator("#presence-state")).to_have_text("在席")

    LiveTwilio(live_server_url).ring("+819011112222", open_line.e164)
    pop = page.locator("#phone-pop .phone-pop")
    expect(pop).to_contain_text(city_a.name)
    expect(pop).to_contain_text("架電 花子")
    expect(pop.locator("a.to-console")).to_have_attribute("href", "/console/")

    # Another page: a new socket, the same agent, still 在席, the ringing call shown again.
    page.goto("/tickets/")
    expect(page.locator("body[data-phone-connected=true]")).to_have_count(1)
    expect(page.locator("#presence-state")).to_have_text("呼出中")
    expect(page.locator("#phone-pop .phone-pop")).to_contain_text("架電 花子")
    assert AgentPresence.objects.get(user=agent_a).state == AgentPresence.State.RINGING
