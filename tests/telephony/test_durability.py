"""Retried webhooks, lost callbacks, an unreachable broker: calls and agents never end up stuck."""

from __future__ import annotations

import contextlib
import datetime
import threading
import time
import xml.etree.ElementTree as ET

import psycopg
import pytest
import time_machine
from django.db import connection
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from crm.models import AuditLog, User
from jobs.models import PendingJob
from telephony import tasks
from telephony.models import AgentPresence, Call
from tests.conftest import login_as
from tests.factories import UserFactory
from tests.telephony.conftest import (
    ACCOUNT_SID,
    FakeTwilioHttp,
    PhoneCall,
    TwilioStandIn,
    make_available,
    tokyo,
)

CALLER = "+819012345678"


def _state(user: User) -> str:
    return AgentPresence.objects.get(user=user).state


def _tags(root: ET.Element) -> list[str]:
    return [child.tag for child in root]


# --- Retries get the first answer -------------------------------------------------------------


def _other_connection() -> psycopg.Connection:
    s = connection.settings_dict
    return psycopg.connect(
        host=s["HOST"] or None,
        port=s["PORT"] or None,
        user=s["USER"],
        password=s["PASSWORD"] or None,
        dbname=s["NAME"],
    )


def _waiting_on_locks(conn: psycopg.Connection) -> int:
    row = conn.execute(
        "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND datname = %s",
        [connection.settings_dict["NAME"]],
    ).fetchone()
    return row[0]


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_menu_key_retried_during_a_lock_gets_the_same_dial(line_a, agent_a, open_hours):
    """Three copies of one key press, held up by a lock: all answer the first Dial."""
    make_available(agent_a)
    twilio = TwilioStandIn()
    call = PhoneCall(twilio, from_=CALLER, to=line_a.e164)
    call.dial_in()
    action = call.root.find("Gather").get("action")
    params = call.params(CallStatus="in-progress", Digits="1")
    answers: list[bytes] = []

    def press() -> None:
        try:
            response = TwilioStandIn(Client()).post(action, params)
            answers.append((response.status_code, response.content))
        finally:
            connection.close()

    with _other_connection() as holder, _other_connection() as watcher:
        # Something else holds the call's row (a slow transaction, a vacuum): the key press and
        # Twilio's retries of it pile up behind it.
        holder.execute(
            "SELECT id FROM telephony_call WHERE call_sid = %s FOR UPDATE", [call.sid]
        ).fetchone()
        threads = [threading.Thread(target=press) for _ in range(3)]
        for thread in threads:
            thread.start()
        deadline = time.monotonic() + 15
        while _waiting_on_locks(watcher) < 3 and time.monotonic() < deadline:
            time.sleep(0.05)
        holder.commit()
        for thread in threads:
            thread.join(20)

    assert len(answers) == 3
    assert {status for status, _ in answers} == {200}
    assert len({body for _, body in answers}) == 1, answers
    root = ET.fromstring(answers[0][1])
    assert "Dial" in _tags(root) and "Enqueue" not in _tags(root)
    # A later retry (after Twilio's timeout) still gets the same answer, never an empty one.
    late = TwilioStandIn().post(action, params)
    assert late.content == answers[0][1]
    assert Call.objects.get(call_sid=call.sid).status == Call.Status.RINGING
    assert _state(agent_a) == AgentPresence.State.RINGING


def test_dial_done_retry_gets_the_same_answer(twilio, line_a, agent_a, agent_a2, open_hours):
    make_available(agent_a)
    call = PhoneCall(twilio, from_=CALLER, to=line_a.e164)
    call.dial_in()
    call.press("1")
    action = call.root.find("Dial").get("action")
    make_available(agent_a2)
    first = call.dial_ends("no-answer")
    assert "Dial" in _tags(first)  # agent_a2 rings next
    retry = twilio.twiml(
        action,
        call.params(
            CallStatus="in-progress",
            DialCallStatus="no-answer",
            DialCallDuration="0",
            DialCallSid=f"CA{call.dials:04d}{call.sid[6:]}",
        ),
    )
    assert ET.tostring(retry) == ET.tostring(first)
    assert _state(agent_a2) == AgentPresence.State.RINGING
    # The second <Dial> ending is a new request, not a retry: the caller is queued now.
    second = call.dial_ends("no-answer")
    assert "Enqueue" in _tags(second)


