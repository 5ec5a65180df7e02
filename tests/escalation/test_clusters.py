"""Complaint clusters: complaints about one provider this week well above its usual weekly rate
escalate to the city with the list of tickets; the usual rate does not."""

from __future__ import annotations

import datetime

import pytest
from django.urls import reverse
from django.utils import timezone

from escalation import services
from escalation.models import Escalation, EscalationRule, Kind
from tests.factories import ProviderFactory
from tickets.models import Inquiry

pytestmark = pytest.mark.django_db


@pytest.fixture
def cluster_rule(city_a, damaged):
    rule = EscalationRule.objects.create(
        municipality=city_a,
        name="破損の集中",
        kind=Kind.CLUSTER,
        cluster_window_days=7,
        cluster_min_count=5,
        cluster_factor=3,
        cluster_baseline_windows=8,
    )
    rule.categories.set([damaged])
    return rule


def _complaints(open_ticket, provider, *, count: int, days_ago: float) -> list[Inquiry]:
    made = [open_ticket(category="damaged", provider=provider) for _ in range(count)]
    at = timezone.now() - datetime.timedelta(days=days_ago)
    Inquiry.objects.filter(pk__in=[i.pk for i in made]).update(created_at=at)
    return made


def _spike(city_a, open_ticket, capture) -> Escalation:
    spiking = ProviderFactory(municipality=city_a, name="小樽海産A")
    usual = ProviderFactory(municipality=city_a, name="小樽海産B")
    # Usually one complaint a week about A, two a week about B.
    for week in range(1, 9):
        _complaints(open_ticket, spiking, count=1, days_ago=7 * week + 2)
        _complaints(open_ticket, usual, count=2, days_ago=7 * week + 2)
    # This week: five about each. 5 ≥ 3 × 1 for A; 5 < 3 × 2 for B.
    this_week = _complaints(open_ticket, spiking, count=5, days_ago=1)
    _complaints(open_ticket, usual, count=5, days_ago=1)
    # Complaints of another kind do not count.
    for _ in range(5):
        open_ticket(category=None, provider=spiking)

    with capture(execute=True):
        opened = services.clusters_detect()
    [escalation] = opened
    assert escalation.kind == Kind.CLUSTER and escalation.source == Escalation.Source.CLUSTER
    assert "小樽海産A" in escalation.title and "7日間で5件" in escalation.title
    assert "通常 1.0件/7日" in escalation.title
    assert set(escalation.related_inquiries.values_list("pk", flat=True)) == {
        i.pk for i in this_week
    }
    for inquiry in this_week:
        assert f"問合せ#{inquiry.pk}" in escalation.reason
    assert escalation.first_notified_at is not None  # the city is told like any escalation

    # The next scan in the same week adds nothing.
    assert services.clusters_detect() == []
    return escalation


def test_a_spike_against_the_usual_rate_escalates_with_its_tickets(
    city_a, open_ticket, cluster_rule, contacts_a, django_capture_on_commit_callbacks
):
    _spike(city_a, open_ticket, django_capture_on_commit_callbacks)


def test_the_cluster_shows_on_the_supervisors_console_only(
    login,
    city_a,
    open_ticket,
    cluster_rule,
    contacts_a,
    supervisor_a,
    agent_a,
    django_capture_on_commit_callbacks,
):
    escalation = _spike(city_a, open_ticket, django_capture_on_commit_callbacks)
    console = login(supervisor_a).get(reverse("console")).content.decode()
    assert 'id="escalation-alerts"' in console and escalation.title in console
    assert "苦情の集中" in console
    assert 'id="escalation-alerts"' not in login(agent_a).get(reverse("console")).content.decode()


def test_fewer_than_the_minimum_never_escalate(city_a, open_ticket, cluster_rule):
    new = ProviderFactory(municipality=city_a)
    _complaints(open_ticket, new, count=4, days_ago=1)  # no history at all, but only four
    assert services.clusters_detect() == []
