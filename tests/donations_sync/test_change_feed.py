"""Pulling the core's change feed against a local fake core that fails, times out, drops the
connection, repeats changes across pages and sends them out of order."""

from __future__ import annotations

import datetime
import datetime as dt

import pytest
import time_machine
from django.conf import settings as django_settings
from django.db import IntegrityError, transaction
from django.utils import timezone

from config.celery import app as celery_app
from donations_sync import feed
from donations_sync.core_client import (
    CoreClient,
    CorePermanentError,
    CoreRetryableError,
)
from donations_sync.feed_tasks import core_feed_pull
from donations_sync.models import CoreChange, CoreFeedCursor, Donation, Shipment
from donations_sync.signals import core_change_applied
from tests.donations_sync.fake_core import FakeCore, change
from tests.factories import CarrierFactory, GiftItemFactory, ShipmentFactory

pytestmark = pytest.mark.django_db

T0 = "2026-11-30T09:00:00+09:00"
T1 = "2026-11-30T10:00:00+09:00"
T2 = "2026-11-30T11:00:00+09:00"
T3 = "2026-11-30T12:00:00+09:00"


def yamato(body: str) -> str:
    """A 12-digit number with a correct mod-7 check digit."""
    return body + str(int(body) % 7)


@pytest.fixture
def core(settings):
    fake = FakeCore().start()
    settings.CORE_API_URL = fake.url
    settings.CORE_API_TOKEN = fake.token
    settings.CORE_API_READ_TIMEOUT = 0.5
    settings.CORE_FEED_PAGE_SIZE = 2
    settings.CORE_FEED_PULL_SECONDS = 60
    settings.CORE_FEED_BACKOFF_MAX_SECONDS = 1800
    yield fake
    fake.stop()


@pytest.fixture
def shipment(city_a):
    carrier = CarrierFactory()
    return ShipmentFactory(
        donation__donor__municipality=city_a,
        donation__external_id="EXT-0001",
        donation__portal="rakuten",
        donation__portal_order_number="123456-20241201-00000001",
        gift_item__municipality=city_a,
        gift_item__code="G-IKURA",
        carrier=carrier,
        status="pending",
        shipped_on=None,
        tracking_number="",
    )


@pytest.fixture
def announced():
    seen: list[dict] = []

    def receiver(sender, **kwargs):
        seen.append(kwargs)

    core_change_applied.connect(receiver, dispatch_uid="test-announced")
    yield seen
    core_change_applied.disconnect(dispatch_uid="test-announced")


def shipment_change(change_id: str, at: str, **data) -> dict:
    body = {
        "shipment_id": "S-1",
        "donation": {"external_id": "EXT-0001"},
        "gift_code": "G-IKURA",
        "delivery_number": 1,
        **data,
    }
    return change(change_id, "shipment", at, body)


def cursor() -> CoreFeedCursor:
    return CoreFeedCursor.objects.get(name="core")


def later(minutes: int = 40):
    return time_machine.travel(timezone.now() + dt.timedelta(minutes=minutes), tick=True)


def test_pull_applies_every_page_and_stores_the_cursor(
    core, shipment, announced, django_capture_on_commit_callbacks
):
    number = yamato("40001234567")
    core.changes = [
        change(
            "c1",
            "donation",
            T0,
            {"external_id": "EXT-0001", "status": "paid", "paid_on": "2026-11-29"},
        ),
        shipment_change("c2", T1, status="requested"),
        shipment_change(
            "c3",
            T2,
            status="shipped",
            shipped_on="2026-11-30",
            carrier="yamato",
            tracking_number=f"{number[:4]}-{number[4:8]}-{number[8:]}",
        ),
        change(
            "c4",
            "donation",
            T2,
            {
                "portal": "rakuten",
                "portal_order_number": "123456-20241201-00000001",
                "receipt_issued_on": "2026-12-10",
                "one_stop_received_on": "2026-12-05",
            },
        ),
        shipment_change("c5", T3, status="delivered", delivered_on="2026-12-01"),
    ]
    with django_capture_on_commit_callbacks(execute=True):
        result = feed.feed_pull()

    assert result.pages == 3 and result.received == 5
    assert result.outcomes == {"applied": 5}
    donation = Donation.objects.get(pk=shipment.donation_id)
    assert donation.status == "paid"
    assert donation.paid_on == dt.date(2026, 11, 29)
    assert donation.receipt_issued_on == dt.date(2026, 12, 10)
    assert donation.one_stop_received_on == dt.date(2026, 12, 5)
    assert donation.core_updated_at == datetime.datetime.fromisoformat(T2)
    shipment.refresh_from_db()
    assert shipment.status == "delivered"
    assert shipment.shipped_on == dt.date(2026, 11, 30)
    assert shipment.delivered_on == dt.date(2026, 12, 1)
    assert shipment.tracking_number == number and shipment.tracking_valid is True
    assert shipment.core_ref.core_id == "S-1"  # the imported row, linked, not a new one
    assert Shipment.objects.count() == 1
    assert cursor().cursor == "5" and cursor().failures == 0
    # Every request carried the token and the stored cursor, page after page.
    asked = [r["query"]["cursor"] for r in core.change_requests]
    assert asked == ["", "2", "4"]
    assert {r["headers"]["Authorization"] for r in core.requests} == {f"Bearer {core.token}"}
    assert [a["change_id"] for a in announced] == ["c1", "c2", "c3", "c4", "c5"]
    assert announced[2]["shipment_id"] == shipment.pk
    assert {"status", "shipped_on", "tracking_number", "tracking_valid"} <= set(
        announced[2]["fields"]
    )

    # Nothing new: the next run asks from the stored cursor and changes nothing.
    assert feed.feed_pull().received == 0
    assert core.change_requests[-1]["query"]["cursor"] == "5"


