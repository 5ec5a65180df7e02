"""Every telephony write: call lifecycle from webhooks, routing, presence, wrap-up, call-backs.

Webhook-driven services take what Twilio sent (already signature-checked) and return what the call
should do next; the views turn that into TwiML. Each webhook is applied once per (CallSid, event):
Twilio retries, and status callbacks may arrive out of order.
"""

from __future__ import annotations

import datetime
import hashlib
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from django.conf import settings
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import IntegrityError, connection, transaction
from django.utils import timezone
from twilio.base.exceptions import TwilioRestException

from crm import normalize
from crm.access import (
    call_taking_roles,
    can_take_calls,
    is_supervisor,
    require_write,
    visible_municipality_ids,
)
from crm.audit import audit_record
from crm.models import AuditLog, MunicipalityPhoneNumber, User
from jobs.services import job_enqueue
from telephony import events, heartbeats, signals
from telephony.calendar import closed_message
from telephony.inserts import insert_call_with_event
from telephony.lines import line_rules
from telephony.models import (
    AgentPresence,
    Call,
    CallEvent,
    Disposition,
    PhoneSettings,
)
from telephony.twiml import RingTarget

logger = logging.getLogger("telephony")

TERMINAL_TWILIO_STATUSES = {"completed", "busy", "failed", "no-answer", "canceled"}
# Roles that take calls; city officials never do.
AGENT_SETTABLE_STATES = (
    AgentPresence.State.AVAILABLE,
    AgentPresence.State.BREAK,
    AgentPresence.State.OFFLINE,
)


# --- What a webhook decided ---------------------------------------------------------------


@dataclass
class Next:
    """The call's next step, for the view to render as TwiML."""

    kind: str  # unknown_number | suspended | closed | menu | ring | enqueue | voicemail | hold | leave | hangup | empty
    call: Call | None = None
    message: str = ""
    attempt: int = 1
    targets: list[RingTarget] = field(default_factory=list)
    settings: PhoneSettings | None = None
    notice: str = ""  # said before the menu when re-prompting
    announce: bool = True  # say "connecting" before ringing (not again after a failed ring)


def _settings_for(municipality_id: int) -> PhoneSettings:
    return line_rules(municipality_id).settings


def _event_once(
    call: Call, event: str, *, at: datetime.datetime, payload: Any, sequence: int | None = None
) -> bool:
    """Record a webhook; False if this (CallSid, event) was already applied."""
    try:
        with transaction.atomic():
            CallEvent.objects.create(
                call=call,
                call_sid=call.call_sid or f"local-{call.pk}",
                event=event[:160],
                sequence=sequence,
                at=at,
                payload=dict(payload.items()) if hasattr(payload, "items") else payload,
            )
    except IntegrityError:
        return False
    return True


def _locked(call: Call) -> Call:
    """The call as it is now, locked until the transaction ends: webhooks of one call take turns.

    A webhook's state must never come from a copy loaded before its transaction (a retried
    request that waited for the first one's lock would act on what the first already changed).
    """
    return Call.objects.select_for_update().get(pk=call.pk)


def answer_once(
    *, call: Call, leg: str, key: str, payload: Any, handle: Callable[[Call, str | None], str]
) -> str:
    """Answer a TwiML webhook, or give a retry of it the answer its first handling gave.

    Twilio retries a webhook it got no answer for (a slow database, a lost connection), and a
    retry may arrive while the first is still being handled. The call row is locked first, so
    they take turns; the answer is stored with the event, keyed by what identifies the request
    (digits, attempt, result...). A request repeating the last one answered on the same leg
    (``parent`` or ``agent-<id>``) is a retry; ``handle(call, previous)`` gets the locked call
    and the leg's previous answer.
    """
    if len(key) > 100:
        key = hashlib.sha256(key.encode()).hexdigest()
    prefix = f"twiml:{leg}:"
    with transaction.atomic():
        call = _locked(call)
        last = (
            CallEvent.objects.filter(call=call, event__startswith=prefix)
            .order_by("-id")
            .only("event", "response")
            .first()
        )
        number = 0
        if last is not None:
            _, _, last_number, last_key = last.event.split(":", 3)
            number = int(last_number)
            if last_key == key:
                return last.response
        body = handle(call, last.response if last is not None else None)
        CallEvent.objects.create(
            call=call,
            call_sid=call.call_sid or f"local-{call.pk}",
            event=f"{prefix}{number + 1}:{key}",
            at=timezone.now(),
            payload=dict(payload.items()) if hasattr(payload, "items") else payload,
            response=body,
        )
        return body


def twilio_time(raw: str | None, default: datetime.datetime | None = None) -> datetime.datetime:
    """Twilio's ``Timestamp`` (RFC 2822) → aware datetime; our clock when absent or garbled."""
    from email.utils import parsedate_to_datetime

    if raw:
        try:
            parsed = parsedate_to_datetime(raw)
            if parsed.tzinfo is not None:
                return parsed
        except (TypeError, ValueError):
            pass
    return default or timezone.now()


def twilio_seconds(payload: Any, key: str) -> int | None:
    """A duration Twilio measured (``CallDuration``, ``DialCallDuration``, ``QueueTime``), if sent.

    Preferred over our clock: a callback may arrive late or be retried, and then the time it
    reaches us says nothing about how long the caller talked or waited.
    """
    value = str(payload.get(key) or "").strip() if hasattr(payload, "get") else ""
    return int(value) if value.isdigit() else None


# --- Inbound: greeting, hours, menu ---------------------------------------------------------


