"""Telephony fixtures: a Twilio stand-in that signs its requests and follows the TwiML we return."""

from __future__ import annotations

import datetime
import itertools
import json
import logging
import xml.etree.ElementTree as ET
from typing import ClassVar
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import timezone
from twilio.http import HttpClient
from twilio.http.response import Response
from twilio.request_validator import RequestValidator

from crm.models import User
from telephony import calendar_services, services
from telephony.models import AgentPresence
from tests.e2e.conftest import (  # noqa: F401
    browser,
    browser_login,
    csp_violations,
    live_server_url,
    page,
)
from tests.factories import MunicipalityPhoneNumberFactory, UserFactory

PUBLIC_BASE = "https://calls.example.jp"
AUTH_TOKEN = "test-twilio-auth-token"
ACCOUNT_SID = "AC" + "1" * 32
TOKYO = ZoneInfo("Asia/Tokyo")
_sids = itertools.count(1)


def tokyo(*args: int) -> datetime.datetime:
    return datetime.datetime(*args, tzinfo=TOKYO)


@pytest.fixture(autouse=True)
def twilio_settings(settings, request):
    settings.TWILIO_PUBLIC_BASE_URL = PUBLIC_BASE
    settings.TWILIO_AUTH_TOKEN = AUTH_TOKEN
    settings.TWILIO_ACCOUNT_SID = ACCOUNT_SID
    settings.TWILIO_HTTP_CLIENT = "tests.telephony.conftest.FakeTwilioHttp"
    settings.TELEPHONY_SAY_VOICE = ""
    # Fast hashing: these tests create several users each and never test passwords. Browser
    # tests log in through a server process that only knows the project's hashers.
    if request.node.get_closest_marker("e2e") is None:
        settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    FakeTwilioHttp.requests = []
    FakeTwilioHttp.fail_with = None
    FakeTwilioHttp.calls = {}


@pytest.fixture(autouse=True)
def celery_eager():
    from config.celery import app

    previous = app.conf.task_always_eager
    app.conf.task_always_eager = True
    yield
    app.conf.task_always_eager = previous


class FakeTwilioHttp(HttpClient):
    """Twilio's REST API at the HTTP boundary: records requests, answers like Twilio does."""

    requests: ClassVar[list[dict]] = []
    fail_with: ClassVar[tuple[int, dict] | None] = None
    # CallSid → (status, end time as Twilio writes it): what a GET of that call answers.
    calls: ClassVar[dict[str, tuple[str, str | None]]] = {}

    def __init__(self) -> None:
        super().__init__(logging.getLogger("tests.twilio"), is_async=False)

    def request(self, method, uri, params=None, data=None, headers=None, auth=None, **kwargs):
        FakeTwilioHttp.requests.append(
            {"method": method, "uri": uri, "data": dict(data or {}), "auth": auth}
        )
        if FakeTwilioHttp.fail_with:
            status, body = FakeTwilioHttp.fail_with
            return Response(status, json.dumps(body))
        if method == "GET" and "/Calls/" in uri:
            sid = uri.rsplit("/", 1)[-1].removesuffix(".json")
            if sid not in FakeTwilioHttp.calls:
                body = {"code": 20404, "message": "not found", "status": 404}
                return Response(404, json.dumps(body))
            status, end_time = FakeTwilioHttp.calls[sid]
            body = {"sid": sid, "account_sid": ACCOUNT_SID, "status": status, "end_time": end_time}
            return Response(200, json.dumps(body))
        sid = f"CA{next(_sids):032d}"
        body = {
            "sid": sid,
            "account_sid": ACCOUNT_SID,
            "to": (data or {}).get("To"),
            "from": (data or {}).get("From"),
            "status": "queued",
            "direction": "outbound-api",
            "uri": f"/2010-04-01/Accounts/{ACCOUNT_SID}/Calls/{sid}.json",
        }
        return Response(201, json.dumps(body))


def new_call_sid() -> str:
    return f"CA{next(_sids):032x}"