# --- Lost callbacks: the reconciler -----------------------------------------------------------


def _ring_then_lose_callbacks(twilio: TwilioStandIn, line_a, agent_a) -> PhoneCall:
    make_available(agent_a)
    call = PhoneCall(twilio, from_=CALLER, to=line_a.e164)
    call.dial_in()
    call.press("1")
    assert _state(agent_a) == AgentPresence.State.RINGING
    return call  # ...and the database was restarting when the final callbacks came


def test_reconciler_ends_a_silent_call_twilio_says_is_over(twilio, line_a, agent_a, open_hours):
    call = _ring_then_lose_callbacks(twilio, line_a, agent_a)
    FakeTwilioHttp.calls[call.sid] = ("completed", "Tue, 10 Jun 2025 01:00:40 +0000")
    with time_machine.travel(tokyo(2025, 6, 10, 10, 3), tick=True):
        tasks.calls_reconcile.delay()
    record = Call.objects.get(call_sid=call.sid)
    assert record.status == Call.Status.ABANDONED_QUEUE  # still ringing, never answered
    assert record.ended_at == datetime.datetime(2025, 6, 10, 1, 0, 40, tzinfo=datetime.UTC)
    assert record.events.filter(event="reconciled:completed").exists()
    assert any(
        r["method"] == "GET" and r["uri"].endswith(f"/Accounts/{ACCOUNT_SID}/Calls/{call.sid}.json")
        for r in FakeTwilioHttp.requests
    )
    with time_machine.travel(tokyo(2025, 6, 10, 10, 5), tick=True):
        assert _state(agent_a) == AgentPresence.State.AVAILABLE
        # The next caller reaches the agent instead of the queue.
        nxt = PhoneCall(twilio, from_="+819087654321", to=line_a.e164)
        nxt.dial_in()
        assert "Dial" in _tags(nxt.press("1"))


def test_reconciler_leaves_a_live_call_but_frees_an_agent_rung_out(
    twilio, line_a, agent_a, open_hours
):
    call = _ring_then_lose_callbacks(twilio, line_a, agent_a)
    FakeTwilioHttp.calls[call.sid] = ("in-progress", None)
    with time_machine.travel(tokyo(2025, 6, 10, 10, 0, 30), tick=True):
        tasks.calls_reconcile.delay()  # too early for anything
        assert _state(agent_a) == AgentPresence.State.RINGING
    with time_machine.travel(tokyo(2025, 6, 10, 10, 5), tick=True):
        tasks.calls_reconcile.delay()
    assert Call.objects.get(call_sid=call.sid).ended_at is None  # the caller is still there
    assert _state(agent_a) == AgentPresence.State.AVAILABLE  # no ring lasts 5 minutes


def test_reconciler_without_credentials_ends_only_calls_past_any_length(
    settings, twilio, line_a, agent_a, open_hours
):
    settings.TWILIO_ACCOUNT_SID = "AC" + "0" * 32
    call = _ring_then_lose_callbacks(twilio, line_a, agent_a)
    with time_machine.travel(tokyo(2025, 6, 10, 11, 0), tick=True):
        tasks.calls_reconcile.delay()
    assert Call.objects.get(call_sid=call.sid).ended_at is None
    assert not any(r["method"] == "GET" for r in FakeTwilioHttp.requests)
    with time_machine.travel(tokyo(2025, 6, 10, 14, 30), tick=True):
        tasks.calls_reconcile.delay()
    assert Call.objects.get(call_sid=call.sid).is_ended


# --- Agents are never trapped -----------------------------------------------------------------


