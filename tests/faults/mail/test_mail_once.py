"""Mail at most once per decision, with real processes failing: a Celery worker SIGKILLed after
the SMTP server accepted the mail, and Redis down when the reply is queued."""

from __future__ import annotations

import email
import threading

import psycopg
import pytest
from django.db import connection
from django.urls import reverse

from crm.models import MunicipalityEmailAddress
from tests.faults.conftest import wait_for
from tests.mailserver import SmtpSink, running_smtp
from tests.tickets.mail.conftest import make_mail
from tickets.mail.models import InboundMessage, Mailbox, OutboundMessage
from tickets.mail.services import inbound

pytestmark = [pytest.mark.django_db(transaction=True, serialized_rollback=True)]


@pytest.fixture
def connect():
    """Connections of our own to the test database, closed (rolled back) however the test ends:
    an open one would block the flush after a transactional test."""
    opened: list[psycopg.Connection] = []

    def _connect(*, autocommit: bool = False) -> psycopg.Connection:
        db = connection.settings_dict
        conn = psycopg.connect(
            dbname=db["NAME"],
            user=db.get("USER") or None,
            password=db.get("PASSWORD") or None,
            host=db.get("HOST") or "127.0.0.1",
            port=db.get("PORT") or 5432,
            connect_timeout=5,
            autocommit=autocommit,
        )
        opened.append(conn)
        return conn

    yield _connect
    for conn in opened:
        conn.close()


@pytest.fixture
def inquiry(city_a):
    address = MunicipalityEmailAddress.objects.create(
        municipality=city_a, address="furusato@otaru.example.jp"
    )
    Mailbox.objects.create(address=address, display_name="小樽市ふるさと納税")
    (message,) = inbound.inbound_receive(
        raw=make_mail(to=address.address), source=InboundMessage.Source.PIPE
    )
    assert message.status == InboundMessage.Status.PROCESSED, message.reason
    return message.inquiry


def _reply(login, agent, inquiry) -> None:
    response = login(agent).post(
        reverse("ticket_followup", args=[inquiry.pk]), {"kind": "reply", "body": "回答します"}
    )
    assert response.status_code == 302


def _status(pk: int) -> str:
    return OutboundMessage.objects.values_list("status", flat=True).get(pk=pk)


def test_worker_killed_after_the_server_accepted_never_sends_a_second_copy(
    inquiry, agent_a, login, broker, private_redis, celery_worker, connect
):
    private_redis.start()
    locker = connect()
    seen: list[str] = []

    def hold_the_row(raw: bytes) -> None:
        # Before answering 250, lock the row: the worker's "sent" update will wait on it, so
        # the worker is killed in the window between the server's acceptance and that commit.
        message_id = email.message_from_bytes(raw)["Message-ID"].strip("<>")
        row = locker.execute(
            "SELECT status FROM ticketmail_outboundmessage WHERE message_id = %s FOR UPDATE",
            [message_id],
        ).fetchone()
        seen.append(row[0])

    sink = SmtpSink(on_data=hold_the_row)
    with running_smtp(sink) as port:
        mail_env = {"EMAIL_HOST": "127.0.0.1", "EMAIL_PORT": str(port)}
        lease = {"MAIL_SMTP_TIMEOUT": "1", "MAIL_SEND_LEASE_SECONDS": "4"}
        worker = celery_worker(**mail_env, **lease, MAIL_PENDING_DISPATCH_SECONDS="0")
        _reply(login, agent_a, inquiry)
        out = OutboundMessage.objects.get(inquiry=inquiry)
        assert sink.received.wait(60), worker.text()
        assert seen == ["sending"]  # the claim was committed before DATA

        watcher = connect(autocommit=True)  # activity is a snapshot per transaction

        def worker_waits_to_mark_sent() -> bool:
            return watcher.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
                " AND wait_event_type = 'Lock' AND query ILIKE %s",
                ["UPDATE%ticketmail_outboundmessage%"],
            ).fetchone()[0]

        wait_for(worker_waits_to_mark_sent, what="the worker to mark the mail sent")
        worker.kill()
        locker.rollback()
        assert _status(out.pk) == OutboundMessage.Status.SENDING

        # A new worker; beat's sweep runs (as often as it likes), and the killed worker's task
        # is delivered again. Nothing may send the mail a second time.
        worker = celery_worker(**mail_env, **lease, MAIL_PENDING_DISPATCH_SECONDS="0")
        from config.celery import app

        app.send_task("tickets.mail.tasks.mail_send_outbound", args=[out.pk])

        def swept() -> bool:
            app.send_task("tickets.mail.tasks.mail_retry_due")
            threading.Event().wait(0.5)
            return _status(out.pk) == OutboundMessage.Status.UNKNOWN

        wait_for(swept, timeout=60, what="the sweep to flag the interrupted send")
        app.send_task("tickets.mail.tasks.mail_retry_due")
        wait_for(
            lambda: (
                worker.finished("tickets.mail.tasks.mail_send_outbound") >= 1
                and worker.text().count("Task tickets.mail.tasks.mail_retry_due[")
                == 2 * worker.finished("tickets.mail.tasks.mail_retry_due")
            ),
            what="the worker to finish its tasks",
        )
    assert len(sink.messages) == 1
    out.refresh_from_db()
    assert out.status == OutboundMessage.Status.UNKNOWN and out.attempts == 1
    assert "届いている可能性" in out.last_error


def test_a_reply_queued_while_redis_is_down_is_sent_once_when_it_returns(
    inquiry, agent_a, login, broker, private_redis, celery_worker
):
    sink = SmtpSink()
    with running_smtp(sink) as port:
        _reply(login, agent_a, inquiry)  # Redis is not running: the task cannot be queued
        out = OutboundMessage.objects.get(inquiry=inquiry)
        assert out.status == OutboundMessage.Status.PENDING and out.attempts == 0

        private_redis.start()
        worker = celery_worker(
            EMAIL_HOST="127.0.0.1", EMAIL_PORT=str(port), MAIL_PENDING_DISPATCH_SECONDS="0"
        )
        from config.celery import app

        for _ in range(3):  # beat's sweep, again and again while the mail goes out
            app.send_task("tickets.mail.tasks.mail_retry_due")
        wait_for(lambda: _status(out.pk) == OutboundMessage.Status.SENT, what="the mail sent")
        app.send_task("tickets.mail.tasks.mail_retry_due")
        wait_for(
            lambda: (
                worker.finished("tickets.mail.tasks.mail_retry_due") == 4
                and worker.text().count("Task tickets.mail.tasks.mail_send_outbound[")
                == 2 * worker.finished("tickets.mail.tasks.mail_send_outbound")
            ),
            what="the worker to finish its tasks",
        )
    assert len(sink.messages) == 1
    out.refresh_from_db()
    assert out.attempts == 1
