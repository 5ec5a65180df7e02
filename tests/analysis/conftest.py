"""A hand-built month (November 2026, city A) whose every figure is known.

Tickets are opened, answered, re-classified and resolved through tickets' services at the
Tokyo times chosen (time-machine); call records and the donation mirror are rows as telephony
and donations_sync write them.

Business hours: weekdays 09:00–17:00, closed on national holidays (文化の日 Tue 3 Nov 2026).
"""

from __future__ import annotations

import datetime
from dataclasses import dataclass
from zoneinfo import ZoneInfo

import pytest
import time_machine

from crm.models import User
from donations_sync.models import Shipment
from escalation.models import Escalation, EscalationNotification, Kind
from reshipments import services as reshipment_services
from telephony.calendar_services import business_calendar_apply_preset
from telephony.models import Call
from tests.factories import (
    CarrierFactory,
    DonationFactory,
    DonorFactory,
    GiftItemFactory,
    ProviderFactory,
    ShipmentFactory,
    UserFactory,
)
from tickets import services
from tickets.models import Channel, Inquiry, Status

TOKYO = ZoneInfo("Asia/Tokyo")


def jst(*args: int) -> datetime.datetime:
    return datetime.datetime(*args, tzinfo=TOKYO)


@dataclass
class Month:
    tickets: dict[str, Inquiry]
    agent: User


@pytest.fixture(autouse=True)
def eager_celery():
    from config.celery import app

    previous = app.conf.task_always_eager
    app.conf.task_always_eager = True
    yield
    app.conf.task_always_eager = previous


def _open(agent, city, at, **fields) -> Inquiry:
    with time_machine.travel(at, tick=False):
        return services.inquiry_open(actor=agent, municipality=city, **fields)


def _reply(agent, inquiry, at) -> None:
    with time_machine.travel(at, tick=False):
        services.inquiry_reply(actor=agent, inquiry=inquiry, body="ご連絡ありがとうございます。")


def _resolve(agent, inquiry, at) -> None:
    with time_machine.travel(at, tick=False):
        services.inquiry_change_status(actor=agent, inquiry=inquiry, status=Status.RESOLVED)


