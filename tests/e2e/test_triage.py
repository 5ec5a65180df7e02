"""The ticket list in a real browser: a saved view and a bulk assignment, a due time breached
across a holiday, the city official's search; and axe-core's check of the main pages."""

from __future__ import annotations

import datetime
import re

import pytest
from axe_playwright_python.sync_playwright import Axe
from django.utils import timezone
from playwright.sync_api import expect

from telephony.models import CalendarException, WeeklyHours
from telephony.sla import inquiry_due_times_refresh
from tests.factories import (
    DonorFactory,
    DonorPhoneFactory,
    ProviderFactory,
    ShipmentFactory,
    UserFactory,
)
from tickets import services as ticket_services
from tickets.models import Category, Inquiry, SavedView, SlaTarget

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True, serialized_rollback=True)]


def _open(actor, municipality, title, **fields) -> Inquiry:
    return ticket_services.inquiry_open(
        actor=actor,
        municipality=municipality,
        channel="phone",
        title=title,
        description=f"{title}の内容",
        **fields,
    )


def test_saved_view_and_bulk_assign(page, browser_login, agent_a, city_a, city_b, supervisor):
    colleague = UserFactory(username="colleague_a", role="agent", municipalities=[city_a])
    first = _open(agent_a, city_a, "破損の件その一", category="damaged")
    second = _open(agent_a, city_a, "破損の件その二", category="damaged")
    kept = _open(agent_a, city_a, "カタログの件", category="catalogue")
    foreign = _open(supervisor, city_b, "福山の破損", category="damaged")
    browser_login(page, agent_a)

    page.goto("/console/")
    page.locator(f'[data-unassigned="{city_a.id}"]').click()
    expect(page.locator("table.ticket-list tbody tr")).to_have_count(3)
    expect(page.locator("table.ticket-list")).not_to_contain_text("福山の破損")

    # Narrow to 破損 and save it as a view of one's own.
    page.select_option("select[name=category]", "damaged")
    page.click("form.filters button[type=submit] >> text=絞り込む")
    expect(page.locator("table.ticket-list tbody tr")).to_have_count(2)
    page.fill("#save-view input[name=name]", "破損の未割当")
    page.click("#save-view button[type=submit]")
    expect(page.locator("#saved-views")).to_contain_text("破損の未割当")
    assert SavedView.objects.get(user=agent_a).query

    page.goto("/tickets/")
    page.locator("#saved-views a", has_text="破損の未割当").click()
    rows = page.locator("table.ticket-list tbody tr")
    expect(rows).to_have_count(2)

    # Tick both and give them to a colleague.
    page.check(f'input[name=ticket][value="{first.pk}"]')
    page.check(f'input[name=ticket][value="{second.pk}"]')
    page.select_option("#bulk-operation", "assign")
    page.select_option("#bulk-assignee", str(colleague.pk))
    page.click("#bulk-form fieldset button[type=submit]")
    expect(page.locator(".messages")).to_contain_text("2件を変更しました")
    # Back on the same view, which now has nothing unassigned left.
    expect(page.locator("table.ticket-list")).to_contain_text("該当する問合せはありません")
    for inquiry in (first, second):
        inquiry.refresh_from_db()
        assert inquiry.assigned_to == colleague
    kept.refresh_from_db()
    foreign.refresh_from_db()
    assert kept.assigned_to is None and foreign.assigned_to is None


def test_due_time_breach_counts_business_hours_across_a_holiday(
    page, browser_login, agent_a, city_a
):
    """Open round the clock, but closed the day before yesterday (a holiday): a ticket opened
    72 hours ago has had 48 business hours. A 36-hour target is breached, a 60-hour one is not
    (it would be, were the holiday counted)."""
    for weekday in range(7):
        WeeklyHours.objects.create(
            municipality=city_a,
            weekday=weekday,
            opens=datetime.time(0, 0),
            closes=datetime.time(23, 59, 59),
        )
    holiday = timezone.localdate() - datetime.timedelta(days=2)
    CalendarException.objects.create(
        municipality=city_a, label="市の休日", start_date=holiday, end_date=holiday, closed=True
    )
    damaged = Category.objects.get(code="damaged")
    SlaTarget.objects.create(
        municipality=city_a,
        category=damaged,
        first_response_minutes=36 * 60,
        resolution_minutes=36 * 60,
    )
    SlaTarget.objects.create(
        municipality=city_a,
        category=None,
        first_response_minutes=60 * 60,
        resolution_minutes=60 * 60,
    )
    late = _open(agent_a, city_a, "破損の件", category="damaged")
    in_time = _open(agent_a, city_a, "カタログの件", category="catalogue")
    opened = timezone.now() - datetime.timedelta(hours=72)
    Inquiry.objects.filter(pk__in=[late.pk, in_time.pk]).update(created_at=opened)
    inquiry_due_times_refresh(inquiry_ids=[late.pk, in_time.pk])

    browser_login(page, agent_a)
    page.goto("/tickets/")
    late_row = page.locator(f'tr[data-ticket="{late.pk}"]')
    in_time_row = page.locator(f'tr[data-ticket="{in_time.pk}"]')
    expect(late_row).to_have_class(re.compile(r"\bsla-breached\b"))
    expect(late_row.locator(".sla-flag")).to_contain_text("期限超過")
    expect(in_time_row).not_to_have_class(re.compile(r"\bsla-breached\b"))
    expect(in_time_row.locator("td.sla")).to_contain_text("あと")
    page.goto("/tickets/?view=overdue")
    expect(page.locator("table.ticket-list tbody tr")).to_have_count(1)
    expect(page.locator(f'tr[data-ticket="{late.pk}"]')).to_be_visible()


