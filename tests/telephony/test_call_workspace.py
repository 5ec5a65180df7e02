"""A call becomes a complete ticket from the pop; every answered call ends on an inquiry;
providers are matched by caller ID; the wallboard shows waits, time in state and long wrap-ups."""

from __future__ import annotations

import pytest
import time_machine
from django.core.exceptions import ValidationError
from django.urls import reverse
from helpdesk.models import FollowUp

from telephony import services, signals
from telephony.models import AgentPresence, Call, Disposition
from telephony.selectors import screen_pop_payload, wallboard_stats
from tests.factories import (
    DonorPhoneFactory,
    ProviderFactory,
    ShipmentFactory,
)
from tests.telephony.conftest import PhoneCall, make_available, tokyo
from tickets import services as ticket_services
from tickets.models import Inquiry, InquiryEvent, Status

CALLER = "+819012345678"
PROVIDER_PHONE = "+81134229999"


@pytest.fixture
def shipment_a(city_a):
    shipment = ShipmentFactory(
        donation__donor__municipality=city_a,
        donation__donor__name="架電 花子",
        gift_item__name="小樽産 ほたて 1kg",
    )
    DonorPhoneFactory(donor=shipment.donation.donor, e164=CALLER)
    return shipment


def _answer(twilio, line, agent, caller=CALLER, *, hang_up=True) -> Call:
    make_available(agent)
    call = PhoneCall(twilio, from_=caller, to=line.e164)
    call.dial_in()
    call.press("1")
    call.agent_answers(call.dial_targets()[0])
    if hang_up:
        call.hang_up()
    return Call.objects.get(call_sid=call.sid)


def _code(code: str, name: str) -> Disposition:
    return Disposition.objects.get_or_create(code=code, defaults={"name": name})[0]


# --- 問合せを開始: one dialog, a complete ticket ------------------------------------------------


def test_pop_dialog_makes_a_ticket_assigned_with_call_donor_donation_and_shipment(
    twilio, login, line_a, agent_a, shipment_a, open_hours
):
    record = _answer(twilio, line_a, agent_a, hang_up=False)
    donor = shipment_a.donation.donor
    response = login(agent_a).post(
        reverse("telephony:call_ticket_start", args=[record.pk]),
        {
            "requester": f"d{donor.pk}",
            "about": f"s{shipment_a.pk}",
            "category": "shipping_status",
            "title": "",
        },
        HTTP_ACCEPT="application/json",
    )
    assert response.status_code == 200, response.content
    record.refresh_from_db()
    inquiry = Inquiry.objects.select_related("ticket", "category").get(pk=record.inquiry_id)
    assert response.json()["url"] == reverse("ticket_detail", args=[inquiry.pk])
    assert inquiry.assigned_to == agent_a and inquiry.ticket.assigned_to == agent_a
    assert inquiry.donor == donor and inquiry.requester_type == "donor"
    assert list(inquiry.shipments.all()) == [shipment_a]
    assert list(inquiry.donations.all()) == [shipment_a.donation]
    assert inquiry.category.code == "shipping_status"
    # Says what it is about and who called, not just the number.
    assert inquiry.ticket.title == "配送状況・遅延: 架電 花子 様"
    assert "小樽産 ほたて 1kg" in inquiry.ticket.description
    # Written through tickets' services: the 受付 entry names the agent.
    assert InquiryEvent.objects.filter(
        inquiry=inquiry, kind=InquiryEvent.Kind.OPENED, actor=agent_a
    ).exists()


def test_pop_dialog_takes_the_agents_title(twilio, login, line_a, agent_a, shipment_a, open_hours):
    record = _answer(twilio, line_a, agent_a)
    login(agent_a).post(
        reverse("telephony:call_ticket_start", args=[record.pk]),
        {"requester": "", "about": "", "title": "  返礼品の到着日の確認  "},
    )
    record.refresh_from_db()
    assert record.inquiry.ticket.title == "返礼品の到着日の確認"
    assert record.inquiry.donor is None and record.inquiry.assigned_to == agent_a


