"""The demo shows every part of the product: tickets, calls, calendars and mail per city."""

from __future__ import annotations

import datetime
import io
import zoneinfo
from collections import Counter

import pytest
from django.core.management import call_command

from crm.models import Municipality
from telephony.calendar import BusinessCalendar
from telephony.models import AgentPresence, CalendarException, Call, WeeklyHours
from tickets.mail.models import InboundMessage, TriageRule
from tickets.models import Inquiry, InquiryEvent, Status

TOKYO = zoneinfo.ZoneInfo("Asia/Tokyo")
TODAY = datetime.date(2026, 12, 16)


def _seed() -> str:
    out = io.StringIO()
    call_command("seed_demo", "--today", TODAY.isoformat(), "--donors-per-city", "25", stdout=out)
    return out.getvalue()


def _at(day: datetime.date, hour: int) -> datetime.datetime:
    return datetime.datetime.combine(day, datetime.time(hour), tzinfo=TOKYO)


def _summary_counts_every_app(demo):
    for key in ("inquiries", "calls", "calendars", "mail_messages", "triage_rules"):
        assert f"{key} " in demo


def _every_city_has_tickets_calls_calendar_and_mail():
    cities = list(Municipality.objects.all())
    assert len(cities) == 3
    for city in cities:
        assert 15 <= Inquiry.objects.filter(municipality=city).count() <= 40
        assert Call.objects.filter(municipality=city).count() >= 3
        assert WeeklyHours.objects.filter(municipality=city).exists()
        assert InboundMessage.objects.filter(municipality=city).count() >= 3
        assert TriageRule.objects.filter(municipality=city).exists()


def _tickets_cover_channels_statuses_and_notes():
    inquiries = list(Inquiry.objects.select_related("ticket"))
    channels = Counter(i.channel for i in inquiries)
    for channel in ("phone", "email", "fax", "letter", "portal_review"):
        assert channels[channel], channel
    statuses = {i.status for i in inquiries}
    assert {Status.OPEN, Status.RESOLVED, Status.CLOSED} <= statuses
    assert {i.severity for i in inquiries} >= {"high", "urgent"}
    assert {i.requester_type for i in inquiries} >= {"donor", "provider", "carrier"}
    damaged = [i for i in inquiries if i.category and i.category.code == "damaged"]
    assert any(i.shipments.exists() for i in damaged)
    assert any(i.ticket.assigned_to_id for i in inquiries)
    notes = InquiryEvent.objects.filter(kind=InquiryEvent.Kind.NOTE)
    assert notes.filter(operator_only=True).exists()
    assert notes.filter(operator_only=False).exists()
    assert InquiryEvent.objects.filter(kind=InquiryEvent.Kind.REPLY).exists()
    # The history is spread over the last weeks and never after the demo's "now".
    end = _at(TODAY, 18)
    created = [i.created_at for i in inquiries]
    assert max(created) <= end
    assert min(created) >= end - datetime.timedelta(days=30)
    assert len({c.astimezone(TOKYO).date() for c in created}) >= 10
    for event in InquiryEvent.objects.select_related("inquiry"):
        assert event.inquiry.created_at <= event.at <= end


def _records_belong_to_the_municipality_of_their_ticket():
    inquiries = Inquiry.objects.select_related("donor", "provider", "ticket__assigned_to")
    inquiries = inquiries.prefetch_related(
        "donations", "shipments", "events", "ticket__assigned_to__municipalities"
    )
    for inquiry in inquiries:
        m = inquiry.municipality_id
        if inquiry.donor:
            assert inquiry.donor.municipality_id == m
        if inquiry.provider:
            assert inquiry.provider.municipality_id == m
        assert all(d.municipality_id == m for d in inquiry.donations.all())
        assert all(s.municipality_id == m for s in inquiry.shipments.all())
        assert all(e.municipality_id == m for e in inquiry.events.all())
        if inquiry.ticket.assigned_to_id:
            assert m in {x.pk for x in inquiry.ticket.assigned_to.municipalities.all()}
    for call in Call.objects.select_related("inquiry", "answered_by"):
        if call.inquiry:
            assert call.inquiry.municipality_id == call.municipality_id
        if call.answered_by:
            assert call.answered_by.municipalities.filter(pk=call.municipality_id).exists()
        assert call.to_e164 in set(call.municipality.phone_numbers.values_list("e164", flat=True))
    for message in InboundMessage.objects.select_related("inquiry"):
        if message.inquiry:
            assert message.inquiry.municipality_id == message.municipality_id


