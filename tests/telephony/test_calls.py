"""Whole calls replayed through really signed webhooks, following the TwiML we answer with."""

from __future__ import annotations

import pytest
import time_machine
from django.core.exceptions import ValidationError
from django.test import Client
from django.urls import reverse

from crm import normalize
from telephony import calendar_services, services
from telephony.models import AgentPresence, Call, CallEvent
from tests.factories import DonorFactory, DonorPhoneFactory, ShipmentFactory
from tests.telephony.conftest import (
    PUBLIC_BASE,
    PhoneCall,
    TwilioStandIn,
    make_available,
    tokyo,
)
from tickets.models import Inquiry

CALLER = "+819012345678"


def says(root) -> str:
    return " ".join(node.text or "" for node in root.iter("Say"))


# --- Signatures -----------------------------------------------------------------------------


def test_unsigned_and_wrongly_signed_webhooks_are_refused_and_logged(twilio, line_a, caplog):
    url = reverse("telephony:voice_inbound")
    params = {"CallSid": "CA" + "9" * 32, "From": CALLER, "To": line_a.e164}
    assert twilio.post(url, params, sign=False).status_code == 403
    assert twilio.post(url, params, signature="bm90IGEgc2lnbmF0dXJl").status_code == 403
    forged = TwilioStandIn(token="someone-elses-token")
    assert forged.post(url, params).status_code == 403
    # Signed for the address the app sees rather than the public one Twilio calls: refused.
    internal = "http://testserver" + url
    wrong_url_sig = twilio.validator.compute_signature(internal, params)
    assert twilio.post(url, params, signature=wrong_url_sig).status_code == 403
    assert "Rejected Twilio webhook" in caplog.text
    assert not Call.objects.exists()


def test_signed_against_public_base_url_is_accepted_without_csrf_token(line_a, open_hours):
    # Webhooks are CSRF-exempt (Twilio cannot carry a token); the signature protects them.
    twilio = TwilioStandIn(Client(enforce_csrf_checks=True))
    call = PhoneCall(twilio, from_=CALLER, to=line_a.e164)
    root = call.dial_in()
    assert root.find("Gather") is not None
    assert root.find("Gather").get("action").startswith(PUBLIC_BASE)


def test_webhooks_only_take_post(twilio, line_a):
    response = Client().get(reverse("telephony:voice_inbound"))
    assert response.status_code == 405


def test_pages_still_require_csrf(login, agent_a):
    client = login(agent_a, Client(enforce_csrf_checks=True))
    response = client.post(reverse("telephony:presence_update"), {"state": "available"})
    assert response.status_code == 403


# --- Greeting and menu ----------------------------------------------------------------------


def test_greeting_names_the_municipality_in_japanese_and_offers_the_menu(
    twilio, line_a, city_a, open_hours
):
    root = PhoneCall(twilio, from_=CALLER, to=line_a.e164).dial_in()
    say = root.find("Gather/Say")
    assert say.get("language") == "ja-JP"
    text = says(root)
    assert city_a.answer_name in text
    assert "寄附をされた方、寄附をご検討中の方は1を" in text
    assert "返礼品提供事業者の方は2を" in text
    assert "その他のお問合せの方は3を" in text


def test_greeting_and_menu_are_configurable_per_municipality(twilio, line_a, city_a, open_hours):
    phone_settings = city_a.phone_settings
    phone_settings.greeting = "小樽市ふるさと納税係です。"
    phone_settings.ivr_options = {
        "1": {"label": "寄附について", "requester_type": "donor"},
        "9": {"label": "市役所へのご用件", "requester_type": "city"},
    }
    phone_settings.save()
    call = PhoneCall(twilio, from_=CALLER, to=line_a.e164)
    text = says(call.dial_in())
    assert "小樽市ふるさと納税係です。" in text
    assert "市役所へのご用件は9を" in text
    call.press("9")
    assert Call.objects.get(call_sid=call.sid).requester_type == "city"