def test_ringing_agent_can_take_a_break_with_a_reason(twilio, line_a, agent_a, open_hours):
    call = _ring_then_lose_callbacks(twilio, line_a, agent_a)
    client = login_as(Client(), agent_a)
    url = reverse("telephony:presence_update")
    json = {"HTTP_ACCEPT": "application/json"}
    refused = client.post(url, {"state": "available"}, **json)
    assert refused.status_code == 409
    assert refused.json()["error"] == "通話中は状態を変更できません。"
    taken = client.post(url, {"state": "break", "reason": "打合せ"}, **json)
    assert taken.status_code == 200, taken.content
    presence = AgentPresence.objects.get(user=agent_a)
    assert (presence.state, presence.reason, presence.current_call) == ("break", "打合せ", None)
    # Once the call is over (its callbacks came late), the agent is free to come back.
    call.hang_up()
    assert client.post(url, {"state": "available"}, **json).status_code == 200
    assert AgentPresence.objects.get(user=agent_a).reason == ""


def test_agent_stuck_on_a_call_that_is_over_can_come_back(twilio, line_a, agent_a, open_hours):
    call = _ring_then_lose_callbacks(twilio, line_a, agent_a)
    record = Call.objects.get(call_sid=call.sid)
    # The call ended but the agent's row missed it (as with a crash between the two).
    Call.objects.filter(pk=record.pk).update(status="abandoned_queue", ended_at=timezone.now())
    client = login_as(Client(), agent_a)
    response = client.post(
        reverse("telephony:presence_update"),
        {"state": "available"},
        HTTP_ACCEPT="application/json",
    )
    assert response.status_code == 200, response.content
    assert _state(agent_a) == AgentPresence.State.AVAILABLE


def test_supervisor_resets_a_stuck_agent_from_the_wallboard(
    twilio, line_a, agent_a, supervisor, open_hours
):
    _ring_then_lose_callbacks(twilio, line_a, agent_a)
    client = login_as(Client(), supervisor)
    board = client.get(reverse("telephony:wallboard"))
    url = reverse("telephony:agent_presence_reset", args=[agent_a.pk])
    assert url in board.content.decode()
    response = client.post(url, {"state": "break"})
    assert response.status_code == 302
    presence = AgentPresence.objects.get(user=agent_a)
    assert (presence.state, presence.current_call) == ("break", None)
    audit = AuditLog.objects.get(action="presence_reset")
    assert audit.user == supervisor
    assert audit.detail["agent_id"] == agent_a.pk
    assert (audit.detail["before"], audit.detail["after"]) == ("ringing", "break")


def test_reset_is_for_supervisors_of_the_agents_municipality(
    login, line_a, agent_a, city_b, open_hours
):
    make_available(agent_a)
    url = reverse("telephony:agent_presence_reset", args=[agent_a.pk])
    other_supervisor = UserFactory(role=User.Role.SUPERVISOR, municipalities=[city_b])
    assert login(other_supervisor).post(url, {"state": "break"}).status_code == 404
    colleague = UserFactory(role=User.Role.AGENT, municipalities=[line_a.municipality])
    assert login(colleague).post(url, {"state": "break"}).status_code == 403
    assert _state(agent_a) == AgentPresence.State.AVAILABLE
    assert not AuditLog.objects.filter(action="presence_reset").exists()


# --- Voicemail → ticket survives a broker outage ----------------------------------------------


AFTER_HOURS = tokyo(2025, 6, 10, 19, 30)


def _voicemail(twilio: TwilioStandIn, line_a, n: int) -> PhoneCall:
    with time_machine.travel(AFTER_HOURS, tick=False):
        call = PhoneCall(twilio, from_=CALLER, to=line_a.e164)
        call.dial_in()
    call.record_voicemail(recording_sid="RE" + f"{n:x}" * 32)
    return call


@contextlib.contextmanager
def broker_at(url: str):
    """Celery publishing to ``url`` for a while (not eagerly), its connection pools renewed."""
    from config.celery import app

    def renew() -> None:
        # kombu keeps one pool per broker URL; the app only has to look it up again.
        app._pool = None
        app.amqp._producer_pool = None

    previous = app.conf.broker_url, app.conf.task_always_eager
    app.conf.broker_url, app.conf.task_always_eager = url, False
    renew()
    try:
        yield
    finally:
        app.conf.broker_url, app.conf.task_always_eager = previous
        renew()


