"""The escalation clock survives its worker: the Celery worker with beat is killed, the next step
falls due while none runs, and a newly started worker's beat notifies the next contact."""

from __future__ import annotations

import os
import signal

import pytest

from crm.models import CityContact
from escalation import services
from escalation.models import Escalation, EscalationNotification, Kind
from tests.factories import UserFactory
from tests.faults.conftest import start_worker, wait_for
from tests.mailserver import SmtpSink, running_smtp
from tickets import services as ticket_services

pytestmark = pytest.mark.django_db(transaction=True, serialized_rollback=True)


def _contacts(city) -> None:
    for order, who in enumerate(("primary", "deputy", "manager"), start=1):
        CityContact.objects.create(
            municipality=city,
            name=who,
            department="ふるさと納税係",
            email=f"{who}@city.example.jp",
            escalation_order=order,
        )


def test_a_killed_worker_loses_no_step_of_the_clock(project_on, workdir, city_a):
    _contacts(city_a)
    agent = UserFactory(role="agent", municipalities=[city_a])
    sink = SmtpSink()
    with running_smtp(sink) as port:
        env = {
            "EMAIL_BACKEND": "django.core.mail.backends.smtp.EmailBackend",
            "EMAIL_HOST": "127.0.0.1",
            "EMAIL_PORT": str(port),
            "ESCALATION_MAIL_FROM": "escalation@cc.example.jp",
            "ESCALATION_TICK_SECONDS": "1",
            "ESCALATION_DISPATCH_GRACE_SECONDS": "1",
            "JOBS_SWEEP_SECONDS": "3600",
            "TELEPHONY_RECONCILE_SECONDS": "3600",
            "MAIL_POLL_SECONDS": "3600",
        }
        worker = start_worker(workdir, project_on.url, beat=True, **env)
        try:
            inquiry = ticket_services.inquiry_open(
                actor=agent, municipality=city_a, channel="phone", title="破損", description=""
            )
            escalation = services.escalation_report(
                actor=agent, inquiry=inquiry, reason="瓶が割れていた", kind=Kind.DAMAGED_GIFT
            )
            wait_for(lambda: len(sink.messages) == 1, what="the primary contact's mail")
            # Killed after the send was recorded: a kill between the SMTP server's answer and
            # that record leaves the notification 送信結果不明 once its lease runs out, which
            # test_a_notification_stranded_while_sending_becomes_unknown covers.
            wait_for(
                lambda: EscalationNotification.objects.filter(
                    escalation=escalation, step=0, status="sent"
                ).exists(),
                what="the primary contact's mail recorded as sent",
            )
        finally:
            # Killed, as a crash or an OOM kill would: no shutdown of beat or the pool.
            os.killpg(worker.process.pid, signal.SIGKILL)
            worker.process.wait(10)
            worker.handle.close()

        # The next contact falls due while nothing runs.
        past = escalation.opened_at.replace(year=escalation.opened_at.year - 1)
        Escalation.objects.filter(pk=escalation.pk).update(
            next_contact_at=past, next_action_at=past
        )
        worker = start_worker(workdir, project_on.url, beat=True, **env)
        try:
            wait_for(
                lambda: len(sink.messages) == 2,
                timeout=60,
                what="the deputy's mail from the new worker's beat",
                log=worker.log,
            )
        finally:
            worker.stop()
        assert len(sink.messages) == 2  # nothing sent twice by either beat
    escalation.refresh_from_db()
    assert escalation.step == 1
    sent = EscalationNotification.objects.filter(escalation=escalation).order_by("step")
    assert [(n.step, n.to, n.status) for n in sent] == [
        (0, "primary@city.example.jp", "sent"),
        (1, "deputy@city.example.jp", "sent"),
    ]
    assert b"deputy@city.example.jp" in sink.messages[1]