def test_duplicates_across_pages_are_applied_once(
    core, shipment, announced, django_capture_on_commit_callbacks
):
    paid = change("d1", "donation", T1, {"external_id": "EXT-0001", "status": "paid"})
    core.changes = [
        paid,
        shipment_change("d2", T1, status="requested"),
        shipment_change("d3", T2, status="shipped", shipped_on="2026-11-30"),
        paid,  # the same change again, on a later page
        shipment_change("d2", T1, status="requested"),
    ]
    with django_capture_on_commit_callbacks(execute=True):
        result = feed.feed_pull()
    assert result.outcomes == {"applied": 3, "duplicate": 2}
    assert CoreChange.objects.count() == 3
    assert [a["change_id"] for a in announced] == ["d1", "d2", "d3"]
    shipment.refresh_from_db()
    assert shipment.status == "shipped"  # the repeated 'requested' did not go back


def test_an_older_change_never_overwrites_a_newer_one(core, shipment):
    core.changes = [
        shipment_change("o1", T2, status="delivered", delivered_on="2026-12-01"),
        change("o2", "donation", T3, {"external_id": "EXT-0001", "status": "paid"}),
        shipment_change("o3", T1, status="shipped", shipped_on="2026-11-30"),  # late, older
        change("o4", "donation", T0, {"external_id": "EXT-0001", "status": "applied"}),
    ]
    result = feed.feed_pull()
    assert result.outcomes == {"applied": 2, "stale": 2}
    shipment.refresh_from_db()
    assert shipment.status == "delivered" and shipment.shipped_on is None
    assert Donation.objects.get(pk=shipment.donation_id).status == "paid"
    stale = CoreChange.objects.get(change_id="o3")
    assert stale.outcome == "stale" and stale.reason == "より新しい変更が反映済みです"
    assert stale.shipment_id == shipment.pk


@pytest.mark.parametrize(
    ("fault", "words"),
    [
        ("500", "500"),
        ("503", "503"),
        ("timeout", "時間内に応答しません"),
        ("drop", "接続できません"),
        ("drop-mid", "接続できません"),
        ("not-json", "JSON"),
    ],
)
def test_a_failed_page_is_retried_after_a_backoff_and_never_skipped(core, shipment, fault, words):
    core.changes = [
        change("f1", "donation", T1, {"external_id": "EXT-0001", "status": "paid"}),
        shipment_change("f2", T1, status="requested"),
        shipment_change("f3", T2, status="shipped", shipped_on="2026-11-30"),
        shipment_change("f4", T3, status="delivered", delivered_on="2026-12-01"),
    ]
    core.fail_next("", fault)  # the first page answers, the second fails
    result = feed.feed_pull()
    assert result.pages == 1 and words in result.error
    state = cursor()
    assert state.cursor == "2" and state.failures == 1 and words in state.last_error
    wait = (state.next_attempt_at - timezone.now()).total_seconds()
    expected = 120 if fault == "503" else 60  # the core's Retry-After wins when longer
    assert expected - 5 < wait <= expected
    shipment.refresh_from_db()
    assert shipment.status == "requested"

    # Before the backoff is over, a run does not call the core at all.
    asked = len(core.change_requests)
    assert feed.feed_pull().deferred is True
    assert len(core.change_requests) == asked

    with later():
        result = feed.feed_pull()
    assert result.outcomes == {"applied": 2}
    assert core.change_requests[-1]["query"]["cursor"] == "2"  # the failed page, again
    shipment.refresh_from_db()
    assert shipment.status == "delivered"
    assert cursor().failures == 0 and cursor().next_attempt_at is None
    assert CoreChange.objects.filter(outcome="applied").count() == 4