def test_city_official_searches_by_kana_phone_and_number(
    page, browser_login, city_official_a, agent_a, city_a, city_b, supervisor
):
    donor = DonorFactory(municipality=city_a, name="髙橋 花子", name_kana="タカハシ ハナコ")
    DonorPhoneFactory(donor=donor, e164="+819012345678")
    theirs = _open(agent_a, city_a, "届かない件", donor=donor)
    other = _open(agent_a, city_a, "別の件")
    foreign_donor = DonorFactory(municipality=city_b, name="髙橋 次郎", name_kana="タカハシ ジロウ")
    DonorPhoneFactory(donor=foreign_donor, e164="+819012345678")
    _open(supervisor, city_b, "福山の件", donor=foreign_donor)
    browser_login(page, city_official_a)
    page.goto("/tickets/")
    rows = page.locator("table.ticket-list tbody tr")
    for query in ("ﾀｶﾊｼ", "090-1234-5678", f"#{theirs.pk}"):
        page.fill("input[name=q]", query)
        page.press("input[name=q]", "Enter")
        expect(rows).to_have_count(1)
        expect(rows.first).to_contain_text("届かない件")
        expect(rows.first).to_contain_text("髙橋 花子 様")
    page.fill("input[name=q]", f"#{other.pk}")
    page.press("input[name=q]", "Enter")
    expect(rows.first).to_contain_text("別の件")
    # The donor column leads to the donor page of their own city, read-only.
    page.fill("input[name=q]", "たかはし")
    page.press("input[name=q]", "Enter")
    page.locator("td.requester a").first.click()
    expect(page.locator("h1")).to_contain_text("髙橋 花子")
    expect(page.locator("#new-ticket")).to_have_count(0)


def _serious(results) -> list[str]:
    return [
        f"{v['id']} ({v['impact']}): {v['help']} — "
        + "; ".join(n["target"][0] for n in v["nodes"][:5])
        for v in results.response["violations"]
        if v.get("impact") in ("serious", "critical")
    ]


def test_no_serious_accessibility_violations(
    page, browser, live_server_url, browser_login, agent_a, supervisor, city_a, city_official_a
):
    donor = DonorFactory(municipality=city_a, name="髙橋 花子", name_kana="タカハシ ハナコ")
    DonorPhoneFactory(donor=donor, e164="+819012345678")
    shipment = ShipmentFactory(donation__donor=donor, gift_item__municipality=city_a)
    provider = ProviderFactory(municipality=city_a, name="小樽海鮮工房")
    inquiry = _open(
        agent_a,
        city_a,
        "届かない件",
        donor=donor,
        shipments=[shipment],
        category="shipping_status",
        provider=provider,
    )
    axe = Axe()
    found: dict[str, list[str]] = {}
    page.set_viewport_size({"width": 1280, "height": 720})
    # A supervisor sees every part an agent does, and the targets page besides.
    browser_login(page, supervisor)
    for path in (
        "/console/",
        "/console/?q=タカハシ",
        f"/donors/{donor.pk}/",
        f"/tickets/{inquiry.pk}/",
        "/tickets/",
        "/tickets/?view=unassigned&sort=-last_activity_at",
        f"/providers/{provider.pk}/",
        "/tickets/sla-targets/",
    ):
        page.goto(path)
        page.wait_for_load_state("networkidle")
        found[path] = _serious(axe.run(page))

    context = browser.new_context(base_url=live_server_url, locale="ja-JP")
    city_page = context.new_page()
    city_page.set_viewport_size({"width": 1280, "height": 720})
    browser_login(city_page, city_official_a)
    for path in (
        "/tickets/",
        "/tickets/?q=ﾀｶﾊｼ",
        f"/tickets/{inquiry.pk}/",
        f"/donors/{donor.pk}/",
        f"/providers/{provider.pk}/",
    ):
        city_page.goto(path)
        city_page.wait_for_load_state("networkidle")
        found[f"city {path}"] = _serious(axe.run(city_page))
    context.close()
    assert not any(found.values()), "\n".join(
        f"{path}: {v}" for path, violations in found.items() for v in violations
    )