def test_no_input_and_invalid_input_reprompt_then_route_as_other(twilio, line_a, open_hours):
    call = PhoneCall(twilio, from_=CALLER, to=line_a.e164)
    call.dial_in()
    root = call.press("")
    assert "入力が確認できませんでした" in says(root)
    assert root.find("Gather") is not None
    root = call.press("7")
    assert "入力が正しくありません" in says(root)
    root = call.press("*")
    # The third failure still reaches a person, as "other"; nobody is free, so the queue.
    assert root.find("Enqueue") is not None
    record = Call.objects.get(call_sid=call.sid)
    assert record.requester_type == "other"
    assert record.status == Call.Status.QUEUED


def test_unknown_dialled_number_is_answered_and_hung_up(twilio, line_a):
    root = PhoneCall(twilio, from_=CALLER, to="+81120999999").dial_in()
    assert root.find("Hangup") is not None
    assert not Call.objects.exists()


# --- Whole calls ----------------------------------------------------------------------------


def test_answered_call_full_lifecycle(
    twilio, line_a, city_a, agent_a, agent_a2, agent_b, open_hours, resolved
):
    for agent in (agent_a, agent_a2, agent_b):
        make_available(agent)
    call = PhoneCall(twilio, from_=CALLER, to=line_a.e164)
    call.dial_in()
    root = call.press("1")
    targets = call.dial_targets()
    # Both free agents of city A ring; city B's agent does not.
    assert sorted(t.text for t in targets) == sorted(
        [f"agent-{agent_a.pk}", f"agent-{agent_a2.pk}"]
    )
    assert all(t.tag == "Client" for t in targets)
    assert root.find("Dial").get("record") == "record-from-answer-dual"
    assert AgentPresence.objects.get(user=agent_a).state == AgentPresence.State.RINGING
    assert AgentPresence.objects.get(user=agent_b).state == AgentPresence.State.AVAILABLE
    record = Call.objects.get(call_sid=call.sid)
    assert record.status == Call.Status.RINGING and record.requester_type == "donor"

    first = next(t for t in targets if t.text == f"agent-{agent_a.pk}")
    second = next(t for t in targets if t.text == f"agent-{agent_a2.pk}")
    call.agent_leg(first, "ringing", 1)
    whisper = call.agent_answers(first)
    assert city_a.name in says(whisper)
    call.agent_leg(second, "canceled", 2)
    record.refresh_from_db()
    assert record.status == Call.Status.IN_PROGRESS
    assert record.answered_by == agent_a
    assert AgentPresence.objects.get(user=agent_a).state == AgentPresence.State.ON_CALL
    assert AgentPresence.objects.get(user=agent_a2).state == AgentPresence.State.AVAILABLE

    with time_machine.travel(tokyo(2025, 6, 10, 10, 5), tick=False):
        call.agent_leg(first, "completed", 3)
        call.dial_ends("completed", duration=280)
        call.hang_up()
    record.refresh_from_db()
    assert record.status == Call.Status.COMPLETED
    assert record.talk_seconds >= 200 and record.queue_seconds is not None
    presence = AgentPresence.objects.get(user=agent_a)
    assert presence.state == AgentPresence.State.WRAP_UP

    # Wrap-up is required before the next call.
    with pytest.raises(ValidationError, match="後処理コード"):
        make_available(agent_a)
    services.call_wrap_up(
        actor=agent_a,
        call=record,
        disposition=resolved,
        quick_answer=services.QuickAnswer(category="shipping_status", note="配送状況を案内"),
    )
    assert AgentPresence.objects.get(user=agent_a).state == AgentPresence.State.AVAILABLE


def test_replayed_webhooks_are_applied_once(twilio, line_a, agent_a, open_hours):
    make_available(agent_a)
    call = PhoneCall(twilio, from_=CALLER, to=line_a.e164)
    call.dial_in()
    call.dial_in()  # Twilio retried the first request
    assert Call.objects.filter(call_sid=call.sid).count() == 1
    call.press("1")
    target = call.dial_targets()[0]
    call.agent_answers(target)
    call.agent_answers(target)
    call.hang_up(sequence=5)
    call.hang_up(sequence=5)
    record = Call.objects.get(call_sid=call.sid)
    assert record.events.filter(event="status:completed").count() == 1
    assert record.events.filter(event=f"agent:answer:{agent_a.pk}").count() == 1
    assert record.status == Call.Status.COMPLETED


