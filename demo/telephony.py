"""Demo telephony for ``manage.py seed_demo``: calendars, phone menus, presence and past calls.

Calendars follow the hours the procurement specs state (福山市: every day but Jan 1–3; 藤沢市:
weekdays but holidays, longer hours Dec 29–Jan 3; 中野区: weekends and holidays too — given to
小樽市 here). Calls are replayed through the same services Twilio's webhooks drive, at past
moments (see ``demo.tickets.DemoClock``).
"""

from __future__ import annotations

import datetime
import random
from typing import Any

from crm.models import DonorPhone, Municipality, MunicipalityPhoneNumber, User
from demo.tickets import TOKYO, DemoClock, demo_now, staff_for
from telephony import calendar_services, services
from telephony.calendar import BusinessCalendar
from telephony.models import AgentPresence, Call, Disposition, PhoneSettings
from tickets import services as ticket_services
from tickets.models import Status

# Municipality code → calendar preset; any other municipality answers on weekdays.
CALENDARS = {
    "342076": "every_day_except_new_year",  # 福山市
    "142051": "weekdays_with_year_end_peak",  # 藤沢市
    "012033": "every_day_including_holidays",  # 小樽市 (中野区's rule)
}

IVR_OPTIONS = {
    "1": {"label": "寄附をされた方、寄附をご検討中の方", "requester_type": "donor"},
    "2": {"label": "返礼品提供事業者の方", "requester_type": "provider"},
    "3": {"label": "配送業者の方", "requester_type": "carrier"},
    "9": {"label": "その他のお問合せの方", "requester_type": "other"},
}

ANSWERED_CALLS = [
    # (category, wrap-up code, note on the ticket, wrap-up note)
    (
        "receipt",
        "resolved",
        "受領証明書の発送時期の問合せ。1月中旬までに発送予定と回答。",
        "受領証明書の発送時期を案内",
    ),
    (
        "shipping_status",
        "ticket",
        "返礼品の到着時期の問合せ。事業者へ確認のうえ折り返すことで了承を得た。",
        "事業者確認後に折り返し",
    ),
    (
        "one_stop",
        "resolved",
        "ワンストップ特例申請書の記入方法（寄附金額の欄）を案内。",
        "申請書の記入方法を案内",
    ),
    (
        "delivery_change",
        "provider",
        "配達日の変更希望。事業者へ変更を依頼済み。",
        "事業者へ配達日変更を依頼",
    ),
]


def _sid(rng: random.Random, prefix: str) -> str:
    return prefix + "".join(rng.choice("0123456789abcdef") for _ in range(32))


def _open_moment(
    rng: random.Random, calendar: BusinessCalendar, day: datetime.date
) -> datetime.datetime | None:
    hours = calendar.hours_on(day)
    if not hours.is_open_day:
        return None
    opens = datetime.datetime.combine(day, hours.opens, tzinfo=TOKYO)
    closes = datetime.datetime.combine(day, hours.closes, tzinfo=TOKYO)
    span = int((closes - opens).total_seconds()) - 1800  # not in the last half hour
    return opens + datetime.timedelta(seconds=rng.randrange(max(span, 60)))


def _call_days(
    rng: random.Random, calendar: BusinessCalendar, end: datetime.datetime, count: int
) -> list[datetime.datetime]:
    """``count`` open moments in the last week, oldest first, none after ``end``."""
    moments: list[datetime.datetime] = []
    last_day = end.astimezone(TOKYO).date()
    for attempt in range(count * 10):
        if len(moments) == count:
            break
        # The first tries are today, so the wallboard's "today" has calls when the city is open.
        day = last_day - datetime.timedelta(days=0 if attempt < 2 else rng.randrange(7))
        at = _open_moment(rng, calendar, day)
        if at is not None and at + datetime.timedelta(minutes=20) < end:
            moments.append(at)
    return sorted(moments)


