"""The donor page: state, not just data; scoped; logged; a bounded number of queries."""

from __future__ import annotations

import datetime

import pytest
from django.urls import reverse

from crm.models import PersonalDataAccess
from donations_sync.models import Shipment
from tests.factories import (
    DonationFactory,
    DonorFactory,
    DonorPhoneFactory,
    GiftItemFactory,
    ShipmentFactory,
    UserFactory,
)

pytestmark = pytest.mark.django_db


@pytest.fixture
def donor(city_a):
    donor = DonorFactory(municipality=city_a, name="佐藤 花子", is_resident=True)
    DonorPhoneFactory(donor=donor, e164="+819011112222")
    donation = DonationFactory(
        donor=donor,
        one_stop_requested=True,
        receipt_issued_on=datetime.date(2024, 12, 10),
        paid_on=datetime.date(2024, 12, 1),
        status="paid",
    )
    ShipmentFactory(
        donation=donation,
        tracking_number="123456789013",
        status=Shipment.Status.DELIVERED,
        shipped_on=datetime.date(2024, 12, 18),
        delivered_on=datetime.date(2024, 12, 20),
    )
    subscription = GiftItemFactory(municipality=city_a, name="季節の果物 定期便", deliveries=3)
    ShipmentFactory(
        donation=donation, gift_item=subscription, delivery_number=2, tracking_number=""
    )
    DonationFactory(donor=donor, gift_declined=True)
    return donor


def test_donor_page_shows_state_and_flags(login, agent_a, donor, open_inquiry):
    inquiry = open_inquiry(donor=donor, title="受領証明書が届かない")
    body = login(agent_a).get(reverse("donor_detail", args=[donor.id])).content.decode()
    assert "区内在住（返礼品なし）" in body  # one wording with the screen pop (UI.md)
    assert "返礼品辞退" in body
    assert "ワンストップ 希望" in body
    assert "受領証明書 発送済 12/10" in body
    assert "発送済（ヤマト 1234-5678-9013, 12/20 配達完了）" in body
    assert "https://toi.kuronekoyamato.co.jp/cgi-bin/tneko?number01=123456789013" in body
    assert "定期便 3回中2回目" in body
    assert "090-1111-2222" in body
    assert f"#{inquiry.pk} 受領証明書が届かない" in body
    assert "新規問合せ" in body


def test_donor_page_query_count_is_bounded(
    login, agent_a, donor, open_inquiry, django_assert_max_num_queries
):
    for n in range(5):
        DonationFactory(donor=donor)
        ShipmentFactory(donation__donor=donor)
        open_inquiry(donor=donor, title=f"問合せ{n}")
    client = login(agent_a)
    with django_assert_max_num_queries(15):
        response = client.get(reverse("donor_detail", args=[donor.id]))
    assert response.status_code == 200


def test_every_view_is_logged(login, agent_a, donor):
    client = login(agent_a)
    client.get(reverse("donor_detail", args=[donor.id]))
    client.get(reverse("donor_detail", args=[donor.id]))
    rows = PersonalDataAccess.objects.filter(record_type="donor", record_id=str(donor.id))
    assert rows.count() == 2
    row = rows.first()
    assert (
        row.user == agent_a
        and row.action == "view"
        and row.municipality_id == donor.municipality_id
    )
    assert row.path == reverse("donor_detail", args=[donor.id])


def test_other_municipality_donor_is_404(login, donor, city_official_b, city_b):
    agent_b = UserFactory(role="agent", municipalities=[city_b])
    for user in (city_official_b, agent_b):
        client = login(user)
        assert client.get(reverse("donor_detail", args=[donor.id])).status_code == 404
        assert client.get(reverse("donor_list", args=[donor.municipality_id])).status_code == 404
    assert not PersonalDataAccess.objects.filter(record_type="donor").exists()


def test_city_official_reads_own_donor_without_write_actions(login, donor, city_official_a):
    body = login(city_official_a).get(reverse("donor_detail", args=[donor.id])).content.decode()
    assert "佐藤 花子" in body
    assert reverse("ticket_create") not in body