def test_out_of_order_status_callbacks_never_move_the_call_back(twilio, line_a, open_hours):
    call = PhoneCall(twilio, from_=CALLER, to=line_a.e164)
    call.dial_in()
    call.hang_up(sequence=3)
    twilio.status(call, "ringing", sequence=0)
    twilio.status(call, "in-progress", sequence=1)
    record = Call.objects.get(call_sid=call.sid)
    assert record.status == Call.Status.ABANDONED_IVR
    assert record.last_sequence == 3
    assert record.ended_at is not None
    # The late callbacks are still kept as events.
    assert CallEvent.objects.filter(call=record, event="status:ringing").exists()


def test_caller_hangs_up_in_the_ivr(twilio, line_a, open_hours):
    call = PhoneCall(twilio, from_=CALLER, to=line_a.e164)
    call.dial_in()
    call.hang_up(duration=8)
    record = Call.objects.get(call_sid=call.sid)
    assert record.status == Call.Status.ABANDONED_IVR
    assert record.routed_at is None


def test_caller_hangs_up_in_the_queue(twilio, line_a, open_hours):
    call = PhoneCall(twilio, from_=CALLER, to=line_a.e164)
    call.dial_in()
    root = call.press("1")
    assert root.find("Enqueue").text == f"municipality-{line_a.municipality_id}"
    hold = call.wait_in_queue()
    assert "混み合っております" in says(hold)
    assert hold.find("Pause") is not None
    with time_machine.travel(tokyo(2025, 6, 10, 10, 1), tick=False):
        root = call.leave_queue("hangup")
        call.hang_up()
    assert root.find("Hangup") is not None
    record = Call.objects.get(call_sid=call.sid)
    assert record.status == Call.Status.ABANDONED_QUEUE
    assert record.queue_seconds == 30  # Twilio's QueueTime


def test_durations_are_twilios_even_when_its_callbacks_arrive_late(
    twilio, line_a, agent_a, resolved
):
    make_available(agent_a)
    with time_machine.travel(tokyo(2025, 6, 10, 10, 0, 0), tick=False) as clock:
        talked = PhoneCall(twilio, from_=CALLER, to=line_a.e164)
        talked.dial_in()
        clock.move_to(tokyo(2025, 6, 10, 10, 0, 5))
        talked.press("1")
        talked.agent_answers(talked.dial_targets()[0])
        # The dial's action and the status callback reach us 40 minutes after the call ended.
        clock.move_to(tokyo(2025, 6, 10, 10, 42))
        talked.dial_ends("completed", duration=95)
        talked.hang_up(duration=100)
        services.call_wrap_up(
            actor=agent_a,
            call=Call.objects.get(call_sid=talked.sid),
            disposition=resolved,
            quick_answer=services.QuickAnswer(category="how_to_donate", note="寄附の方法を案内"),
        )

        clock.move_to(tokyo(2025, 6, 10, 11, 0, 0))
        no_dial_action = PhoneCall(twilio, from_=CALLER, to=line_a.e164)
        no_dial_action.dial_in()
        clock.move_to(tokyo(2025, 6, 10, 11, 0, 5))
        no_dial_action.press("1")
        no_dial_action.agent_answers(no_dial_action.dial_targets()[0])
        clock.move_to(tokyo(2025, 6, 10, 11, 30))
        no_dial_action.hang_up(duration=65)  # 5 s of menu, then 60 s of talk

        clock.move_to(tokyo(2025, 6, 10, 12, 0, 0))
        waited = PhoneCall(twilio, from_=CALLER, to=line_a.e164)
        waited.dial_in()
        waited.press("1")  # the agent is in wrap-up: the caller queues
        clock.move_to(tokyo(2025, 6, 10, 12, 25))
        waited.root = twilio.twiml(
            waited.root.find("Enqueue").get("action"),
            waited.params(CallStatus="in-progress", QueueResult="hangup", QueueTime="42"),
        )
        waited.hang_up(duration=50)

    talked_record = Call.objects.get(call_sid=talked.sid)
    assert talked_record.status == Call.Status.COMPLETED
    assert talked_record.talk_seconds == 95  # DialCallDuration
    assert Call.objects.get(call_sid=no_dial_action.sid).talk_seconds == 60
    waited_record = Call.objects.get(call_sid=waited.sid)
    assert waited_record.status == Call.Status.ABANDONED_QUEUE
    assert waited_record.queue_seconds == 42  # QueueTime


