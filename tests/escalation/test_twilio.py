"""SMS and the automated acknowledgement call through Twilio's REST API, faked by a local HTTP
server: one SMS per attempt, Twilio's refusals and outages, retries that never send twice."""

from __future__ import annotations

import datetime as dt

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import timezone
from twilio.request_validator import RequestValidator

from escalation import services
from escalation.models import Escalation, EscalationNotification
from tests.escalation.conftest import ACCOUNT_SID, AUTH_TOKEN, PUBLIC_BASE

pytestmark = pytest.mark.django_db


@pytest.fixture
def urgent_ticket(open_ticket, damaged_rule, contacts_a, django_capture_on_commit_callbacks):
    def _open():
        with django_capture_on_commit_callbacks(execute=True):
            inquiry = open_ticket(category="damaged", severity="urgent")
        return Escalation.objects.get(inquiry=inquiry)

    return _open


def _sms_row(escalation: Escalation, step: int = 0) -> EscalationNotification:
    return EscalationNotification.objects.get(escalation=escalation, step=step, channel="sms")


def test_an_urgent_escalation_sends_one_sms_to_the_primary_contact(twilio_api, urgent_ticket):
    escalation = urgent_ticket()
    [request] = twilio_api.sms()
    assert request["path"] == f"/2010-04-01/Accounts/{ACCOUNT_SID}/Messages.json"
    form = request["form"]
    assert form["To"] == "+819011110001" and form["From"] == "+815000000000"
    assert f"https://cc.example.jp/escalation/{escalation.pk}/" in form["Body"]
    assert "山田" not in form["Body"]  # no personal data in an SMS
    row = _sms_row(escalation)
    assert row.status == "sent" and row.provider_sid.startswith("SM") and row.tries == 1
    # A second delivery of the same task (a redelivered message, the beat) sends nothing more.
    services.notification_send(notification_id=row.pk)
    services.escalations_tick()
    assert len(twilio_api.sms()) == 1


def test_twilio_unavailable_is_retried_and_sends_exactly_one_sms(twilio_api, urgent_ticket):
    twilio_api.script = [(503, {"code": 20503, "message": "Service Unavailable", "status": 503})]
    escalation = urgent_ticket()
    row = _sms_row(escalation)
    assert row.status == "retrying" and row.tries == 1 and "503" in row.last_error
    services.escalations_tick()  # the beat hands the due retry back to a worker
    row.refresh_from_db()
    assert row.status == "sent" and row.tries == 2
    services.escalations_tick()
    services.notification_send(notification_id=row.pk)
    accepted = [r for r in twilio_api.sms()]
    assert len(accepted) == 2  # the refused request and the one that went through
    assert EscalationNotification.objects.filter(escalation=escalation, channel="sms").count() == 1


def test_a_number_twilio_refuses_fails_at_once_and_the_next_contact_is_tried(
    twilio_api, urgent_ticket, settings, django_capture_on_commit_callbacks
):
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    # The primary contact has a phone only: their SMS is refused, nobody at this step is reached.
    from crm.models import CityContact

    CityContact.objects.filter(escalation_order=1).update(email="")
    twilio_api.script = [(400, {"code": 21211, "message": "Invalid 'To' number", "status": 400})]
    escalation = urgent_ticket()
    row = _sms_row(escalation)
    assert row.status == "failed" and "21211" in row.last_error
    escalation.refresh_from_db()
    assert escalation.next_action_at <= timezone.now()
    with django_capture_on_commit_callbacks(execute=True):
        services.escalations_tick()
    escalation.refresh_from_db()
    assert escalation.step == 1
    assert _sms_row(escalation, step=1).to == "+819011110002"
    assert [r["form"]["To"] for r in twilio_api.sms()] == ["+819011110001", "+819011110002"]


