"""Redis down while voicemails are recorded; a worker process killed in the middle of a ticket."""

from __future__ import annotations

import os
import re
import signal
import time

import psycopg
import pytest
import time_machine
from django.db import connection

from jobs.models import PendingJob
from telephony.models import Call
from tests.faults.conftest import wait_for
from tests.telephony.conftest import (  # noqa: F401 - fixtures
    PhoneCall,
    TwilioStandIn,
    line_a,
    tokyo,
    twilio_settings,
)
from tickets.models import Inquiry

# serialized_rollback: the flush after each test must not wipe data migrations' rows (and the
# transactional tests after these load them back).
pytestmark = pytest.mark.django_db(transaction=True, serialized_rollback=True)

CALLER = "+819012345678"
AFTER_HOURS = tokyo(2025, 6, 10, 19, 30)
RECEIVED = re.compile(r"Task jobs\.run\[[0-9a-f-]+\] received")


def _voicemail(line_a, n: int) -> PhoneCall:  # noqa: F811
    twilio = TwilioStandIn()
    with time_machine.travel(AFTER_HOURS, tick=False):
        call = PhoneCall(twilio, from_=CALLER, to=line_a.e164)
        call.dial_in()
    call.record_voicemail(recording_sid="RE" + f"{n:x}" * 32)  # asserts 200 and 204
    return call


def _tickets(calls: list[PhoneCall]) -> list[int | None]:
    return list(
        Call.objects.filter(call_sid__in=[c.sid for c in calls]).values_list("inquiry", flat=True)
    )


def test_redis_down_during_recording_callbacks(project_on, line_a, request):  # noqa: F811
    project_on.kill()
    started = time.monotonic()
    calls = []
    for n in (1, 2, 3):
        call = _voicemail(line_a, n)
        call.hang_up()  # its wallboard push cannot reach Redis either: still 204
        calls.append(call)
    # Every webhook answered, none waited long on the missing broker.
    assert time.monotonic() - started < 30
    assert _tickets(calls) == [None, None, None]
    assert PendingJob.objects.filter(done_at__isnull=True).count() == 3

    project_on.start()
    worker = request.getfixturevalue("worker")
    wait_for(
        lambda: None not in _tickets(calls),
        timeout=60,
        what="tickets for the voicemails",
        log=worker.log,
    )
    time.sleep(2.5)  # more sweeps: nothing more happens
    assert len(set(_tickets(calls))) == 3
    assert Inquiry.objects.count() == 3
    assert not PendingJob.objects.filter(done_at__isnull=True).exists()


def test_worker_child_killed_mid_voicemail_task(project_on, worker, line_a):  # noqa: F811
    s = connection.settings_dict
    with psycopg.connect(
        host=s["HOST"] or None, port=s["PORT"] or None, user=s["USER"], dbname=s["NAME"]
    ) as holder:
        # The ticket task locks the call with its municipality: while something else holds the
        # municipality's row (NO KEY UPDATE: the webhooks' own foreign-key checks still pass),
        # the task stops right there, in the middle of its transaction.
        holder.execute(
            "SELECT id FROM crm_municipality WHERE id = %s FOR NO KEY UPDATE",
            [line_a.municipality_id],
        )
        received_before = len(RECEIVED.findall(worker.text()))
        call = _voicemail(line_a, 9)
        job = PendingJob.objects.get(key__startswith="voicemail-ticket:")
        wait_for(
            lambda: PendingJob.objects.get(pk=job.pk).attempts == 1,
            timeout=30,
            what="the worker to start the job",
            log=worker.log,
        )
        pid = int(PendingJob.objects.get(pk=job.pk).ran_by.rsplit(":", 1)[1])
        assert pid in worker.children()
        os.kill(pid, signal.SIGKILL)
        # The message comes back (reject_on_worker_lost), not after a visibility timeout.
        wait_for(
            lambda: len(RECEIVED.findall(worker.text())) >= received_before + 2,
            timeout=30,
            what="the task to be delivered again",
            log=worker.log,
        )
        assert pid not in worker.children()
        assert "WorkerLostError" in worker.text()
        holder.commit()
    wait_for(
        lambda: _tickets([call]) != [None],
        timeout=30,
        what="the voicemail's ticket",
        log=worker.log,
    )
    time.sleep(1)
    assert Inquiry.objects.count() == 1
    job.refresh_from_db()
    assert job.done_at is not None and job.attempts == 2