def test_queued_caller_is_connected_when_an_agent_becomes_free(twilio, line_a, agent_a, open_hours):
    call = PhoneCall(twilio, from_=CALLER, to=line_a.e164)
    call.dial_in()
    call.press("1")
    make_available(agent_a)
    # Second in line with one free agent: keep waiting; first in line: leave to be connected.
    assert call.wait_in_queue(position=2).find("Leave") is None
    assert call.wait_in_queue(position=1).find("Leave") is not None
    root = call.leave_queue("leave")
    assert [t.text for t in call.dial_targets()] == [f"agent-{agent_a.pk}"]
    assert root.find("Dial") is not None


def test_unanswered_ring_takes_the_agent_off_the_line_and_requeues(
    twilio, line_a, agent_a, open_hours
):
    make_available(agent_a)
    call = PhoneCall(twilio, from_=CALLER, to=line_a.e164)
    call.dial_in()
    call.press("1")
    target = call.dial_targets()[0]
    call.agent_leg(target, "no-answer", 2)
    root = call.dial_ends("no-answer")
    # An agent who lets a call ring out is taken off the line (離席), so the caller is not
    # rung back to an empty desk; the caller waits in the queue for the next free agent.
    assert AgentPresence.objects.get(user=agent_a).state == AgentPresence.State.BREAK
    assert root.find("Enqueue") is not None
    assert Call.objects.get(call_sid=call.sid).status == Call.Status.QUEUED


def test_agent_rung_for_one_call_is_not_rung_for_another(twilio, line_a, agent_a, open_hours):
    make_available(agent_a)
    first = PhoneCall(twilio, from_=CALLER, to=line_a.e164)
    first.dial_in()
    first.press("1")
    second = PhoneCall(twilio, from_="+819087654321", to=line_a.e164)
    second.dial_in()
    root = second.press("1")
    assert root.find("Dial") is None
    assert root.find("Enqueue") is not None


def test_queue_wait_is_bounded_then_voicemail_is_offered(twilio, line_a, city_a, open_hours):
    city_a.phone_settings.max_queue_wait_seconds = 60
    city_a.phone_settings.save()
    call = PhoneCall(twilio, from_=CALLER, to=line_a.e164)
    call.dial_in()
    call.press("1")
    assert call.wait_in_queue().find("Leave") is None
    with time_machine.travel(tokyo(2025, 6, 10, 10, 2), tick=False):
        assert call.wait_in_queue(queue_time=120).find("Leave") is not None
        root = call.leave_queue("leave")
    assert root.find("Record") is not None
    assert "混み合って" in says(root)


def test_after_hours_voicemail_becomes_a_ticket_for_the_matched_donor(
    twilio, line_a, city_a, django_capture_on_commit_callbacks
):
    donor = DonorFactory(municipality=city_a, name="留守 花子")
    DonorPhoneFactory(donor=donor, e164=CALLER)
    with time_machine.travel(tokyo(2025, 6, 10, 19, 30), tick=False):
        call = PhoneCall(twilio, from_=CALLER, to=line_a.e164)
        root = call.dial_in()
    text = says(root)
    assert "本日の受付は終了しております" in text
    assert "受付時間は、毎日午前9時から午後5時まで" in text
    assert "次の受付開始は、6月11日(水)午前9時です" in text
    assert root.find("Gather") is None and root.find("Record") is not None
    with django_capture_on_commit_callbacks(execute=True):
        done = call.record_voicemail(duration=14)
    assert done.find("Hangup") is not None
    call.hang_up()
    record = Call.objects.get(call_sid=call.sid)
    assert record.after_hours and record.voicemail
    assert record.status == Call.Status.VOICEMAIL
    inquiry = record.inquiry
    assert inquiry is not None
    assert inquiry.channel == "phone" and inquiry.municipality == city_a
    assert inquiry.donor == donor
    assert f"/telephony/calls/{record.pk}/recording/" in inquiry.ticket.description
    assert Inquiry.objects.count() == 1


