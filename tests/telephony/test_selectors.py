"""The screen-pop payload: what it shows, for whom, and in how many queries."""

from __future__ import annotations

import pytest

from telephony.models import Call
from telephony.selectors import screen_pop_payload
from tests.factories import DonorFactory, DonorPhoneFactory, ShipmentFactory, UserFactory
from tickets import services as ticket_services

CALLER = "+819012345678"


@pytest.fixture
def call_a(city_a):
    from django.utils import timezone

    return Call.objects.create(
        municipality=city_a, from_e164=CALLER, from_raw=CALLER, offered_at=timezone.now()
    )


def test_several_donors_on_one_number_are_all_offered(agent_a, city_a, call_a):
    husband = DonorFactory(municipality=city_a, name="山田 太郎")
    wife = DonorFactory(municipality=city_a, name="山田 花子", is_resident=True)
    for donor in (husband, wife):
        DonorPhoneFactory(donor=donor, e164=CALLER)
    payload = screen_pop_payload(user=agent_a, call_id=call_a.pk)
    assert [m["name"] for m in payload["matches"]] == ["山田 太郎", "山田 花子"]
    assert payload["matches"][1]["flags"] == ["区内在住（返礼品なし）"]


def test_pop_shows_donations_shipments_and_open_tickets(agent_a, city_a, call_a):
    shipment = ShipmentFactory(
        donation__donor__municipality=city_a,
        gift_item__municipality=city_a,
        gift_item__deliveries=3,
        delivery_number=2,
    )
    donor = shipment.donation.donor
    DonorPhoneFactory(donor=donor, e164=CALLER)
    inquiry = ticket_services.inquiry_open(
        actor=agent_a,
        municipality=city_a,
        channel="phone",
        title="2回目が届かない",
        description="",
        donor=donor,
    )
    [match] = screen_pop_payload(user=agent_a, call_id=call_a.pk)["matches"]
    [donation] = match["donations"]
    # Raw: the browser writes ¥10,000 (tests/telephony/test_e2e_screenpop.py).
    assert donation["amount"] == 10000
    [card] = donation["shipments"]
    assert card["subscription"] == "定期便 3回中2回目"
    assert card["state"].startswith("発送済（ヤマト ")
    assert [i["id"] for i in match["open_inquiries"]] == [inquiry.pk]
    assert match["open_inquiries"][0]["url"] == f"/tickets/{inquiry.pk}/"


def test_pop_is_a_few_queries_whatever_the_history(
    agent_a, city_a, call_a, django_assert_max_num_queries
):
    donor = DonorFactory(municipality=city_a)
    DonorPhoneFactory(donor=donor, e164=CALLER)
    for _ in range(8):
        ShipmentFactory(donation__donor=donor, gift_item__municipality=city_a)
    user = type(agent_a).objects.get(pk=agent_a.pk)
    with django_assert_max_num_queries(7):
        payload = screen_pop_payload(user=user, call_id=call_a.pk)
    assert len(payload["matches"][0]["donations"]) == 8


def test_pop_is_nothing_for_staff_of_other_cities(city_b, call_a):
    agent_b = UserFactory(username="agent_b_only", municipalities=[city_b])
    assert screen_pop_payload(user=agent_b, call_id=call_a.pk) is None
