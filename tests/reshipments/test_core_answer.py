"""The core's answers to a re-shipment (through the outbox's POST and the change feed, from a
local fake core) move the re-shipment and its ticket forward, and the donor is mailed the new
tracking number once."""

from __future__ import annotations

import pytest
from django.core import mail
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from config.celery import app as celery_app
from donations_sync import feed, outbox
from donations_sync import services as core_services
from donations_sync.models import OutboxMessage
from reshipments import services
from reshipments.models import Reshipment
from tests.donations_sync.fake_core import FakeCore, change
from tests.factories import CarrierFactory, ShipmentFactory, tracking_with_check_digit
from tickets.models import InquiryEvent

pytestmark = pytest.mark.django_db


@pytest.fixture
def core(settings):
    fake = FakeCore().start()
    settings.CORE_API_URL = fake.url
    settings.CORE_API_TOKEN = fake.token
    settings.CORE_API_READ_TIMEOUT = 2
    yield fake
    fake.stop()


@pytest.fixture
def eager_mail(settings):
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    previous = celery_app.conf.task_always_eager
    celery_app.conf.task_always_eager = True
    yield mail.outbox
    celery_app.conf.task_always_eager = previous


def _approved(login, agent_a, supervisor_a, inquiry, shipment) -> Reshipment:
    login(agent_a).post(
        reverse("reshipments:new_for_ticket", args=[inquiry.pk]),
        {
            "original": shipment.pk,
            "reason": "damaged",
            "fault": "provider",
            "address_mode": "same",
            "gift_cost": "5000",
            "shipping_cost": "1200",
        },
    )
    r = Reshipment.objects.get()
    login(supervisor_a).post(reverse("reshipments:approve", args=[r.pk]))
    r.refresh_from_db()
    assert r.status == Reshipment.Status.APPROVED
    return r


def _decision(change_id: str, at: str, key: str, **data) -> dict:
    return change(change_id, "decision", at, {"idempotency_key": key, **data})


def test_answers_update_reshipment_ticket_and_mail_the_donor(
    login,
    agent_a,
    supervisor_a,
    damaged_ticket,
    shipment_a,
    core,
    eager_mail,
    django_capture_on_commit_callbacks,
):
    CarrierFactory()
    r = _approved(login, agent_a, supervisor_a, damaged_ticket, shipment_a)
    message = OutboxMessage.objects.get()
    with django_capture_on_commit_callbacks(execute=True):
        outbox.outbox_deliver(message.pk)
    assert core.decision_requests == 1
    assert core.decisions[r.idempotency_key]["payload"]["reshipment_id"] == r.pk
    r.refresh_from_db()
    assert r.status == Reshipment.Status.ACCEPTED

    number = tracking_with_check_digit("40007654321")
    pushed = [
        _decision(
            "d1",
            "2026-12-01T09:00:00+09:00",
            r.idempotency_key,
            answer="tracking",
            carrier="yamato",
            tracking_number=number,
        ),
        _decision(
            "d2",
            "2026-12-01T15:00:00+09:00",
            r.idempotency_key,
            answer="shipped",
            shipped_on="2026-12-01",
        ),
        _decision("d3", "2026-12-02T11:00:00+09:00", r.idempotency_key, answer="delivered"),
    ]
    with django_capture_on_commit_callbacks(execute=True):
        assert [feed.change_receive(change=c, source="push") for c in pushed] == ["applied"] * 3
    r.refresh_from_db()
    assert r.status == Reshipment.Status.DELIVERED
    assert r.replacement.tracking_number == number
    assert r.donor_notified_at is not None

    titles = list(
        InquiryEvent.objects.filter(inquiry=damaged_ticket, kind="reshipment")
        .order_by("at", "followup_id")
        .values_list("followup__title", flat=True)
    )
    assert any(t.startswith("基幹システムが再送を受け付けました") for t in titles)
    assert any(t.startswith("再送を発送しました（ヤマト") for t in titles)
    assert titles[-1].startswith("再送が配達されました")

    # One mail to the donor, with the tracking number and its link.
    sent = [m for m in eager_mail if "hanako@example.jp" in m.to]
    assert len(sent) == 1
    part = sent[0].message()
    text = part.get_payload(decode=True).decode(part.get_content_charset() or "utf-8")
    assert number in text
    assert r.replacement.tracking_url in text

    # The ticket page shows the replacement with its tracking link.
    page = login(agent_a).get(reverse("ticket_detail", args=[damaged_ticket.pk])).content.decode()
    assert r.replacement.tracking_url in page


