"""Agent and supervisor pages: start a ticket from a call, wrap-up, call-back, the wallboard."""

from __future__ import annotations

import datetime
from urllib.parse import parse_qs, urlsplit

import pytest
import time_machine
from django.urls import reverse
from django.utils import timezone
from helpdesk.models import FollowUp

from crm.models import User
from telephony.models import AgentPresence, Call
from telephony.selectors import wallboard_stats
from tests.factories import DonorPhoneFactory, UserFactory
from tests.telephony.conftest import (
    ACCOUNT_SID,
    FakeTwilioHttp,
    PhoneCall,
    make_available,
    tokyo,
)
from tickets import services as ticket_services

CALLER = "+819012345678"


@pytest.fixture
def answered_call(twilio, line_a, city_a, agent_a, open_hours):
    """A call agent_a answered and finished; returns (PhoneCall, Call)."""
    donor_phone = DonorPhoneFactory(donor__municipality=city_a, e164=CALLER)
    make_available(agent_a)
    call = PhoneCall(twilio, from_=CALLER, to=line_a.e164)
    call.dial_in()
    call.press("1")
    call.agent_answers(call.dial_targets()[0])
    call.hang_up()
    record = Call.objects.get(call_sid=call.sid)
    record.donor = donor_phone.donor
    return call, record


def test_start_ticket_from_the_pop_links_call_and_donor(login, agent_a, answered_call):
    _, record = answered_call
    client = login(agent_a)
    response = client.post(
        reverse("telephony:call_ticket_start", args=[record.pk]), {"donor": record.donor.pk}
    )
    record.refresh_from_db()
    inquiry = record.inquiry
    assert response.status_code == 302
    assert response["Location"] == reverse("ticket_detail", args=[inquiry.pk])
    assert inquiry.channel == "phone" and inquiry.donor == record.donor
    assert inquiry.municipality_id == record.municipality_id
    # A second click opens the same ticket rather than a duplicate.
    again = client.post(reverse("telephony:call_ticket_start", args=[record.pk]))
    assert again["Location"] == response["Location"]


def test_start_ticket_refuses_a_donor_of_another_city(login, agent_a, answered_call, city_b):
    from tests.factories import DonorFactory

    _, record = answered_call
    other = DonorFactory(municipality=city_b)
    client = login(agent_a)
    client.post(reverse("telephony:call_ticket_start", args=[record.pk]), {"donor": other.pk})
    record.refresh_from_db()
    assert record.inquiry is None


def test_other_cities_staff_cannot_touch_the_call(
    login, answered_call, agent_b, city_official_b, city_official_a
):
    _, record = answered_call
    for user, status in ((agent_b, 404), (city_official_b, 403), (city_official_a, 403)):
        client = login(user)
        for name in ("call_ticket_start", "call_wrap_up"):
            response = client.post(reverse(f"telephony:{name}", args=[record.pk]))
            assert response.status_code == status, (user, name)
        assert client.get(reverse("telephony:call_pop", args=[record.pk])).status_code == status
    record.refresh_from_db()
    assert record.inquiry is None and record.disposition is None


def test_wrap_up_logs_the_call_on_its_ticket_and_frees_the_agent(
    login, agent_a, answered_call, resolved
):
    _, record = answered_call
    client = login(agent_a)
    client.post(reverse("telephony:call_ticket_start", args=[record.pk]))
    assert AgentPresence.objects.get(user=agent_a).state == AgentPresence.State.WRAP_UP
    blocked = client.post(
        reverse("telephony:presence_update"),
        {"state": "available"},
        HTTP_ACCEPT="application/json",
    )
    assert blocked.status_code == 409
    assert "後処理コード" in blocked.json()["error"]
    response = client.post(
        reverse("telephony:call_wrap_up", args=[record.pk]),
        {"disposition": "resolved", "note": "配送状況を案内"},
        HTTP_ACCEPT="application/json",
    )
    assert response.status_code == 200
    record.refresh_from_db()
    assert record.disposition.code == "resolved"
    note = FollowUp.objects.get(ticket_id=record.inquiry_id, title="通話記録")
    assert "通話時間" in note.comment and "配送状況を案内" in note.comment
    assert AgentPresence.objects.get(user=agent_a).state == AgentPresence.State.AVAILABLE


def test_agent_page_shows_the_panel(login, agent_a, city_official_a):
    response = login(agent_a).get(reverse("telephony:agent"))
    assert response.status_code == 200
    html = response.content.decode()
    assert 'id="incoming-call"' in html and "js/screenpop.js" in html
    assert 'data-presence="available"' in html
    assert login(city_official_a).get(reverse("telephony:agent")).status_code == 403


# --- Call-back --------------------------------------------------------------------------------


@pytest.fixture
def inquiry_a(city_a, agent_a, line_a):
    phone = DonorPhoneFactory(donor__municipality=city_a, e164="+819055556666")
    return ticket_services.inquiry_open(
        actor=agent_a,
        municipality=city_a,
        channel="phone",
        title="受領証明書が届かない",
        description="折り返し希望",
        donor=phone.donor,
    )


