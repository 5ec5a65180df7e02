"""Escalation fixtures: city contacts in order, rules, a local Twilio REST stand-in (a real HTTP
server the twilio client talks to) and a real SMTP server."""

from __future__ import annotations

import datetime
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import ClassVar
from urllib.parse import parse_qs
from zoneinfo import ZoneInfo

import pytest
from twilio.http.http_client import TwilioHttpClient

from crm.models import CityContact, User
from escalation.models import EscalationRule, Kind
from tests.factories import UserFactory
from tests.mailserver import SmtpSink, running_smtp
from tickets import services as ticket_services
from tickets.models import Category

TOKYO = ZoneInfo("Asia/Tokyo")
ACCOUNT_SID = "AC" + "2" * 32
AUTH_TOKEN = "escalation-test-token"
PUBLIC_BASE = "https://calls.example.jp"


def tokyo(*args: int) -> datetime.datetime:
    return datetime.datetime(*args, tzinfo=TOKYO)


class FakeTwilioApi(BaseHTTPRequestHandler):
    """Twilio's REST API (Messages and Calls) on loopback. ``script`` holds the answers to give,
    in order (status, body); when empty, requests succeed."""

    requests: ClassVar[list[dict]] = []
    script: ClassVar[list[tuple[int, dict] | str]] = []

    def do_POST(self) -> None:  # noqa: N802 (http.server's naming)
        length = int(self.headers.get("Content-Length") or 0)
        form = {k: v[0] for k, v in parse_qs(self.rfile.read(length).decode()).items()}
        FakeTwilioApi.requests.append({"path": self.path, "form": form})
        answer = FakeTwilioApi.script.pop(0) if FakeTwilioApi.script else None
        if answer == "hang":  # took the request, never answers: the client times out
            threading.Event().wait(3)
            return
        if answer is None:
            kind = "SM" if self.path.endswith("/Messages.json") else "CA"
            sid = f"{kind}{len(FakeTwilioApi.requests):032d}"
            answer = (201, {"sid": sid, "status": "queued", "to": form.get("To")})
        status, body = answer
        payload = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, *args) -> None:
        pass

    @classmethod
    def sms(cls) -> list[dict]:
        return [r for r in cls.requests if r["path"].endswith("/Messages.json")]

    @classmethod
    def calls(cls) -> list[dict]:
        return [r for r in cls.requests if r["path"].endswith("/Calls.json")]


class LocalTwilioHttp(TwilioHttpClient):
    """twilio's own HTTP client (requests), sent to the local stand-in instead of api.twilio.com."""

    base = ""

    def __init__(self) -> None:
        super().__init__(timeout=1)

    def request(self, method, url, *args, **kwargs):
        for host in ("https://api.twilio.com", "https://messaging.twilio.com"):
            url = url.replace(host, LocalTwilioHttp.base)
        return super().request(method, url, *args, **kwargs)


@pytest.fixture
def twilio_api(settings):
    server = ThreadingHTTPServer(("127.0.0.1", 0), FakeTwilioApi)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    LocalTwilioHttp.base = f"http://127.0.0.1:{server.server_address[1]}"
    settings.TWILIO_HTTP_CLIENT = "tests.escalation.conftest.LocalTwilioHttp"
    FakeTwilioApi.requests = []
    FakeTwilioApi.script = []
    yield FakeTwilioApi
    server.shutdown()
    server.server_close()


@pytest.fixture(autouse=True)
def escalation_settings(settings):
    settings.TWILIO_PUBLIC_BASE_URL = PUBLIC_BASE
    settings.TWILIO_AUTH_TOKEN = AUTH_TOKEN
    settings.TWILIO_ACCOUNT_SID = ACCOUNT_SID
    settings.TELEPHONY_SAY_VOICE = ""
    settings.ESCALATION_SMS_FROM = "+815000000000"
    settings.ESCALATION_SITE_URL = "https://cc.example.jp"
    settings.ESCALATION_MAIL_FROM = "escalation@cc.example.jp"
    settings.ESCALATION_SECURITY_OFFICER_EMAILS = ["security@cc.example.jp"]
    settings.ESCALATION_RETRY_SECONDS = 0
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"


@pytest.fixture(autouse=True)
def celery_eager():
    from config.celery import app

    previous = app.conf.task_always_eager
    app.conf.task_always_eager = True
    yield
    app.conf.task_always_eager = previous


@pytest.fixture
def smtp(settings):
    sink = SmtpSink()
    with running_smtp(sink) as port:
        settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
        settings.EMAIL_HOST, settings.EMAIL_PORT = "127.0.0.1", port
        settings.EMAIL_USE_TLS = settings.EMAIL_USE_SSL = False
        settings.EMAIL_HOST_USER = settings.EMAIL_HOST_PASSWORD = ""
        yield sink


@pytest.fixture
def contacts_a(city_a, city_official_a):
    """City A's chain: primary (a city official with a log-in), deputy, manager."""
    return [
        CityContact.objects.create(
            municipality=city_a,
            name="小樽 一郎",
            department="産業港湾部 ふるさと納税係",
            email="primary@city.otaru.example.jp",
            phone="+819011110001",
            escalation_order=1,
            user=city_official_a,
        ),
        CityContact.objects.create(
            municipality=city_a,
            name="小樽 二郎",
            department="産業港湾部 ふるさと納税係",
            email="deputy@city.otaru.example.jp",
            phone="+819011110002",
            escalation_order=2,
        ),
        CityContact.objects.create(
            municipality=city_a,
            name="小樽 課長",
            department="産業港湾部",
            email="manager@city.otaru.example.jp",
            phone="+819011110003",
            escalation_order=3,
        ),
    ]


@pytest.fixture
def damaged():
    # Seeded by migration; recreated if a transactional test's flush took it.
    category, _ = Category.objects.get_or_create(code="damaged", defaults={"name": "破損・傷み"})
    return category


@pytest.fixture
def damaged_rule(city_a, damaged):
    rule = EscalationRule.objects.create(
        municipality=city_a,
        name="破損の報告",
        kind=Kind.DAMAGED_GIFT,
        severities=["urgent"],
        on_open=True,
        on_reclassify=True,
        on_message=False,
        next_contact_minutes=30,
        urgent=True,
    )
    rule.categories.set([damaged])
    return rule


@pytest.fixture
def open_ticket(city_a, agent_a, damaged):
    def _open(**fields):
        values = {
            "channel": "phone",
            "title": "返礼品が割れていた",
            "description": "山田 太郎様より。箱の中で瓶が割れていました。",
        }
        values.update(fields)
        return ticket_services.inquiry_open(actor=agent_a, municipality=city_a, **values)

    return _open


@pytest.fixture
def supervisor_a(city_a):
    return UserFactory(username="supervisor_a", role=User.Role.SUPERVISOR, municipalities=[city_a])