@pytest.fixture
def november(city_a, city_b) -> Month:
    business_calendar_apply_preset(municipality=city_a, preset="weekdays")
    agent = UserFactory(username="agent_month", role=User.Role.AGENT, municipalities=[city_a])
    donor = DonorFactory(municipality=city_a, name="寄附 花子")
    provider = ProviderFactory(municipality=city_a, name="小樽海産")
    ikura = GiftItemFactory(municipality=city_a, provider=provider, name="いくら醤油漬け")
    melon = GiftItemFactory(municipality=city_a, name="夕張メロン")
    yamato = CarrierFactory()
    sagawa = CarrierFactory(code="sagawa", name="佐川急便", short_name="佐川")

    # The mirror's November: 3 donations (+1 cancelled), 4 shipments shipped in November.
    d1 = DonationFactory(
        donor=donor,
        donated_at=jst(2026, 11, 1, 0, 0),
        amount=10000,
        portal="rakuten",
        receipt_issued_on=datetime.date(2026, 11, 5),
        one_stop_received_on=datetime.date(2026, 11, 20),
    )
    d2 = DonationFactory(
        donor=donor,
        donated_at=jst(2026, 11, 15, 12),
        amount=20000,
        portal="rakuten",
        receipt_issued_on=datetime.date(2026, 11, 30),
        paid_on=datetime.date(2026, 11, 16),
        status="paid",
    )
    DonationFactory(donor=donor, donated_at=jst(2026, 11, 30, 23, 59), amount=5000, portal="choice")
    DonationFactory(donor=donor, donated_at=jst(2026, 11, 20), amount=7000, status="cancelled")
    DonationFactory(donor=donor, donated_at=jst(2026, 12, 1, 0, 0), amount=9000)  # December
    DonationFactory(donor=donor, donated_at=jst(2026, 10, 31, 23, 59), amount=3000)  # October
    s_ikura = ShipmentFactory(
        donation=d1,
        gift_item=ikura,
        carrier=yamato,
        shipped_on=datetime.date(2026, 11, 1),
        delivered_on=datetime.date(2026, 11, 2),
        status=Shipment.Status.DELIVERED,
    )
    s_melon = ShipmentFactory(
        donation=d2, gift_item=melon, carrier=sagawa, shipped_on=datetime.date(2026, 11, 28)
    )
    s_returned = ShipmentFactory(
        donation=d2,
        gift_item=melon,
        carrier=yamato,
        shipped_on=datetime.date(2026, 11, 29),
        status=Shipment.Status.RETURNED,
    )
    ShipmentFactory(
        donation=d1, gift_item=ikura, carrier=yamato, shipped_on=datetime.date(2026, 11, 30)
    )
    ShipmentFactory(
        donation=d1, gift_item=ikura, carrier=yamato, shipped_on=datetime.date(2026, 12, 1)
    )  # December

    t = {}
    # T1: Mon 2 Nov 16:00; answered Wed 4 Nov 10:00 across the holiday (1 h + 1 h business),
    # resolved 11:00 (3 h).
    t["t1"] = _open(
        agent,
        city_a,
        jst(2026, 11, 2, 16),
        channel=Channel.PHONE,
        title="いくらの容器が破損していた",
        category="damaged",
        description="届いたいくらの容器が破損しており、中身が漏れていました。",
        donor=donor,
        shipments=[s_ikura],
    )
    _reply(agent, t["t1"], jst(2026, 11, 4, 10))
    _resolve(agent, t["t1"], jst(2026, 11, 4, 11))
    # T2: Fri 6 Nov 18:00 (after hours), mail; answered Mon 9 Nov 09:30 (0.5 h), resolved
    # 10:00 (1 h).
    t["t2"] = _open(
        agent,
        city_a,
        jst(2026, 11, 6, 18),
        channel=Channel.EMAIL,
        title="寄附の方法について",
        category="how_to_donate",
        requester_type="prospective_donor",
        description="クレジットカードで寄附できますか。",
    )
    _reply(agent, t["t2"], jst(2026, 11, 9, 9, 30))
    _resolve(agent, t["t2"], jst(2026, 11, 9, 10))
    # T3: Sat 31 Oct 23:59 (October), resolved Mon 2 Nov 09:30 (0.5 h): a November resolution.
    t["t3"] = _open(
        agent,
        city_a,
        jst(2026, 10, 31, 23, 59),
        channel=Channel.PHONE,
        title="受領証明書が届かない",
        category="receipt",
        description="",
    )
    _resolve(agent, t["t3"], jst(2026, 11, 2, 9, 30))
    # T4: Mon 30 Nov 23:59 (November), opened as 配送状況 and moved to 誤配・欠品; open.
    t["t4"] = _open(
        agent,
        city_a,
        jst(2026, 11, 30, 23, 59),
        channel=Channel.PHONE,
        title="メロンが届かない",
        category="shipping_status",
        description="メロンが別の住所に誤配されたようです。箱も破損していました。",
        donor=donor,
        shipments=[s_melon],
    )
    with time_machine.travel(jst(2026, 12, 1, 9), tick=False):
        services.inquiry_change_category(actor=agent, inquiry=t["t4"], category="wrong_missing")
    # T5: Tue 1 Dec 00:00: December.
    t["t5"] = _open(
        agent,
        city_a,
        jst(2026, 12, 1, 0, 0),
        channel=Channel.PHONE,
        title="12月の問合せ",
        category="damaged",
        description="破損",
    )
    # T6: Tue 10 Nov 10:00 from a provider, answered 12:00 (2 h), still open (14–30 days old).
    t["t6"] = _open(
        agent,
        city_a,
        jst(2026, 11, 10, 10),
        channel=Channel.PHONE,
        title="出荷日の確認",
        category="gift_contents",
        requester_type="provider",
        description="",
    )
    _reply(agent, t["t6"], jst(2026, 11, 10, 12))
    # T7: Tue 20 Oct, still open (30 days and more at the end of November).
    t["t7"] = _open(
        agent,
        city_a,
        jst(2026, 10, 20, 10),
        channel=Channel.FAX,
        title="カタログ送付依頼",
        category="catalogue",
        description="",
    )
    # City B's ticket in the same month: never part of city A's figures.
    _open(
        UserFactory(username="agent_b_month", role=User.Role.AGENT, municipalities=[city_b]),
        city_b,
        jst(2026, 11, 2, 10),
        channel=Channel.PHONE,
        title="福山市の問合せ",
        category="damaged",
        description="福山市の破損",
    )

    def call(at, **fields):
        fields.setdefault("direction", Call.Direction.INBOUND)
        return Call.objects.create(municipality=city_a, offered_at=at, **fields)

    base = jst(2026, 11, 11, 10)
    s = datetime.timedelta(seconds=1)
    call(
        base,
        status="completed",
        answered_at=base + 10 * s,
        queue_seconds=10,
        talk_seconds=120,
        ended_at=base + 130 * s,
        wrapped_up_at=base + 160 * s,
    )
    call(
        base,
        status="completed",
        answered_at=base + 40 * s,
        queue_seconds=40,
        talk_seconds=200,
        ended_at=base + 240 * s,
    )
    call(base, status="abandoned_queue", queue_seconds=3, ended_at=base + 13 * s)
    call(base, status="abandoned_queue", queue_seconds=20, ended_at=base + 30 * s)
    call(
        jst(2026, 11, 11, 20),
        status="after_hours_hangup",
        after_hours=True,
        ended_at=jst(2026, 11, 11, 20, 1),
    )
    call(
        jst(2026, 11, 11, 21),
        status="voicemail",
        after_hours=True,
        voicemail=True,
        ended_at=jst(2026, 11, 11, 21, 2),
    )
    call(base, status="abandoned_ivr", ended_at=base + 2 * s)
    call(
        base,
        direction=Call.Direction.OUTBOUND,
        status="completed",
        answered_at=base + 5 * s,
        talk_seconds=60,
        ended_at=base + 65 * s,
    )
    call(
        jst(2026, 10, 31, 23, 59, 59),
        status="completed",
        answered_at=jst(2026, 11, 1, 0, 0, 5),
        queue_seconds=5,
        talk_seconds=10,
        ended_at=jst(2026, 11, 1, 0, 0, 15),
    )
    _escalations(city_a, city_b, t)
    _reshipments(city_a, city_b, s_ikura=s_ikura, s_melon=s_melon, s_returned=s_returned)
    return Month(tickets=t, agent=agent)