def test_backoff_doubles_up_to_its_ceiling(core, settings):
    settings.CORE_FEED_BACKOFF_MAX_SECONDS = 300
    waits = []
    for hour in range(1, 6):
        core.fail_next("500")
        with later(60 * hour):
            feed.feed_pull()
            state = cursor()
            waits.append(round((state.next_attempt_at - timezone.now()).total_seconds() / 60))
    assert waits == [1, 2, 4, 5, 5]
    assert cursor().failures == 5


def test_unknown_records_are_kept_with_their_reason_and_can_be_retried(core, shipment, city_a):
    core.changes = [
        change(
            "q1",
            "donation",
            T1,
            {"external_id": "EXT-0001", "status": "paid"},
            municipality_code="999999",
        ),
        change("q2", "donation", T1, {"external_id": "EXT-9999", "status": "paid"}),
        shipment_change("q3", T1, carrier="no-such-carrier"),
        shipment_change("q4", T1, status="teleported"),
        change("q5", "donation", "2026-11-30T10:00:00", {"external_id": "EXT-0001"}),
        {"type": "donation", "data": {}},  # no id
        "not a change",
    ]
    result = feed.feed_pull(max_pages=10)
    assert result.outcomes == {"quarantined": 7}
    reasons = dict(
        CoreChange.objects.filter(change_id__isnull=False).values_list("change_id", "reason")
    )
    assert reasons["q1"] == "団体コード「999999」の自治体が登録されていません"
    assert reasons["q2"] == "小樽市に該当する寄附が見つかりません（外部管理番号 EXT-9999）"
    assert reasons["q3"] == "配送業者コード「no-such-carrier」が登録されていません"
    assert reasons["q4"].startswith("配送の状態「teleported」は不明です")
    assert "タイムゾーンがありません" in reasons["q5"]
    assert CoreChange.objects.get(change_id="q1").municipality is None
    assert CoreChange.objects.get(change_id="q2").municipality == city_a
    assert CoreChange.objects.filter(change_id__isnull=True, outcome="quarantined").count() == 2
    assert cursor().cursor == "7"  # kept aside, the feed moved on

    # The donation arrives (an import); the kept change is applied on retry.
    from tests.factories import DonationFactory

    DonationFactory(donor=shipment.donation.donor, external_id="EXT-9999")
    kept = CoreChange.objects.get(change_id="q2")
    kept = feed.core_change_retry(change=kept)
    assert kept.outcome == "applied" and kept.attempts == 2
    assert Donation.objects.get(external_id="EXT-9999").status == "paid"


def test_a_reshipment_the_core_created_replaces_the_old_shipment(
    core, shipment, announced, django_capture_on_commit_callbacks
):
    number = yamato("50009876543")
    core.changes = [
        shipment_change("r1", T1, status="shipped", shipped_on="2026-11-20"),
        shipment_change("r2", T2, status="returned"),
        shipment_change(
            "r3",
            T3,
            shipment_id="S-2",
            replaces="S-1",
            status="shipped",
            shipped_on="2026-12-02",
            carrier="yamato",
            tracking_number=number,
            ship_to={"address": "北海道小樽市色内1-1-1", "postal_code": "047-0031"},
        ),
        shipment_change("r4", T3, shipment_id="S-2", status="delivered", delivered_on="2026-12-03"),
    ]
    with django_capture_on_commit_callbacks(execute=True):
        feed.feed_pull()
    shipment.refresh_from_db()
    assert shipment.status == "returned"
    replacement = Shipment.objects.get(replaces=shipment)
    assert replacement.core_ref.core_id == "S-2"
    assert replacement.status == "delivered" and replacement.delivered_on == dt.date(2026, 12, 3)
    assert replacement.tracking_number == number and replacement.tracking_valid is True
    assert replacement.ship_to_name == shipment.ship_to_name  # copied from the one it replaces
    assert replacement.ship_to_address == "北海道小樽市色内1-1-1"
    assert replacement.ship_to_postal_code == "0470031"
    assert replacement.donation_id == shipment.donation_id
    created = [a for a in announced if a["created"]]
    assert [(a["change_id"], a["shipment_id"]) for a in created] == [("r3", replacement.pk)]


