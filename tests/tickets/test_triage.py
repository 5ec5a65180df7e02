"""The ticket list as a triage tool: views, sorting, due times, bulk changes, saved views, the
service-level targets; providers; the city official's search. Always within the user's scope."""

from __future__ import annotations

import datetime

import pytest
from django.urls import reverse
from django.utils import timezone

from crm.models import AuditLog, PersonalDataAccess
from telephony.models import CalendarException, WeeklyHours
from tests.factories import (
    DonationFactory,
    DonorFactory,
    DonorPhoneFactory,
    GiftItemFactory,
    ProviderFactory,
    ShipmentFactory,
    UserFactory,
)
from tickets import services
from tickets.models import Category, Inquiry, InquiryEvent, SavedView, SlaTarget, Status

pytestmark = pytest.mark.django_db


def _ids(response) -> list[int]:
    return [i.pk for i in response.context["page"].rows]


def _open_hours(municipality, opens=datetime.time(9), closes=datetime.time(17)) -> None:
    for weekday in range(5):
        WeeklyHours.objects.create(
            municipality=municipality, weekday=weekday, opens=opens, closes=closes
        )


# --- due times -----------------------------------------------------------------------------


def test_due_times_follow_the_calendar_and_the_category(
    open_inquiry, city_a, agent_a, django_capture_on_commit_callbacks
):
    _open_hours(city_a)
    damaged = Category.objects.get(code="damaged")
    SlaTarget.objects.create(
        municipality=city_a, category=None, first_response_minutes=120, resolution_minutes=960
    )
    SlaTarget.objects.create(
        municipality=city_a, category=damaged, first_response_minutes=60, resolution_minutes=480
    )
    with django_capture_on_commit_callbacks(execute=True):
        inquiry = open_inquiry()
    inquiry.refresh_from_db()
    assert inquiry.first_response_due is not None and inquiry.resolution_due is not None
    # Opened "now": the due times are at least the target away and inside opening hours.
    for due in (inquiry.first_response_due, inquiry.resolution_due):
        local = timezone.localtime(due)
        assert local.weekday() < 5 and datetime.time(9) <= local.time() <= datetime.time(17)
    assert inquiry.resolution_due - inquiry.created_at >= datetime.timedelta(hours=16)
    general_resolution = inquiry.resolution_due
    with django_capture_on_commit_callbacks(execute=True):
        services.inquiry_change_category(actor=agent_a, inquiry=inquiry, category="damaged")
    inquiry.refresh_from_db()
    assert inquiry.resolution_due < general_resolution


def test_business_minutes_skip_a_national_holiday(city_a):
    from telephony.calendar import BusinessCalendar

    _open_hours(city_a)
    calendar = BusinessCalendar.for_municipality(city_a.id)
    # Friday 2026-11-20 16:00 + 2 business hours: an hour on Friday, the weekend and Monday
    # 11-23 (勤労感謝の日) closed, so an hour into Tuesday.
    start = timezone.make_aware(datetime.datetime(2026, 11, 20, 16, 0))
    due = calendar.add_business_minutes(start, 120)
    assert timezone.localtime(due) == timezone.make_aware(datetime.datetime(2026, 11, 24, 10, 0))
    # A municipality's own closure counts as well.
    CalendarException.objects.create(
        municipality=city_a,
        start_date=datetime.date(2026, 11, 24),
        end_date=datetime.date(2026, 11, 24),
        closed=True,
        label="臨時休業",
    )
    calendar = BusinessCalendar.for_municipality(city_a.id)
    due = calendar.add_business_minutes(start, 120)
    assert timezone.localtime(due) == timezone.make_aware(datetime.datetime(2026, 11, 25, 10, 0))


# --- views and sorting ---------------------------------------------------------------------