def _reshipments(city_a, city_b, *, s_ikura, s_melon, s_returned) -> None:
    """Re-shipments requested and decided through reshipments' services at the Tokyo times
    chosen (counted in the month of their final approval).

    City A, November: R1 誤配送/運営事業者 (not billable to the city), ¥6,000 + ¥1,200, approved
    Thu 5 Nov 14:00; R2 住所不明返送/寄附者 (billable), ¥0 + ¥1,000, approved 30 Nov 23:59.
    Not November's: R3 破損/配送業者 approved 1 Dec 00:00 (¥8,000 + ¥1,500), R4 refused on
    20 Nov, R5 city B's (approved in November).
    The replacements stay 出荷待ち (the core has not answered), so the mirror's 再送（代品）の発送
    stays 0."""
    supervisor = UserFactory(
        username="sv_reship", role=User.Role.SUPERVISOR, municipalities=[city_a, city_b]
    )

    def request(original, at, *, reason, fault, gift_cost, shipping_cost):
        with time_machine.travel(at, tick=False):
            return reshipment_services.reshipment_request(
                actor=supervisor,
                inquiry=None,
                original=original,
                reason=reason,
                fault=fault,
                gift_item=original.gift_item,
                ship_to=reshipment_services.ShipTo(
                    name="寄附 花子", postal_code="0470032", address="北海道小樽市稲穂1-2-3"
                ),
                gift_cost=gift_cost,
                shipping_cost=shipping_cost,
            )

    def approve(r, at):
        with time_machine.travel(at, tick=False):
            reshipment_services.reshipment_approve(actor=supervisor, reshipment=r)

    r1 = request(
        s_ikura,
        jst(2026, 11, 5, 11),
        reason="misdelivered",
        fault="operator",
        gift_cost=6000,
        shipping_cost=1200,
    )
    approve(r1, jst(2026, 11, 5, 14))
    r2 = request(
        s_returned,
        jst(2026, 11, 30, 10),
        reason="returned",
        fault="donor",
        gift_cost=0,
        shipping_cost=1000,
    )
    approve(r2, jst(2026, 11, 30, 23, 59))
    r3 = request(
        s_melon,
        jst(2026, 11, 30, 20),
        reason="damaged",
        fault="carrier",
        gift_cost=8000,
        shipping_cost=1500,
    )
    approve(r3, jst(2026, 12, 1, 0, 0))
    r4 = request(
        s_ikura,
        jst(2026, 11, 20, 10),
        reason="damaged",
        fault="donor",
        gift_cost=9000,
        shipping_cost=900,
    )
    with time_machine.travel(jst(2026, 11, 20, 11), tick=False):
        reshipment_services.reshipment_refuse(
            actor=supervisor, reshipment=r4, comment="写真では破損が確認できません。"
        )
    b_donor = DonorFactory(municipality=city_b, name="寄附 次郎")
    b_shipment = ShipmentFactory(
        donation=DonationFactory(donor=b_donor, donated_at=jst(2026, 10, 1, 12), amount=10000),
        gift_item=GiftItemFactory(municipality=city_b, name="B市の米"),
        carrier=s_ikura.carrier,
        shipped_on=datetime.date(2026, 10, 5),
    )
    r5 = request(
        b_shipment,
        jst(2026, 11, 10, 10),
        reason="lost",
        fault="unknown",
        gift_cost=9999,
        shipping_cost=999,
    )
    approve(r5, jst(2026, 11, 10, 11))


