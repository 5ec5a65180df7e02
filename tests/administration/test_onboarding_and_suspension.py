"""Onboarding on one page makes a municipality that answers its number and turns its mail into
tickets; suspension stops both reaching agents (with a notice to callers) and keeps the data."""

from __future__ import annotations

import datetime
import xml.etree.ElementTree as ET

import pytest
from django.urls import reverse
from django.utils import timezone

from crm.models import AuditLog, CityContact, Municipality
from telephony.models import AgentPresence, Call, WeeklyHours
from tests.administration.conftest import signed_post
from tests.factories import UserFactory
from tests.tickets.mail.conftest import make_mail
from tickets.mail import tasks as mail_tasks
from tickets.mail.models import InboundMessage
from tickets.mail.services import inbound
from tickets.models import Inquiry

pytestmark = pytest.mark.django_db

NUMBER = "+81466251111"
ADDRESS = "furusato@city.fujisawa.example.jp"


def onboarding_form(**overrides) -> dict:
    return {
        "code": "142051",
        "name": "藤沢市",
        "name_kana": "フジサワシ",
        "prefecture": "神奈川県",
        "answer_name": "藤沢市ふるさと納税コールセンター",
        "residents_excluded": "on",
        "contract_start": "2026-04-01",
        "contract_end": "2027-03-31",
        "phone_number": "0466-25-1111",
        "phone_label": "代表",
        "inbound_address": ADDRESS,
        # Every day, all day long: the webhook test below must find the line open.
        "calendar_preset": "every_day_including_holidays",
        "opens": "00:00",
        "closes": "23:59",
        "contact_name": "藤沢 太郎",
        "contact_department": "財務部",
        "contact_phone": "0466-25-1112",
        "contact_email": "taro@city.fujisawa.example.jp",
        **overrides,
    }


def _say_texts(response) -> str:
    root = ET.fromstring(response.content)
    return " ".join(el.text or "" for el in root.iter("Say"))


def _onboard(admin, **overrides) -> Municipality:
    response = admin.post(reverse("administration:onboard"), onboarding_form(**overrides))
    assert response.status_code == 302, response.content.decode()[:2000]
    return Municipality.objects.get(code="142051")


def _call(client, sid="CAonboard1"):
    return signed_post(
        client,
        reverse("telephony:voice_inbound"),
        {"CallSid": sid, "To": NUMBER, "From": "+819011112222", "CallStatus": "ringing"},
    )


def test_onboarding_creates_a_working_municipality(admin, client, twilio_signing, supervisor):
    agent = UserFactory(username="fujisawa_agent", role="agent")
    form = onboarding_form(staff=[agent.pk])
    response = admin.post(reverse("administration:onboard"), form)
    assert response.status_code == 302
    city = Municipality.objects.get(code="142051")
    assert list(city.phone_numbers.values_list("e164", flat=True)) == [NUMBER]
    assert list(city.email_addresses.values_list("address", flat=True)) == [ADDRESS]
    assert WeeklyHours.objects.filter(municipality=city).count() == 7
    assert list(CityContact.objects.filter(municipality=city).values_list("name", "phone")) == [
        ("藤沢 太郎", "+81466251112")
    ]
    assert list(city.staff.all()) == [agent]
    whats = set(
        AuditLog.objects.filter(action=AuditLog.Action.CONFIG_CHANGED).values_list(
            "detail__what", flat=True
        )
    )
    assert {
        "municipality.create",
        "phone_number.add",
        "inbound_address.add",
        "calendar.preset",
        "city_contact.save",
        "staff.assign",
    } <= whats

    # A signed call to the new number is greeted with the new municipality's name.
    answered = _call(client)
    assert answered.status_code == 200
    assert (
        "お電話ありがとうございます。藤沢市ふるさと納税コールセンターでございます。"
        in _say_texts(answered)
    )
    assert Call.objects.get(call_sid="CAonboard1").municipality == city

    # A mail to the new address becomes the new municipality's ticket.
    [message] = inbound.inbound_receive(
        raw=make_mail(to=ADDRESS, subject="返礼品の到着について"), source="pipe"
    )
    assert message.status == InboundMessage.Status.PROCESSED
    assert message.inquiry.municipality == city
    assert message.inquiry.ticket.title == "返礼品の到着について"


