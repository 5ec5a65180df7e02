"""Returned mail (住所不明返送): entered or imported, worked as call-backs, and a confirmed address
sent to the core as an address change plus a resend through the outbox."""

from __future__ import annotations

import datetime

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from crm.models import AuditLog
from donations_sync.models import OutboxMessage
from reshipments.models import CallbackAttempt, Reshipment, ReturnedImport, ReturnedItem

pytestmark = pytest.mark.django_db


def _enter(client, city, donation, kind, tracking_number=""):
    response = client.post(
        reverse("reshipments:returned_new"),
        {
            "municipality": city.pk,
            "number": donation.portal_order_number,
            "kind": kind,
            "returned_on": "2026-11-20",
            "tracking_number": tracking_number,
            "note": "宛所尋ねあたりません",
        },
    )
    assert response.status_code == 302, response.content.decode()[-3000:]
    return ReturnedItem.objects.latest("pk")


def test_a_returned_receipt_is_worked_to_an_address_change_and_a_reissue(
    login, agent_a, city_a, shipment_a
):
    client = login(agent_a)
    donation = shipment_a.donation
    item = _enter(client, city_a, donation, "receipt")
    assert item.donor_id == donation.donor_id and item.status == "open"
    item.donor.refresh_from_db()
    assert item.donor.returned_mail

    # The worklist shows the task with the donor's phone as a tel link.
    worklist = client.get(reverse("reshipments:returned_list")).content.decode()
    assert f'id="returned-{item.pk}"' in worklist
    assert 'href="tel:+819012345678"' in worklist

    url = reverse("reshipments:returned_attempt", args=[item.pk])
    client.post(url, {"outcome": "no_answer", "note": "留守電"})
    item.refresh_from_db()
    assert item.status == "open"
    assert not OutboxMessage.objects.exists()

    # Confirmed without an address: refused, nothing recorded.
    response = client.post(url, {"outcome": "confirmed", "postal_code": "", "address": ""})
    assert response.status_code == 400
    assert CallbackAttempt.objects.filter(item=item).count() == 1

    client.post(
        url,
        {"outcome": "confirmed", "postal_code": "047-0032", "address": "北海道小樽市稲穂3-1-1"},
    )
    item.refresh_from_db()
    assert item.status == "confirmed"
    assert [a.outcome for a in item.attempts.all()] == ["no_answer", "confirmed"]
    messages = {m.kind: m for m in OutboxMessage.objects.all()}
    assert set(messages) == {"address_change", "receipt_reissue"}
    assert messages["address_change"].payload["postal_code"] == "0470032"
    assert messages["address_change"].payload["address"] == "北海道小樽市稲穂3-1-1"
    assert messages["receipt_reissue"].donation_id == donation.pk
    item.donor.refresh_from_db()
    assert not item.donor.returned_mail
    steps = set(
        AuditLog.objects.filter(action="returned_mail").values_list("detail__step", flat=True)
    )
    assert steps == {"added", "attempt"}
    # Done: no further attempts.
    assert client.post(url, {"outcome": "no_answer"}).status_code == 400


def test_a_returned_one_stop_form_is_resent(login, agent_a, city_a, shipment_a):
    client = login(agent_a)
    item = _enter(client, city_a, shipment_a.donation, "one_stop")
    client.post(
        reverse("reshipments:returned_attempt", args=[item.pk]),
        {"outcome": "confirmed", "postal_code": "0470032", "address": "北海道小樽市稲穂3-1-1"},
    )
    assert set(OutboxMessage.objects.values_list("kind", flat=True)) == {
        "address_change",
        "onestop_resend",
    }


def test_a_returned_gift_becomes_a_reshipment_that_a_supervisor_approves(
    login, agent_a, supervisor_a, city_a, shipment_a
):
    client = login(agent_a)
    item = _enter(client, city_a, shipment_a.donation, "gift", shipment_a.tracking_number)
    assert item.shipment_id == shipment_a.pk
    client.post(
        reverse("reshipments:returned_attempt", args=[item.pk]),
        {"outcome": "confirmed", "postal_code": "0470032", "address": "北海道小樽市稲穂3-1-1"},
    )
    item.refresh_from_db()
    r = item.reshipment
    assert r.reason == "returned" and r.fault == "donor" and r.billable_to_city
    assert r.ship_to_address == "北海道小樽市稲穂3-1-1" and r.address_corrected
    assert r.status == Reshipment.Status.SUPERVISOR_PENDING
    assert list(OutboxMessage.objects.values_list("kind", flat=True)) == ["address_change"]

    login(supervisor_a).post(reverse("reshipments:approve", args=[r.pk]))
    r.refresh_from_db()
    assert r.replacement.ship_to_address == "北海道小樽市稲穂3-1-1"
    assert sorted(OutboxMessage.objects.values_list("kind", flat=True)) == [
        "address_change",
        "reshipment",
    ]


def test_csv_import_keeps_the_rows_it_cannot_read(login, agent_a, city_a, shipment_a):
    donation = shipment_a.donation
    csv_text = (
        "受付番号,返送物,返送日,伝票番号,備考\r\n"
        f"{donation.portal_order_number},受領証明書,2026/11/20,,宛所なし\r\n"
        f"{donation.portal_order_number},返礼品,2026/11/21,{shipment_a.tracking_number},転居先不明\r\n"
        "999999-20241201-00000000,受領証明書,2026/11/20,,\r\n"
        f"{donation.portal_order_number},カタログ,2026/11/20,,\r\n"
    )
    upload = SimpleUploadedFile("返送.csv", csv_text.encode("cp932"), content_type="text/csv")
    client = login(agent_a)
    response = client.post(
        reverse("reshipments:returned_import"), {"municipality": city_a.pk, "file": upload}
    )
    assert response.status_code == 200
    page = response.content.decode()
    assert "2件を登録しました" in page
    run = ReturnedImport.objects.get()
    assert run.added == 2
    assert [r["line"] for r in run.rejections] == [4, 5]
    assert "寄附が見つかりません" in run.rejections[0]["reason"]
    assert run.rejections[1]["raw"][1] == "カタログ"
    kinds = sorted(ReturnedItem.objects.values_list("kind", "source"))
    assert kinds == [("gift", "csv"), ("receipt", "csv")]
    assert ReturnedItem.objects.get(kind="gift").returned_on == datetime.date(2026, 11, 21)


def test_a_file_without_a_number_column_is_refused(login, agent_a, city_a):
    upload = SimpleUploadedFile("x.csv", "氏名,住所\r\nA,B\r\n".encode(), content_type="text/csv")
    response = login(agent_a).post(
        reverse("reshipments:returned_import"), {"municipality": city_a.pk, "file": upload}
    )
    assert "受付番号 または 外部管理番号" in response.content.decode()
    assert not ReturnedImport.objects.exists()


def test_city_officials_have_no_worklist(login, city_official_a):
    assert login(city_official_a).get(reverse("reshipments:returned_list")).status_code == 403