def test_builtin_views(
    login, open_inquiry, agent_a, city_a, city_b, supervisor, django_capture_on_commit_callbacks
):
    mine = open_inquiry(title="自分の", assigned_to=agent_a)
    unassigned = open_inquiry(title="未割当の")
    with django_capture_on_commit_callbacks(execute=True):
        services.inquiry_reply(actor=agent_a, inquiry=mine, body="ご確認ください")
    overdue = open_inquiry(title="期限切れ")
    Inquiry.objects.filter(pk=overdue.pk).update(
        resolution_due=timezone.now() - datetime.timedelta(hours=1)
    )
    # City B's unassigned, overdue ticket is in none of city A's agent's views.
    foreign = open_inquiry(actor=supervisor, municipality=city_b, title="福山の期限切れ")
    Inquiry.objects.filter(pk=foreign.pk).update(
        resolution_due=timezone.now() - datetime.timedelta(hours=1)
    )
    client = login(agent_a)
    url = reverse("ticket_list")
    for view in ("unassigned", "overdue"):
        assert foreign.pk not in _ids(client.get(url, {"view": view, "municipality": city_b.id}))
    assert foreign.pk in _ids(login(supervisor).get(url, {"view": "overdue"}))
    assert _ids(client.get(url, {"view": "mine"})) == [mine.pk]
    assert set(_ids(client.get(url, {"view": "unassigned"}))) == {unassigned.pk, overdue.pk}
    assert _ids(client.get(url, {"view": "waiting"})) == [mine.pk]
    body = client.get(url, {"view": "overdue"})
    assert _ids(body) == [overdue.pk]
    assert "期限超過" in body.content.decode() and "sla-breached" in body.content.decode()
    # The requester's answer takes the ticket out of 返答待ち.
    with django_capture_on_commit_callbacks(execute=True):
        services.inquiry_add_customer_message(inquiry=mine, body="確認しました", channel="email")
    assert _ids(client.get(url, {"view": "waiting"})) == []


def test_sorting_pages_through_every_row_once(login, open_inquiry, agent_a):
    made = [open_inquiry(title=f"並べ替え{n}") for n in range(7)]
    now = timezone.now()
    for n, inquiry in enumerate(made):
        Inquiry.objects.filter(pk=inquiry.pk).update(
            last_activity_at=now - datetime.timedelta(minutes=(n * 37) % 7),
            resolution_due=now + datetime.timedelta(hours=n % 3),
        )
    client = login(agent_a)
    from tickets import list_views

    list_views.TICKET_PAGE_SIZE, old = 3, list_views.TICKET_PAGE_SIZE
    try:
        for sort, key, reverse_order in (
            ("last_activity_at", "last_activity_at", False),
            ("-last_activity_at", "last_activity_at", True),
            ("due", "resolution_due", False),
            ("created_at", "created_at", False),
        ):
            expected = sorted(
                Inquiry.objects.filter(pk__in=[i.pk for i in made]),
                key=lambda i, key=key: (getattr(i, key), i.pk),
                reverse=reverse_order,
            )
            walked: list[int] = []
            response = client.get(reverse("ticket_list"), {"sort": sort})
            while True:
                walked += _ids(response)
                cursor = response.context["page"].next_cursor
                if not cursor:
                    break
                response = client.get(reverse("ticket_list"), {"sort": sort, "after": cursor})
            assert walked == [i.pk for i in expected], sort
            # And back again from the last page through the previous-page cursors.
            back: list[int] = []
            while True:
                back = _ids(response) + back
                cursor = response.context["page"].previous_cursor
                if not cursor:
                    break
                response = client.get(reverse("ticket_list"), {"sort": sort, "before": cursor})
            assert back == walked, sort
    finally:
        list_views.TICKET_PAGE_SIZE = old


def test_console_links_the_unassigned_count(login, open_inquiry, agent_a, city_a):
    open_inquiry()
    body = login(agent_a).get(reverse("console")).content.decode()
    assert f'?view=unassigned&amp;municipality={city_a.id}" data-unassigned' in body


# --- bulk changes --------------------------------------------------------------------------


