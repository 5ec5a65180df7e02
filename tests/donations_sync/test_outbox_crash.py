"""Nothing is lost and nothing is sent twice when a delivering worker is killed, and two
workers never send one message at the same time.

These tests commit for real (the worker is another process, or another thread with its own
connection), against PostgreSQL and, for the Celery worker, the suite's Redis."""

from __future__ import annotations

import datetime as dt
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import pytest
from django.db import connection, connections, transaction
from django.utils import timezone

from donations_sync import outbox, services
from donations_sync.models import OutboxMessage
from tests.donations_sync.fake_core import FakeCore
from tests.factories import CarrierFactory, ShipmentFactory
from tests.processes import database_url, free_port

ROOT = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.django_db(transaction=True, serialized_rollback=True)


@pytest.fixture
def core(settings):
    if connection.vendor != "postgresql":
        pytest.fail("the crash tests need PostgreSQL: a second process shares the database")
    fake = FakeCore().start()
    settings.CORE_API_URL = fake.url
    settings.CORE_API_TOKEN = fake.token
    settings.CORE_API_READ_TIMEOUT = 5
    yield fake
    fake.stop()


@pytest.fixture
def original(city_a):
    return ShipmentFactory(
        donation__donor__municipality=city_a,
        donation__external_id="EXT-1",
        gift_item__municipality=city_a,
        carrier=CarrierFactory(),
        status="delivered",
    )


def reship(original, key: str = "reship-crash") -> OutboxMessage:
    with transaction.atomic():
        replacement = services.shipment_create_replacement(
            original_id=original.pk,
            gift_item_id=None,
            ship_to={},
            desired_date=None,
            desired_time_slot="",
        )
        return services.outbox_enqueue(
            municipality_id=original.municipality_id,
            kind="reshipment",
            payload={"reason": "破損"},
            idempotency_key=key,
            shipment_id=replacement.pk,
            donation_id=original.donation_id,
        )


def _wait(predicate, seconds: float = 30, what: str = "") -> None:
    deadline = time.monotonic() + seconds
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting {what}")
        time.sleep(0.05)


def _env(core: FakeCore, **extra: str) -> dict[str, str]:
    return {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "config.settings",
        "DATABASE_URL": database_url(connection.settings_dict),
        "CORE_API_URL": core.url,
        "CORE_API_TOKEN": core.token,
        "PYTHONPATH": str(ROOT),
        **extra,
    }