class TwilioStandIn:
    """Sends webhooks the way Twilio does: absolute public URL, form body, X-Twilio-Signature."""

    def __init__(self, client: Client | None = None, token: str = AUTH_TOKEN) -> None:
        self.client = client or Client()
        self.validator = RequestValidator(token)
        self.sequence: dict[str, int] = {}

    def post(self, url: str, params: dict[str, str], *, sign: bool = True, signature=None):
        if not url.startswith("http"):
            url = PUBLIC_BASE + url
        parts = urlsplit(url)
        path = parts.path + (f"?{parts.query}" if parts.query else "")
        headers = {}
        if sign:
            headers["HTTP_X_TWILIO_SIGNATURE"] = signature or self.validator.compute_signature(
                url, params
            )
        return self.client.post(path, params, **headers)

    def twiml(self, url: str, params: dict[str, str]) -> ET.Element:
        response = self.post(url, params)
        assert response.status_code == 200, response.content
        assert response["Content-Type"].startswith("text/xml")
        return ET.fromstring(response.content)

    # --- a call's own requests ------------------------------------------------------------

    def base(self, call: PhoneCall) -> dict[str, str]:
        return {
            "AccountSid": ACCOUNT_SID,
            "ApiVersion": "2010-04-01",
            "CallSid": call.sid,
            "From": call.from_,
            "To": call.to,
            "Direction": "inbound",
        }

    def status(self, call: PhoneCall, status: str, *, sequence: int | None = None, **extra):
        if sequence is None:
            sequence = self.sequence.get(call.sid, -1) + 1
        self.sequence[call.sid] = max(sequence, self.sequence.get(call.sid, -1))
        params = {
            **self.base(call),
            "CallStatus": status,
            "SequenceNumber": str(sequence),
            "Timestamp": timezone.now().strftime("%a, %d %b %Y %H:%M:%S +0000"),
            **extra,
        }
        response = self.post(reverse("telephony:status_call"), params)
        assert response.status_code == 204
        return response


