"""The pull survives a worker killed in the middle of a page, and two pulls never run at once.

These tests commit for real (the worker is another process, or another thread with its own
connection), against PostgreSQL."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from django.db import connection, connections, transaction

from donations_sync import feed
from donations_sync.models import CoreChange, CoreFeedCursor, Donation, Shipment
from tests.donations_sync.fake_core import FakeCore, change
from tests.factories import CarrierFactory, DonationFactory, ShipmentFactory
from tests.processes import database_url

ROOT = Path(__file__).resolve().parents[2]
T = "2026-11-30T{:02d}:00:00+09:00"

pytestmark = pytest.mark.django_db(transaction=True, serialized_rollback=True)


@pytest.fixture
def core(settings):
    if connection.vendor != "postgresql":
        pytest.skip("the crash tests need PostgreSQL: a second process shares the database")
    fake = FakeCore().start()
    settings.CORE_API_URL = fake.url
    settings.CORE_API_TOKEN = fake.token
    settings.CORE_API_READ_TIMEOUT = 5
    settings.CORE_FEED_PAGE_SIZE = 2
    yield fake
    fake.stop()


@pytest.fixture
def records(city_a):
    shipment = ShipmentFactory(
        donation__donor__municipality=city_a,
        donation__external_id="EXT-1",
        gift_item__municipality=city_a,
        gift_item__code="G-1",
        carrier=CarrierFactory(),
        status="pending",
        shipped_on=None,
        tracking_number="",
    )
    other = DonationFactory(donor=shipment.donation.donor, external_id="EXT-2")
    return shipment, other


def ship(change_id: str, hour: int, **data) -> dict:
    body = {"shipment_id": "S-1", "donation": {"external_id": "EXT-1"}, "gift_code": "G-1"}
    return change(change_id, "shipment", T.format(hour), {**body, **data})


def _wait(predicate, seconds: float = 30) -> None:
    deadline = time.monotonic() + seconds
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("timed out waiting")
        time.sleep(0.05)


def _backends_waiting_for_a_lock() -> int:
    with connections["default"].cursor() as cur:
        # Inside a transaction the activity view is a snapshot taken at its first read.
        cur.execute("SELECT pg_stat_clear_snapshot()")
        cur.execute(
            "SELECT count(*) FROM pg_stat_activity"
            " WHERE datname = current_database() AND wait_event_type = 'Lock'"
        )
        return cur.fetchone()[0]


def _cursor_free() -> bool:
    with transaction.atomic():
        return (
            CoreFeedCursor.objects.select_for_update(skip_locked=True).filter(name="core").exists()
        )


def test_a_worker_killed_between_applying_a_page_and_saving_the_cursor(core, records):
    shipment, other = records
    core.changes = [
        change("k1", "donation", T.format(9), {"external_id": "EXT-1", "status": "paid"}),
        ship("k2", 10, status="requested"),
        ship("k3", 11, status="shipped", shipped_on="2026-11-30"),  # applied, then the crash
        change("k4", "donation", T.format(11), {"external_id": "EXT-2", "status": "paid"}),
        ship("k5", 12, status="delivered", delivered_on="2026-12-01"),
    ]
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "config.settings",
        "DATABASE_URL": database_url(connection.settings_dict),
        "CORE_API_URL": core.url,
        "CORE_API_TOKEN": core.token,
        "CORE_FEED_PAGE_SIZE": "2",
    }
    # The worker will apply k3 and then wait for the other donation, which we hold: it is
    # then inside page 2, after applying part of it and before saving the cursor.
    with transaction.atomic():
        Donation.objects.select_for_update().get(pk=other.pk)
        worker = subprocess.Popen(  # noqa: S603 - our own manage.py
            [sys.executable, "manage.py", "core_feed_pull"],
            cwd=ROOT,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
        )
        try:
            _wait(lambda: worker.poll() is not None or _backends_waiting_for_a_lock() == 1)
            assert worker.poll() is None, worker.stdout.read().decode()[-3000:]
            assert len(core.change_requests) == 2
        finally:
            worker.kill()
            worker.wait(timeout=10)
    # The dead worker's transaction is rolled back; its session ends when it notices.
    _wait(_cursor_free)

    state = CoreFeedCursor.objects.get(name="core")
    assert state.cursor == "2"  # page 1 committed with its cursor; page 2 did not
    assert set(CoreChange.objects.values_list("change_id", flat=True)) == {"k1", "k2"}
    shipment.refresh_from_db()
    assert shipment.status == "requested"

    result = feed.feed_pull()
    assert result.outcomes == {"applied": 3}
    assert core.change_requests[-2]["query"]["cursor"] == "2"
    assert CoreChange.objects.filter(outcome="applied").count() == 5
    shipment.refresh_from_db()
    assert shipment.status == "delivered" and shipment.shipped_on is not None
    assert Donation.objects.get(pk=other.pk).status == "paid"
    assert Shipment.objects.count() == 1


def test_two_runs_never_pull_at_the_same_time(core, records):
    shipment, _ = records
    core.changes = [ship("p1", 10, status="requested"), ship("p2", 11, status="shipped")]
    core.fail_next("hang")
    results = {}

    def first_run() -> None:
        try:
            results["first"] = feed.feed_pull()
        finally:
            connections.close_all()

    runner = threading.Thread(target=first_run)
    runner.start()
    assert core.hanging.wait(10)
    second = feed.feed_pull()
    assert second.busy is True and second.received == 0
    assert len(core.change_requests) == 1  # the second run did not ask the core
    core.release()
    runner.join(15)
    assert results["first"].outcomes == {"applied": 2}
    assert CoreChange.objects.count() == 2
    shipment.refresh_from_db()
    assert shipment.status == "shipped"


def test_the_same_change_pulled_and_pushed_at_once_is_applied_once(core, records, settings):
    import hashlib
    import hmac
    import json

    from django.test import Client

    from donations_sync.signals import core_change_applied

    settings.CORE_FEED_PUSH = True
    settings.CORE_FEED_SECRET = "s" * 40
    shipment, other = records
    same = change("both", "donation", T.format(10), {"external_id": "EXT-2", "status": "paid"})
    core.changes = [same]
    body = json.dumps(same).encode()
    stamp = str(int(time.time()))
    mac = hmac.new(b"s" * 40, stamp.encode() + b"." + body, hashlib.sha256).hexdigest()
    announced: list[str] = []
    core_change_applied.connect(
        lambda sender, change_id, **kw: announced.append(change_id), weak=False, dispatch_uid="t"
    )
    answers = {}

    def pull() -> None:
        try:
            answers["pull"] = feed.feed_pull().outcomes
        finally:
            connections.close_all()

    def push() -> None:
        try:
            response = Client().post(
                "/core/feed/",
                body,
                content_type="application/json",
                HTTP_X_CORE_TIMESTAMP=stamp,
                HTTP_X_CORE_SIGNATURE=f"sha256={mac}",
            )
            answers["push"] = response.json()["results"][0]["outcome"]
        finally:
            connections.close_all()

    try:
        with transaction.atomic():
            Donation.objects.select_for_update().get(pk=other.pk)
            threads = [threading.Thread(target=pull), threading.Thread(target=push)]
            for thread in threads:
                thread.start()
            # Both have seen no receipt of "both" yet and wait for the donation.
            _wait(lambda: _backends_waiting_for_a_lock() == 2)
        for thread in threads:
            thread.join(15)
    finally:
        core_change_applied.disconnect(dispatch_uid="t")
    outcomes = sorted([answers["push"], *answers["pull"]])
    assert outcomes == ["applied", "duplicate"]
    assert announced == ["both"]
    assert CoreChange.objects.filter(change_id="both").count() == 1
    assert Donation.objects.get(pk=other.pk).status == "paid"