def test_after_hours_hang_up_without_a_message_is_not_an_abandon(
    twilio, line_a, city_a, agent_a, open_hours
):
    from telephony.selectors import wallboard_stats

    make_available(agent_a)
    answered = PhoneCall(twilio, from_=CALLER, to=line_a.e164)
    answered.dial_in()
    answered.press("1")
    answered.agent_answers(answered.dial_targets()[0])
    answered.dial_ends("completed", duration=40)
    answered.hang_up()
    with time_machine.travel(tokyo(2025, 6, 10, 19, 30), tick=False):
        call = PhoneCall(twilio, from_=CALLER, to=line_a.e164)
        assert call.dial_in().find("Record") is not None
        call.hang_up(duration=9)  # heard the closed message, left nothing
        stats = wallboard_stats([city_a.pk])
    record = Call.objects.get(call_sid=call.sid)
    assert record.status == Call.Status.AFTER_HOURS_HANGUP
    assert record.get_status_display() == "時間外切断"
    assert record.is_ended
    assert stats["abandoned"] == stats["abandoned_ivr"] == stats["abandoned_queue"] == 0
    assert stats["after_hours"] == stats["after_hours_hangup"] == 1
    assert stats["answered"] == 1 and stats["service_level"] == 100.0


def test_after_hours_hang_ups_recorded_as_abandons_are_migrated(city_a):
    import importlib

    from django.apps import apps

    migration = importlib.import_module("telephony.migrations.0003_call_after_hours_hangup")
    at = tokyo(2025, 6, 10, 19, 30)
    old = Call.objects.create(
        municipality=city_a, offered_at=at, after_hours=True, status=Call.Status.ABANDONED_IVR
    )
    in_hours = Call.objects.create(
        municipality=city_a, offered_at=at, status=Call.Status.ABANDONED_IVR
    )
    migration.after_hours_abandons_to_hangups(apps, None)
    old.refresh_from_db()
    in_hours.refresh_from_db()
    assert old.status == Call.Status.AFTER_HOURS_HANGUP
    assert in_hours.status == Call.Status.ABANDONED_IVR


def test_after_hours_message_names_the_municipality_then_hours_then_special_hours(twilio, city_a):
    from tests.factories import MunicipalityPhoneNumberFactory

    line = MunicipalityPhoneNumberFactory(municipality=city_a, e164="+81466000009")
    calendar_services.business_calendar_apply_preset(
        municipality=city_a, preset="weekdays_with_year_end_peak"
    )
    with time_machine.travel(tokyo(2025, 12, 26, 18, 30), tick=False):  # Friday evening
        root = PhoneCall(twilio, from_=CALLER, to=line.e164).dial_in()
    text = says(root)
    assert text.startswith(f"お電話ありがとうございます。{city_a.answer_name}")
    order = [
        city_a.answer_name,
        "本日の受付は終了しております。",
        "受付時間は、平日（月曜日から金曜日）午前9時から午後5時まで",
        "12月29日から1月3日までは午前9時から午後8時まで受付いたします。",
        "次の受付開始は、12月29日(月)午前9時です。",
        "発信音の後に",
    ]
    positions = [text.index(part) for part in order]
    assert positions == sorted(positions)
    assert root.find("Record") is not None


def test_call_on_a_national_holiday_goes_to_voicemail_where_closed(twilio, city_a, city_b):
    from tests.factories import MunicipalityPhoneNumberFactory

    # 2025-02-24 is 振替休日 (the Emperor's Birthday fell on a Sunday).
    fujisawa_like = MunicipalityPhoneNumberFactory(municipality=city_a, e164="+81466000001")
    calendar_services.business_calendar_apply_preset(
        municipality=city_a, preset="weekdays_with_year_end_peak"
    )
    fukuyama_like = MunicipalityPhoneNumberFactory(municipality=city_b, e164="+81849000001")
    calendar_services.business_calendar_apply_preset(
        municipality=city_b, preset="every_day_except_new_year"
    )
    with time_machine.travel(tokyo(2025, 2, 24, 11, 0), tick=False):
        closed = PhoneCall(twilio, from_=CALLER, to=fujisawa_like.e164).dial_in()
        open_ = PhoneCall(twilio, from_=CALLER, to=fukuyama_like.e164).dial_in()
    assert closed.find("Record") is not None
    assert "祝日を除く" in says(closed)
    assert "次の受付開始は、2月25日(火)午前9時です" in says(closed)
    assert open_.find("Gather") is not None