def test_a_notification_stranded_while_sending_becomes_unknown(twilio_api, urgent_ticket):
    """Its worker was killed between the provider's answer and recording it: once the lease
    runs out the beat marks it 送信結果不明, and nothing sends it again."""
    escalation = urgent_ticket()
    row = _sms_row(escalation)
    EscalationNotification.objects.filter(pk=row.pk).update(
        status="sending", lease_until=timezone.now() - dt.timedelta(seconds=1)
    )
    result = services.escalations_tick()
    row.refresh_from_db()
    assert result["stranded"] == 1
    assert row.status == "unknown" and "送信結果不明" in row.last_error
    services.notification_send(notification_id=row.pk)
    assert len(twilio_api.sms()) == 1


def test_an_sms_whose_outcome_is_unknown_is_never_sent_again(twilio_api, urgent_ticket):
    twilio_api.script = ["hang"]  # Twilio took the request; its answer never came
    escalation = urgent_ticket()
    row = _sms_row(escalation)
    assert row.status == "unknown" and "送信結果不明" in row.last_error
    services.escalations_tick()
    services.notification_send(notification_id=row.pk)
    assert len(twilio_api.sms()) == 1


def test_pressing_1_on_the_automated_call_acknowledges(
    twilio_api, urgent_ticket, damaged_rule, city_official_a
):
    damaged_rule.voice_call = True
    damaged_rule.save()
    escalation = urgent_ticket()
    [call] = twilio_api.calls()
    assert call["form"]["To"] == "+819011110001"
    row = EscalationNotification.objects.get(escalation=escalation, channel="voice")
    gather_url = f"{PUBLIC_BASE}/escalation/voice/{row.pk}/"
    assert f'action="{gather_url}"' in call["form"]["Twiml"]
    assert "1を押してください" in call["form"]["Twiml"]

    params = {"AccountSid": ACCOUNT_SID, "CallSid": row.provider_sid, "Digits": "1"}
    path = reverse("escalation:voice_gather", args=[row.pk])
    # Unsigned: refused.
    assert Client().post(path, params).status_code == 403
    escalation.refresh_from_db()
    assert escalation.status == "open"

    signature = RequestValidator(AUTH_TOKEN).compute_signature(gather_url, params)
    response = Client().post(path, params, HTTP_X_TWILIO_SIGNATURE=signature)
    assert response.status_code == 200
    assert "確認を受け付けました" in response.content.decode()
    escalation.refresh_from_db()
    assert escalation.status == "acknowledged" and escalation.acknowledged_via == "voice"
    assert escalation.acknowledged_by == city_official_a  # the primary contact's log-in
    row.refresh_from_db()
    assert row.acknowledged_at is not None


def test_twilio_reports_an_undelivered_sms_and_the_deputy_is_tried(
    twilio_api, urgent_ticket, django_capture_on_commit_callbacks
):
    from crm.models import CityContact

    CityContact.objects.filter(escalation_order=1).update(email="")  # reachable by SMS only
    escalation = urgent_ticket()
    row = _sms_row(escalation)
    assert row.status == "sent"
    assert (
        twilio_api.sms()[0]["form"]["StatusCallback"]
        == f"{PUBLIC_BASE}/escalation/status/{row.pk}/"
    )
    url = f"{PUBLIC_BASE}/escalation/status/{row.pk}/"
    params = {
        "AccountSid": ACCOUNT_SID,
        "MessageSid": row.provider_sid,
        "MessageStatus": "undelivered",
        "ErrorCode": "30003",
    }
    signature = RequestValidator(AUTH_TOKEN).compute_signature(url, params)
    path = reverse("escalation:delivery_status", args=[row.pk])
    assert Client().post(path, params).status_code == 403  # unsigned
    assert Client().post(path, params, HTTP_X_TWILIO_SIGNATURE=signature).status_code == 204
    row.refresh_from_db()
    assert row.status == "failed" and row.provider_status == "undelivered"
    assert "30003" in row.last_error
    with django_capture_on_commit_callbacks(execute=True):
        services.escalations_tick()
    escalation.refresh_from_db()
    assert escalation.step == 1
    assert _sms_row(escalation, step=1).to == "+819011110002"
