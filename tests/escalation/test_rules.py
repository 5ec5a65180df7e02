"""A ticket matching a municipality's rule escalates by itself: on open, on reclassification and
on a new message; manual 「市へ報告」, questions to the city and the wrap-up code 「市へ取次」."""

from __future__ import annotations

import pytest
from django.core import mail
from django.urls import reverse
from django.utils import timezone

from crm.models import CityContact
from escalation.models import Escalation, EscalationNotification, EscalationRule, Kind
from telephony import services as telephony_services
from telephony.models import Call, Disposition
from tickets import services as ticket_services
from tickets.models import Category, InquiryEvent

pytestmark = pytest.mark.django_db


def test_a_matching_ticket_escalates_when_it_is_opened(
    open_ticket, damaged_rule, contacts_a, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        inquiry = open_ticket(category="damaged", severity="urgent")
    escalation = Escalation.objects.get(inquiry=inquiry)
    assert escalation.rule == damaged_rule
    assert escalation.source == Escalation.Source.RULE_OPEN
    assert escalation.kind == Kind.DAMAGED_GIFT and escalation.urgent
    assert escalation.first_notified_at is not None
    # The primary contact first, by mail and (urgent) SMS; nobody else yet.
    sent = EscalationNotification.objects.filter(escalation=escalation)
    assert {(n.channel, n.to) for n in sent} == {
        ("email", "primary@city.otaru.example.jp"),
        ("sms", "+819011110001"),
    }
    kinds = list(inquiry.events.values_list("kind", flat=True))
    assert kinds.count(InquiryEvent.Kind.ESCALATION) == 2  # reported, first notice
    titles = list(inquiry.ticket.followup_set.values_list("title", flat=True))
    assert "市へ報告: 返礼品の破損・傷み" in titles
    assert any(
        t.startswith("市へ通知（第1報）: 産業港湾部 ふるさと納税係 小樽 一郎") for t in titles
    )


def test_a_ticket_not_matching_does_not_escalate(
    open_ticket, damaged_rule, contacts_a, django_capture_on_commit_callbacks
):
    Category.objects.get_or_create(code="receipt", defaults={"name": "受領証明書"})
    with django_capture_on_commit_callbacks(execute=True):
        open_ticket(category="damaged", severity="normal")
        open_ticket(category="receipt", severity="urgent")
    assert not Escalation.objects.exists()


def test_reclassification_escalates_once(
    open_ticket, damaged_rule, contacts_a, agent_a, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        inquiry = open_ticket(category="damaged")
    assert not Escalation.objects.exists()
    with django_capture_on_commit_callbacks(execute=True):
        ticket_services.inquiry_change_severity(actor=agent_a, inquiry=inquiry, severity="urgent")
    escalation = Escalation.objects.get(inquiry=inquiry)
    assert escalation.source == Escalation.Source.RULE_RECLASSIFY
    # Classifying again while it is open adds nothing.
    with django_capture_on_commit_callbacks(execute=True):
        ticket_services.inquiry_change_severity(actor=agent_a, inquiry=inquiry, severity="high")
        ticket_services.inquiry_change_severity(actor=agent_a, inquiry=inquiry, severity="urgent")
    assert Escalation.objects.filter(inquiry=inquiry).count() == 1


def test_reclassification_through_the_ticket_page(
    login, open_ticket, damaged_rule, contacts_a, agent_a, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        inquiry = open_ticket()
    client = login(agent_a)
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(
            reverse("ticket_classify", args=[inquiry.pk]),
            {"category": "damaged", "severity": "urgent"},
        )
    assert response.status_code == 302
    assert Escalation.objects.filter(inquiry=inquiry, rule=damaged_rule).exists()


def test_a_new_message_escalates_where_the_rule_says_so(
    city_a, open_ticket, contacts_a, damaged, django_capture_on_commit_callbacks
):
    rule = EscalationRule.objects.create(
        municipality=city_a,
        name="報道・訴訟",
        kind=Kind.MEDIA_LEGAL,
        severities=["high", "urgent"],
        on_open=False,
        on_reclassify=False,
        on_message=True,
    )
    with django_capture_on_commit_callbacks(execute=True):
        inquiry = open_ticket(severity="high", channel="email")
    assert not Escalation.objects.exists()  # not on open: this rule waits for a message
    with django_capture_on_commit_callbacks(execute=True):
        ticket_services.inquiry_add_customer_message(
            inquiry=inquiry, body="新聞社に相談します", channel="email", sender="a@example.jp"
        )
    escalation = Escalation.objects.get(inquiry=inquiry)
    assert escalation.rule == rule and escalation.source == Escalation.Source.RULE_MESSAGE


def test_another_citys_rule_never_applies(
    city_b, open_ticket, contacts_a, damaged, django_capture_on_commit_callbacks
):
    rule_b = EscalationRule.objects.create(
        municipality=city_b, name="福山: 破損", kind=Kind.DAMAGED_GIFT, severities=["urgent"]
    )
    rule_b.categories.set([damaged])
    with django_capture_on_commit_callbacks(execute=True):
        open_ticket(category="damaged", severity="urgent")
    assert not Escalation.objects.exists()


def test_manual_report_with_reason_and_proposed_response(
    login, open_ticket, contacts_a, agent_a, django_capture_on_commit_callbacks
):
    inquiry = open_ticket()
    client = login(agent_a)
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(
            reverse("escalation:ticket_report", args=[inquiry.pk]),
            {
                "mode": "report",
                "kind": "resident_gift",
                "reason": "区内在住の方に返礼品が送られていました",
                "proposed_response": "返礼品の回収を事業者に依頼します",
            },
        )
    assert response.status_code == 302
    escalation = Escalation.objects.get(inquiry=inquiry)
    assert escalation.source == Escalation.Source.MANUAL
    assert escalation.kind == Kind.RESIDENT_GIFT
    assert escalation.opened_by == agent_a
    assert escalation.proposed_response == "返礼品の回収を事業者に依頼します"
    # Mailed to the primary contact (locmem here; the SMTP test checks the bytes).
    assert [m.to for m in mail.outbox] == [["primary@city.otaru.example.jp"]]
    page = client.get(reverse("ticket_detail", args=[inquiry.pk])).content.decode()
    assert "住民への返礼品送付" in page and "確認待ち" in page


def test_question_passed_to_the_city(
    login, open_ticket, contacts_a, agent_a, django_capture_on_commit_callbacks
):
    inquiry = open_ticket(title="寄附金の使い道について")
    with django_capture_on_commit_callbacks(execute=True):
        login(agent_a).post(
            reverse("escalation:ticket_report", args=[inquiry.pk]),
            {"mode": "question", "kind": "other", "reason": "使い道の詳細は市でないと分かりません"},
        )
    escalation = Escalation.objects.get(inquiry=inquiry)
    assert escalation.kind == Kind.QUESTION and escalation.source == Escalation.Source.QUESTION


def test_a_city_official_cannot_report(login, open_ticket, city_official_a):
    inquiry = open_ticket()
    response = login(city_official_a).post(
        reverse("escalation:ticket_report", args=[inquiry.pk]), {"mode": "report", "reason": "x"}
    )
    assert response.status_code == 403
    assert not Escalation.objects.exists()


def test_wrap_up_code_escalate_city_opens_one(
    city_a, agent_a, contacts_a, open_ticket, django_capture_on_commit_callbacks
):
    inquiry = open_ticket()
    now = timezone.now()
    call = Call.objects.create(
        municipality=city_a,
        call_sid="CA" + "9" * 32,
        from_e164="+819012345678",
        offered_at=now,
        answered_at=now,
        ended_at=now,
        answered_by=agent_a,
        inquiry=inquiry,
    )
    disposition, _ = Disposition.objects.get_or_create(
        code="escalate_city", defaults={"name": "市へ取次"}
    )
    with django_capture_on_commit_callbacks(execute=True):
        telephony_services.call_wrap_up(
            actor=agent_a, call=call, disposition=disposition, note="市長宛ての苦情として取次希望"
        )
    escalation = Escalation.objects.get(inquiry=inquiry)
    assert escalation.source == Escalation.Source.CALL
    assert escalation.reason == "市長宛ての苦情として取次希望"


def test_no_contacts_registered_is_shown_to_the_operator(
    open_ticket, damaged_rule, django_capture_on_commit_callbacks
):
    assert not CityContact.objects.exists()
    with django_capture_on_commit_callbacks(execute=True):
        inquiry = open_ticket(category="damaged", severity="urgent")
    assert Escalation.objects.filter(inquiry=inquiry).exists()
    assert inquiry.ticket.followup_set.filter(title__contains="自治体担当者が登録されていません")