def inbound_call_receive(
    *, call_sid: str, to: str, from_: str, at: datetime.datetime, payload: Any
) -> Next:
    """A call reached one of our numbers: find the municipality, check hours, open the menu."""
    to_e164 = normalize.normalize_phone(to) or to
    # The first webhook of every call must answer quickly: two statements in autocommit, no ORM
    # query building (which costs more CPU than the queries themselves), the greeting and
    # calendar from the per-process copy (telephony.lines). The number → municipality mapping
    # is always read from the database, never from a cache.
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT municipality_id FROM crm_municipalityphonenumber WHERE e164 = %s", [to_e164]
        )
        row = cursor.fetchone()
    if row is None:
        logger.warning("Call %s to unknown number %s", call_sid, to)
        return Next("unknown_number")
    rules = line_rules(row[0])
    if rules.suspended_notice:
        # Suspended: the caller hears why, no call is offered to anyone (data is kept).
        logger.info("Call %s to suspended municipality %s", call_sid, row[0])
        return Next("suspended", message=rules.suspended_notice)
    after_hours = not rules.calendar.is_open(at)
    call = Call(
        call_sid=call_sid,
        municipality_id=rules.municipality_id,
        from_raw=(from_ or "")[:40],
        from_e164=normalize.normalize_phone(from_) or "",
        to_e164=to_e164,
        offered_at=at,
        after_hours=after_hours,
        status=Call.Status.OFFERED if after_hours else Call.Status.IVR,
    )
    event = CallEvent(call_sid=call_sid, event="inbound", at=at, payload=dict(payload.items()))
    if not insert_call_with_event(call, event):
        # Twilio retried the request (or sent it twice at once): answer as for the first one.
        call = Call.objects.get(call_sid=call_sid)
    if call.after_hours:
        message = closed_message(rules.calendar, call.offered_at, greeting=rules.greeting)
        return Next("closed", call, message=message)
    # No wallboard push here: the greeting is playing; the next step (queue, ring) pushes.
    return Next("menu", call, message=rules.greeting, settings=rules.settings)


@transaction.atomic
def ivr_choice_receive(*, call: Call, digits: str, attempt: int, payload: Any) -> Next:
    """The caller pressed a key (or nothing): re-prompt, or route by the chosen requester type."""
    call = _locked(call)
    phone_settings = _settings_for(call.municipality_id)
    options = phone_settings.ivr_options or {}
    if call.is_ended or call.routed_at:  # a retried request after routing already happened
        return Next("hangup" if call.is_ended else "empty", call)
    if digits not in options:
        if attempt < 3:
            notice = "入力が確認できませんでした。" if not digits else "入力が正しくありません。"
            return Next(
                "menu",
                call,
                message=phone_settings.greeting_text(),
                attempt=attempt + 1,
                settings=phone_settings,
                notice=notice,
            )
        # Three tries without a valid key: the caller still reaches a person, as "other".
        digits = max(options, default="")
    call.ivr_digit = digits[:2]
    call.requester_type = options.get(digits, {}).get("requester_type", "other")
    call.routed_at = timezone.now()
    call.save(update_fields=["ivr_digit", "requester_type", "routed_at"])
    _event_once(call, f"ivr:{digits}", at=call.routed_at, payload=payload)
    return _route(call, phone_settings)


def _call_taking_presences(municipality_id: int):
    return AgentPresence.objects.filter(
        user__is_active=True,
        user__role__in=call_taking_roles(),
        user__municipalities=municipality_id,
    )


def available_agent_count(municipality_id: int) -> int:
    return (
        _call_taking_presences(municipality_id).filter(state=AgentPresence.State.AVAILABLE).count()
    )


def _route(call: Call, phone_settings: PhoneSettings, *, announce: bool = True) -> Next:
    """Ring free agents of the call's municipality; otherwise queue, or voicemail once too long."""
    suspended = line_rules(call.municipality_id).suspended_notice
    if suspended:  # suspended while the caller was in the menu or waiting
        return Next("suspended", call, message=suspended)
    limit = settings.TELEPHONY_RING_GROUP_SIZE
    # skip_locked: two calls routed at once never ring the same agent.
    presences = list(
        _call_taking_presences(call.municipality_id)
        .filter(state=AgentPresence.State.AVAILABLE)
        .select_for_update(skip_locked=True, of=("self",))
        .order_by("since", "user_id")[:limit]
    )
    now = timezone.now()
    if presences:
        ids = [p.pk for p in presences]
        AgentPresence.objects.filter(pk__in=ids).update(
            state=AgentPresence.State.RINGING, since=now, current_call=call
        )
        call.status = Call.Status.RINGING
        call.save(update_fields=["status"])
        rings = CallEvent.objects.filter(call=call, event__startswith="ring:").count()
        _event_once(
            call, f"ring:{rings + 1}", at=now, payload={"agents": [p.user_id for p in presences]}
        )
        agent_ids = [p.user_id for p in presences]
        events.call_ringing(call=call, agent_ids=agent_ids)
        targets = [
            RingTarget(
                agent_id=p.user_id, client_identity=p.client_identity, phone_e164=p.phone_e164
            )
            for p in presences
        ]
        return Next("ring", call, targets=targets, settings=phone_settings, announce=announce)
    waited = (now - call.routed_at).total_seconds() if call.routed_at else 0
    if waited >= phone_settings.max_queue_wait_seconds:
        return Next("voicemail", call)
    if call.status != Call.Status.QUEUED:
        call.status = Call.Status.QUEUED
        call.save(update_fields=["status"])
        events.call_changed(call=call)
    return Next("enqueue", call, message=queue_name(call))


def queue_name(call: Call) -> str:
    return f"municipality-{call.municipality_id}"


@transaction.atomic
def queue_wait_tick(*, call: Call, queue_position: int, payload: Any) -> Next:
    """Twilio asks what to play while the caller waits: hold message, or leave to be connected."""
    call = _locked(call)
    phone_settings = _settings_for(call.municipality_id)
    if _event_once(call, "queue:wait", at=timezone.now(), payload=payload):
        events.call_changed(call=call)
    waited = (timezone.now() - call.routed_at).total_seconds() if call.routed_at else 0
    # Only as many callers leave as there are free agents, first in line first.
    if 0 < queue_position <= available_agent_count(call.municipality_id):
        return Next("leave", call)
    if waited >= phone_settings.max_queue_wait_seconds:
        return Next("leave", call)
    if line_rules(call.municipality_id).suspended_notice:
        return Next("leave", call)  # routing then tells the caller the municipality is suspended
    return Next("hold", call, message=phone_settings.hold_message)


@transaction.atomic
def queue_exit(*, call: Call, result: str, payload: Any) -> Next:
    """The caller left the queue: hung up (abandoned), or left to be connected / leave a message."""
    call = _locked(call)
    _event_once(call, f"queue:exit:{result}", at=timezone.now(), payload=payload)
    if result == "hangup":
        queue_time = twilio_seconds(payload, "QueueTime")
        ended_at = timezone.now()
        if queue_time is not None and call.routed_at:
            ended_at = call.routed_at + datetime.timedelta(seconds=queue_time)
        _call_end(call, ended_at=ended_at, twilio_status="completed", queue_time=queue_time)
        return Next("hangup", call)
    if result in ("leave", "redirected"):
        return _route(call, _settings_for(call.municipality_id), announce=True)
    if result == "bridged":
        return Next("hangup", call)
    return Next("voicemail", call)  # queue-full, error, system-error