def test_bulk_assign_category_status_and_merge(login, open_inquiry, agent_a, city_a):
    colleague = UserFactory(role="agent", municipalities=[city_a])
    one, two, three = (open_inquiry(title=f"一括{n}") for n in range(3))
    client = login(agent_a)
    response = client.post(
        reverse("ticket_bulk"),
        {
            "ticket": [one.pk, two.pk],
            "operation": "assign",
            "assignee": colleague.pk,
            "back": "view=unassigned",
        },
    )
    assert response.status_code == 302 and response.url.endswith("?view=unassigned")
    for inquiry in (one, two):
        inquiry.refresh_from_db()
        assert inquiry.assigned_to == colleague
        assert InquiryEvent.objects.filter(inquiry=inquiry, kind="assign", actor=agent_a).exists()
    client.post(
        reverse("ticket_bulk"),
        {"ticket": [one.pk, three.pk], "operation": "category", "category": "damaged"},
    )
    assert set(Inquiry.objects.filter(category__code="damaged").values_list("pk", flat=True)) == {
        one.pk,
        three.pk,
    }
    client.post(
        reverse("ticket_bulk"),
        {"ticket": [three.pk], "operation": "status", "status": Status.RESOLVED},
    )
    three.refresh_from_db()
    assert three.status == Status.RESOLVED
    client.post(reverse("ticket_bulk"), {"ticket": [one.pk, two.pk], "operation": "merge"})
    two.refresh_from_db()
    assert two.status == Status.DUPLICATE and two.ticket.merged_to_id == one.pk


def test_bulk_never_reaches_another_municipality(
    login, open_inquiry, agent_a, supervisor, city_a, city_b
):
    mine = open_inquiry(title="小樽")
    theirs = open_inquiry(actor=supervisor, municipality=city_b, title="福山")
    client = login(agent_a)
    client.post(
        reverse("ticket_bulk"),
        {"ticket": [mine.pk, theirs.pk], "operation": "assign", "assignee": "me"},
    )
    mine.refresh_from_db()
    theirs.refresh_from_db()
    assert mine.assigned_to == agent_a and theirs.assigned_to is None
    # A supervisor of both may not assign city B's ticket to someone serving only city A,
    # nor merge across cities.
    sup = login(supervisor)
    response = sup.post(
        reverse("ticket_bulk"),
        {"ticket": [theirs.pk], "operation": "assign", "assignee": agent_a.pk},
        follow=True,
    )
    theirs.refresh_from_db()
    assert theirs.assigned_to is None
    assert "変更できませんでした" in response.content.decode()
    sup.post(reverse("ticket_bulk"), {"ticket": [mine.pk, theirs.pk], "operation": "merge"})
    assert not Inquiry.objects.filter(status=Status.DUPLICATE).exists()


def test_city_officials_cannot_bulk_change(login, open_inquiry, city_official_a):
    inquiry = open_inquiry()
    response = login(city_official_a).post(
        reverse("ticket_bulk"), {"ticket": [inquiry.pk], "operation": "assign", "assignee": "me"}
    )
    assert response.status_code == 403
    inquiry.refresh_from_db()
    assert inquiry.assigned_to is None


# --- saved views ---------------------------------------------------------------------------


def test_saved_views_are_the_users_own_and_stay_in_scope(
    login, open_inquiry, agent_a, supervisor, city_b
):
    a = open_inquiry(title="小樽の破損", category="damaged")
    b = open_inquiry(actor=supervisor, municipality=city_b, title="福山の破損", category="damaged")
    client = login(agent_a)
    query = f"category=damaged&municipality={city_b.id}&after=xyz"
    response = client.post(reverse("saved_view_save"), {"name": "破損", "query": query})
    view = SavedView.objects.get(user=agent_a)
    assert "after" not in view.query
    listed = client.get(reverse("ticket_list") + "?" + view.query)
    assert b.pk not in _ids(listed) and a.pk not in _ids(listed)
    assert "破損" in client.get(reverse("ticket_list")).content.decode()
    # Another user's view can be neither seen nor deleted.
    assert "saved_view_delete" not in response.url
    other = login(supervisor)
    delete_url = reverse("saved_view_delete", args=[view.pk])
    assert delete_url not in other.get(reverse("ticket_list")).content.decode()
    assert other.post(reverse("saved_view_delete", args=[view.pk])).status_code == 404
    assert client.post(reverse("saved_view_delete", args=[view.pk])).status_code == 302
    assert not SavedView.objects.exists()


