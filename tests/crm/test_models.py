"""Models and constraints of crm and the donation mirror."""

from __future__ import annotations

import pytest
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction

from crm.models import Carrier, Donor, MunicipalityPhoneNumber
from donations_sync.models import Donation, Shipment
from tests.factories import (
    CarrierFactory,
    DonationFactory,
    DonorEmailFactory,
    DonorFactory,
    GiftItemFactory,
    MunicipalityFactory,
    ShipmentFactory,
)

pytestmark = pytest.mark.django_db


def test_municipality_code_check_digit_is_validated():
    bad = MunicipalityFactory.build(code="012034")
    with pytest.raises(ValidationError):
        bad.full_clean()


def test_inbound_numbers_are_unique_across_municipalities(city_a, city_b):
    MunicipalityPhoneNumber.objects.create(municipality=city_a, e164="+81134324111")
    with pytest.raises(IntegrityError), transaction.atomic():
        MunicipalityPhoneNumber.objects.create(municipality=city_b, e164="+81134324111")


def test_donor_reading_and_postal_code_are_normalized(city_a):
    donor = DonorFactory(municipality=city_a, name_kana="ﾔﾏﾀﾞ ﾀﾛｳ", postal_code="〒047-0032")
    donor.refresh_from_db()
    assert donor.name_kana == "ヤマダタロウ"
    assert donor.postal_code == "0470032"
    donor2 = DonorFactory(municipality=city_a, name_kana="やまだ はなこ")
    assert Donor.objects.get(pk=donor2.pk).name_kana == "ヤマダハナコ"


def test_donor_email_is_lowercased(city_a):
    email = DonorEmailFactory(donor__municipality=city_a, address="Taro.Yamada@Example.JP")
    email.refresh_from_db()
    assert email.address == "taro.yamada@example.jp"


def test_resident_gets_no_gift_only_where_residents_excluded(city_a):
    donor = DonorFactory(municipality=city_a, is_resident=True)
    assert donor.gets_no_gift
    city_a.residents_excluded = False
    city_a.save()
    donor.refresh_from_db()
    assert not donor.gets_no_gift


def test_portal_order_number_unique_per_municipality_and_portal(city_a, city_b):
    first = DonationFactory(
        donor__municipality=city_a, portal_order_number="123456-20241201-00111801"
    )
    # Another city may hold the same number (it is the portal's, per shop).
    DonationFactory(donor__municipality=city_b, portal_order_number=first.portal_order_number)
    with pytest.raises(IntegrityError), transaction.atomic():
        DonationFactory(donor__municipality=city_a, portal_order_number=first.portal_order_number)


def test_external_id_unique_per_municipality(city_a):
    first = DonationFactory(donor__municipality=city_a)
    with pytest.raises(IntegrityError), transaction.atomic():
        DonationFactory(donor__municipality=city_a, external_id=first.external_id)


def test_blank_numbers_do_not_collide(city_a):
    DonationFactory(
        donor__municipality=city_a, portal="direct", portal_order_number="", external_id=""
    )
    DonationFactory(
        donor__municipality=city_a, portal="direct", portal_order_number="", external_id=""
    )
    assert Donation.objects.filter(portal_order_number="").count() == 2


def test_donation_amount_positive(city_a):
    with pytest.raises(IntegrityError), transaction.atomic():
        DonationFactory(donor__municipality=city_a, amount=0)


def test_a_tracking_number_belongs_to_one_donation_per_carrier(city_a):
    shipment = ShipmentFactory(donation__donor__municipality=city_a, gift_item__municipality=city_a)
    # Several items of one donation in one parcel share its number.
    ShipmentFactory(
        donation=shipment.donation,
        gift_item=shipment.gift_item,
        carrier=shipment.carrier,
        tracking_number=shipment.tracking_number,
    )
    other = DonationFactory(donor=shipment.donation.donor)
    with pytest.raises(IntegrityError), transaction.atomic():
        ShipmentFactory(
            donation=other,
            gift_item=shipment.gift_item,
            carrier=shipment.carrier,
            tracking_number=shipment.tracking_number,
        )


def test_shipped_needs_a_date(city_a):
    with pytest.raises(IntegrityError), transaction.atomic():
        ShipmentFactory(
            donation__donor__municipality=city_a, gift_item__municipality=city_a, shipped_on=None
        )


def test_reshipment_links_to_the_shipment_it_replaces(city_a):
    original = ShipmentFactory(
        donation__donor__municipality=city_a,
        gift_item__municipality=city_a,
        status=Shipment.Status.LOST,
    )
    replacement = ShipmentFactory(
        donation=original.donation,
        gift_item=original.gift_item,
        replaces=original,
        status=Shipment.Status.PENDING,
        tracking_number="",
        shipped_on=None,
    )
    assert list(original.replacements.all()) == [replacement]
    with pytest.raises(IntegrityError), transaction.atomic():
        Shipment.objects.filter(pk=original.pk).update(replaces=original.pk)


def test_gift_season_months_are_months(city_a):
    with pytest.raises(IntegrityError), transaction.atomic():
        GiftItemFactory(municipality=city_a, season_start_month=13)


def test_carrier_validates_its_tracking_numbers():
    yamato = CarrierFactory()
    assert yamato.validate_tracking_number("1234-5678-9013") == "123456789013"
    with pytest.raises(ValidationError):
        yamato.validate_tracking_number("1234-5678-9012")
    registered = CarrierFactory(code="jp-registered", tracking_rule=Carrier.TrackingRule.MOD7_11)
    assert registered.validate_tracking_number("12345678903") == "12345678903"
    assert yamato.tracking_url("123456789013").endswith("123456789013")


def test_donor_number_unique_per_municipality_when_present(city_a, city_b):
    DonorFactory(municipality=city_a, donor_number="D-1")
    DonorFactory(municipality=city_b, donor_number="D-1")
    DonorFactory(municipality=city_a, donor_number="")
    DonorFactory(municipality=city_a, donor_number="")
    with pytest.raises(IntegrityError), transaction.atomic():
        DonorFactory(municipality=city_a, donor_number="D-1")