@transaction.atomic
def agent_leg_answered(*, call: Call, agent_id: int, payload: Any) -> Next:
    """An agent picked up (the <Client>/<Number> url runs on their leg before connecting)."""
    call = _locked(call)
    now = timezone.now()
    if not _event_once(call, f"agent:answer:{agent_id}", at=now, payload=payload):
        return Next("empty", call)
    if call.direction == Call.Direction.OUTBOUND:
        # The donor answered the call-back; the placing agent is already on the line.
        call.answered_at = call.answered_at or now
        call.status = Call.Status.IN_PROGRESS
        call.save(update_fields=["answered_at", "status"])
        events.call_changed(call=call, agent_id=agent_id)
        return Next("empty", call)
    if call.answered_by_id and call.answered_by_id != agent_id:
        return Next("hangup", call)  # someone else won the race
    call.answered_by_id = agent_id
    call.answered_at = now
    call.status = Call.Status.IN_PROGRESS
    if call.routed_at:
        call.queue_seconds = max(0, int((now - call.routed_at).total_seconds()))
    call.save(update_fields=["answered_by", "answered_at", "status", "queue_seconds"])
    others = list(
        AgentPresence.objects.filter(current_call=call, state=AgentPresence.State.RINGING).exclude(
            user_id=agent_id
        )
    )
    AgentPresence.objects.filter(pk__in=[p.pk for p in others]).update(
        state=AgentPresence.State.AVAILABLE, since=now, current_call=None
    )
    _presence_set_state(agent_id, AgentPresence.State.ON_CALL, call=call, at=now)
    events.call_taken(call=call, agent_ids=[p.user_id for p in others], answered_by_id=agent_id)
    events.call_changed(call=call, agent_id=agent_id)
    return Next("whisper", call)


@transaction.atomic
def agent_leg_status(
    *, call: Call, agent_id: int, twilio_status: str, sequence: int | None, payload: Any
) -> None:
    """Status of one agent's leg: unanswered legs free the agent; the answered one ends in wrap-up."""
    call = _locked(call)
    key = f"agent:{agent_id}:{twilio_status}"
    if not _event_once(call, key, at=timezone.now(), payload=payload, sequence=sequence):
        return
    if twilio_status not in TERMINAL_TWILIO_STATUSES:
        return
    now = timezone.now()
    presence = AgentPresence.objects.select_for_update().filter(user_id=agent_id).first()
    if presence is None or presence.current_call_id != call.pk:
        return
    if presence.state == AgentPresence.State.RINGING:
        # A ring the agent let pass means they are away from the desk: not ringing them again
        # and again while the caller waits. "canceled" means someone else answered, or the
        # caller gave up: the agent is free.
        missed = twilio_status in ("no-answer", "busy", "failed")
        next_state = AgentPresence.State.BREAK if missed else AgentPresence.State.AVAILABLE
        _presence_set_state(agent_id, next_state, call=None, at=now)
        events.call_taken(call=call, agent_ids=[agent_id], answered_by_id=call.answered_by_id)
    elif presence.state == AgentPresence.State.ON_CALL:
        _presence_set_state(agent_id, AgentPresence.State.WRAP_UP, call=call, at=now)
        events.call_changed(call=call, agent_id=agent_id)


@transaction.atomic
def dial_finished(*, call: Call, dial_status: str, payload: Any) -> Next:
    """<Dial> ended: after a conversation hang up; if nobody answered, try again or queue."""
    call = _locked(call)
    rings = CallEvent.objects.filter(call=call, event__startswith="ring:").count()
    first_time = _event_once(
        call, f"dial:{rings}:{dial_status}", at=timezone.now(), payload=payload
    )
    talked = twilio_seconds(payload, "DialCallDuration")
    if dial_status == "completed" and talked is not None and call.talk_seconds != talked:
        # Twilio's own measure of the conversation; wins over one derived from our clock.
        call.talk_seconds = talked
        Call.objects.filter(pk=call.pk).update(talk_seconds=talked)
    if dial_status == "completed" or call.answered_at or call.is_ended:
        return Next("hangup", call)
    if call.direction == Call.Direction.OUTBOUND:
        return Next("hangup", call)
    if not first_time:
        # A repeated request for a ring already handled: the queue is always a safe place.
        return Next("enqueue", call, message=queue_name(call))
    now = timezone.now()
    ringing = list(
        AgentPresence.objects.filter(current_call=call, state=AgentPresence.State.RINGING)
    )
    # Nobody picked up within the ring timeout: those agents are away (see agent_leg_status).
    for presence in ringing:
        _presence_set_state(presence.user_id, AgentPresence.State.BREAK, call=None, at=now)
    events.call_taken(call=call, agent_ids=[p.user_id for p in ringing], answered_by_id=None)
    return _route(call, _settings_for(call.municipality_id), announce=False)


@transaction.atomic
def voicemail_recorded(*, call: Call, payload: Any) -> Next:
    call = _locked(call)
    _event_once(call, "voicemail", at=timezone.now(), payload=payload)
    if not call.voicemail:
        call.voicemail = True
        call.status = Call.Status.VOICEMAIL
        call.save(update_fields=["voicemail", "status"])
    if call.recording_sid and call.inquiry_id is None:
        # The recording's callback came first: it could not know this was a voicemail.
        voicemail_ticket_promise(call)
    return Next("voicemail_done", call)


def voicemail_ticket_promise(call: Call) -> None:
    """The voicemail will become a ticket: recorded now, with the caller's transaction."""
    job_enqueue(
        target="telephony.services.voicemail_ticket_job",
        key=f"voicemail-ticket:{call.pk}",
        call_id=call.pk,
    )


def voicemail_ticket_job(*, call_id: int) -> None:
    call = Call.objects.filter(pk=call_id).first()
    if call is not None:
        voicemail_ticket_open(call=call)