# --- targets -------------------------------------------------------------------------------


def test_supervisors_set_targets_and_it_is_audited(login, supervisor, agent_a, city_a):
    assert login(agent_a).get(reverse("sla_targets")).status_code == 403
    client = login(supervisor)
    response = client.post(
        reverse("sla_targets"),
        {
            "municipality": city_a.id,
            "category": "damaged",
            "first_response_hours": "1.5",
            "resolution_hours": "8",
        },
    )
    assert response.status_code == 302
    target = SlaTarget.objects.get(municipality=city_a)
    assert (target.first_response_minutes, target.resolution_minutes) == (90, 480)
    assert AuditLog.objects.filter(
        action=AuditLog.Action.CONFIG_CHANGED, user=supervisor, detail__what="sla_target"
    ).exists()
    refused = client.post(
        reverse("sla_targets"),
        {"municipality": city_a.id, "first_response_hours": "9", "resolution_hours": "2"},
    )
    assert "解決の目標は初回回答の目標以上" in refused.content.decode()
    assert login(agent_a).post(reverse("sla_target_delete", args=[target.pk])).status_code == 403
    client.post(reverse("sla_target_delete", args=[target.pk]))
    assert not SlaTarget.objects.exists()


# --- providers -----------------------------------------------------------------------------


def test_provider_found_by_name_and_reading_with_its_page(
    login, open_inquiry, agent_a, city_a, city_b, supervisor
):
    provider = ProviderFactory(
        municipality=city_a, name="小樽海鮮工房", name_kana="オタルカイセンコウボウ"
    )
    ProviderFactory(municipality=city_b, name="福山海鮮工房", name_kana="フクヤマカイセン")
    gift = GiftItemFactory(municipality=city_a, provider=provider, name="いくら醤油漬け")
    inquiry = open_inquiry(title="出荷の問合せ", requester_type="provider", provider=provider)
    client = login(agent_a)
    for query in ("海鮮工房", "ｵﾀﾙｶｲｾﾝ", "おたるかいせん"):
        body = client.get(reverse("console_search"), {"q": query}).content.decode()
        assert "小樽海鮮工房" in body, query
        assert "福山海鮮工房" not in body
    page = client.get(reverse("provider_detail", args=[provider.pk]))
    assert page.status_code == 200
    text = page.content.decode()
    assert gift.name in text and f"#{inquiry.pk}" in text
    assert PersonalDataAccess.objects.filter(record_type="provider", user=agent_a).exists()
    other = ProviderFactory(municipality=city_b)
    assert client.get(reverse("provider_detail", args=[other.pk])).status_code == 404


def test_provider_linked_from_the_ticket(login, open_inquiry, agent_a, city_a, city_b):
    provider = ProviderFactory(municipality=city_a, name="小樽海鮮工房")
    foreign = ProviderFactory(municipality=city_b, name="福山海鮮工房")
    inquiry = open_inquiry()
    client = login(agent_a)
    page = client.get(reverse("ticket_detail", args=[inquiry.pk])).content.decode()
    assert 'id="provider-link"' in page and "福山海鮮工房" not in page
    client.post(reverse("ticket_provider", args=[inquiry.pk]), {"provider": foreign.pk})
    inquiry.refresh_from_db()
    assert inquiry.provider is None
    client.post(reverse("ticket_provider", args=[inquiry.pk]), {"provider": provider.pk})
    inquiry.refresh_from_db()
    assert inquiry.provider == provider
    assert InquiryEvent.objects.filter(inquiry=inquiry, kind="link").exists()
    page = client.get(reverse("ticket_detail", args=[inquiry.pk])).content.decode()
    assert reverse("provider_detail", args=[provider.pk]) in page
    client.post(reverse("ticket_provider", args=[inquiry.pk]), {"provider": ""})
    inquiry.refresh_from_db()
    assert inquiry.provider is None


# --- the city official's search ------------------------------------------------------------