def test_a_worker_killed_after_the_core_acted_leaves_the_message_to_resend(core, original):
    message = reship(original)
    core.fail_next("hang-after")  # the core re-ships, then the answer never comes back
    worker = subprocess.Popen(  # noqa: S603 - our own manage.py
        [sys.executable, "manage.py", "core_outbox_deliver"],
        cwd=ROOT,
        env=_env(core),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        _wait(lambda: worker.poll() is not None or core.hanging.is_set(), what="the POST")
        assert worker.poll() is None, worker.stdout.read().decode()[-3000:]
        worker.send_signal(signal.SIGKILL)
        worker.wait(timeout=10)
    finally:
        if worker.poll() is None:
            worker.kill()
    core.release()

    message.refresh_from_db()
    assert message.status == "delivering" and message.attempts == 1
    assert core.effects == {"reship-crash": 1}
    # While the dead worker's lease runs, nobody else sends it.
    assert outbox.outbox_deliver_due().claimed == 0
    after_lease = timezone.now() + dt.timedelta(seconds=121)
    result = outbox.outbox_deliver_due(now=after_lease)
    assert result.outcomes == {"accepted": 1}
    message.refresh_from_db()
    assert message.status == "accepted" and message.attempts == 2
    assert core.decision_requests == 2
    assert core.effects == {"reship-crash": 1}  # the core's idempotency key: one re-shipment


def test_two_workers_never_send_one_message_at_once(core, original):
    message = reship(original)
    core.fail_next("hang")
    results = {}

    def first() -> None:
        try:
            results["first"] = outbox.outbox_deliver(message.pk)
        finally:
            connections.close_all()

    runner = threading.Thread(target=first)
    runner.start()
    assert core.hanging.wait(10)
    assert outbox.outbox_deliver(message.pk) is None
    assert outbox.outbox_deliver_due().claimed == 0
    core.release()
    runner.join(15)
    assert results["first"] == "accepted"
    assert core.decision_requests == 1


def test_a_batch_claim_skips_rows_another_worker_is_claiming(core, original):
    messages = [reship(original, key=f"k{n}") for n in range(4)]
    claimed: list[int] = []
    with transaction.atomic():
        # Another worker's claim in progress: these two rows are locked.
        locked = list(
            OutboxMessage.objects.select_for_update()
            .filter(pk__in=[messages[0].pk, messages[1].pk])
            .values_list("pk", flat=True)
        )

        def claim() -> None:
            try:
                claimed.extend(outbox.claim_batch(limit=10))
            finally:
                connections.close_all()

        thread = threading.Thread(target=claim)
        thread.start()
        thread.join(10)
        assert not thread.is_alive(), "a batch claim waited for a locked row"
    assert sorted(claimed) == sorted(m.pk for m in messages[2:])
    assert set(claimed).isdisjoint(locked)


@pytest.fixture
def celery_worker_process(core):
    """Starts Celery workers on the test database and the suite's Redis (REDIS_URL)."""
    if not os.environ.get("REDIS_URL"):
        pytest.fail("this test needs REDIS_URL: the outbox's tasks go through a real broker")
    from config.celery import app

    app.control.purge()
    started: list[subprocess.Popen] = []

    def start(**extra: str) -> subprocess.Popen:
        log = Path(tempfile.gettempdir()) / f"fz-outbox-worker-{os.getpid()}-{len(started)}.log"
        argv = [sys.executable, "-m", "celery", "-A", "config", "worker", "-P", "solo"]
        argv += ["--without-gossip", "--without-mingle", "-l", "info"]
        argv += ["-n", f"outbox{free_port()}@%h"]
        handle = open(log, "wb")  # noqa: SIM115 - closed with the process below
        process = subprocess.Popen(  # noqa: S603 - our own Celery app
            argv, cwd=ROOT, env=_env(core, **extra), stdout=handle, stderr=subprocess.STDOUT
        )
        process.log = log  # type: ignore[attr-defined]
        process.handle = handle  # type: ignore[attr-defined]
        started.append(process)
        _wait(
            lambda: "ready." in log.read_text(errors="replace") or process.poll() is not None,
            60,
            "the worker to start",
        )
        assert process.poll() is None, log.read_text(errors="replace")[-3000:]
        return process

    yield start
    for process in started:
        if process.poll() is None:
            process.terminate()
            try:
                process.wait(15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(5)
        process.handle.close()
    # The killed worker's unacknowledged task would come back after the visibility timeout.
    app.control.purge()


def test_a_celery_worker_killed_mid_delivery_then_the_sweep_resends(
    core, original, celery_worker_process
):
    from donations_sync.tasks import outbox_sweep

    lease = {"CORE_OUTBOX_LEASE_SECONDS": "3"}
    worker = celery_worker_process(**lease)
    core.fail_next("hang-after")
    message = reship(original)  # committed: its task goes to the worker through Redis
    assert core.hanging.wait(30), worker.log.read_text(errors="replace")[-3000:]
    worker.send_signal(signal.SIGKILL)
    worker.wait(10)
    core.release()
    message.refresh_from_db()
    assert message.status == "delivering"
    assert core.effects == {"reship-crash": 1}

    celery_worker_process(**lease)
    time.sleep(3.5)  # the dead worker's lease runs out
    outbox_sweep.delay()  # what beat sends every CORE_OUTBOX_SWEEP_SECONDS

    def accepted() -> bool:
        message.refresh_from_db()
        return message.status == "accepted"

    _wait(accepted, 30, "the sweep's delivery")
    assert message.attempts == 2
    assert core.effects == {"reship-crash": 1}