@transaction.atomic
def recording_status_receive(
    *,
    call: Call,
    recording_sid: str,
    recording_url: str,
    recording_status: str,
    duration: str | None,
    payload: Any,
) -> None:
    """A recording is ready: keep it on the call; a voicemail becomes a ticket (in the background)."""
    call = _locked(call)
    if not _event_once(
        call, f"recording:{recording_sid}:{recording_status}", at=timezone.now(), payload=payload
    ):
        return
    if recording_status != "completed":
        logger.info("Recording %s of call %s: %s", recording_sid, call.pk, recording_status)
        return
    call.recording_sid = recording_sid[:64]
    call.recording_url = recording_url[:300]
    call.recording_seconds = int(duration) if (duration or "").isdigit() else None
    call.save(update_fields=["recording_sid", "recording_url", "recording_seconds"])
    if call.voicemail and call.inquiry_id is None:
        voicemail_ticket_promise(call)


@transaction.atomic
def call_status_receive(
    *,
    call: Call,
    twilio_status: str,
    sequence: int | None,
    at: datetime.datetime,
    payload: Any,
) -> None:
    """The parent call's status callback. Late, lower-numbered callbacks never move state back."""
    call = _locked(call)
    if not _event_once(call, f"status:{twilio_status}", at=at, payload=payload, sequence=sequence):
        return
    if sequence is not None:
        if sequence <= call.last_sequence:
            return
        call.last_sequence = sequence
        call.save(update_fields=["last_sequence"])
    if twilio_status in TERMINAL_TWILIO_STATUSES:
        _call_end(
            call,
            ended_at=at,
            twilio_status=twilio_status,
            call_duration=twilio_seconds(payload, "CallDuration"),
        )
    elif twilio_status == "in-progress" and call.direction == Call.Direction.OUTBOUND:
        # The agent picked up their leg of a call-back.
        if call.placed_by_id:
            _presence_set_state(
                call.placed_by_id, AgentPresence.State.ON_CALL, call=call, at=timezone.now()
            )


def _seconds_between(start: datetime.datetime, end: datetime.datetime) -> int:
    return max(0, int((end - start).total_seconds()))


def _call_end(
    call: Call,
    *,
    ended_at: datetime.datetime,
    twilio_status: str,
    call_duration: int | None = None,
    queue_time: int | None = None,
) -> None:
    """``call_duration`` and ``queue_time`` are Twilio's figures when it sent them."""
    if call.ended_at:
        return
    call.ended_at = ended_at
    # An inbound call is answered by our first TwiML at offered_at, so Twilio's CallDuration
    # runs from there; answered_at and routed_at were taken from webhooks we answered live.
    measured = call_duration if call.direction == Call.Direction.INBOUND else None
    if call.voicemail:
        call.status = Call.Status.VOICEMAIL
    elif call.answered_at:
        call.status = Call.Status.COMPLETED
        if call.talk_seconds is None:  # not already given by Twilio (DialCallDuration)
            call.talk_seconds = (
                max(0, measured - _seconds_between(call.offered_at, call.answered_at))
                if measured is not None
                else _seconds_between(call.answered_at, ended_at)
            )
    elif call.direction == Call.Direction.OUTBOUND:
        call.status = Call.Status.FAILED if twilio_status == "failed" else Call.Status.NO_ANSWER
    elif call.after_hours and not call.routed_at:
        call.status = Call.Status.AFTER_HOURS_HANGUP
    elif call.routed_at:
        call.status = Call.Status.ABANDONED_QUEUE
        if queue_time is not None:
            call.queue_seconds = queue_time
        elif measured is not None:
            call.queue_seconds = max(
                0, measured - _seconds_between(call.offered_at, call.routed_at)
            )
        else:
            call.queue_seconds = _seconds_between(call.routed_at, ended_at)
    else:
        call.status = Call.Status.ABANDONED_IVR
    call.save(update_fields=["ended_at", "status", "talk_seconds", "queue_seconds"])
    now = timezone.now()
    ringing = list(
        AgentPresence.objects.filter(current_call=call, state=AgentPresence.State.RINGING)
    )
    AgentPresence.objects.filter(pk__in=[p.pk for p in ringing]).update(
        state=AgentPresence.State.AVAILABLE, since=now, current_call=None
    )
    events.call_taken(call=call, agent_ids=[p.user_id for p in ringing], answered_by_id=None)
    agent_id = call.answered_by_id or call.placed_by_id
    if agent_id:
        presence = AgentPresence.objects.filter(user_id=agent_id, current_call=call).first()
        if presence and presence.state in (
            AgentPresence.State.ON_CALL,
            AgentPresence.State.RINGING,
        ):
            if call.answered_at:
                _presence_set_state(agent_id, AgentPresence.State.WRAP_UP, call=call, at=now)
            else:
                _presence_set_state(agent_id, AgentPresence.State.AVAILABLE, call=None, at=now)
    events.call_changed(call=call, agent_id=agent_id)


# --- Presence and wrap-up --------------------------------------------------------------------


def _presence_set_state(
    user_id: int, state: str, *, call: Call | None, at: datetime.datetime, reason: str = ""
) -> None:
    updated = AgentPresence.objects.filter(user_id=user_id).update(
        state=state, since=at, current_call=call, reason=reason
    )
    if not updated:
        AgentPresence.objects.create(
            user_id=user_id, state=state, since=at, current_call=call, reason=reason
        )
    municipality_ids = User.municipalities.through.objects.filter(user_id=user_id).values_list(
        "municipality_id", flat=True
    )
    events.presence_changed(user_id=user_id, state=state, municipality_ids=list(municipality_ids))


def presence_for(user: User) -> AgentPresence:
    presence = AgentPresence.objects.filter(user=user).select_related("current_call").first()
    return presence or AgentPresence(
        user=user, state=AgentPresence.State.OFFLINE, since=timezone.now()
    )


def pending_wrap_up(user: User) -> Call | None:
    """The answered call this agent has not yet given a wrap-up code."""
    return (
        Call.objects.filter(answered_by=user, ended_at__isnull=False, disposition__isnull=True)
        .order_by("-ended_at")
        .first()
        or Call.objects.filter(
            placed_by=user,
            direction=Call.Direction.OUTBOUND,
            ended_at__isnull=False,
            disposition__isnull=True,
        )
        .order_by("-ended_at")
        .first()
    )


def _on_live_call(presence: AgentPresence | None) -> bool:
    """Ringing or talking for a call that is still going on (not a state left by lost callbacks)."""
    if presence is None or presence.state not in (
        AgentPresence.State.RINGING,
        AgentPresence.State.ON_CALL,
    ):
        return False
    call = presence.current_call
    return call is not None and not call.is_ended