def _answered(
    rng: random.Random,
    clock: DemoClock,
    *,
    at: datetime.datetime,
    municipality: Municipality,
    to: str,
    caller: DonorPhone,
    agent: User,
    script: tuple[str, str, str, str],
) -> Call:
    category, disposition, ticket_note, wrap_note = script
    clock.set(at - datetime.timedelta(minutes=rng.randint(5, 90)))
    services.agent_presence_set(actor=agent, state=AgentPresence.State.AVAILABLE)
    clock.set(at)
    call_sid = _sid(rng, "CA")
    step = services.inbound_call_receive(
        call_sid=call_sid, to=to, from_=caller.e164, at=at, payload={"CallSid": call_sid}
    )
    call = step.call
    clock.advance(seconds=rng.randint(12, 25))
    services.ivr_choice_receive(call=call, digits="1", attempt=1, payload={"Digits": "1"})
    clock.advance(seconds=rng.randint(4, 15))
    services.agent_leg_answered(call=call, agent_id=agent.pk, payload={})
    inquiry = services.call_ticket_start(actor=agent, call=call, donor_id=caller.donor_id)
    ticket_services.inquiry_assign(actor=agent, inquiry=inquiry, assignee=agent)
    ticket_services.inquiry_change_category(actor=agent, inquiry=inquiry, category=category)
    clock.advance(seconds=rng.randint(120, 540))
    ticket_services.inquiry_add_note(actor=agent, inquiry=inquiry, body=ticket_note)
    services.call_status_receive(
        call=call, twilio_status="completed", sequence=3, at=clock.at, payload={}
    )
    call.refresh_from_db()  # the status callback ended it on its own copy
    clock.advance(seconds=rng.randint(30, 120))
    services.call_wrap_up(
        actor=agent,
        call=call,
        disposition=Disposition.objects.get(code=disposition),
        note=wrap_note,
        next_state=AgentPresence.State.OFFLINE,
    )
    if disposition == "resolved":
        ticket_services.inquiry_change_status(actor=agent, inquiry=inquiry, status=Status.RESOLVED)
    return call


def _abandoned(
    rng: random.Random, clock: DemoClock, *, at: datetime.datetime, to: str, caller: str
) -> Call:
    clock.set(at)
    call_sid = _sid(rng, "CA")
    call = services.inbound_call_receive(
        call_sid=call_sid, to=to, from_=caller, at=at, payload={"CallSid": call_sid}
    ).call
    clock.advance(seconds=rng.randint(10, 20))
    services.ivr_choice_receive(call=call, digits="1", attempt=1, payload={"Digits": "1"})
    clock.advance(seconds=30)
    services.queue_wait_tick(call=call, queue_position=1, payload={"QueuePosition": "1"})
    clock.advance(seconds=rng.randint(20, 100))
    services.queue_exit(call=call, result="hangup", payload={"QueueResult": "hangup"})
    services.call_status_receive(
        call=call, twilio_status="completed", sequence=2, at=clock.at, payload={}
    )
    return call