def test_onboarding_is_all_or_nothing(admin, city_b):
    city_b.phone_numbers.create(e164=NUMBER)
    response = admin.post(reverse("administration:onboard"), onboarding_form())
    assert response.status_code == 200
    assert "この番号はすでに福山市に登録されています" in response.content.decode()
    assert not Municipality.objects.filter(code="142051").exists()
    assert not AuditLog.objects.filter(action=AuditLog.Action.CONFIG_CHANGED).exists()


def test_onboarding_refuses_a_wrong_check_digit(admin):
    response = admin.post(reverse("administration:onboard"), onboarding_form(code="142052"))
    assert response.status_code == 200 and "検査数字" in response.content.decode()
    assert not Municipality.objects.exists()


def test_suspended_municipality_tells_callers_and_holds_mail(
    admin, client, twilio_signing, mailoutbox, django_capture_on_commit_callbacks
):
    city = _onboard(admin)
    agent = UserFactory(username="fujisawa_agent", role="agent", municipalities=[city])
    AgentPresence.objects.create(user=agent, state="available", since=timezone.now())

    response = admin.post(
        reverse("administration:municipality_suspend", args=[city.pk]), {"reason": "契約終了"}
    )
    assert response.status_code == 302
    city.refresh_from_db()
    assert city.suspended_at is not None and city.suspended_reason == "契約終了"
    assert AuditLog.objects.filter(detail__what="municipality.suspend").exists()
    page = admin.get(reverse("administration:municipality_detail", args=[city.pk])).content
    assert "受付停止中" in page.decode()

    answered = _call(client, sid="CAsuspended")
    said = _say_texts(answered)
    assert "藤沢市ふるさと納税コールセンターの受付は、現在停止しております。" in said
    root = ET.fromstring(answered.content)
    assert root.find("Hangup") is not None
    assert root.find("Gather") is None and root.find("Dial") is None
    assert not Call.objects.filter(call_sid="CAsuspended").exists()
    assert AgentPresence.objects.get(user=agent).state == "available"  # nobody rang

    [held] = inbound.inbound_receive(
        raw=make_mail(to=ADDRESS, subject="停止中の問合せ"), source="pipe"
    )
    assert held.status == InboundMessage.Status.RECEIVED
    assert "受付停止中" in held.reason
    assert not Inquiry.objects.filter(municipality=city).exists()
    # The stranded-mail sweep leaves held mail alone while the municipality is suspended.
    InboundMessage.objects.filter(pk=held.pk).update(
        received_at=timezone.now() - datetime.timedelta(hours=1)
    )
    mail_tasks.mail_process_stranded()
    held.refresh_from_db()
    assert held.status == InboundMessage.Status.RECEIVED

    # Resumed: calls are answered again, held mail becomes a ticket at the next sweep.
    admin.post(reverse("administration:municipality_resume", args=[city.pk]))
    city.refresh_from_db()
    assert city.suspended_at is None
    assert "でございます" in _say_texts(_call(client, sid="CAresumed"))
    mail_tasks.mail_process_stranded()
    held.refresh_from_db()
    assert held.status == InboundMessage.Status.PROCESSED
    assert held.inquiry.municipality == city
    assert AuditLog.objects.filter(detail__what="municipality.resume").exists()


def test_a_caller_in_the_menu_when_suspension_starts_rings_nobody(admin, client, twilio_signing):
    city = _onboard(admin)
    agent = UserFactory(username="fujisawa_agent", role="agent", municipalities=[city])
    AgentPresence.objects.create(user=agent, state="available", since=timezone.now())
    _call(client, sid="CAinmenu")
    call = Call.objects.get(call_sid="CAinmenu")
    admin.post(reverse("administration:municipality_suspend", args=[city.pk]))
    response = signed_post(
        client,
        reverse("telephony:voice_menu") + f"?call={call.pk}&attempt=1",
        {"CallSid": "CAinmenu", "Digits": "1"},
    )
    assert "現在停止しております" in _say_texts(response)
    assert ET.fromstring(response.content).find("Dial") is None
    assert AgentPresence.objects.get(user=agent).state == "available"