@transaction.atomic
def agent_presence_set(*, actor: User, state: str, reason: str = "") -> AgentPresence:
    """An agent says they are available, on a break (with a reason), or logged off.

    A break is always possible, except in the middle of a conversation: a ringing agent who must
    step away stops being offered the call, and a wrap-up can wait until they are back.
    """
    if not actor.is_operator_staff:
        raise PermissionDenied("電話を受ける権限がありません。")
    if state not in AGENT_SETTABLE_STATES:
        raise ValidationError("この状態には変更できません。")
    presence = (
        AgentPresence.objects.select_for_update(of=("self",))
        .select_related("current_call")
        .filter(user=actor)
        .first()
    )
    current = presence.state if presence else AgentPresence.State.OFFLINE
    live = _on_live_call(presence)
    if state == AgentPresence.State.BREAK:
        if live and current == AgentPresence.State.ON_CALL:
            raise ValidationError("通話中は状態を変更できません。")
    else:
        if live:
            raise ValidationError("通話中は状態を変更できません。")
        if pending_wrap_up(actor) is not None:
            raise ValidationError("後処理コードを入力してください。")
    reason = reason.strip()[:100] if state == AgentPresence.State.BREAK else ""
    if current != state or (presence and presence.reason != reason):
        if live and presence is not None and presence.current_call is not None:
            events.call_taken(call=presence.current_call, agent_ids=[actor.pk], answered_by_id=None)
        _presence_set_state(actor.pk, state, call=None, at=timezone.now(), reason=reason)
    return presence_for(actor)


@transaction.atomic
def agent_presence_reset(
    *, actor: User, agent: User, state: str = AgentPresence.State.BREAK, request: Any = None
) -> AgentPresence:
    """A supervisor puts an agent of their municipalities in a settable state, whatever it was.

    The way out when an agent's state no longer matches reality (a call that ended without its
    callbacks); audited, since it overrides what the agent and the calls set.
    """
    if not is_supervisor(actor):
        raise PermissionDenied("状態を変更する権限がありません。")
    agent_municipalities = set(agent.municipalities.values_list("id", flat=True))
    if not can_take_calls(agent) or not (agent_municipalities & visible_municipality_ids(actor)):
        raise PermissionDenied("この担当者の状態は変更できません。")
    if state not in AGENT_SETTABLE_STATES:
        raise ValidationError("この状態には変更できません。")
    presence = (
        AgentPresence.objects.select_for_update(of=("self",))
        .select_related("current_call")
        .filter(user=agent)
        .first()
    )
    before = presence.state if presence else AgentPresence.State.OFFLINE
    call = presence.current_call if presence else None
    if call is not None and before == AgentPresence.State.RINGING:
        events.call_taken(call=call, agent_ids=[agent.pk], answered_by_id=None)
    _presence_set_state(agent.pk, state, call=None, at=timezone.now(), reason="監督者が変更")
    audit_record(
        action=AuditLog.Action.PRESENCE_RESET,
        request=request,
        user=actor,
        agent_id=agent.pk,
        agent=agent.get_username(),
        before=before,
        after=state,
        call_id=call.pk if call else None,
    )
    return presence_for(agent)


# --- Reconciler: calls and agents left mid-state by lost callbacks ---------------------------


def _twilio_call_status(call: Call) -> tuple[str, datetime.datetime | None] | None:
    """Twilio's own view of the call (status, end time), or None if it cannot be asked now."""
    import requests

    from telephony.twilio_api import rest_client, rest_configured

    if not call.call_sid or not rest_configured():
        return None
    try:
        fetched = rest_client().calls(call.call_sid).fetch()
    except TwilioRestException as exc:
        if exc.status == 404:
            return "failed", None  # Twilio never had it (or it is long gone)
        logger.warning("Twilio could not tell the status of call %s: %s", call.pk, exc)
        return None
    except (requests.RequestException, OSError):
        logger.warning("Twilio unreachable for call %s", call.pk, exc_info=True)
        return None
    end_time = fetched.end_time if isinstance(fetched.end_time, datetime.datetime) else None
    return str(fetched.status), end_time


def _call_reconcile(call: Call, *, now: datetime.datetime, last_activity: datetime.datetime):
    """End one call that has been silent too long, if Twilio (or its age) says it is over."""
    asked = _twilio_call_status(call)  # outside any transaction: an HTTP request
    if asked is not None:
        twilio_status, ended_at = asked
        if twilio_status not in TERMINAL_TWILIO_STATUSES:
            return False
    elif call.call_sid is None and call.direction == Call.Direction.OUTBOUND:
        # A call-back never handed to Twilio (the broker was down): nobody is on the line.
        twilio_status, ended_at = "failed", last_activity
    elif (now - call.offered_at).total_seconds() > settings.TELEPHONY_CALL_MAX_SECONDS:
        twilio_status, ended_at = "completed", last_activity
    else:
        return False
    with transaction.atomic():
        call = _locked(call)
        if call.ended_at:
            return False
        _event_once(
            call, f"reconciled:{twilio_status}", at=now, payload={"twilio_status": twilio_status}
        )
        _call_end(call, ended_at=ended_at or now, twilio_status=twilio_status)
    logger.warning("Call %s ended by the reconciler (%s)", call.pk, twilio_status)
    return True


def calls_reconcile(*, now: datetime.datetime | None = None) -> dict[str, int]:
    """Beat: end calls whose final callbacks never came, free agents stuck by them, and promise a
    ticket to every voicemail that has none."""
    from django.db.models import DateTimeField, OuterRef, Subquery
    from django.db.models.functions import Coalesce, Greatest

    now = now or timezone.now()
    quiet_since = now - datetime.timedelta(seconds=settings.TELEPHONY_RECONCILE_AFTER_SECONDS)
    last_event = Subquery(
        CallEvent.objects.filter(call=OuterRef("pk"))
        .order_by("-received_at")
        .values("received_at")[:1],
        output_field=DateTimeField(),
    )
    silent = (
        Call.objects.filter(ended_at__isnull=True, offered_at__lt=quiet_since)
        .annotate(last=Greatest(Coalesce(last_event, "offered_at"), "offered_at"))
        .filter(last__lt=quiet_since)
        .order_by("offered_at")[:200]
    )
    ended = sum(_call_reconcile(call, now=now, last_activity=call.last) for call in silent)

    released = 0
    stuck = AgentPresence.objects.filter(
        state__in=(AgentPresence.State.RINGING, AgentPresence.State.ON_CALL)
    ).select_related("current_call")
    for presence in stuck:
        call = presence.current_call
        over = call is None or call.is_ended
        # No ring lasts this long: the <Dial> is over even if its callbacks were lost.
        rang_out = presence.state == AgentPresence.State.RINGING and presence.since < quiet_since
        if over or rang_out:
            released += _presence_release(presence, now=now)

    orphans = list(
        Call.objects.filter(voicemail=True, inquiry__isnull=True)
        .exclude(recording_sid="")
        .values_list("pk", flat=True)[:500]
    )
    promised = 0
    if orphans:
        from jobs.models import PendingJob

        keys = {f"voicemail-ticket:{pk}": pk for pk in orphans}
        known = set(PendingJob.objects.filter(key__in=keys).values_list("key", flat=True))
        for key, pk in keys.items():
            if key not in known:
                with transaction.atomic():
                    voicemail_ticket_promise(Call(pk=pk))
                promised += 1
    return {"calls_ended": ended, "agents_released": released, "voicemails_promised": promised}