def test_pop_dialog_refuses_a_shipment_of_another_donor_or_city(
    twilio, login, line_a, agent_a, shipment_a, city_a, city_b, open_hours
):
    record = _answer(twilio, line_a, agent_a)
    other_donor = ShipmentFactory(donation__donor__municipality=city_a)
    other_city = ShipmentFactory(donation__donor__municipality=city_b)
    client = login(agent_a)
    url = reverse("telephony:call_ticket_start", args=[record.pk])
    donor = shipment_a.donation.donor
    refused = client.post(
        url,
        {"requester": f"d{donor.pk}", "about": f"s{other_donor.pk}"},
        HTTP_ACCEPT="application/json",
    )
    assert refused.status_code == 409
    assert refused.json()["error"] == "選んだ寄附はこの寄附者のものではありません。"
    refused = client.post(url, {"about": f"s{other_city.pk}"}, HTTP_ACCEPT="application/json")
    assert refused.status_code == 409 and refused.json()["error"] == "配送が見つかりません。"
    record.refresh_from_db()
    assert record.inquiry is None and not Inquiry.objects.exists()


def test_ticket_from_the_donor_page_during_the_call_links_the_call(
    twilio, login, line_a, agent_a, shipment_a, open_hours, django_capture_on_commit_callbacks
):
    record = _answer(twilio, line_a, agent_a, hang_up=False)
    assert AgentPresence.objects.get(user=agent_a).state == AgentPresence.State.ON_CALL
    client = login(agent_a)
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(
            f"{reverse('ticket_create')}?shipment={shipment_a.pk}",
            {
                "shipment": shipment_a.pk,
                "channel": "phone",
                "requester_type": "donor",
                "severity": "normal",
                "title": "配達日の変更",
                "shipments": [shipment_a.pk],
            },
        )
    assert response.status_code == 302
    record.refresh_from_db()
    assert record.inquiry is not None
    assert record.inquiry.ticket.title == "配達日の変更"
    assert FollowUp.objects.filter(ticket_id=record.inquiry_id, title="通話を関連付け").exists()


