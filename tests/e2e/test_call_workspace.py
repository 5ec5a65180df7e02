"""The phone agent's workspace in Chromium, driven by signed Twilio webhooks: the pop's dialog
makes a complete ticket, wrap-up insists on an inquiry, the wallboard shows waits and long
wrap-ups as they happen."""

from __future__ import annotations

import datetime
import re
import xml.etree.ElementTree as ET

import pytest
from django.utils import timezone
from playwright.sync_api import expect

from crm.models import User
from telephony import calendar_services
from telephony.models import AgentPresence, Call, Disposition
from tests.factories import (
    DonationFactory,
    DonorPhoneFactory,
    MunicipalityPhoneNumberFactory,
    ShipmentFactory,
    UserFactory,
)
from tests.telephony.conftest import new_call_sid
from tests.telephony.test_e2e_screenpop import LiveTwilio
from tickets.models import Inquiry, Status

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True, serialized_rollback=True)]

CALLER = "+819012345678"


@pytest.fixture
def open_line(city_a):
    number = MunicipalityPhoneNumberFactory(municipality=city_a, e164="+81134000001")
    # Open round the clock, whatever time the test runs.
    calendar_services.business_calendar_apply_preset(
        municipality=city_a,
        preset="every_day_including_holidays",
        opens=datetime.time(0, 0),
        closes=datetime.time(23, 59, 59),
    )
    return number


@pytest.fixture
def dispositions(db):
    for code, name, order in (
        ("resolved", "回答済み（解決）", 10),
        ("wrong_number", "間違い電話", 60),
        ("silent", "無言・途中切断", 70),
    ):
        Disposition.objects.get_or_create(code=code, defaults={"name": name, "sort_order": order})


def _available(page, browser_login, agent) -> None:
    browser_login(page, agent)
    page.goto("/console/")
    expect(page.locator("body[data-phone-connected=true]")).to_have_count(1)
    page.click("#phone-bar button[data-presence=available]")
    expect(page.locator("#presence-state")).to_have_text("在席")


def test_pop_to_a_complete_ticket_in_one_dialog_by_keyboard(
    page, browser_login, live_server_url, agent_a, city_a, open_line, csp_violations
):
    # Two donors share the number (a couple): the agent picks the second one.
    first = DonorPhoneFactory(donor__municipality=city_a, donor__name="架電 一郎", e164=CALLER)
    second = DonorPhoneFactory(donor__municipality=city_a, donor__name="架電 花子", e164=CALLER)
    donation = DonationFactory(donor=second.donor)
    ShipmentFactory(donation=donation, gift_item__name="小樽産 いくら 500g")
    about = ShipmentFactory(donation=donation, gift_item__name="小樽産 ほたて 1kg")
    assert first.donor_id != second.donor_id
    _available(page, browser_login, agent_a)

    params, _ = LiveTwilio(live_server_url).ring(CALLER, open_line.e164)
    pop = page.locator("#incoming-call .pop")
    expect(pop).to_contain_text("架電 花子")
    page.keyboard.press("Alt+i")  # 問合せを開始 (the first donor's button)
    dialog = page.locator("dialog.call-ticket")
    expect(dialog).to_be_visible()
    expect(dialog.locator("input[name=requester]:checked")).to_be_focused()
    page.keyboard.press("ArrowDown")  # the second donor
    expect(dialog.locator("input[name=requester]:checked")).to_have_value(f"d{second.donor_id}")
    # Her donation and both shipments are offered; the agent picks the ほたて one.
    expect(dialog.locator("fieldset.about")).to_contain_text("小樽産 いくら 500g")
    choices = dialog.locator("fieldset.about label.choice").all_inner_texts()
    position = next(i for i, text in enumerate(choices) if "ほたて" in text)
    page.keyboard.press("Tab")  # 「選ばない」, checked, comes first
    expect(dialog.locator("input[name=about]:checked")).to_have_value("")
    for _ in range(position):
        page.keyboard.press("ArrowDown")
    expect(dialog.locator("input[name=about]:checked")).to_have_value(f"s{about.pk}")
    page.keyboard.press("Alt+c")
    expect(dialog.locator("select[name=category]")).to_be_focused()
    dialog.locator("select[name=category]").select_option("shipping_status")
    page.keyboard.press("Alt+t")
    page.keyboard.type("ほたての到着日")
    with page.expect_navigation():
        page.keyboard.press("Enter")

    call = Call.objects.get(call_sid=params["CallSid"])
    inquiry = Inquiry.objects.select_related("ticket", "category").get(pk=call.inquiry_id)
    assert page.url.endswith(f"/tickets/{inquiry.pk}/")
    assert inquiry.ticket.title == "ほたての到着日"
    assert inquiry.donor_id == second.donor_id and inquiry.assigned_to == agent_a
    assert list(inquiry.shipments.all()) == [about]
    assert list(inquiry.donations.all()) == [donation]
    assert inquiry.category.code == "shipping_status"
    expect(page.locator("main")).to_contain_text("架電 花子")
    assert csp_violations == []