def _presence_release(presence: AgentPresence, *, now: datetime.datetime) -> int:
    with transaction.atomic():
        current = (
            AgentPresence.objects.select_for_update()
            .filter(pk=presence.pk, state=presence.state, since=presence.since)
            .first()
        )
        if current is None:  # it moved on by itself meanwhile
            return 0
        call = presence.current_call
        if (
            call is not None
            and call.is_ended
            and call.answered_at
            and current.state == AgentPresence.State.ON_CALL
        ):
            # The conversation happened: its wrap-up is still owed.
            _presence_set_state(current.user_id, AgentPresence.State.WRAP_UP, call=call, at=now)
        else:
            if call is not None:
                events.call_taken(call=call, agent_ids=[current.user_id], answered_by_id=None)
            _presence_set_state(current.user_id, AgentPresence.State.AVAILABLE, call=None, at=now)
    logger.warning("Agent %s released from %s by the reconciler", current.user_id, current.state)
    return 1


@transaction.atomic
def agent_disconnected(*, user_id: int) -> None:
    """The agent's last browser tab closed: a free or resting agent is logged off.

    Not during a call or its wrap-up: the call goes on (on their phone, say) and its record
    still needs the agent's wrap-up code.
    """
    presence = AgentPresence.objects.select_for_update().filter(user_id=user_id).first()
    if presence and presence.state in (AgentPresence.State.AVAILABLE, AgentPresence.State.BREAK):
        _presence_set_state(user_id, AgentPresence.State.OFFLINE, call=None, at=timezone.now())


def presence_sweep() -> list[int]:
    """Log off free or resting agents none of whose tabs has sent a heartbeat lately.

    Catches what no disconnect reports: a worker process that died, a network that dropped the
    socket unseen. An agent who set their state just now (before their socket's first beat) is
    left alone for one heartbeat lifetime. Returns the agents logged off.
    """
    recently = timezone.now() - datetime.timedelta(seconds=heartbeats.ttl())
    candidates = AgentPresence.objects.filter(
        state__in=(AgentPresence.State.AVAILABLE, AgentPresence.State.BREAK), since__lt=recently
    ).values_list("user_id", flat=True)
    gone = [user_id for user_id in candidates if heartbeats.alive(user_id) <= 0]
    for user_id in gone:
        agent_disconnected(user_id=user_id)  # re-checks the state under a row lock
    return gone


# Wrap-up codes that are not inquiries: nobody asked anything, so the city has nothing to see.
# Every other answered call ends linked to an inquiry (the seeds require each one recorded).
NO_INQUIRY_DISPOSITIONS = frozenset({"wrong_number", "silent"})
QUICK_ANSWER_NOTE_MAX = 1000


@dataclass
class QuickAnswer:
    """「その場で回答」: the call answered on the phone, recorded as a resolved inquiry."""

    category: str
    note: str
    donor_id: int | None = None
    provider_id: int | None = None


@transaction.atomic
def call_wrap_up(
    *,
    actor: User,
    call: Call,
    disposition: Disposition,
    note: str = "",
    next_state: str = AgentPresence.State.AVAILABLE,
    inquiry_id: int | None = None,
    quick_answer: QuickAnswer | None = None,
) -> Call:
    """The agent closes the call with a wrap-up code; only then do they take the next call.

    Unless the code says there was no inquiry (間違い電話, 無言), the call must end linked to
    one: the one opened during the call, an open inquiry of the caller the agent picks
    (``inquiry_id``), or a resolved one made here from a category and a short note.
    """
    if actor.pk not in (call.answered_by_id, call.placed_by_id):
        raise PermissionDenied("この通話の後処理はできません。")
    require_write(actor, call.municipality_id)
    call = _locked(call)
    if not call.ended_at:
        raise ValidationError("通話が終わってから入力してください。")
    if call.disposition_id:
        raise ValidationError("この通話の後処理は入力済みです。")
    if next_state not in AGENT_SETTABLE_STATES:
        raise ValidationError("この状態には変更できません。")
    if disposition.code not in NO_INQUIRY_DISPOSITIONS and call.inquiry_id is None:
        if inquiry_id is not None:
            call.inquiry = _open_inquiry_of_municipality(call, inquiry_id)
        elif quick_answer is not None:
            call.inquiry = _quick_answer_open(actor=actor, call=call, answer=quick_answer)
        else:
            raise ValidationError(
                "問合せが記録されていません。この通話の問合せを選ぶか、"
                "「その場で回答」で分類とメモを入力してください"
                "（問合せでない通話は「間違い電話」「無言・途中切断」を選んでください）。"
            )
    call.disposition = disposition
    call.disposition_note = note.strip()
    call.wrapped_up_at = timezone.now()
    call.save(update_fields=["disposition", "disposition_note", "wrapped_up_at", "inquiry"])
    if call.inquiry_id:
        events.call_logged_on_inquiry(call=call, actor=actor)
    presence = AgentPresence.objects.filter(user=actor).first()
    if (
        presence
        and presence.state == AgentPresence.State.WRAP_UP
        and pending_wrap_up(actor) is None
    ):
        _presence_set_state(actor.pk, next_state, call=None, at=timezone.now())
    events.call_changed(call=call)
    call_id, code, actor_id = call.pk, disposition.code, actor.pk
    transaction.on_commit(
        lambda: signals.call_wrapped_up.send(
            sender=Call, call_id=call_id, disposition_code=code, actor_id=actor_id
        ),
        robust=True,
    )
    return call


