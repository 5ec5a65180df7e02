"""Donor lookups by what a caller says, always within the given municipalities."""

from __future__ import annotations

import pytest

from crm import selectors
from donations_sync import selectors as sync_selectors
from tests.factories import DonorEmailFactory, DonorFactory, DonorPhoneFactory, ShipmentFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def yamada(city_a):
    donor = DonorFactory(
        municipality=city_a, name="山田 太郎", name_kana="ヤマダ タロウ", postal_code="047-0032"
    )
    DonorPhoneFactory(donor=donor, e164="+819012345678", raw="０９０−１２３４−５６７８")
    DonorEmailFactory(donor=donor, address="taro@example.jp")
    return donor


@pytest.mark.parametrize(
    "said", ["090-1234-5678", "０９０１２３４５６７８", "+819012345678", "09012345678"]
)
def test_by_phone_any_format(yamada, city_a, said):
    assert sync_selectors.donor_ids_by_phone([city_a.id], said) == [yamada.id]


def test_by_phone_withheld_matches_nothing(yamada, city_a):
    assert sync_selectors.donor_ids_by_phone([city_a.id], "anonymous") == []


def test_by_phone_other_municipality_matches_nothing(yamada, city_b):
    assert sync_selectors.donor_ids_by_phone([city_b.id], "090-1234-5678") == []


def test_by_phone_falls_back_to_ship_to_phone(city_a):
    shipment = ShipmentFactory(
        donation__donor__municipality=city_a,
        gift_item__municipality=city_a,
        ship_to_phone="+81312345678",
    )
    assert sync_selectors.donor_ids_by_phone([city_a.id], "03-1234-5678") == [
        shipment.donation.donor_id
    ]


@pytest.mark.parametrize("said", ["ヤマダ", "やまだ", "ﾔﾏﾀﾞ", "ヤマダタ", "やまだ　たろう"])
def test_by_kana_prefix_any_script(yamada, city_a, said):
    assert selectors.donor_ids_by_kana_prefix([city_a.id], said) == [yamada.id]


def test_by_kana_prefix_scoped(yamada, city_b):
    assert selectors.donor_ids_by_kana_prefix([city_b.id], "ヤマダ") == []


def test_by_email_and_postal(yamada, city_a):
    assert selectors.donor_ids_by_email([city_a.id], "TARO@example.jp") == [yamada.id]
    assert selectors.donor_ids_by_postal_code([city_a.id], "〒０４７－００３２") == [yamada.id]


def test_by_numbers(city_a, city_b):
    shipment = ShipmentFactory(donation__donor__municipality=city_a, gift_item__municipality=city_a)
    donation = shipment.donation
    assert sync_selectors.donation_ids_by_number([city_a.id], donation.portal_order_number) == [
        donation.id
    ]
    assert sync_selectors.donation_ids_by_number([city_a.id], donation.external_id) == [donation.id]
    assert sync_selectors.donation_ids_by_number([city_b.id], donation.external_id) == []
    dashed = f"{shipment.tracking_number[:4]}-{shipment.tracking_number[4:8]}-{shipment.tracking_number[8:]}"
    assert sync_selectors.shipment_ids_by_tracking_number([city_a.id], dashed) == [shipment.id]
    assert sync_selectors.shipment_ids_by_tracking_number([city_b.id], dashed) == []


def test_by_kana_prefix_across_municipalities_is_ordered_and_limited(city_a, city_b):
    a1 = DonorFactory(municipality=city_a, name_kana="ヤマダ ハナコ")
    b1 = DonorFactory(municipality=city_b, name_kana="ヤマダ イチロウ")
    a2 = DonorFactory(municipality=city_a, name_kana="ヤマモト ジロウ")
    DonorFactory(municipality=city_b, name_kana="タナカ ユキ")
    found = selectors.donor_ids_by_kana_prefix([city_a.id, city_b.id], "やま")
    assert found == [b1.id, a1.id, a2.id]  # イ < ハ < モ in gojūon (code-point) order
    assert selectors.donor_ids_by_kana_prefix([city_a.id, city_b.id], "ヤマ", limit=2) == [
        b1.id,
        a1.id,
    ]


def test_kana_prefix_treats_like_wildcards_literally(city_a, city_b):
    DonorFactory(municipality=city_a, name_kana="ヤマダ")
    assert selectors.donor_ids_by_kana_prefix([city_a.id, city_b.id], "%") == []
    assert selectors.donor_ids_by_kana_prefix([city_a.id], "_") == []


def test_ship_to_phone_fallback_returns_each_donor_once(city_a):
    first = ShipmentFactory(
        donation__donor__municipality=city_a,
        gift_item__municipality=city_a,
        ship_to_phone="+81312345678",
    )
    ShipmentFactory(
        donation=first.donation, gift_item=first.gift_item, ship_to_phone="+81312345678"
    )
    assert sync_selectors.donor_ids_by_phone([city_a.id], "03-1234-5678") == [
        first.donation.donor_id
    ]


def test_registered_phone_ranks_before_ship_to_phone(city_a):
    recipient_of_gift = ShipmentFactory(
        donation__donor__municipality=city_a,
        gift_item__municipality=city_a,
        ship_to_phone="+819012345678",
    ).donation.donor
    registered = DonorFactory(municipality=city_a, name="佐藤 花子", name_kana="サトウ ハナコ")
    DonorPhoneFactory(donor=registered, e164="+819012345678")
    assert sync_selectors.donor_ids_by_phone([city_a.id], "090-1234-5678") == [
        registered.id,
        recipient_of_gift.id,
    ]