def _voicemail(
    rng: random.Random,
    clock: DemoClock,
    *,
    at: datetime.datetime,
    to: str,
    caller: DonorPhone,
    wait_limit: int,
    agent: User,
) -> Call:
    clock.set(at)
    call_sid = _sid(rng, "CA")
    call = services.inbound_call_receive(
        call_sid=call_sid, to=to, from_=caller.e164, at=at, payload={"CallSid": call_sid}
    ).call
    clock.advance(seconds=15)
    services.ivr_choice_receive(call=call, digits="1", attempt=1, payload={"Digits": "1"})
    clock.advance(seconds=wait_limit + 5)
    services.queue_wait_tick(call=call, queue_position=1, payload={"QueuePosition": "1"})
    services.queue_exit(call=call, result="leave", payload={"QueueResult": "leave"})
    clock.advance(seconds=48)
    services.voicemail_recorded(call=call, payload={})
    services.call_status_receive(
        call=call, twilio_status="completed", sequence=4, at=clock.at, payload={}
    )
    recording_sid = _sid(rng, "RE")
    services.recording_status_receive(
        call=call,
        recording_sid=recording_sid,
        recording_url=(
            "https://api.twilio.com/2010-04-01/Accounts/AC00000000000000000000000000000000"
            f"/Recordings/{recording_sid}"
        ),
        recording_status="completed",
        duration="41",
        payload={},
    )
    # What the background task does once the recording is ready; called here so that the
    # ticket carries the moment it would have been opened.
    clock.advance(seconds=20)
    inquiry = services.voicemail_ticket_open(call=call)
    clock.advance(minutes=rng.randint(15, 60))
    ticket_services.inquiry_assign(actor=agent, inquiry=inquiry, assignee=agent)
    ticket_services.inquiry_add_note(
        actor=agent,
        inquiry=inquiry,
        body="留守電の内容: 返礼品の配達日を変更したいので折り返しがほしい、とのこと。",
    )
    ticket_services.inquiry_change_category(
        actor=agent, inquiry=inquiry, category="delivery_change"
    )
    return call


def seed_demo(*, rng: random.Random, today: datetime.date, stdout: Any) -> dict[str, int]:
    end = demo_now(today)
    clock = DemoClock(end)
    counts = {"calendars": 0, "calls": 0, "agent_presences": 0}
    with clock.running():
        for municipality in Municipality.objects.order_by("code"):
            calendar_services.business_calendar_apply_preset(
                municipality=municipality, preset=CALENDARS.get(municipality.code, "weekdays")
            )
            counts["calendars"] += 1
            # No settings service beyond the calendar: the menu and greeting as an admin sets them.
            PhoneSettings.objects.filter(municipality=municipality).update(
                greeting=(
                    f"お電話ありがとうございます。{municipality.answer_name}です。"
                    "この通話は、応対品質の向上のため録音させていただきます。"
                ),
                ivr_options=IVR_OPTIONS,
                max_queue_wait_seconds=120,
            )
            agents, _ = staff_for(municipality)
            number = (
                MunicipalityPhoneNumber.objects.filter(municipality=municipality)
                .order_by("id")
                .first()
            )
            callers = list(
                DonorPhone.objects.filter(municipality=municipality).order_by("id")[:400]
            )
            if not agents or number is None or len(callers) < 6:
                continue
            rng.shuffle(callers)
            calendar = BusinessCalendar.for_municipality(municipality.pk)
            moments = _call_days(rng, calendar, end, 5)
            for index, at in enumerate(moments):
                agent = rng.choice(agents)
                if index == 1:
                    _abandoned(rng, clock, at=at, to=number.e164, caller=callers.pop().e164)
                elif index == 3:
                    _voicemail(
                        rng,
                        clock,
                        at=at,
                        to=number.e164,
                        caller=callers.pop(),
                        wait_limit=120,
                        agent=agent,
                    )
                else:
                    _answered(
                        rng,
                        clock,
                        at=at,
                        municipality=municipality,
                        to=number.e164,
                        caller=callers.pop(),
                        agent=agent,
                        script=ANSWERED_CALLS[index % len(ANSWERED_CALLS)],
                    )
                counts["calls"] += 1
        # Every agent has a presence row; after the shift they are all logged off.
        agents = User.objects.filter(role=User.Role.AGENT, is_active=True).order_by("username")
        for agent in agents:
            if not AgentPresence.objects.filter(user=agent).exists():
                clock.set(end - datetime.timedelta(hours=8))
                services.agent_presence_set(actor=agent, state=AgentPresence.State.AVAILABLE)
                clock.set(end - datetime.timedelta(minutes=rng.randint(5, 60)))
                services.agent_presence_set(actor=agent, state=AgentPresence.State.OFFLINE)
        counts["agent_presences"] = AgentPresence.objects.filter(user__in=agents).count()
    return counts