def _open_inquiry_of_municipality(call: Call, inquiry_id: int):
    from tickets.models import OPEN_STATUSES, Inquiry

    inquiry = Inquiry.objects.filter(
        pk=inquiry_id, municipality_id=call.municipality_id, status__in=OPEN_STATUSES
    ).first()
    if inquiry is None:
        raise ValidationError("選んだ問合せが見つからないか、既に完了しています。")
    return inquiry


def _caller_records(
    call: Call, *, donor_id: int | None, provider_id: int | None
) -> tuple[Any, Any]:
    """The donor and provider the agent chose, only of the call's own municipality."""
    from crm.models import Donor, Provider

    donor = provider = None
    if donor_id is not None:
        donor = Donor.objects.filter(pk=donor_id, municipality_id=call.municipality_id).first()
        if donor is None:
            raise ValidationError("寄附者が見つかりません。")
    if provider_id is not None:
        provider = Provider.objects.filter(
            pk=provider_id, municipality_id=call.municipality_id
        ).first()
        if provider is None:
            raise ValidationError("返礼品提供事業者が見つかりません。")
    return donor, provider


def _category_or_error(code: str | None):
    from tickets.models import Category

    if not code:
        return None
    category = Category.objects.filter(code=code, active=True).first()
    if category is None:
        raise ValidationError("分類が見つかりません。")
    return category


def _requester_type(call: Call, provider: Any) -> str:
    if provider is not None:
        return "provider"
    return call.requester_type or "donor"


def _quick_answer_open(*, actor: User, call: Call, answer: QuickAnswer):
    from tickets import services as ticket_services
    from tickets.models import Status

    category = _category_or_error(answer.category)
    body = answer.note.strip()
    if category is None or not body:
        raise ValidationError("「その場で回答」には分類と回答内容のメモが必要です。")
    if len(body) > QUICK_ANSWER_NOTE_MAX:
        raise ValidationError(f"メモは{QUICK_ANSWER_NOTE_MAX}文字以内で入力してください。")
    donor, provider = _caller_records(
        call, donor_id=answer.donor_id, provider_id=answer.provider_id
    )
    number = normalize.format_phone_national(call.from_e164) or "非通知"
    inquiry = ticket_services.inquiry_open(
        actor=actor,
        municipality=call.municipality,
        channel="phone",
        title=f"{category.name}（電話 {number}・その場で回答）",
        description=body,
        requester_type=_requester_type(call, provider),
        category=category.code,
        donor=donor,
        provider=provider,
        assigned_to=actor,
    )
    ticket_services.inquiry_change_status(
        actor=actor, inquiry=inquiry, status=Status.RESOLVED, comment="電話でその場で回答"
    )
    return inquiry


@transaction.atomic
def call_ticket_start(
    *,
    actor: User,
    call: Call,
    donor_id: int | None = None,
    provider_id: int | None = None,
    donation_id: int | None = None,
    shipment_id: int | None = None,
    category: str | None = None,
    title: str = "",
):
    """問合せを開始 from the pop: a phone ticket assigned to the agent, with this call, the
    caller (donor or provider) and the donation/shipment they are calling about linked."""
    from donations_sync.models import Donation, Shipment
    from tickets import services as ticket_services

    require_write(actor, call.municipality_id)
    call = _locked(call)
    if call.inquiry_id:
        return call.inquiry
    donor, provider = _caller_records(call, donor_id=donor_id, provider_id=provider_id)
    shipment = donation = None
    if shipment_id is not None:
        shipment = (
            Shipment.objects.select_related("donation", "gift_item")
            .filter(pk=shipment_id, donation__municipality_id=call.municipality_id)
            .first()
        )
        if shipment is None:
            raise ValidationError("配送が見つかりません。")
        donation = shipment.donation
    elif donation_id is not None:
        donation = Donation.objects.filter(
            pk=donation_id, municipality_id=call.municipality_id
        ).first()
        if donation is None:
            raise ValidationError("寄附が見つかりません。")
    if donation is not None:
        if donor is not None and donation.donor_id != donor.pk:
            raise ValidationError("選んだ寄附はこの寄附者のものではありません。")
        donor = donor or donation.donor
    chosen = _category_or_error(category)
    number = normalize.format_phone_national(call.from_e164) or "非通知"
    who = f"{donor.name} 様" if donor else (provider.name if provider else number)
    # The agent's own words, else what the call is about and who called (never 「電話 090-…」
    # alone, which says nothing in a list).
    title = " ".join(title.split())[:200] or f"{chosen.name if chosen else '電話'}: {who}"
    description = [f"{timezone.localtime(call.offered_at):%Y年%m月%d日 %H:%M} の電話（{number}）"]
    if shipment is not None:
        description.append(f"配送: {shipment.gift_item.name}（{shipment.delivery_number}回目）")
    inquiry = ticket_services.inquiry_open(
        actor=actor,
        municipality=call.municipality,
        channel="phone",
        title=title,
        description="\n".join(description),
        requester_type=_requester_type(call, provider),
        category=chosen.code if chosen else None,
        donor=donor,
        provider=provider,
        donations=[donation] if donation is not None else [],
        shipments=[shipment] if shipment is not None else [],
        assigned_to=actor,
    )
    call.inquiry = inquiry
    call.save(update_fields=["inquiry"])
    events.call_changed(call=call, agent_id=call.answered_by_id or call.placed_by_id)
    return inquiry


@transaction.atomic
def call_link_opened_inquiries(*, inquiry_ids: list[int], actor_id: int | None) -> Call | None:
    """A phone ticket the agent opened elsewhere (the donor page's 「この配送で問合せ」) while
    talking, or wrapping up, joins their current call if that call has none yet."""
    from tickets import services as ticket_services
    from tickets.models import Inquiry

    if actor_id is None:
        return None
    presence = (
        AgentPresence.objects.select_related("current_call")
        .filter(
            user_id=actor_id,
            state__in=(AgentPresence.State.ON_CALL, AgentPresence.State.WRAP_UP),
            current_call__isnull=False,
        )
        .first()
    )
    if presence is None:
        return None
    call = _locked(presence.current_call)
    if call.inquiry_id is not None or call.disposition_id is not None:
        return None
    if actor_id not in (call.answered_by_id, call.placed_by_id):
        return None
    inquiry = (
        Inquiry.objects.filter(
            pk__in=inquiry_ids, municipality_id=call.municipality_id, channel="phone"
        )
        .order_by("pk")
        .first()
    )
    if inquiry is None:
        return None
    call.inquiry = inquiry
    call.save(update_fields=["inquiry"])
    actor = User.objects.get(pk=actor_id)
    number = normalize.format_phone_national(call.from_e164) or "非通知"
    ticket_services.inquiry_add_note(
        actor=actor,
        inquiry=inquiry,
        title="通話を関連付け",
        body=f"通話中に登録した問合せとして、{number} からの通話を関連付けました。",
    )
    events.call_changed(call=call, agent_id=actor_id)
    return call