def test_an_invalid_tracking_number_is_kept_and_flagged(core, shipment):
    bad = yamato("40001234567")[:-1] + str((int(yamato("40001234567")[-1]) + 1) % 10)
    core.changes = [
        shipment_change(
            "t1",
            T1,
            status="shipped",
            shipped_on="2026-11-30",
            carrier="yamato",
            tracking_number=bad,
        ),
    ]
    feed.feed_pull()
    shipment.refresh_from_db()
    assert shipment.tracking_number == bad
    assert shipment.tracking_valid is False


def test_a_shipment_the_core_created_for_a_known_donation(core, shipment, city_a):
    GiftItemFactory(municipality=city_a, code="G-MELON")
    core.changes = [
        shipment_change(
            "n1",
            T1,
            shipment_id="S-9",
            gift_code="G-MELON",
            status="requested",
            ship_to={
                "name": "佐藤 花子",
                "postal_code": "0470032",
                "address": "北海道小樽市稲穂2-2-2",
                "phone": "090-2222-3333",
            },
        ),
    ]
    feed.feed_pull()
    created = Shipment.objects.get(core_ref__core_id="S-9")
    assert created.gift_item.code == "G-MELON" and created.replaces is None
    assert created.ship_to_name == "佐藤 花子" and created.ship_to_phone == "+819022223333"
    assert created.municipality == city_a and created.status == "requested"


def test_the_beat_task_pulls(core, shipment):
    entry = django_settings.CELERY_BEAT_SCHEDULE["core-feed-pull"]
    assert entry["task"] in celery_app.tasks
    core.changes = [change("b1", "donation", T1, {"external_id": "EXT-0001", "status": "paid"})]
    answer = core_feed_pull.apply().get()
    assert answer["outcomes"] == {"applied": 1}
    assert Donation.objects.get(pk=shipment.donation_id).status == "paid"


def test_without_a_core_url_the_task_does_nothing(settings, db):
    settings.CORE_API_URL = ""
    assert core_feed_pull.apply().get()["pages"] == 0
    assert not CoreFeedCursor.objects.exists()


# --- The client, as the outbox will use it -----------------------------------------------------


def test_client_sends_json_with_an_idempotency_key(core):
    client = CoreClient(base_url=core.url, token=core.token, read_timeout=0.5)
    answer = client.post(
        "reshipments", json_body={"寄附": "EXT-0001", "数量": 1}, idempotency_key="rs-42"
    )
    assert answer.status == 201
    assert answer.data["idempotency_key"] == "rs-42"
    assert answer.data["json"] == {"寄附": "EXT-0001", "数量": 1}
    sent = core.requests[-1]
    assert sent["headers"]["Content-Type"] == "application/json"


@pytest.mark.parametrize(
    ("fault", "error", "status"),
    [
        ("500", CoreRetryableError, 500),
        ("503", CoreRetryableError, 503),
        ("429", CoreRetryableError, 429),
        ("timeout", CoreRetryableError, None),
        ("drop", CoreRetryableError, None),
        ("400", CorePermanentError, 400),
        ("409", CorePermanentError, 409),
    ],
)
def test_client_classifies_failures(core, fault, error, status):
    client = CoreClient(base_url=core.url, token=core.token, read_timeout=0.5)
    core.fail_next(fault)
    with pytest.raises(error) as raised:
        client.post("reshipments", json_body={}, idempotency_key="k")
    assert raised.value.status == status
    assert raised.value.retryable is (error is CoreRetryableError)
    if fault == "503":
        assert raised.value.retry_after == 120


def test_client_refuses_a_wrong_token_permanently(core):
    client = CoreClient(base_url=core.url, token="wrong", read_timeout=0.5)
    with pytest.raises(CorePermanentError) as raised:
        client.get("changes")
    assert raised.value.status == 401


def test_the_console_reads_what_the_feed_applied(core, shipment, city_a):
    number = yamato("61112223334")
    core.changes = [
        change(
            "v1",
            "donation",
            T1,
            {"external_id": "EXT-0001", "status": "paid", "paid_on": "2026-11-29"},
        ),
        shipment_change(
            "v2",
            T2,
            status="shipped",
            shipped_on="2026-11-30",
            carrier="yamato",
            tracking_number=number,
        ),
    ]
    feed.feed_pull()
    from donations_sync import selectors

    printed = f"{number[:4]}-{number[4:8]}-{number[8:]}"
    assert selectors.shipment_ids_by_tracking_number([city_a.id], printed) == [shipment.pk]
    views = selectors.donation_views_for_donors(
        city_a.id, [shipment.donation.donor_id], per_donor=5
    )[shipment.donation.donor_id]
    assert "入金済 11/29" in views[0].state
    assert views[0].shipments[0].state == f"発送済（ヤマト {printed}）"


