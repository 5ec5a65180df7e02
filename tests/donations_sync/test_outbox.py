"""The outbox against a local fake core: accepted, refused, timed out, dropped after processing,
down for an hour, permanently refusing; dead letters retried; the core's later answers through
the change feed and the signed callback."""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import json
import time

import pytest
import time_machine
from django.db import transaction
from django.utils import timezone

from config.celery import app as celery_app
from donations_sync import feed, outbox, services
from donations_sync.models import CoreChange, CoreShipmentId, OutboxMessage, Shipment
from donations_sync.signals import core_decision_answered
from tests.donations_sync.fake_core import FakeCore, change
from tests.factories import CarrierFactory, ShipmentFactory, tracking_with_check_digit

pytestmark = pytest.mark.django_db

SECRET = "s" * 40


@pytest.fixture
def core(settings):
    fake = FakeCore().start()
    fake.sleep = 1.0
    settings.CORE_API_URL = fake.url
    settings.CORE_API_TOKEN = fake.token
    settings.CORE_API_READ_TIMEOUT = 0.5
    settings.CORE_OUTBOX_BACKOFF_BASE_SECONDS = 30
    settings.CORE_OUTBOX_BACKOFF_MAX_SECONDS = 1800
    settings.CORE_OUTBOX_MAX_ATTEMPTS = 15
    settings.CORE_FEED_SECRET = SECRET
    yield fake
    fake.stop()


@pytest.fixture
def eager():
    previous = celery_app.conf.task_always_eager
    celery_app.conf.task_always_eager = True
    yield
    celery_app.conf.task_always_eager = previous


@pytest.fixture
def original(city_a):
    shipment = ShipmentFactory(
        donation__donor__municipality=city_a,
        donation__external_id="EXT-0001",
        gift_item__municipality=city_a,
        gift_item__code="G-IKURA",
        carrier=CarrierFactory(),
        status="delivered",
    )
    CoreShipmentId.objects.create(core_id="S-1", shipment=shipment)
    return shipment


@pytest.fixture
def answers():
    seen: list[dict] = []

    def receiver(sender, answers, **kwargs):
        seen.extend(
            {"message": a.message.pk, "answer": a.answer, "detail": a.detail} for a in answers
        )

    core_decision_answered.connect(receiver, dispatch_uid="test-outbox-answers")
    yield seen
    core_decision_answered.disconnect(dispatch_uid="test-outbox-answers")


def reship(original: Shipment, key: str = "reship-1", **ship_to) -> OutboxMessage:
    """What the re-shipment approval does: the replacement row and its message, together."""
    with transaction.atomic():
        replacement = services.shipment_create_replacement(
            original_id=original.pk,
            gift_item_id=None,
            ship_to=ship_to,
            desired_date=dt.date(2026, 12, 10),
            desired_time_slot="am",
        )
        return services.outbox_enqueue(
            municipality_id=original.municipality_id,
            kind="reshipment",
            payload={"reason": "破損", "fault": "carrier", "billable": False},
            idempotency_key=key,
            shipment_id=replacement.pk,
            donation_id=original.donation_id,
        )


def fresh(message: OutboxMessage) -> OutboxMessage:
    return OutboxMessage.objects.select_related("shipment").get(pk=message.pk)


def due_now(message: OutboxMessage):
    """Travel to the moment the message's next attempt is due."""
    return time_machine.travel(fresh(message).next_attempt_at + dt.timedelta(seconds=1), tick=False)


