"""The city's own view: its officials see, acknowledge, instruct and close their city's
escalations; another city's official (or an agent) can neither see nor acknowledge them."""

from __future__ import annotations

import pytest
from django.urls import reverse

from escalation.models import CityInstruction, Escalation, EscalationNotification
from escalation.selectors import escalation_figures
from tests.factories import UserFactory
from tickets.models import InquiryEvent

pytestmark = pytest.mark.django_db


@pytest.fixture
def escalation(open_ticket, damaged_rule, contacts_a, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        inquiry = open_ticket(category="damaged", severity="urgent")
    return Escalation.objects.get(inquiry=inquiry)


def test_the_city_official_sees_and_acknowledges_their_citys_escalation(
    login, escalation, city_official_a, django_capture_on_commit_callbacks
):
    client = login(city_official_a)
    listing = client.get(reverse("escalation:list")).content.decode()
    assert escalation.title in listing and "確認待ち" in listing
    page = client.get(reverse("escalation:detail", args=[escalation.pk])).content.decode()
    assert 'id="acknowledge"' in page
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(reverse("escalation:acknowledge", args=[escalation.pk]))
    assert response.status_code == 302
    escalation.refresh_from_db()
    assert escalation.status == "acknowledged" and escalation.acknowledged_by == city_official_a
    # Reminders still waiting for the city are called off.
    assert not EscalationNotification.objects.filter(
        escalation=escalation, recipient="city", status__in=["queued", "retrying"]
    ).exists()
    assert escalation.inquiry.ticket.followup_set.filter(title__startswith="市が確認")


def test_another_citys_official_can_neither_see_nor_acknowledge(login, escalation, city_official_b):
    client = login(city_official_b)
    assert escalation.title not in client.get(reverse("escalation:list")).content.decode()
    for name in ("detail",):
        assert client.get(reverse(f"escalation:{name}", args=[escalation.pk])).status_code == 404
    for name in ("acknowledge", "instruct", "close"):
        response = client.post(reverse(f"escalation:{name}", args=[escalation.pk]), {"body": "x"})
        assert response.status_code == 404
    panel = client.get(reverse("escalation:ticket_panel", args=[escalation.inquiry_id]))
    assert panel.status_code == 404
    escalation.refresh_from_db()
    assert escalation.status == "open" and not CityInstruction.objects.exists()


def test_operator_staff_cannot_acknowledge_for_the_city(login, escalation, agent_a):
    response = login(agent_a).post(reverse("escalation:acknowledge", args=[escalation.pk]))
    assert response.status_code == 403
    escalation.refresh_from_db()
    assert escalation.status == "open"


def test_a_city_official_with_two_cities_sees_nothing(login, escalation, city_a, city_b):
    confused = UserFactory(role="city_official", municipalities=[city_a, city_b])
    client = login(confused)
    assert client.get(reverse("escalation:detail", args=[escalation.pk])).status_code == 404


def test_the_citys_instruction_reaches_the_ticket_timeline_and_the_agents_panel(
    login, escalation, city_official_a, agent_a, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        response = login(city_official_a).post(
            reverse("escalation:instruct", args=[escalation.pk]),
            {"body": "代替品を至急発送してください。費用は市で負担します。"},
        )
    assert response.status_code == 302
    escalation.refresh_from_db()
    assert escalation.status == "acknowledged"  # an instruction acknowledges too
    event = InquiryEvent.objects.get(
        inquiry=escalation.inquiry, kind=InquiryEvent.Kind.CITY_INSTRUCTION
    )
    assert event.actor == city_official_a and not event.operator_only
    agent = login(agent_a)
    page = agent.get(reverse("ticket_detail", args=[escalation.inquiry_id])).content.decode()
    assert "代替品を至急発送してください" in page
    panel = agent.get(reverse("escalation:ticket_panel", args=[escalation.inquiry_id]))
    assert "代替品を至急発送してください" in panel.content.decode()
    # The open page refetches its timeline alone when it hears of the change.
    timeline = agent.get(reverse("ticket_timeline_part", args=[escalation.inquiry_id]))
    assert timeline.status_code == 200
    assert "代替品を至急発送してください" in timeline.content.decode()
    assert 'id="timeline"' in timeline.content.decode()
    # The city's own ticket page shows it as well.
    city_page = login(city_official_a).get(reverse("ticket_detail", args=[escalation.inquiry_id]))
    assert "代替品を至急発送してください" in city_page.content.decode()


def test_closing_and_the_monthly_figures(
    login, escalation, city_official_a, supervisor_a, django_capture_on_commit_callbacks
):
    client = login(city_official_a)
    client.post(reverse("escalation:acknowledge", args=[escalation.pk]))
    with django_capture_on_commit_callbacks(execute=True):
        client.post(
            reverse("escalation:close", args=[escalation.pk]), {"outcome": "代替品の到着を確認"}
        )
    escalation.refresh_from_db()
    assert escalation.status == "closed" and escalation.outcome == "代替品の到着を確認"
    month = escalation.opened_at.astimezone().strftime("%Y-%m")
    figures = escalation_figures(municipality_id=escalation.municipality_id, month=month)
    assert figures.opened == 1 and figures.acknowledged == 1 and figures.closed == 1
    assert figures.avg_minutes_to_notify is not None
    assert figures.by_kind == {"damaged_gift": 1}
    # The supervisor's list filters by state and month.
    supervisor = login(supervisor_a)
    closed = supervisor.get(reverse("escalation:list"), {"state": "closed", "month": month})
    assert escalation.title in closed.content.decode()
    waiting = supervisor.get(reverse("escalation:list"), {"state": "waiting"})
    assert escalation.title not in waiting.content.decode()
    # The city's own month, with its figures.
    own = client.get(reverse("escalation:list"), {"state": "all", "month": month})
    assert 'id="escalation-figures"' in own.content.decode()
    assert "1件（確認済 1・完了 1・確認待ち 0）" in own.content.decode()


def test_supervisors_edit_rules_agents_may_not(login, supervisor_a, agent_a, city_a, damaged):
    assert login(agent_a).get(reverse("escalation:rules")).status_code == 404
    client = login(supervisor_a)
    response = client.post(
        reverse("escalation:rule_create"),
        {
            "municipality": city_a.pk,
            "name": "個人情報の事故",
            "kind": "personal_data",
            "active": "on",
            "severities": ["urgent"],
            "on_open": "on",
            "on_reclassify": "on",
            "contacts_to_notify": 3,
            "next_contact_minutes": 15,
            "cluster_window_days": 7,
            "cluster_min_count": 5,
            "cluster_factor": "3",
            "cluster_baseline_windows": 8,
        },
    )
    assert response.status_code == 302, response.content.decode()
    from escalation.models import EscalationRule

    rule = EscalationRule.objects.get(name="個人情報の事故")
    assert rule.deadline_minutes == 60 and rule.severities == ["urgent"]
    assert "個人情報の事故" in client.get(reverse("escalation:rules")).content.decode()
    edit = client.get(reverse("escalation:rule_edit", args=[rule.pk]))
    assert edit.status_code == 200


def test_a_rule_must_name_what_it_reports(login, supervisor_a, city_a):
    from escalation.models import EscalationRule

    response = login(supervisor_a).post(
        reverse("escalation:rule_create"),
        {
            "municipality": city_a.pk,
            "name": "すべて",
            "kind": "other",
            "on_open": "on",
            "contacts_to_notify": 3,
            "next_contact_minutes": 30,
            "cluster_window_days": 7,
            "cluster_min_count": 5,
            "cluster_factor": "3",
            "cluster_baseline_windows": 8,
        },
    )
    assert response.status_code == 200
    assert "いずれかを指定してください" in response.content.decode()
    assert not EscalationRule.objects.exists()


def test_the_list_pages_by_cursor(login, city_a, open_ticket, supervisor_a, settings):
    from escalation import services
    from escalation.views import PAGE_SIZE

    inquiry = open_ticket()
    for n in range(PAGE_SIZE + 3):
        services.escalation_open(
            actor=None, inquiry=inquiry, kind="other", source="manual", title=f"報告{n:03d}"
        )
    client = login(supervisor_a)
    first = client.get(reverse("escalation:list")).content.decode()
    assert f"報告{PAGE_SIZE + 2:03d}" in first and "報告000" not in first
    assert "53件" in first
    cursor = first.split("after=")[1].split('"')[0]
    second = client.get(reverse("escalation:list") + f"?state=active&after={cursor}")
    assert "報告000" in second.content.decode()
    assert f"報告{PAGE_SIZE + 2:03d}" not in second.content.decode()