def _calls_answered_abandoned_and_voicemail():
    calls = list(Call.objects.all())
    statuses = Counter(c.status for c in calls)
    assert statuses[Call.Status.COMPLETED] and statuses[Call.Status.ABANDONED_QUEUE]
    answered = [c for c in calls if c.status == Call.Status.COMPLETED]
    assert all(c.talk_seconds and c.disposition_id and c.inquiry_id for c in answered)
    voicemails = [c for c in calls if c.status == Call.Status.VOICEMAIL]
    assert voicemails and all(c.inquiry_id and c.recording_url for c in voicemails)
    assert all(c.offered_at < _at(TODAY, 18) for c in calls)
    # Every demo agent exists on the wallboard, logged off.
    presences = AgentPresence.objects.filter(user__role="agent")
    assert presences.count() == 4
    assert set(presences.values_list("state", flat=True)) == {AgentPresence.State.OFFLINE}


def _calendars_follow_the_specs():
    by_code = {m.code: BusinessCalendar.for_municipality(m.pk) for m in Municipality.objects.all()}
    fukuyama, fujisawa, otaru = by_code["342076"], by_code["142051"], by_code["012033"]
    sunday = datetime.date(2026, 12, 13)
    assert fukuyama.is_open(_at(sunday, 10))
    assert not fukuyama.is_open(_at(datetime.date(2027, 1, 2), 10))
    assert not fukuyama.is_open(_at(sunday, 17))
    assert not fujisawa.is_open(_at(sunday, 10))
    assert not fujisawa.is_open(_at(datetime.date(2026, 11, 23), 10))  # 勤労感謝の日
    assert fujisawa.is_open(_at(datetime.date(2026, 12, 29), 19))  # the year-end peak
    assert otaru.is_open(_at(sunday, 10))
    assert otaru.is_open(_at(datetime.date(2026, 11, 23), 10))
    assert CalendarException.objects.filter(every_year=True).count() == 2


def _mail_in_three_charsets_threaded_auto_reply_and_quarantine():
    messages = list(InboundMessage.objects.all())
    raws = b"\n".join(bytes(m.raw) for m in messages)
    for charset in (b"charset=ISO-2022-JP", b"charset=Shift_JIS", b"charset=UTF-8"):
        assert charset in raws
    statuses = Counter(m.status for m in messages)
    assert statuses[InboundMessage.Status.AUTO_REPLY] == 1
    assert statuses[InboundMessage.Status.QUARANTINED] == 1
    quarantined = next(m for m in messages if m.status == InboundMessage.Status.QUARANTINED)
    assert quarantined.reason
    threaded = [m for m in messages if m.inquiry_id and not m.created_inquiry]
    assert len(threaded) == 1
    assert threaded[0].inquiry.events.filter(kind=InquiryEvent.Kind.CUSTOMER_MESSAGE).exists()
    opened = [m for m in messages if m.created_inquiry]
    assert opened and all(m.inquiry.channel == "email" for m in opened)
    # Japanese text survived decoding into the tickets.
    assert any("受領証明書" in m.inquiry.ticket.title for m in opened)


@pytest.mark.django_db
def test_demo_shows_every_part_of_the_product():
    # Seeding takes seconds, so one seeded database is checked for everything.
    summary = _seed()
    _summary_counts_every_app(summary)
    _every_city_has_tickets_calls_calendar_and_mail()
    _tickets_cover_channels_statuses_and_notes()
    _records_belong_to_the_municipality_of_their_ticket()
    _calls_answered_abandoned_and_voicemail()
    _calendars_follow_the_specs()
    _mail_in_three_charsets_threaded_auto_reply_and_quarantine()
    _escalations_with_rules_and_a_city_instruction()


def _escalations_with_rules_and_a_city_instruction():
    from escalation.models import CityInstruction, Escalation, EscalationRule

    for city in Municipality.objects.all():
        assert EscalationRule.objects.filter(municipality=city).count() >= 3
        assert Escalation.objects.filter(municipality=city).exists()
    assert Escalation.objects.filter(status="open").exists()
    assert CityInstruction.objects.exists()
    assert InquiryEvent.objects.filter(kind=InquiryEvent.Kind.CITY_INSTRUCTION).exists()


@pytest.mark.parametrize("charset", ["iso-2022-jp", "shift_jis"])
def test_demo_mail_from_a_donor_whose_name_is_outside_jis_x_0208_still_reads(charset):
    # 﨑 (U+FA11) has no code in ISO-2022-JP nor in Shift_JIS headers: seeding stopped on such
    # a donor. Mail clients send such a mail in UTF-8, and so does the demo.
    from email import message_from_bytes
    from email.policy import default

    from demo.mail import build_mail

    raw = build_mail(
        charset=charset,
        from_name="山﨑 花子",
        from_address="hanako@example.jp",
        to="furusato@city.example.jp",
        subject="山﨑です",
        body="山﨑 花子です。返礼品が届きません。",
        at=_at(TODAY, 10),
        message_id="<a@example.jp>",
    )
    message = message_from_bytes(raw, policy=default)
    assert message["From"].addresses[0].display_name == "山﨑 花子"
    assert message["Subject"] == "山﨑です"
    assert message.get_content().strip() == "山﨑 花子です。返礼品が届きません。"