def test_call_back_places_a_twilio_call_and_is_recorded_like_any_call(
    login, agent_a, inquiry_a, line_a, twilio, django_capture_on_commit_callbacks
):
    client = login(agent_a)
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(
            reverse("telephony:call_back", args=[inquiry_a.pk]), HTTP_ACCEPT="application/json"
        )
    assert response.status_code == 200
    [request] = FakeTwilioHttp.requests
    assert request["method"] == "POST"
    assert request["uri"].endswith(f"/Accounts/{ACCOUNT_SID}/Calls.json")
    assert request["data"]["To"] == f"client:agent-{agent_a.pk}"
    assert request["data"]["From"] == line_a.e164
    call = Call.objects.get(pk=response.json()["call_id"])
    assert call.call_sid and call.inquiry == inquiry_a and call.placed_by == agent_a
    assert parse_qs(urlsplit(request["data"]["Url"]).query)["call"] == [str(call.pk)]

    # Twilio rings the agent; their answer fetches the TwiML that dials the donor.
    leg = PhoneCall(twilio, from_=line_a.e164, to=f"client:agent-{agent_a.pk}")
    leg.sid = call.call_sid
    leg.root = leg.twilio.twiml(request["data"]["Url"], leg.params(CallStatus="in-progress"))
    [number] = leg.dial_targets()
    assert number.tag == "Number" and number.text == "+819055556666"
    assert leg.root.find("Dial").get("callerId") == line_a.e164
    status_url = request["data"]["StatusCallback"]
    twilio.post(status_url, {**leg.params(), "CallStatus": "in-progress", "SequenceNumber": "1"})
    assert AgentPresence.objects.get(user=agent_a).state == AgentPresence.State.ON_CALL
    leg.agent_answers(number)  # the donor picked up
    twilio.post(
        status_url,
        {**leg.params(), "CallStatus": "completed", "SequenceNumber": "2", "CallDuration": "95"},
    )
    call.refresh_from_db()
    assert call.status == Call.Status.COMPLETED and call.answered_at is not None
    assert AgentPresence.objects.get(user=agent_a).state == AgentPresence.State.WRAP_UP


def test_call_back_refused_by_twilio_frees_the_agent(
    login, agent_a, inquiry_a, django_capture_on_commit_callbacks
):
    FakeTwilioHttp.fail_with = (
        400,
        {"code": 21211, "message": "Invalid 'To' Phone Number", "status": 400},
    )
    with django_capture_on_commit_callbacks(execute=True):
        response = login(agent_a).post(
            reverse("telephony:call_back", args=[inquiry_a.pk]), HTTP_ACCEPT="application/json"
        )
    call = Call.objects.get(pk=response.json()["call_id"])
    assert call.status == Call.Status.FAILED
    assert AgentPresence.objects.get(user=agent_a).state != AgentPresence.State.RINGING


@pytest.mark.parametrize("typed", ["03-12", "0312", "折り返し不要"])
def test_call_back_to_a_malformed_number_is_refused_not_redirected_to_the_donor(
    login, agent_a, inquiry_a, line_a, django_capture_on_commit_callbacks, typed
):
    client = login(agent_a)
    ticket_url = reverse("ticket_detail", args=[inquiry_a.pk])
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(
            reverse("telephony:call_back", args=[inquiry_a.pk]),
            {"to": typed},
            HTTP_ACCEPT="application/json",
        )
        page_response = client.post(
            reverse("telephony:call_back", args=[inquiry_a.pk]),
            {"to": typed, "next": ticket_url},
            follow=True,
        )
    assert response.status_code == 409
    assert response.json()["error"] == f"電話番号の形式が正しくありません: {typed}"
    assert f"電話番号の形式が正しくありません: {typed}" in page_response.content.decode()
    assert not FakeTwilioHttp.requests and not Call.objects.exists()
    assert not AgentPresence.objects.filter(user=agent_a, state="ringing").exists()


def test_call_back_dials_a_valid_typed_number_and_shows_the_default_before_dialling(
    login, agent_a, inquiry_a, line_a, django_capture_on_commit_callbacks
):
    client = login(agent_a)
    page = client.get(reverse("ticket_detail", args=[inquiry_a.pk])).content.decode()
    assert "空欄のまま発信すると寄附者の登録番号 090-5555-6666 に発信します" in page
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(
            reverse("telephony:call_back", args=[inquiry_a.pk]),
            {"to": "０３−１２３４−５６７８"},
            HTTP_ACCEPT="application/json",
        )
    assert response.status_code == 200
    assert Call.objects.get(pk=response.json()["call_id"]).from_e164 == "+81312345678"
    assert len(FakeTwilioHttp.requests) == 1


def test_call_back_is_scoped(login, inquiry_a, agent_b, city_official_b, city_official_a):
    for user, status in ((agent_b, 404), (city_official_b, 403), (city_official_a, 403)):
        response = login(user).post(reverse("telephony:call_back", args=[inquiry_a.pk]))
        assert response.status_code == status
    assert not FakeTwilioHttp.requests and not Call.objects.exists()