class PhoneCall:
    """One caller's call, driven step by step through the TwiML our webhooks return."""

    def __init__(self, twilio: TwilioStandIn, *, from_: str, to: str) -> None:
        self.twilio = twilio
        self.sid = new_call_sid()
        self.from_ = from_
        self.to = to
        self.root: ET.Element | None = None
        self.dials = 0

    def params(self, **extra: str) -> dict[str, str]:
        return {**self.twilio.base(self), **extra}

    def dial_in(self) -> ET.Element:
        self.root = self.twilio.twiml(
            reverse("telephony:voice_inbound"), self.params(CallStatus="ringing")
        )
        return self.root

    def press(self, digits: str) -> ET.Element:
        gather = self.root.find("Gather")
        assert gather is not None, ET.tostring(self.root)
        self.root = self.twilio.twiml(
            gather.get("action"), self.params(CallStatus="in-progress", Digits=digits)
        )
        return self.root

    def wait_in_queue(self, *, queue_time: int = 10, position: int = 1) -> ET.Element:
        enqueue = self.root.find("Enqueue")
        assert enqueue is not None, ET.tostring(self.root)
        return self.twilio.twiml(
            enqueue.get("waitUrl"),
            self.params(
                CallStatus="in-progress",
                QueueSid="QU" + "0" * 32,
                QueueTime=str(queue_time),
                QueuePosition=str(position),
                CurrentQueueSize=str(position),
                AvgQueueTime="0",
            ),
        )

    def leave_queue(self, result: str) -> ET.Element:
        enqueue = self.root.find("Enqueue")
        assert enqueue is not None, ET.tostring(self.root)
        self.root = self.twilio.twiml(
            enqueue.get("action"),
            self.params(CallStatus="in-progress", QueueResult=result, QueueTime="30"),
        )
        return self.root

    def dial_targets(self) -> list[ET.Element]:
        dial = self.root.find("Dial")
        assert dial is not None, ET.tostring(self.root)
        return list(dial)

    def agent_leg(self, target: ET.Element, status: str, sequence: int) -> None:
        params = {
            **self.params(),
            "CallSid": f"{self.sid}-leg-{target.text}",
            "ParentCallSid": self.sid,
            "CallStatus": status,
            "SequenceNumber": str(sequence),
            "Direction": "outbound-dial",
        }
        response = self.twilio.post(target.get("statusCallback"), params)
        assert response.status_code == 204

    def agent_answers(self, target: ET.Element) -> ET.Element:
        params = {
            **self.params(),
            "CallSid": f"{self.sid}-leg-{target.text}",
            "ParentCallSid": self.sid,
            "CallStatus": "in-progress",
            "Direction": "outbound-dial",
        }
        return self.twilio.twiml(target.get("url"), params)

    def dial_ends(self, dial_status: str, duration: int = 0) -> ET.Element:
        dial = self.root.find("Dial")
        self.dials += 1
        self.root = self.twilio.twiml(
            dial.get("action"),
            self.params(
                CallStatus="in-progress",
                DialCallStatus=dial_status,
                DialCallDuration=str(duration),
                DialCallSid=f"CA{self.dials:04d}{self.sid[6:]}",
            ),
        )
        return self.root

    def record_voicemail(self, *, recording_sid: str = "RE" + "1" * 32, duration: int = 12):
        record = self.root.find("Record")
        assert record is not None, ET.tostring(self.root)
        recording_url = (
            f"https://api.twilio.com/2010-04-01/Accounts/{ACCOUNT_SID}/Recordings/{recording_sid}"
        )
        done = self.twilio.twiml(
            record.get("action"),
            self.params(
                CallStatus="in-progress",
                RecordingSid=recording_sid,
                RecordingUrl=recording_url,
                RecordingDuration=str(duration),
                Digits="hangup",
            ),
        )
        response = self.twilio.post(
            record.get("recordingStatusCallback"),
            {
                "AccountSid": ACCOUNT_SID,
                "CallSid": self.sid,
                "RecordingSid": recording_sid,
                "RecordingUrl": recording_url,
                "RecordingStatus": "completed",
                "RecordingDuration": str(duration),
                "RecordingChannels": "1",
                "RecordingSource": "RecordVerb",
            },
        )
        assert response.status_code == 204
        return done

    def hang_up(self, *, sequence: int | None = None, duration: int = 60) -> None:
        self.twilio.status(self, "completed", sequence=sequence, CallDuration=str(duration))


@pytest.fixture
def twilio(db) -> TwilioStandIn:
    return TwilioStandIn()


@pytest.fixture
def line_a(city_a):
    """City A's inbound number, answered every day 9:00–17:00."""
    number = MunicipalityPhoneNumberFactory(municipality=city_a, e164="+81134000001")
    calendar_services.business_calendar_apply_preset(
        municipality=city_a, preset="every_day_including_holidays"
    )
    return number


@pytest.fixture
def line_b(city_b):
    number = MunicipalityPhoneNumberFactory(municipality=city_b, e164="+81849000002")
    calendar_services.business_calendar_apply_preset(
        municipality=city_b, preset="every_day_except_new_year"
    )
    return number


@pytest.fixture
def open_hours():
    """A Tuesday morning in Tokyo, inside everyone's hours."""
    import time_machine

    with time_machine.travel(tokyo(2025, 6, 10, 10, 0), tick=True):
        yield


@pytest.fixture
def resolved(db):
    """The 回答済み wrap-up code (seeded by migration; recreated if a flush took it)."""
    from telephony.models import Disposition

    disposition, _ = Disposition.objects.get_or_create(
        code="resolved", defaults={"name": "回答済み（解決）", "sort_order": 10}
    )
    return disposition


def make_available(user: User) -> AgentPresence:
    return services.agent_presence_set(actor=user, state=AgentPresence.State.AVAILABLE)


@pytest.fixture
def agent_a2(city_a):
    return UserFactory(username="agent_a2", role=User.Role.AGENT, municipalities=[city_a])


@pytest.fixture
def agent_b(city_b):
    return UserFactory(username="agent_b", role=User.Role.AGENT, municipalities=[city_b])