def test_withheld_number_voicemail_opens_a_ticket_without_a_donor(
    twilio, line_a, city_a, django_capture_on_commit_callbacks
):
    DonorPhoneFactory(donor__municipality=city_a, e164=CALLER)
    with time_machine.travel(tokyo(2025, 6, 10, 8, 0), tick=False):
        call = PhoneCall(twilio, from_="anonymous", to=line_a.e164)
        root = call.dial_in()
    assert "ただいま受付時間外です" in says(root)
    with django_capture_on_commit_callbacks(execute=True):
        call.record_voicemail()
    record = Call.objects.get(call_sid=call.sid)
    assert record.from_e164 == "" and record.from_raw == "anonymous"
    assert record.inquiry.donor is None
    assert "非通知" in record.inquiry.ticket.title


def test_number_stored_full_width_in_the_donors_record_is_matched(
    twilio, line_a, city_a, agent_a, open_hours
):
    raw = "０９０−１２３４−５６７８"
    shipment = ShipmentFactory(donation__donor__municipality=city_a, gift_item__municipality=city_a)
    donor = shipment.donation.donor
    DonorPhoneFactory(donor=donor, e164=normalize.normalize_phone(raw), raw=raw)
    make_available(agent_a)
    call = PhoneCall(twilio, from_=CALLER, to=line_a.e164)
    call.dial_in()
    call.press("1")
    from telephony.selectors import screen_pop_payload

    record = Call.objects.get(call_sid=call.sid)
    payload = screen_pop_payload(user=agent_a, call_id=record.pk)
    assert [m["id"] for m in payload["matches"]] == [donor.pk]
    shipment_card = payload["matches"][0]["donations"][0]["shipments"][0]
    assert shipment_card["tracking_url"].endswith(shipment.tracking_number)


def test_same_number_in_another_city_is_not_matched(twilio, line_a, city_b, agent_a, open_hours):
    DonorPhoneFactory(donor__municipality=city_b, e164=CALLER)
    call = PhoneCall(twilio, from_=CALLER, to=line_a.e164)
    call.dial_in()
    from telephony.selectors import screen_pop_payload

    record = Call.objects.get(call_sid=call.sid)
    payload = screen_pop_payload(user=agent_a, call_id=record.pk)
    assert payload["matches"] == []
    assert payload["search"]["query"] == "090-1234-5678"


def test_agent_can_be_rung_on_their_phone_number(twilio, line_a, agent_a, open_hours):
    make_available(agent_a)
    # Set where staff records are kept (the console offers no form for it).
    AgentPresence.objects.filter(user=agent_a).update(phone_e164="+81312345678")
    call = PhoneCall(twilio, from_=CALLER, to=line_a.e164)
    call.dial_in()
    call.press("1")
    [target] = call.dial_targets()
    assert target.tag == "Number" and target.text == "+81312345678"


def test_voicemail_from_a_number_shared_by_two_donors_links_neither(
    twilio, line_a, city_a, django_capture_on_commit_callbacks
):
    for name in ("山田 太郎", "山田 花子"):
        DonorPhoneFactory(donor=DonorFactory(municipality=city_a, name=name), e164=CALLER)
    with time_machine.travel(tokyo(2025, 6, 10, 21, 0), tick=False):
        call = PhoneCall(twilio, from_=CALLER, to=line_a.e164)
        call.dial_in()
    with django_capture_on_commit_callbacks(execute=True):
        call.record_voicemail()
    inquiry = Call.objects.get(call_sid=call.sid).inquiry
    assert inquiry.donor is None
    assert "この番号の寄附者が2名います" in inquiry.ticket.description