def test_city_official_searches_like_the_console(
    login, open_inquiry, city_a, city_b, supervisor, city_official_a
):
    donor = DonorFactory(municipality=city_a, name="髙橋 花子", name_kana="タカハシ ハナコ")
    DonorPhoneFactory(donor=donor, e164="+819012345678")
    shipment = ShipmentFactory(donation__donor=donor, gift_item__municipality=city_a)
    with_donor = open_inquiry(title="届かない", donor=donor)
    on_shipment = open_inquiry(title="配送の件", shipments=[shipment])
    other_donation = DonationFactory(donor=donor)
    on_donation = open_inquiry(title="寄附の件", donations=[other_donation])
    unrelated = open_inquiry(title="無関係")
    foreign_donor = DonorFactory(municipality=city_b, name="髙橋 花子", name_kana="タカハシ ハナコ")
    DonorPhoneFactory(donor=foreign_donor, e164="+819012345678")
    foreign = open_inquiry(actor=supervisor, municipality=city_b, donor=foreign_donor)
    client = login(city_official_a)
    url = reverse("ticket_list")
    for query in (
        "ﾀｶﾊｼ",
        "たかはし",
        "髙橋",
        "090-1234-5678",
        "０９０１２３４５６７８",
        "+81 90 1234 5678",
    ):
        found = set(_ids(client.get(url, {"q": query})))
        assert with_donor.pk in found, query
        assert foreign.pk not in found and unrelated.pk not in found, query
    assert _ids(client.get(url, {"q": f"#{unrelated.pk}"})) == [unrelated.pk]
    assert _ids(client.get(url, {"q": f"#{foreign.pk}"})) == []
    assert _ids(client.get(url, {"q": shipment.tracking_number})) == [on_shipment.pk]
    assert _ids(client.get(url, {"q": other_donation.portal_order_number})) == [on_donation.pk]
    body = client.get(url).content.decode()
    assert reverse("donor_detail", args=[donor.pk]) in body


def test_city_official_reads_their_donor_from_the_ticket(
    login, open_inquiry, city_a, city_b, city_official_a
):
    donor = DonorFactory(municipality=city_a)
    inquiry = open_inquiry(donor=donor)
    client = login(city_official_a)
    ticket_page = client.get(reverse("ticket_detail", args=[inquiry.pk])).content.decode()
    assert reverse("donor_detail", args=[donor.pk]) in ticket_page
    donor_page = client.get(reverse("donor_detail", args=[donor.pk]))
    assert donor_page.status_code == 200
    text = donor_page.content.decode()
    assert 'id="new-ticket"' not in text and "この配送で問合せ" not in text
    assert PersonalDataAccess.objects.filter(
        user=city_official_a, record_type="donor", record_id=donor.pk
    ).exists()
    foreign = DonorFactory(municipality=city_b)
    assert client.get(reverse("donor_detail", args=[foreign.pk])).status_code == 404


def test_due_times_of_open_tickets_are_recomputed_on_demand(open_inquiry, city_a, agent_a):
    from django.core.management import call_command

    _open_hours(city_a)
    done = open_inquiry(title="解決済み")
    services.inquiry_change_status(actor=agent_a, inquiry=done, status=Status.CLOSED)
    waiting = open_inquiry(title="未完了")
    SlaTarget.objects.create(
        municipality=city_a, category=None, first_response_minutes=60, resolution_minutes=480
    )
    call_command("sla_recompute")
    waiting.refresh_from_db()
    done.refresh_from_db()
    assert waiting.resolution_due is not None and done.resolution_due is None


def test_the_ticket_page_shows_the_running_due_time(login, open_inquiry, agent_a):
    inquiry = open_inquiry()
    Inquiry.objects.filter(pk=inquiry.pk).update(
        first_response_due=timezone.now() - datetime.timedelta(hours=2),
        resolution_due=timezone.now() + datetime.timedelta(days=2),
    )
    body = login(agent_a).get(reverse("ticket_detail", args=[inquiry.pk])).content.decode()
    assert "初回回答期限" in body and "期限超過" in body
    services.inquiry_reply(actor=agent_a, inquiry=inquiry, body="回答します")
    body = login(agent_a).get(reverse("ticket_detail", args=[inquiry.pk])).content.decode()
    assert "解決期限" in body and "期限超過" not in body