@transaction.atomic
def voicemail_ticket_open(*, call: Call):
    """A voicemail becomes a ticket for the municipality dialled, matched to the caller if we can."""
    from crm.models import Donor
    from donations_sync.selectors import donor_ids_by_phone
    from tickets import services as ticket_services

    call = Call.objects.select_for_update().select_related("municipality").get(pk=call.pk)
    if call.inquiry_id:
        return call.inquiry
    donor_ids = donor_ids_by_phone([call.municipality_id], call.from_e164) if call.from_e164 else []
    # Link a donor only when the number names exactly one; several stay for the agent to choose.
    donor = Donor.objects.get(pk=donor_ids[0]) if len(donor_ids) == 1 else None
    number = normalize.format_phone_national(call.from_e164) or "非通知"
    description = [
        f"留守番電話（{timezone.localtime(call.offered_at):%Y年%m月%d日 %H:%M}）",
        f"発信者番号: {number}",
        f"録音: {events.recording_path(call) if call.recording_sid else '（なし）'}",
    ]
    if call.recording_seconds is not None:
        description.append(f"録音時間: {call.recording_seconds}秒")
    if len(donor_ids) > 1:
        description.append(f"この番号の寄附者が{len(donor_ids)}名います。確認してください。")
    inquiry = ticket_services.inquiry_open(
        actor=None,
        municipality=call.municipality,
        channel="phone",
        title=f"留守番電話 {number}",
        description="\n".join(description),
        requester_type=call.requester_type or "donor",
        donor=donor,
    )
    call.inquiry = inquiry
    call.matched_donor_ids = donor_ids
    call.save(update_fields=["inquiry", "matched_donor_ids"])
    return inquiry


# --- Outbound call-back ---------------------------------------------------------------------


def call_back_default_number(inquiry: Any) -> str | None:
    """The number an empty 折り返し先 dials: the donor's first registered one (E.164)."""
    if not inquiry.donor_id:
        return None
    phone = inquiry.donor.phones.order_by("id").first()
    return phone.e164 if phone else None


@transaction.atomic
def call_back_place(*, actor: User, inquiry: Any, to: str = "") -> Call:
    """折り返し電話: ring the agent, then the donor, from the municipality's own number.

    A number the agent typed is dialled as typed or not at all: quietly dialling the donor's
    registered number instead of a mistyped one calls someone the agent did not choose.
    """
    require_write(actor, inquiry.municipality_id)
    typed = (to or "").strip()
    if typed:
        to_e164 = normalize.normalize_phone(typed)
        if not to_e164:
            raise ValidationError(f"電話番号の形式が正しくありません: {typed}")
    else:
        to_e164 = call_back_default_number(inquiry)
        if not to_e164:
            raise ValidationError(
                "折り返し先の電話番号がありません。寄附者の電話番号が登録されていません。"
            )
    from_number = (
        MunicipalityPhoneNumber.objects.filter(municipality_id=inquiry.municipality_id)
        .order_by("id")
        .first()
    )
    if from_number is None:
        raise ValidationError("この自治体の発信番号が登録されていません。")
    presence = AgentPresence.objects.select_for_update().filter(user=actor).first()
    if presence and presence.state in (AgentPresence.State.RINGING, AgentPresence.State.ON_CALL):
        raise ValidationError("通話中は発信できません。")
    if pending_wrap_up(actor) is not None:
        raise ValidationError("後処理コードを入力してください。")
    now = timezone.now()
    call = Call.objects.create(
        municipality_id=inquiry.municipality_id,
        direction=Call.Direction.OUTBOUND,
        status=Call.Status.RINGING,
        from_e164=to_e164,  # the other party, as for inbound calls
        to_e164=from_number.e164,
        offered_at=now,
        placed_by=actor,
        inquiry=inquiry,
    )
    _presence_set_state(actor.pk, AgentPresence.State.RINGING, call=call, at=now)
    # robust: a broker outage must not turn the agent's click into an error page; the call,
    # still without a CallSid, is ended and the agent freed by the reconciler.
    transaction.on_commit(
        lambda: signals.outbound_call_requested.send(Call, call_id=call.pk), robust=True
    )
    return call


def outbound_call_place(*, call: Call) -> Call:
    """Ask Twilio to ring the agent; their answer fetches the TwiML that dials the donor.

    Not atomic on purpose: the HTTP request to Twilio must not hold a transaction open.
    """
    from telephony.twilio_api import public_url, rest_client

    if call.call_sid:
        return call
    if not _event_once(call, "outbound:requested", at=timezone.now(), payload={}):
        # A second delivery of this task (a worker lost after asking Twilio): asking again
        # could ring the agent twice. The call's status callbacks (which carry its CallSid),
        # or the reconciler, settle it.
        logger.warning("Call-back %s already requested from Twilio; not asking twice", call.pk)
        return call
    presence = AgentPresence.objects.filter(user_id=call.placed_by_id).first()
    agent_endpoint = (
        presence.phone_e164
        if presence and presence.phone_e164
        else f"client:agent-{call.placed_by_id}"
    )
    try:
        created = rest_client().calls.create(
            to=agent_endpoint,
            from_=call.to_e164,
            url=public_url("voice_outbound", call=call.pk),
            status_callback=public_url("status_call", call=call.pk),
            status_callback_event=["initiated", "ringing", "answered", "completed"],
            status_callback_method="POST",
        )
    except TwilioRestException as exc:
        # Twilio refused (bad number, no credit): the agent must not stay "ringing".
        logger.warning("Call-back %s refused by Twilio: %s", call.pk, exc)
        with transaction.atomic():
            _call_end(call, ended_at=timezone.now(), twilio_status="failed")
        return call
    Call.objects.filter(pk=call.pk, call_sid__isnull=True).update(call_sid=created.sid)
    call.refresh_from_db()
    _event_once(call, "outbound:placed", at=timezone.now(), payload={"sid": created.sid})
    return call