def test_a_refusal_is_on_the_ticket_and_mails_nobody(
    login,
    agent_a,
    supervisor_a,
    damaged_ticket,
    shipment_a,
    core,
    eager_mail,
    django_capture_on_commit_callbacks,
):
    r = _approved(login, agent_a, supervisor_a, damaged_ticket, shipment_a)
    with django_capture_on_commit_callbacks(execute=True):
        feed.change_receive(
            change=_decision(
                "d1",
                "2026-12-01T09:00:00+09:00",
                r.idempotency_key,
                answer="refused",
                reason="在庫切れ",
            ),
            source="push",
        )
    r.refresh_from_db()
    assert r.status == Reshipment.Status.CORE_REFUSED
    assert r.core_detail == "在庫切れ"
    assert InquiryEvent.objects.filter(
        inquiry=damaged_ticket,
        followup__title__startswith="基幹システムが再送を受け付けませんでした",
    ).exists()
    assert not [m for m in eager_mail if "hanako@example.jp" in m.to]


def _answer_batch(messages: list[OutboxMessage], capture) -> int:
    """The POST answers of a delivered batch recorded together (as the outbox sweep does);
    returns the queries the announcement after the commit made."""
    with capture() as callbacks:
        applied = feed.first_answers_apply(
            [
                feed.FirstAnswer(m.pk, m.shipment_id, "accepted", {"reference": f"R-{m.pk}"})
                for m in messages
            ]
        )
    assert applied == {m.pk for m in messages}
    with CaptureQueriesContext(connection) as queries:
        for callback in callbacks:
            callback()
    return len(queries)


def _decisions(original, count: int, prefix: str) -> list[OutboxMessage]:
    """Re-shipment decisions that are no re-shipment of ours (written by another way to the
    core, as the outbox benchmark writes them): a replacement shipment and its message each."""
    messages = []
    with transaction.atomic():
        for i in range(count):
            replacement = core_services.shipment_create_replacement(
                original_id=original.pk,
                gift_item_id=None,
                ship_to={},
                desired_date=None,
                desired_time_slot="",
            )
            messages.append(
                core_services.outbox_enqueue(
                    municipality_id=original.municipality_id,
                    kind="reshipment",
                    payload={},
                    idempotency_key=f"{prefix}-{i}",
                    shipment_id=replacement.pk,
                    donation_id=original.donation_id,
                )
            )
    return messages


def test_an_answered_batch_is_looked_up_in_one_query_whatever_its_size(
    shipment_a, django_capture_on_commit_callbacks
):
    small = _answer_batch(_decisions(shipment_a, 2, "small"), django_capture_on_commit_callbacks)
    large = _answer_batch(_decisions(shipment_a, 12, "large"), django_capture_on_commit_callbacks)
    # The messages read back, and the batch's re-shipments looked up: one query each.
    assert small == large == 2


def test_a_batch_of_answers_moves_each_of_its_reshipments(
    agent_a, supervisor_a, damaged_ticket, shipment_a, django_capture_on_commit_callbacks
):
    second = ShipmentFactory(
        donation=shipment_a.donation, gift_item=shipment_a.gift_item, ship_to_name="山田 花子"
    )
    reshipments = []
    for original in (shipment_a, second):
        r = services.reshipment_request(
            actor=agent_a,
            inquiry=damaged_ticket,
            original=original,
            reason="damaged",
            fault="carrier",
            gift_item=original.gift_item,
            ship_to=services.ShipTo(name="山田 花子", postal_code="0470032", address="小樽市"),
        )
        reshipments.append(services.reshipment_approve(actor=supervisor_a, reshipment=r))
    # The second's message found by its replacement shipment rather than by its key.
    OutboxMessage.objects.filter(shipment=reshipments[1].replacement).update(
        idempotency_key="older-key-1"
    )
    messages = [
        *OutboxMessage.objects.filter(kind="reshipment").order_by("pk"),
        *_decisions(shipment_a, 1, "not-ours"),
    ]
    _answer_batch(messages, django_capture_on_commit_callbacks)

    for r in reshipments:
        r.refresh_from_db()
        assert r.status == Reshipment.Status.ACCEPTED
    titles = list(
        InquiryEvent.objects.filter(
            inquiry=damaged_ticket, followup__title__startswith="基幹システムが再送を受け付けました"
        ).values_list("followup__title", flat=True)
    )
    assert sorted(titles) == sorted(
        f"基幹システムが再送を受け付けました（再送 #{r.pk}）" for r in reshipments
    )