# --- Wallboard --------------------------------------------------------------------------------


def _call(municipality, offered_at, **fields) -> Call:
    return Call.objects.create(municipality=municipality, offered_at=offered_at, **fields)


def test_wallboard_figures_for_the_tokyo_day(city_a):
    now = tokyo(2025, 6, 10, 12, 0)
    routed = now - datetime.timedelta(minutes=30)
    end = routed + datetime.timedelta(minutes=5)
    answered = {"status": Call.Status.COMPLETED, "routed_at": routed, "ended_at": end}
    _call(city_a, routed, answered_at=routed, queue_seconds=10, **answered)
    _call(city_a, routed, answered_at=routed, queue_seconds=50, **answered)
    _call(city_a, routed, status=Call.Status.ABANDONED_QUEUE, routed_at=routed, queue_seconds=3)
    _call(city_a, routed, status=Call.Status.ABANDONED_QUEUE, routed_at=routed, queue_seconds=20)
    _call(city_a, routed, status=Call.Status.ABANDONED_IVR)
    _call(
        city_a,
        tokyo(2025, 6, 10, 0, 30),
        status=Call.Status.VOICEMAIL,
        after_hours=True,
        voicemail=True,
    )
    _call(
        city_a, tokyo(2025, 6, 9, 23, 50), status=Call.Status.COMPLETED, answered_at=routed
    )  # yesterday
    _call(city_a, now, status=Call.Status.QUEUED, routed_at=now - datetime.timedelta(seconds=75))
    _call(city_a, now, status=Call.Status.QUEUED, routed_at=now - datetime.timedelta(seconds=15))
    stats = wallboard_stats([city_a.pk], now=now)
    assert stats["waiting"] == 2 and stats["longest_wait_seconds"] == 75
    assert stats["offered"] == 7  # after-hours calls are not offered to agents
    assert stats["answered"] == 2
    assert stats["abandoned_queue"] == 2 and stats["abandoned_ivr"] == 1
    assert stats["voicemail"] == 1
    # Answered within 30 s: 1 of (2 answered + 1 abandon of 5 s or more).
    assert stats["service_level"] == 33.3


def test_wallboard_page_is_for_supervisors_and_scoped(
    login, city_a, city_b, agent_a, city_official_a, answered_call
):
    supervisor_b = UserFactory(username="sv_b", role=User.Role.SUPERVISOR, municipalities=[city_b])
    supervisor_a = UserFactory(username="sv_a", role=User.Role.SUPERVISOR, municipalities=[city_a])
    url = reverse("telephony:wallboard")
    assert login(agent_a).get(url).status_code == 403
    assert login(city_official_a).get(url).status_code == 403
    page_a = login(supervisor_a).get(url)
    assert page_a.status_code == 200
    assert page_a.context["stats"]["answered"] == 1
    assert agent_a.username in page_a.content.decode() or str(agent_a) in page_a.content.decode()
    page_b = login(supervisor_b).get(url)
    assert page_b.context["stats"]["answered"] == 0
    assert page_b.context["stats"]["agents"]["people"] == []
    assert login(supervisor_b).get(url, {"municipality": city_a.pk}).status_code == 404


def test_today_is_the_tokyo_day_not_utc(city_a):
    # 08:30 in Tokyo is 23:30 UTC the day before: the call belongs to Tokyo's today.
    with time_machine.travel(tokyo(2025, 6, 10, 8, 30), tick=False):
        _call(city_a, timezone.now(), status=Call.Status.ABANDONED_IVR)
        assert wallboard_stats([city_a.pk])["offered"] == 1


def test_softphone_token_only_when_configured(login, agent_a, city_official_a, settings):
    client = login(agent_a)
    assert client.get(reverse("telephony:voice_token")).status_code == 404
    assert "data-token-url" not in client.get(reverse("telephony:agent")).content.decode()
    settings.TWILIO_API_KEY_SID = "SK" + "2" * 32
    settings.TWILIO_API_KEY_SECRET = "api-key-secret-of-thirty-two-bytes!!"
    settings.TWILIO_TWIML_APP_SID = "AP" + "3" * 32
    settings.TELEPHONY_VOICE_SDK_URL = "/static/vendor/twilio.min.js"
    response = client.get(reverse("telephony:voice_token"))
    assert response.json()["identity"] == f"agent-{agent_a.pk}"
    import jwt  # PyJWT, which twilio's token builder uses

    claims = jwt.decode(
        response.json()["token"], "api-key-secret-of-thirty-two-bytes!!", algorithms=["HS256"]
    )
    assert claims["grants"]["identity"] == f"agent-{agent_a.pk}"
    assert claims["grants"]["voice"]["incoming"]["allow"] is True
    page = client.get(reverse("telephony:agent")).content.decode()
    assert 'src="/static/vendor/twilio.min.js"' in page and "data-token-url" in page
    assert login(city_official_a).get(reverse("telephony:voice_token")).status_code == 403