@pytest.fixture
def broker_down():
    """Redis unreachable: a port nobody listens on."""
    with broker_at("redis://127.0.0.1:9/0"):
        yield


def test_broker_down_during_recording_callbacks(
    twilio, line_a, broker_down, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        calls = [_voicemail(twilio, line_a, n) for n in (1, 2)]  # each callback answered 204
    records = Call.objects.filter(call_sid__in=[c.sid for c in calls])
    assert all(r.recording_sid and r.inquiry_id is None for r in records)
    jobs = PendingJob.objects.filter(done_at__isnull=True)
    assert sorted(jobs.values_list("key", flat=True)) == sorted(
        f"voicemail-ticket:{r.pk}" for r in records
    )


def test_sweep_makes_each_waiting_voicemail_one_ticket(
    twilio, line_a, django_capture_on_commit_callbacks
):
    from jobs.tasks import jobs_sweep

    # The broker is down: the callbacks' dispatch fails, the promise stays.
    with broker_at("redis://127.0.0.1:9/0"), django_capture_on_commit_callbacks(execute=True):
        calls = [_voicemail(twilio, line_a, n) for n in (1, 2, 3)]
    later = timezone.now() + datetime.timedelta(minutes=6)
    with time_machine.travel(later, tick=True), django_capture_on_commit_callbacks(execute=True):
        jobs_sweep.delay()
        jobs_sweep.delay()  # a second sweep (or a redelivered message) changes nothing
    inquiry_ids = {Call.objects.get(call_sid=call.sid).inquiry_id for call in calls}
    assert None not in inquiry_ids and len(inquiry_ids) == 3
    assert not PendingJob.objects.filter(done_at__isnull=True).exists()
    from tickets.models import Inquiry

    assert Inquiry.objects.filter(municipality=line_a.municipality).count() == 3


def test_reconciler_promises_a_ticket_to_an_orphaned_voicemail(
    twilio, line_a, django_capture_on_commit_callbacks
):
    """A voicemail recorded before promises existed (or whose promise was lost) is found."""
    call = _voicemail(twilio, line_a, 7)  # on-commit callbacks not run: nothing dispatched
    PendingJob.objects.all().delete()
    record = Call.objects.get(call_sid=call.sid)
    assert record.inquiry_id is None
    with django_capture_on_commit_callbacks(execute=True):
        result = tasks.calls_reconcile.delay().get()
    assert result["voicemails_promised"] == 1
    assert Call.objects.get(pk=record.pk).inquiry_id is not None


def test_call_back_task_delivered_twice_asks_twilio_once(
    login, agent_a, city_a, line_a, django_capture_on_commit_callbacks
):
    """acks_late redelivers a task whose worker died after asking Twilio: one call, not two."""
    from tests.factories import DonorPhoneFactory
    from tickets import services as ticket_services

    phone = DonorPhoneFactory(donor__municipality=city_a, e164="+819011112222")
    inquiry = ticket_services.inquiry_open(
        actor=None,
        municipality=city_a,
        channel="phone",
        title="折り返し",
        description="折り返し希望",
        donor=phone.donor,
    )
    client = login(agent_a)
    with django_capture_on_commit_callbacks(execute=True):
        client.post(
            reverse("telephony:call_back", args=[inquiry.pk]), HTTP_ACCEPT="application/json"
        )
    call = Call.objects.get(direction=Call.Direction.OUTBOUND)
    assert call.call_sid
    # The worker died after Twilio answered but before the CallSid was saved.
    Call.objects.filter(pk=call.pk).update(call_sid=None)
    tasks.outbound_call_place.delay(call.pk)
    creates = [r for r in FakeTwilioHttp.requests if r["method"] == "POST"]
    assert len(creates) == 1