def test_wrap_up_refuses_no_inquiry_then_answers_on_the_spot(
    page, browser_login, live_server_url, agent_a, city_a, open_line, dispositions
):
    DonorPhoneFactory(donor__municipality=city_a, donor__name="架電 次郎", e164=CALLER)
    _available(page, browser_login, agent_a)
    twilio = LiveTwilio(live_server_url)
    params, dial = twilio.ring(CALLER, open_line.e164)
    expect(page.locator("#incoming-call .pop")).to_be_visible()
    twilio.answer_and_hang_up(params, dial, agent_a.pk)

    form = page.locator("#incoming-call .pop form.wrap-up")
    expect(form).to_be_visible()
    expect(page.locator("#presence-state")).to_have_text("後処理")
    form.locator("select[name=disposition]").select_option("resolved")
    form.locator("button[type=submit]").click()
    expect(form.locator(".errorlist")).to_contain_text("問合せが記録されていません")
    expect(page.locator("#presence-state")).to_have_text("後処理")

    form.locator("input[name=inquiry][value=quick]").check()
    form.locator("select[name=answer_category]").select_option("one_stop")
    form.locator("textarea[name=answer_note]").fill("ワンストップ特例の申請期限を案内")
    form.locator("button[type=submit]").click()
    expect(page.locator("#incoming-call .pop")).to_have_count(0)
    expect(page.locator("#presence-state")).to_have_text("在席")

    call = Call.objects.select_related("inquiry").get(call_sid=params["CallSid"])
    assert call.disposition.code == "resolved"
    assert call.inquiry.status == Status.RESOLVED
    assert call.inquiry.category.code == "one_stop"
    assert call.inquiry.donor.name == "架電 次郎"
    assert AgentPresence.objects.get(user=agent_a).state == AgentPresence.State.AVAILABLE


def test_wallboard_shows_waiting_calls_and_a_long_wrap_up(
    page, browser_login, live_server_url, supervisor, city_a, open_line
):
    settle = UserFactory(username="agent_long", role=User.Role.AGENT, municipalities=[city_a])
    crossing = UserFactory(username="agent_cross", role=User.Role.AGENT, municipalities=[city_a])
    # The default threshold is 180 s: one agent well past it, one about to cross it.
    AgentPresence.objects.create(
        user=settle,
        state=AgentPresence.State.WRAP_UP,
        since=timezone.now() - datetime.timedelta(minutes=9),
    )
    browser_login(page, supervisor)
    AgentPresence.objects.create(
        user=crossing,
        state=AgentPresence.State.WRAP_UP,
        since=timezone.now() - datetime.timedelta(seconds=165),
    )
    page.goto(f"/telephony/wallboard/?municipality={city_a.pk}")
    expect(page.locator("#wallboard-connection[data-live=open]")).to_have_count(1)
    people = page.locator("#agent-people")
    expect(people.locator("tr.overdue", has_text=str(settle))).to_contain_text("後処理超過")
    expect(people.locator("tr", has_text=str(crossing))).not_to_have_class("overdue")
    expect(page.locator("#waiting-calls")).to_contain_text("待ち呼はありません")

    # A caller arrives with nobody free: the call waits, and the board shows it live.
    twilio = LiveTwilio(live_server_url)
    params = {"CallSid": new_call_sid(), "From": "+819033334444", "To": open_line.e164}
    menu = ET.fromstring(twilio.post("/telephony/webhooks/voice/inbound/", params))
    queued = ET.fromstring(
        twilio.post(menu.find("Gather").get("action"), {**params, "Digits": "1"})
    )
    assert queued.find("Enqueue") is not None
    row = page.locator("#waiting-calls tr", has_text="090-3333-4444")
    expect(row).to_contain_text(city_a.name)
    # The wait keeps counting in the browser between pushes.
    expect(row.locator("td").nth(3)).to_have_text(re.compile(r"^[2-9]秒$"), timeout=10_000)

    # The second agent crosses the threshold while the supervisor watches.
    expect(people.locator("tr", has_text=str(crossing))).to_have_class("overdue", timeout=30_000)
    expect(people.locator("tr", has_text=str(crossing))).to_contain_text("後処理超過")