def test_a_reshipment_we_requested_is_linked_not_added_again(core, shipment):
    ours = ShipmentFactory(
        donation=shipment.donation,
        gift_item=shipment.gift_item,
        replaces=shipment,
        status="requested",
        shipped_on=None,
        tracking_number="",
    )
    number = yamato("52223334445")
    core.changes = [
        shipment_change("l1", T1, status="returned"),
        shipment_change(
            "l2",
            T2,
            shipment_id="S-7",
            replaces="S-1",
            status="shipped",
            shipped_on="2026-12-02",
            carrier="yamato",
            tracking_number=number,
        ),
    ]
    feed.feed_pull()
    ours.refresh_from_db()
    assert ours.core_ref.core_id == "S-7"
    assert ours.status == "shipped" and ours.tracking_number == number
    assert Shipment.objects.filter(replaces=shipment).count() == 1


def test_old_receipts_are_forgotten_but_quarantined_ones_stay(core, shipment):
    from donations_sync.feed_tasks import core_feed_receipts_prune

    core.changes = [
        change("old-applied", "donation", T1, {"external_id": "EXT-0001", "status": "paid"}),
        change("old-kept", "donation", T1, {"external_id": "EXT-NONE"}),
        change("new-applied", "donation", T2, {"external_id": "EXT-0001", "status": "paid"}),
    ]
    feed.feed_pull()
    long_ago = timezone.now() - dt.timedelta(days=181)
    CoreChange.objects.filter(change_id__startswith="old").update(received_at=long_ago)
    assert django_settings.CELERY_BEAT_SCHEDULE["core-feed-receipts-prune"]["task"] in (
        celery_app.tasks
    )
    assert core_feed_receipts_prune.apply().get() == 1
    assert set(CoreChange.objects.values_list("change_id", flat=True)) == {
        "old-kept",
        "new-applied",
    }


def test_one_parcel_number_is_shared_within_a_donation_and_refused_across_donations(
    core, shipment, city_a
):
    """Several items of one donation travel in one parcel (#12): the core gives each of its
    shipments the same number; another donation's shipment may not take that number."""
    GiftItemFactory(municipality=city_a, code="G-HIMONO")
    ShipmentFactory(
        donation__donor__municipality=city_a,
        donation__external_id="EXT-0002",
        gift_item__municipality=city_a,
        gift_item__code="G-WINE",
        carrier=shipment.carrier,
        status="pending",
        shipped_on=None,
        tracking_number="",
    )
    number = yamato("62223334445")
    parcel = {
        "status": "shipped",
        "shipped_on": "2026-11-30",
        "carrier": "yamato",
        "tracking_number": number,
    }
    core.changes = [
        shipment_change("p1", T1, **parcel),
        shipment_change("p2", T1, shipment_id="S-2", gift_code="G-HIMONO", **parcel),
        shipment_change(
            "p3",
            T2,
            shipment_id="S-3",
            donation={"external_id": "EXT-0002"},
            gift_code="G-WINE",
            **parcel,
        ),
    ]
    result = feed.feed_pull()

    assert result.outcomes == {"applied": 2, "quarantined": 1}
    outcomes = dict(CoreChange.objects.values_list("change_id", "outcome"))
    assert outcomes == {"p1": "applied", "p2": "applied", "p3": "quarantined"}
    assert CoreChange.objects.get(change_id="p3").reason == (
        f"伝票番号 {number} は別の寄附の配送に登録済みです"
    )
    sharing = Shipment.objects.filter(tracking_number=number).order_by("id")
    assert [(s.donation_id, s.gift_item.code) for s in sharing] == [
        (shipment.donation_id, "G-IKURA"),
        (shipment.donation_id, "G-HIMONO"),
    ]
    # Looking the number up finds every item of the parcel, all of the one donation.
    from donations_sync import selectors

    found = selectors.shipment_ids_by_tracking_number([city_a.id], number)
    assert sorted(found) == [s.pk for s in sharing]


def test_the_database_itself_refuses_one_number_on_two_donations(shipment, city_a):
    number = yamato("63334445556")
    shipment.tracking_number = number
    shipment.save()
    ShipmentFactory(donation=shipment.donation, carrier=shipment.carrier, tracking_number=number)
    with pytest.raises(IntegrityError, match="shipment_tracking_one_donation"):
        with transaction.atomic():
            ShipmentFactory(
                donation__donor__municipality=city_a,
                gift_item__municipality=city_a,
                carrier=shipment.carrier,
                tracking_number=number,
            )
    assert Shipment.objects.filter(tracking_number=number).count() == 2