def test_a_reshipment_is_sent_after_its_commit_and_accepted(
    core, eager, original, answers, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        message = reship(original, postal_code="０４７－００３４", address="北海道小樽市緑1-1")
        assert core.decision_requests == 0  # nothing leaves before the decision commits

    message = fresh(message)
    assert message.status == "accepted" and message.attempts == 1
    assert message.core_reference == "R-1"
    replacement = message.shipment
    assert replacement.replaces_id == original.pk and replacement.status == "requested"
    assert replacement.ship_to_postal_code == "0470034"
    assert replacement.ship_to_name == original.ship_to_name  # unchanged fields are kept
    assert list(original.donation.shipments.order_by("id")) == [original, replacement]
    request = core.requests[-1]
    assert request["path"] == "/api/v1/decisions"
    assert request["headers"]["Idempotency-Key"] == "reship-1"
    body = json.loads(request["body"])
    assert body["kind"] == "reshipment" and body["municipality_code"] == "012033"
    assert body["donation"]["external_id"] == "EXT-0001"
    assert body["shipment"]["replaces_core_id"] == "S-1"
    assert body["shipment"]["ship_to"]["address"] == "北海道小樽市緑1-1"
    assert body["shipment"]["desired_time_slot"] == "am"
    assert body["payload"] == {"reason": "破損", "fault": "carrier", "billable": False}
    assert answers == [
        {"message": message.pk, "answer": "accepted", "detail": {"core_reference": "R-1"}}
    ]


def test_the_same_key_twice_is_one_message(core, original):
    first = reship(original, key="same")
    with transaction.atomic():
        second = services.outbox_enqueue(
            municipality_id=original.municipality_id,
            kind="reshipment",
            payload={},
            idempotency_key="same",
        )
    assert second.pk == first.pk
    assert OutboxMessage.objects.count() == 1


def test_a_replacement_refuses_bad_input_in_japanese(original, city_b):
    from django.core.exceptions import ValidationError

    from tests.factories import GiftItemFactory

    with pytest.raises(ValidationError) as error:
        services.shipment_create_replacement(
            original_id=original.pk,
            gift_item_id=None,
            ship_to={"postal_code": "12"},
            desired_date=None,
            desired_time_slot="",
        )
    assert "7桁" in str(error.value)
    with pytest.raises(ValidationError) as error:
        services.shipment_create_replacement(
            original_id=original.pk,
            gift_item_id=GiftItemFactory(municipality=city_b).pk,
            ship_to={},
            desired_date=None,
            desired_time_slot="",
        )
    assert "この自治体の返礼品" in str(error.value)
    assert Shipment.objects.count() == 1


def test_a_refusal_is_recorded_with_its_reason(
    core, eager, original, answers, django_capture_on_commit_callbacks
):
    core.refuse_reason = "発送済みのためキャンセルできません"
    with django_capture_on_commit_callbacks(execute=True), transaction.atomic():
        message = services.outbox_enqueue(
            municipality_id=original.municipality_id,
            kind="cancellation_request",
            payload={"requested_by": "donor"},
            idempotency_key="cancel-1",
            donation_id=original.donation_id,
        )
    message = fresh(message)
    assert message.status == "refused"
    assert message.refusal_reason == "発送済みのためキャンセルできません"
    assert message.next_attempt_at is None
    assert answers[0]["answer"] == "refused"
    assert answers[0]["detail"]["reason"] == "発送済みのためキャンセルできません"
    assert outbox.outbox_deliver_due().claimed == 0  # a refusal is final, not retried


def test_a_timeout_is_retried_later_without_a_second_effect(core, original):
    message = reship(original)
    core.fail_next("timeout")  # the core processes it, but answers after our read timeout
    assert outbox.outbox_deliver(message.pk) == "pending"
    message = fresh(message)
    assert message.status == "pending" and message.attempts == 1
    assert "時間内に応答しません" in message.last_error
    # Backoff after the first failure: 30 s, half of it random (from the failure, which came
    # the read timeout after the attempt started).
    wait = (message.next_attempt_at - message.last_attempt_at).total_seconds()
    assert 15 <= wait <= 30 + 2
    assert outbox.outbox_deliver(message.pk) is None  # not due yet: not sent
    time.sleep(core.sleep)  # the fake core's late answer has been written by now
    with due_now(message):
        result = outbox.outbox_deliver_due()
    assert result.outcomes == {"accepted": 1}
    assert core.effects == {"reship-1": 1}
    assert core.decision_requests == 2
    assert fresh(message).core_reference == "R-1"


def test_a_connection_dropped_after_processing_does_not_reship_twice(core, original):
    message = reship(original)
    core.fail_next("drop-after")
    outbox.outbox_deliver(message.pk)
    assert fresh(message).status == "pending"
    assert "接続できません" in fresh(message).last_error
    assert core.effects == {"reship-1": 1}  # the core did re-ship; we did not hear it
    with due_now(message):
        outbox.outbox_deliver_due()
    message = fresh(message)
    assert message.status == "accepted" and message.attempts == 2
    assert core.effects == {"reship-1": 1}  # the second POST had no second effect
    assert Shipment.objects.filter(replaces=original).count() == 1


def test_an_hour_of_5xx_then_the_core_comes_back(core, original):
    message = reship(original)
    core.outage = 503  # with Retry-After: 60
    start = timezone.now()
    outbox.outbox_deliver(message.pk)
    waits = []
    while fresh(message).next_attempt_at < start + dt.timedelta(hours=1):
        current = fresh(message)
        waits.append((current.next_attempt_at - current.last_attempt_at).total_seconds())
        with due_now(current):
            outbox.outbox_deliver_due()
    message = fresh(message)
    assert message.status == "pending", "an hour's outage must not make a dead letter"
    assert 6 <= message.attempts <= 9
    assert all(wait >= 60 for wait in waits)  # Retry-After is honoured
    assert waits[-1] > waits[0] and max(waits) <= 1800  # growing, up to the cap
    assert "503" in message.last_error
    core.outage = None
    with due_now(message):
        result = outbox.outbox_deliver_due()
    assert result.outcomes == {"accepted": 1}
    assert core.effects == {"reship-1": 1}


def test_backoff_grows_with_jitter_up_to_a_cap(settings):
    settings.CORE_OUTBOX_BACKOFF_BASE_SECONDS = 30
    settings.CORE_OUTBOX_BACKOFF_MAX_SECONDS = 1800
    for attempts, full in ((1, 30), (2, 60), (3, 120), (7, 1800), (20, 1800)):
        samples = [outbox.backoff_seconds(attempts) for _ in range(200)]
        assert all(full / 2 <= s <= full for s in samples)
        assert len({round(s, 3) for s in samples}) > 50  # jittered
    assert outbox.backoff_seconds(1, retry_after=300) == 300
    assert outbox.backoff_seconds(1, retry_after=99999) == 1800


def test_after_the_last_attempt_a_dead_letter_that_a_supervisor_retries(
    core, eager, original, supervisor, django_capture_on_commit_callbacks, settings
):
    settings.CORE_OUTBOX_MAX_ATTEMPTS = 3
    message = reship(original)
    core.outage = 500
    outbox.outbox_deliver(message.pk)
    for _ in range(2):
        with due_now(message):
            outbox.outbox_deliver_due()
    message = fresh(message)
    assert message.status == "dead" and message.attempts == 3
    assert message.last_error.startswith("3回送信できませんでした")
    assert message.next_attempt_at is None
    assert outbox.outbox_deliver_due().claimed == 0  # a dead letter is not sent by itself

    core.outage = None
    with django_capture_on_commit_callbacks(execute=True):
        outbox.outbox_retry(actor=supervisor, message=message)
    message = fresh(message)
    assert message.status == "accepted" and message.attempts == 1
    assert core.effects == {"reship-1": 1}


def test_a_permanent_refusal_of_the_request_is_a_dead_letter_at_once(core, original):
    message = reship(original)
    core.fail_next("422")
    outbox.outbox_deliver(message.pk)
    message = fresh(message)
    assert message.status == "dead" and message.attempts == 1
    assert message.last_error.startswith("基幹システムが受け付けませんでした")


def test_an_agent_cannot_retry_or_cancel(core, original, agent_a):
    from django.core.exceptions import PermissionDenied

    message = reship(original)
    with pytest.raises(PermissionDenied):
        outbox.outbox_retry(actor=agent_a, message=message)
    with pytest.raises(PermissionDenied):
        outbox.outbox_cancel(actor=agent_a, message=message)


def test_a_cancelled_message_is_never_sent(core, original, supervisor):
    message = reship(original)
    outbox.outbox_cancel(actor=supervisor, message=message, reason="寄附者が辞退")
    assert outbox.outbox_deliver(message.pk) is None
    assert outbox.outbox_deliver_due().claimed == 0
    assert core.decision_requests == 0
    assert fresh(message).last_error == "取消: 寄附者が辞退"


def test_two_claims_of_one_message_only_one_wins(original):
    message = reship(original)
    assert outbox.claim_one(message.pk) is True
    assert outbox.claim_one(message.pk) is False
    assert outbox.claim_batch(limit=10) == []
    # Its lease runs out (the worker died): due again, and the attempt is counted.
    later = timezone.now() + dt.timedelta(seconds=121)
    assert outbox.claim_batch(limit=10, now=later) == [message.pk]
    assert fresh(message).attempts == 2


# --- The core's later answers: change feed and callback -------------------------------------


def decision(change_id: str, at: str, key: str = "reship-1", **data) -> dict:
    return change(change_id, "decision", at, {"idempotency_key": key, **data})


def test_answers_through_the_feed_move_the_replacement_forward_only(
    core, original, answers, django_capture_on_commit_callbacks
):
    message = reship(original)
    outbox.outbox_deliver(message.pk)
    answers.clear()
    number = tracking_with_check_digit("40001234567")
    pushed = [
        decision(
            "d1",
            "2026-12-01T09:00:00+09:00",
            answer="tracking",
            shipment_id="S-2",
            carrier="yamato",
            tracking_number=f"{number[:4]}-{number[4:8]}-{number[8:]}",
        ),
        decision("d2", "2026-12-01T15:00:00+09:00", answer="shipped", shipped_on="2026-12-01"),
        decision("d3", "2026-12-02T11:00:00+09:00", answer="delivered"),
        decision("d4", "2026-12-01T16:00:00+09:00", answer="shipped"),  # late: stale
        decision("d5", "2026-12-01T08:00:00+09:00", answer="accepted"),  # older: stale
    ]
    with django_capture_on_commit_callbacks(execute=True):
        outcomes = [feed.change_receive(change=c, source="push") for c in pushed]
    assert outcomes == ["applied", "applied", "applied", "stale", "stale"]
    assert feed.change_receive(change=pushed[0], source="push") == "duplicate"
    replacement = fresh(message).shipment
    assert replacement.tracking_number == number and replacement.tracking_valid is True
    assert replacement.carrier.code == "yamato"
    assert replacement.status == "delivered"
    assert replacement.shipped_on == dt.date(2026, 12, 1)
    assert replacement.delivered_on == dt.date(2026, 12, 2)
    assert replacement.core_ref.core_id == "S-2"
    assert [a["answer"] for a in answers] == ["tracking", "shipped", "delivered"]
    assert answers[0]["detail"]["tracking_number"].startswith(number[:4])
    assert fresh(message).answer == "delivered"
    record = CoreChange.objects.get(change_id="d1")
    assert record.kind == "decision" and record.shipment_id == replacement.pk


def test_a_tracking_number_failing_its_check_digit_is_kept_and_flagged(core, original):
    message = reship(original)
    outbox.outbox_deliver(message.pk)
    number = tracking_with_check_digit("40001234567")
    wrong = number[:-1] + str((int(number[-1]) + 1) % 7)
    outcome = feed.change_receive(
        change=decision(
            "t1",
            "2026-12-01T09:00:00+09:00",
            answer="tracking",
            carrier="yamato",
            tracking_number=wrong,
        ),
        source="push",
    )
    assert outcome == "applied"
    replacement = fresh(message).shipment
    assert replacement.tracking_number == wrong and replacement.tracking_valid is False


def test_an_answer_naming_an_unknown_decision_or_carrier_is_kept_as_quarantined(core, original):
    message = reship(original)
    outbox.outbox_deliver(message.pk)
    unknown = decision("u1", "2026-12-01T09:00:00+09:00", key="nobody", answer="shipped")
    assert feed.change_receive(change=unknown, source="push") == "quarantined"
    assert "見つかりません" in CoreChange.objects.get(change_id="u1").reason
    bad_carrier = decision(
        "u2",
        "2026-12-01T09:00:00+09:00",
        answer="tracking",
        carrier="nowhere",
        tracking_number="1234",
    )
    assert feed.change_receive(change=bad_carrier, source="push") == "quarantined"
    assert fresh(message).shipment.tracking_number == ""
    assert fresh(message).answer == "accepted"


def test_the_accepted_answer_through_the_feed_before_the_post_answer(
    core, original, answers, django_capture_on_commit_callbacks
):
    """The POST's answer was lost; the core says accepted through the feed: the message is
    accepted and is not sent again."""
    message = reship(original)
    with django_capture_on_commit_callbacks(execute=True):
        outcome = feed.change_receive(
            change=decision(
                "a1", "2026-12-01T09:00:00+09:00", answer="accepted", core_reference="R-77"
            ),
            source="pull",
        )
    assert outcome == "applied"
    message = fresh(message)
    assert message.status == "accepted" and message.core_reference == "R-77"
    assert outbox.outbox_deliver_due().claimed == 0
    assert core.decision_requests == 0
    assert answers[0]["detail"] == {"core_reference": "R-77"}


def _signed(body: bytes, secret: str = SECRET) -> dict:
    stamp = str(int(time.time()))
    mac = hmac.new(secret.encode(), stamp.encode() + b"." + body, hashlib.sha256).hexdigest()
    return {"HTTP_X_CORE_TIMESTAMP": stamp, "HTTP_X_CORE_SIGNATURE": f"sha256={mac}"}


def test_the_signed_callback_takes_answers(client, core, original, answers):
    message = reship(original)
    outbox.outbox_deliver(message.pk)
    body = json.dumps(
        {"changes": [decision("cb1", "2026-12-01T09:00:00+09:00", answer="shipped")]}
    ).encode()
    response = client.post(
        "/core/outbox/answers/", body, content_type="application/json", **_signed(body)
    )
    assert response.status_code == 200
    assert response.json() == {"results": [{"id": "cb1", "outcome": "applied"}]}
    assert fresh(message).shipment.status == "shipped"

    forged = client.post(
        "/core/outbox/answers/", body, content_type="application/json", **_signed(body, "x" * 40)
    )
    assert forged.status_code == 401
    other = json.dumps(
        change("cb2", "donation", "2026-12-01T09:00:00+09:00", {"external_id": "EXT-0001"})
    ).encode()
    refused = client.post(
        "/core/outbox/answers/", other, content_type="application/json", **_signed(other)
    )
    assert refused.status_code == 400
    assert not CoreChange.objects.filter(change_id="cb2").exists()


def test_a_refusal_after_acceptance_cancels_the_replacement(
    core, original, answers, django_capture_on_commit_callbacks
):
    message = reship(original)
    outbox.outbox_deliver(message.pk)
    with django_capture_on_commit_callbacks(execute=True):
        outcome = feed.change_receive(
            change=decision(
                "r1", "2026-12-01T09:00:00+09:00", answer="refused", reason="在庫切れ（代品なし）"
            ),
            source="push",
        )
    assert outcome == "applied"
    message = fresh(message)
    assert message.status == "refused" and message.refusal_reason == "在庫切れ（代品なし）"
    assert message.shipment.status == "cancelled"
    assert answers[-1]["answer"] == "refused"


def test_the_sweep_is_on_the_beat_schedule(settings):
    entry = settings.CELERY_BEAT_SCHEDULE["core-outbox-sweep"]
    assert entry["task"] in celery_app.tasks
    assert "donations_sync.outbox_deliver" in celery_app.tasks
