"""One donor, donation and shipment read the same on every screen: the screen pop, the donor
page, the ticket page's linked records and the API take their words from one presenter each."""

from __future__ import annotations

import datetime
import html
import re

import pytest
from django.urls import reverse
from django.utils import timezone

from donations_sync.models import Shipment
from telephony.models import Call
from telephony.selectors import screen_pop_payload
from tests.factories import (
    DonationFactory,
    DonorFactory,
    DonorPhoneFactory,
    GiftItemFactory,
    ShipmentFactory,
)

pytestmark = pytest.mark.django_db

CALLER = "+819012345678"
_STATE = re.compile(r'data-state="([a-z]+-\d+)"[^>]*>([^<]*)<')
_FLAG = re.compile(r"data-flag>([^<]*)<")


def _states(body: str) -> dict[str, str]:
    return {key: html.unescape(text) for key, text in _STATE.findall(body)}


@pytest.fixture
def records(city_a, agent_a, open_inquiry):
    donor = DonorFactory(
        municipality=city_a, name="佐藤 花子", is_resident=True, returned_mail=True
    )
    DonorPhoneFactory(donor=donor, e164=CALLER)
    paid = DonationFactory(
        donor=donor,
        status="paid",
        paid_on=datetime.date(2024, 12, 1),
        receipt_issued_on=datetime.date(2024, 12, 10),
        one_stop_requested=True,
    )
    delivered = ShipmentFactory(
        donation=paid,
        tracking_number="123456789013",
        status=Shipment.Status.DELIVERED,
        shipped_on=datetime.date(2024, 12, 18),
        delivered_on=datetime.date(2024, 12, 20),
    )
    subscription = GiftItemFactory(municipality=city_a, name="季節の果物 定期便", deliveries=3)
    pending = ShipmentFactory(
        donation=paid,
        gift_item=subscription,
        delivery_number=2,
        carrier=None,
        tracking_number="",
        status=Shipment.Status.PENDING,
        shipped_on=None,
    )
    declined = DonationFactory(
        donor=donor,
        gift_declined=True,
        one_stop_requested=True,
        one_stop_received_on=datetime.date(2024, 12, 5),
    )
    inquiry = open_inquiry(donor=donor, donations=[paid, declined], shipments=[delivered, pending])
    call = Call.objects.create(
        municipality=city_a, from_e164=CALLER, from_raw=CALLER, offered_at=timezone.now()
    )
    return donor, [paid, declined], [delivered, pending], inquiry, call


def test_pop_donor_page_ticket_page_and_api_say_the_same(login, agent_a, records):
    donor, donations, shipments, inquiry, call = records
    [card] = screen_pop_payload(user=agent_a, call_id=call.pk)["matches"]
    pop = {f"donation-{d['id']}": d["state"] for d in card["donations"]}
    pop |= {f"shipment-{s['id']}": s["state"] for d in card["donations"] for s in d["shipments"]}
    # The words the call center agreed on (UI.md), not just any words that happen to agree.
    paid, declined = donations
    delivered, pending = shipments
    assert pop == {
        f"donation-{paid.id}": "入金済 12/1・受領証明書 発送済 12/10・ワンストップ 希望（申請書 未着）",
        f"donation-{declined.id}": "申込・受領証明書 未発行・ワンストップ 希望（申請書 受付済 12/5）",
        f"shipment-{delivered.id}": "発送済（ヤマト 1234-5678-9013, 12/20 配達完了）",
        f"shipment-{pending.id}": "出荷待ち",
    }
    assert card["flags"] == ["区内在住（返礼品なし）", "住所不明返送あり"]
    assert {d["id"]: d["flags"] for d in card["donations"]} == {
        paid.id: [],
        declined.id: ["返礼品辞退"],
    }
    [subscription] = [s for d in card["donations"] for s in d["shipments"] if s["subscription"]]
    assert subscription["subscription"] == "定期便 3回中2回目"

    client = login(agent_a)
    donor_page = client.get(reverse("donor_detail", args=[donor.id])).content.decode()
    assert _states(donor_page) == pop
    assert _FLAG.findall(donor_page) == card["flags"]
    assert "定期便 3回中2回目" in donor_page

    ticket_page = client.get(reverse("ticket_detail", args=[inquiry.pk])).content.decode()
    assert _states(ticket_page) == pop
    assert "定期便 3回中2回目" in ticket_page

    api = {}
    for d in client.get("/api/donations/", {"donor": donor.id}).json()["results"]:
        api[f"donation-{d['id']}"] = d["state"]
        for s in client.get("/api/shipments/", {"donation": d["id"]}).json()["results"]:
            api[f"shipment-{s['id']}"] = s["state"]
            if s["subscription"]:
                assert s["subscription"] == "定期便 3回中2回目"
    assert api == pop
    assert client.get(f"/api/donors/{donor.id}/").json()["flags"] == card["flags"]

    # The console's search finds the same records in the same words.
    search = reverse("console_search")
    by_order = client.get(search, {"q": paid.portal_order_number}).content.decode()
    assert pop[f"donation-{paid.id}"] in html.unescape(by_order)
    by_tracking = client.get(search, {"q": "1234-5678-9013"}).content.decode()
    assert pop[f"shipment-{delivered.id}"] in html.unescape(by_tracking)


def test_open_inquiries_on_the_pop_are_the_donor_pages_open_ones(login, agent_a, records):
    donor, _, _, inquiry, call = records
    [card] = screen_pop_payload(user=agent_a, call_id=call.pk)["matches"]
    [shown] = card["open_inquiries"]
    assert (shown["id"], shown["status_label"], shown["url"]) == (
        inquiry.pk,
        inquiry.get_status_display(),
        reverse("ticket_detail", args=[inquiry.pk]),
    )
    body = login(agent_a).get(reverse("donor_detail", args=[donor.id])).content.decode()
    assert f'href="{shown["url"]}">#{inquiry.pk} {shown["title"]}</a>' in body
    assert f'<span class="flag">{shown["status_label"]}</span>' in body
