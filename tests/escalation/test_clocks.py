"""The clocks: contacts in order, the next contact after N minutes of the city's business hours
(weekends, national holidays, January 1–3), personal-data incidents on the wall clock with the
60-minute limit, and a fresh process picking up where a stopped one left off."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import time_machine
from django.db import connection
from django.urls import reverse

from escalation import services
from escalation.clocks import CityClock
from escalation.models import Escalation, EscalationNotification, Kind
from telephony import calendar_services
from tests.escalation.conftest import tokyo
from tests.mailserver import SmtpSink, running_smtp
from tests.processes import database_url

ROOT = Path(__file__).resolve().parents[2]


def _weekdays(city) -> CityClock:
    calendar_services.business_calendar_apply_preset(municipality=city, preset="weekdays")
    return CityClock.for_municipality(city.pk)


@pytest.mark.django_db
def test_business_minutes_skip_a_weekend_and_a_national_holiday(city_a):
    clock = _weekdays(city_a)
    # Friday 2026-11-20 16:50: 10 minutes left that day; Sat, Sun, then 勤労感謝の日 (Mon 23).
    assert clock.add(tokyo(2026, 11, 20, 16, 50), 30) == tokyo(2026, 11, 24, 9, 20)
    # Out of hours the count starts at the next opening.
    assert clock.add(tokyo(2026, 11, 24, 7, 0), 30) == tokyo(2026, 11, 24, 9, 30)
    assert clock.add(tokyo(2026, 11, 24, 10, 0), 30) == tokyo(2026, 11, 24, 10, 30)


@pytest.mark.django_db
def test_business_minutes_skip_january_1_to_3_even_where_the_line_is_open(city_a):
    calendar_services.business_calendar_apply_preset(
        municipality=city_a, preset="every_day_including_holidays"
    )
    clock = CityClock.for_municipality(city_a.pk)
    assert clock.add(tokyo(2026, 12, 31, 16, 50), 30) == tokyo(2027, 1, 4, 9, 20)


@pytest.mark.django_db
def test_the_next_contact_is_tried_in_order_counted_in_business_hours(
    city_a, open_ticket, damaged_rule, contacts_a, django_capture_on_commit_callbacks
):
    _weekdays(city_a)
    with time_machine.travel(tokyo(2026, 11, 20, 16, 50), tick=False):
        with django_capture_on_commit_callbacks(execute=True):
            inquiry = open_ticket(category="damaged", severity="urgent")
    escalation = Escalation.objects.get(inquiry=inquiry)
    assert escalation.next_contact_at == tokyo(2026, 11, 24, 9, 20)

    # Over the weekend and the holiday nothing moves.
    with time_machine.travel(tokyo(2026, 11, 23, 12, 0), tick=False):
        services.escalations_tick()
    escalation.refresh_from_db()
    assert escalation.step == 0

    def recipients(step: int) -> set[str]:
        return set(
            EscalationNotification.objects.filter(
                escalation=escalation, step=step, channel="email"
            ).values_list("to", flat=True)
        )

    expected = [
        (tokyo(2026, 11, 24, 9, 20), "deputy@city.otaru.example.jp", tokyo(2026, 11, 24, 9, 50)),
        (tokyo(2026, 11, 24, 9, 50), "manager@city.otaru.example.jp", tokyo(2026, 11, 24, 10, 20)),
        # Nobody acknowledged: the reminder goes round to the primary contact again.
        (tokyo(2026, 11, 24, 10, 20), "primary@city.otaru.example.jp", tokyo(2026, 11, 24, 10, 50)),
    ]
    for step, (at, to, next_at) in enumerate(expected, start=1):
        with time_machine.travel(at, tick=False):
            with django_capture_on_commit_callbacks(execute=True):
                services.escalations_tick()
        escalation.refresh_from_db()
        assert escalation.step == step
        assert recipients(step) == {to}
        assert escalation.next_contact_at == next_at
    assert recipients(0) == {"primary@city.otaru.example.jp"}
    sent = EscalationNotification.objects.filter(escalation=escalation, channel="email")
    assert set(sent.values_list("status", flat=True)) == {"sent"}


@pytest.mark.django_db
def test_acknowledgement_stops_the_reminders(
    login,
    city_a,
    open_ticket,
    damaged_rule,
    contacts_a,
    city_official_a,
    django_capture_on_commit_callbacks,
):
    _weekdays(city_a)
    with time_machine.travel(tokyo(2026, 11, 24, 10, 0), tick=False):
        with django_capture_on_commit_callbacks(execute=True):
            inquiry = open_ticket(category="damaged", severity="urgent")
        escalation = Escalation.objects.get(inquiry=inquiry)
        login(city_official_a).post(reverse("escalation:acknowledge", args=[escalation.pk]))
    with time_machine.travel(tokyo(2026, 11, 24, 12, 0), tick=False):
        services.escalations_tick()
    escalation.refresh_from_db()
    assert escalation.status == "acknowledged" and escalation.step == 0
    assert escalation.next_action_at is None


@pytest.mark.django_db
def test_personal_data_incident_runs_on_the_wall_clock_with_a_60_minute_limit(
    login, city_a, open_ticket, contacts_a, agent_a, django_capture_on_commit_callbacks
):
    _weekdays(city_a)
    # Saturday night: the city's offices are closed, the incident's clock runs anyway.
    with time_machine.travel(tokyo(2026, 11, 21, 22, 0), tick=False):
        inquiry = open_ticket(title="別の寄附者の受領証明書が同封されていた")
        with django_capture_on_commit_callbacks(execute=True):
            login(agent_a).post(
                reverse("escalation:ticket_report", args=[inquiry.pk]),
                {"mode": "report", "kind": "personal_data", "reason": "他人の個人情報の誤送付"},
            )
    escalation = Escalation.objects.get(inquiry=inquiry)
    assert escalation.kind == Kind.PERSONAL_DATA and escalation.urgent
    assert escalation.aware_at == tokyo(2026, 11, 21, 22, 0)
    assert escalation.deadline_at == tokyo(2026, 11, 21, 23, 0)
    assert escalation.next_contact_at == tokyo(2026, 11, 21, 22, 30)  # wall clock
    first = EscalationNotification.objects.filter(escalation=escalation, step=0)
    assert set(first.values_list("recipient", "to")) == {
        ("city", "primary@city.otaru.example.jp"),
        ("city", "+819011110001"),
        ("security", "security@cc.example.jp"),  # the operator's security officer too
    }

    # The countdown is on the ticket page and the escalation page.
    with time_machine.travel(tokyo(2026, 11, 21, 22, 20), tick=False):
        page = login(agent_a).get(reverse("ticket_detail", args=[inquiry.pk])).content.decode()
    assert 'data-deadline="2026-11-21T23:00:00+09:00"' in page

    with time_machine.travel(tokyo(2026, 11, 21, 22, 30), tick=False):
        with django_capture_on_commit_callbacks(execute=True):
            services.escalations_tick()
    escalation.refresh_from_db()
    assert escalation.step == 1 and escalation.next_action_at == tokyo(2026, 11, 21, 23, 0)
    assert escalation.deadline_passed_at is None

    with time_machine.travel(tokyo(2026, 11, 21, 23, 0), tick=False):
        with django_capture_on_commit_callbacks(execute=True):
            services.escalations_tick()
    escalation.refresh_from_db()
    assert escalation.deadline_passed_at == tokyo(2026, 11, 21, 23, 0)
    assert inquiry.ticket.followup_set.filter(title__startswith="報告期限（覚知から60分）を経過")


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_a_fresh_process_resumes_the_clock_from_the_database(
    city_a, open_ticket, contacts_a, damaged_rule, agent_a
):
    """The step fell due while no worker ran; a newly started process finds it and notifies the
    deputy (its mail reaches a real SMTP server) without anything held in memory."""
    damaged_rule.urgent = False
    damaged_rule.business_hours = False
    damaged_rule.save()
    inquiry = open_ticket(category="damaged", severity="urgent")
    escalation = Escalation.objects.get(inquiry=inquiry)
    assert escalation.step == 0
    past = escalation.opened_at.replace(year=escalation.opened_at.year - 1)
    Escalation.objects.filter(pk=escalation.pk).update(next_contact_at=past, next_action_at=past)

    sink = SmtpSink()
    with running_smtp(sink) as port:
        env = {
            **os.environ,
            "DATABASE_URL": database_url(connection.settings_dict),
            "DEBUG": "true",
            "EMAIL_HOST": "127.0.0.1",
            "EMAIL_PORT": str(port),
            "ESCALATION_MAIL_FROM": "escalation@cc.example.jp",
        }
        env.pop("REDIS_URL", None)  # tasks run in the process itself
        result = subprocess.run(
            [sys.executable, "manage.py", "escalation_tick"],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )
    assert result.returncode == 0, result.stderr
    assert "advanced=1" in result.stdout
    escalation.refresh_from_db()
    assert escalation.step == 1
    deputy = EscalationNotification.objects.get(escalation=escalation, step=1)
    assert deputy.to == "deputy@city.otaru.example.jp" and deputy.status == "sent"
    assert any(b"deputy@city.otaru.example.jp" in m for m in sink.messages)


@pytest.mark.django_db
def test_the_60_minutes_run_from_first_awareness(
    login, city_a, open_ticket, contacts_a, agent_a, django_capture_on_commit_callbacks
):
    with time_machine.travel(tokyo(2026, 11, 24, 10, 40), tick=False):
        inquiry = open_ticket(title="誤送信")
        with django_capture_on_commit_callbacks(execute=True):
            login(agent_a).post(
                reverse("escalation:ticket_report", args=[inquiry.pk]),
                {
                    "mode": "report",
                    "kind": "personal_data",
                    "reason": "メールの誤送信（10:15 に気づいた）",
                    "aware_at": "2026-11-24T10:15",
                },
            )
    escalation = Escalation.objects.get(inquiry=inquiry)
    assert escalation.aware_at == tokyo(2026, 11, 24, 10, 15)
    assert escalation.deadline_at == tokyo(2026, 11, 24, 11, 15)