def _escalations(city_a, city_b, t) -> None:
    """Escalations as escalation's services leave them (times chosen; notifications' outcomes).

    City A, opened in November (Tokyo): E1 (T1, damaged, notified after 10 min, acknowledged
    after 60, closed), E2 (T4, 30 Nov 23:59, notified after 20 min, acknowledged 1 Dec 09:00 =
    541 min: not yet acknowledged at the month's end), E3 (a cluster with no ticket, urgent,
    notified after 30 min, never acknowledged). Not November's: 31 Oct 23:59, 1 Dec 00:00, and
    city B's."""

    def escalation(city, opened, *, notified=None, acknowledged=None, notes=(), **fields):
        fields.setdefault("status", "open")
        e = Escalation.objects.create(
            municipality=city,
            source=fields.pop("source", Escalation.Source.RULE_OPEN),
            title=fields.pop("title", "市への報告"),
            opened_at=opened,
            aware_at=opened,
            first_notified_at=opened + datetime.timedelta(minutes=notified) if notified else None,
            acknowledged_at=acknowledged,
            **fields,
        )
        for step, (channel, status) in enumerate(notes):
            EscalationNotification.objects.create(
                escalation=e,
                municipality=city,
                step=step,
                channel=channel,
                to="city@example.jp" if channel == "email" else "+81312345678",
                status=status,
            )
        return e

    e1_opened = jst(2026, 11, 2, 16, 5)
    escalation(
        city_a,
        e1_opened,
        inquiry=t["t1"],
        kind=Kind.DAMAGED_GIFT,
        notified=10,
        acknowledged=e1_opened + datetime.timedelta(minutes=60),
        status="closed",
        notes=[("email", "sent"), ("sms", "sent")],
    )
    escalation(
        city_a,
        jst(2026, 11, 30, 23, 59),
        inquiry=t["t4"],
        kind=Kind.NON_DELIVERY,
        notified=20,
        acknowledged=jst(2026, 12, 1, 9, 0),
        status="acknowledged",
        notes=[("email", "sent")],
    )
    escalation(
        city_a,
        jst(2026, 11, 20, 10),
        kind=Kind.CLUSTER,
        source=Escalation.Source.CLUSTER,
        urgent=True,
        notified=30,
        notes=[("email", "failed"), ("voice", "sent")],
    )
    escalation(
        city_a, jst(2026, 10, 31, 23, 59), kind=Kind.OTHER, notified=5, notes=[("email", "sent")]
    )
    escalation(
        city_a, jst(2026, 12, 1, 0, 0), kind=Kind.OTHER, notified=5, notes=[("email", "sent")]
    )
    escalation(city_b, jst(2026, 11, 5, 10), kind=Kind.OTHER, notified=5, notes=[("email", "sent")])