def test_ticket_opened_when_not_on_a_call_links_nothing(
    login, agent_a, shipment_a, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        login(agent_a).post(
            f"{reverse('ticket_create')}?shipment={shipment_a.pk}",
            {
                "shipment": shipment_a.pk,
                "channel": "phone",
                "requester_type": "donor",
                "severity": "normal",
                "title": "配達日の変更",
            },
        )
    assert Inquiry.objects.count() == 1
    assert not Call.objects.exists()


# --- Providers matched by caller ID ----------------------------------------------------------


def test_provider_calling_is_shown_and_becomes_the_requester(
    twilio, login, line_a, agent_a, city_a, city_b, open_hours
):
    provider = ProviderFactory(
        municipality=city_a, name="小樽海産株式会社", phone=PROVIDER_PHONE, contact_person="佐藤"
    )
    ProviderFactory(municipality=city_b, name="他市の事業者", phone=PROVIDER_PHONE)
    record = _answer(twilio, line_a, agent_a, caller=PROVIDER_PHONE, hang_up=False)
    payload = screen_pop_payload(user=agent_a, call_id=record.pk)
    assert [p["name"] for p in payload["providers"]] == ["小樽海産株式会社"]
    assert payload["providers"][0]["contact_person"] == "佐藤"
    assert payload["municipality"]["name"] == city_a.name
    response = login(agent_a).post(
        reverse("telephony:call_ticket_start", args=[record.pk]),
        {"requester": f"p{provider.pk}", "category": "provider_shipping"},
        HTTP_ACCEPT="application/json",
    )
    assert response.status_code == 200
    inquiry = Inquiry.objects.get(pk=response.json()["inquiry_id"])
    assert inquiry.requester_type == "provider" and inquiry.provider == provider
    assert inquiry.ticket.title == "事業者: 出荷依頼: 小樽海産株式会社"
    # Its open inquiries appear on the next pop from that number.
    payload = screen_pop_payload(user=agent_a, call_id=record.pk)
    assert [i["id"] for i in payload["providers"][0]["open_inquiries"]] == [inquiry.pk]


def test_provider_of_another_city_cannot_be_linked(
    twilio, login, line_a, agent_a, city_b, open_hours
):
    other = ProviderFactory(municipality=city_b, phone=PROVIDER_PHONE)
    record = _answer(twilio, line_a, agent_a, caller=PROVIDER_PHONE)
    assert screen_pop_payload(user=agent_a, call_id=record.pk)["providers"] == []
    response = login(agent_a).post(
        reverse("telephony:call_ticket_start", args=[record.pk]),
        {"requester": f"p{other.pk}"},
        HTTP_ACCEPT="application/json",
    )
    assert response.status_code == 409
    assert response.json()["error"] == "返礼品提供事業者が見つかりません。"


# --- Every answered call ends on an inquiry --------------------------------------------------


def _wrap_up(client, record, **data):
    return client.post(
        reverse("telephony:call_wrap_up", args=[record.pk]), data, HTTP_ACCEPT="application/json"
    )


def test_wrap_up_without_an_inquiry_is_refused(
    twilio, login, line_a, agent_a, shipment_a, resolved, open_hours
):
    record = _answer(twilio, line_a, agent_a)
    response = _wrap_up(login(agent_a), record, disposition="resolved")
    assert response.status_code == 409
    assert "問合せが記録されていません" in response.json()["error"]
    record.refresh_from_db()
    assert record.disposition is None and record.wrapped_up_at is None
    assert AgentPresence.objects.get(user=agent_a).state == AgentPresence.State.WRAP_UP


@pytest.mark.parametrize(("code", "name"), [("wrong_number", "間違い電話"), ("silent", "無言")])
def test_codes_that_are_not_inquiries_need_none(
    twilio, login, line_a, agent_a, open_hours, code, name
):
    _code(code, name)
    record = _answer(twilio, line_a, agent_a)
    assert _wrap_up(login(agent_a), record, disposition=code).status_code == 200
    record.refresh_from_db()
    assert record.disposition.code == code and record.inquiry is None
    assert AgentPresence.objects.get(user=agent_a).state == AgentPresence.State.AVAILABLE


def test_answered_on_the_spot_is_a_resolved_inquiry_the_city_sees(
    twilio,
    login,
    line_a,
    agent_a,
    city_official_a,
    shipment_a,
    resolved,
    open_hours,
    django_capture_on_commit_callbacks,
):
    heard = []

    def receiver(sender, **kwargs):
        heard.append(kwargs)

    signals.call_wrapped_up.connect(receiver, dispatch_uid="test-heard")
    try:
        record = _answer(twilio, line_a, agent_a)
        donor = shipment_a.donation.donor
        client = login(agent_a)
        missing = _wrap_up(
            client, record, disposition="resolved", inquiry="quick", answer_note="案内済み"
        )
        assert missing.status_code == 409
        assert "分類と回答内容" in missing.json()["error"]
        with django_capture_on_commit_callbacks(execute=True):
            response = _wrap_up(
                client,
                record,
                disposition="resolved",
                inquiry="quick",
                requester=f"d{donor.pk}",
                answer_category="receipt",
                answer_note="受領証明書の発送時期を案内",
                note="折り返し不要",
            )
    finally:
        signals.call_wrapped_up.disconnect(dispatch_uid="test-heard")
    assert response.status_code == 200, response.content
    record.refresh_from_db()
    inquiry = Inquiry.objects.select_related("ticket", "category").get(pk=record.inquiry_id)
    assert inquiry.status == Status.RESOLVED and inquiry.resolved_at is not None
    assert inquiry.category.code == "receipt" and inquiry.donor == donor
    assert inquiry.assigned_to == agent_a and inquiry.channel == "phone"
    assert inquiry.ticket.description == "受領証明書の発送時期を案内"
    assert Inquiry.objects.visible_to(city_official_a).filter(pk=inquiry.pk).exists()
    assert FollowUp.objects.filter(ticket_id=inquiry.pk, title="通話記録").exists()
    assert heard == [
        {
            "signal": signals.call_wrapped_up,
            "call_id": record.pk,
            "disposition_code": "resolved",
            "actor_id": agent_a.pk,
        }
    ]


def test_wrap_up_on_an_existing_open_inquiry_of_the_caller(
    twilio, login, line_a, agent_a, city_a, city_b, shipment_a, resolved, open_hours
):
    donor = shipment_a.donation.donor
    earlier = ticket_services.inquiry_open(
        actor=agent_a,
        municipality=city_a,
        channel="email",
        title="受領証明書が届かない",
        description="",
        donor=donor,
    )
    record = _answer(twilio, line_a, agent_a)
    payload = screen_pop_payload(user=agent_a, call_id=record.pk)
    assert [i["id"] for i in payload["matches"][0]["open_inquiries"]] == [earlier.pk]
    other_city = ticket_services.inquiry_open(
        actor=None, municipality=city_b, channel="email", title="他市", description=""
    )
    client = login(agent_a)
    refused = _wrap_up(client, record, disposition="resolved", inquiry=str(other_city.pk))
    assert refused.status_code == 409
    assert (
        _wrap_up(client, record, disposition="resolved", inquiry=str(earlier.pk)).status_code == 200
    )
    record.refresh_from_db()
    assert record.inquiry_id == earlier.pk
    assert FollowUp.objects.filter(ticket_id=earlier.pk, title="通話記録").exists()


def test_wrap_up_form_offers_the_choices(login, agent_a):
    html = login(agent_a).get(reverse("console")).content.decode()
    assert 'id="call-ticket-template"' in html
    assert 'name="answer_category"' in html and "その場で回答" in html
    assert 'value="wrong_number" data-no-inquiry' in html
    assert 'value="resolved">' in html


# --- Wallboard --------------------------------------------------------------------------------


def test_wallboard_lists_waiting_calls_and_flags_a_long_wrap_up(
    twilio, login, line_a, agent_a, supervisor, city_a, settings
):
    settings.TELEPHONY_WRAP_UP_ALERT_SECONDS = 120
    with time_machine.travel(tokyo(2025, 6, 10, 10, 0), tick=False) as clock:
        _answer(twilio, line_a, agent_a)  # agent_a is in wrap-up from 10:00
        waiting = PhoneCall(twilio, from_="+819033334444", to=line_a.e164)
        waiting.dial_in()
        waiting.press("1")  # nobody free: queued
        clock.move_to(tokyo(2025, 6, 10, 10, 3))
        stats = wallboard_stats([city_a.id])
        assert [
            (c["municipality"], c["from"], c["wait_seconds"]) for c in stats["waiting_calls"]
        ] == [(city_a.name, "090-3333-4444", 180)]
        person = next(p for p in stats["agents"]["people"] if p["user_id"] == agent_a.pk)
        assert person["state"] == "wrap_up" and person["seconds_in_state"] == 180
        assert person["wrap_up_overdue"] is True
        html = login(supervisor).get(reverse("telephony:wallboard")).content.decode()
    assert "後処理超過" in html and "090-3333-4444" in html
    assert 'data-elapsed-base="180"' in html
    settings.TELEPHONY_WRAP_UP_ALERT_SECONDS = 600
    with time_machine.travel(tokyo(2025, 6, 10, 10, 3), tick=False):
        person = next(
            p
            for p in wallboard_stats([city_a.id])["agents"]["people"]
            if p["user_id"] == agent_a.pk
        )
    assert person["wrap_up_overdue"] is False


def test_wallboard_waiting_calls_stay_within_the_supervisors_cities(
    twilio, line_a, city_a, city_b, open_hours
):
    waiting = PhoneCall(twilio, from_="+819033334444", to=line_a.e164)
    waiting.dial_in()
    waiting.press("1")
    assert wallboard_stats([city_b.id])["waiting_calls"] == []
    assert len(wallboard_stats([city_a.id])["waiting_calls"]) == 1


def test_quick_answer_note_is_bounded(twilio, line_a, agent_a, resolved, open_hours):
    record = _answer(twilio, line_a, agent_a)
    with pytest.raises(ValidationError, match="1000文字"):
        services.call_wrap_up(
            actor=agent_a,
            call=record,
            disposition=resolved,
            quick_answer=services.QuickAnswer(category="other", note="あ" * 1001),
        )
