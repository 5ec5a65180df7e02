"""Factories for the CRM and donation mirror, shared by every app's tests."""

from __future__ import annotations

import datetime

import factory
from django.utils import timezone

from crm import normalize
from crm.models import (
    Carrier,
    Donor,
    DonorEmail,
    DonorPhone,
    Municipality,
    MunicipalityPhoneNumber,
    Provider,
    User,
)
from donations_sync.models import Donation, GiftItem, Portal, Shipment

# Real local-government codes (with valid check digits) for the test cities.
MUNICIPALITY_CODES = ["012033", "342076", "142051", "131148", "082368"]


def tracking_with_check_digit(body11: str) -> str:
    return body11 + str(normalize.mod7_check_digit(body11))


class MunicipalityFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Municipality
        django_get_or_create = ("code",)

    code = factory.Iterator(MUNICIPALITY_CODES)
    name = factory.Sequence(lambda n: f"テスト{n}市")
    name_kana = "テストシ"
    prefecture = "北海道"
    answer_name = factory.LazyAttribute(lambda o: f"{o.name}ふるさと納税コールセンター")


class MunicipalityPhoneNumberFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = MunicipalityPhoneNumber

    municipality = factory.SubFactory(MunicipalityFactory)
    e164 = factory.Sequence(lambda n: f"+8150{n:08d}")


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = User
        skip_postgeneration_save = True

    username = factory.Sequence(lambda n: f"user{n}")
    role = User.Role.AGENT
    password = factory.PostGenerationMethodCall("set_password", "Passw0rd!x")

    @factory.post_generation
    def municipalities(self, create, extracted, **kwargs):
        if create and extracted:
            self.municipalities.set(extracted)
        if create:
            self.save()


class DonorFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Donor

    municipality = factory.SubFactory(MunicipalityFactory)
    name = "山田 太郎"
    name_kana = "ヤマダ タロウ"
    postal_code = "0470032"
    prefecture = "北海道"
    address = "小樽市稲穂1-2-3"


class DonorPhoneFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = DonorPhone

    donor = factory.SubFactory(DonorFactory)
    municipality = factory.SelfAttribute("donor.municipality")
    e164 = "+819012345678"


class DonorEmailFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = DonorEmail

    donor = factory.SubFactory(DonorFactory)
    municipality = factory.SelfAttribute("donor.municipality")
    address = factory.Sequence(lambda n: f"donor{n}@example.jp")


class ProviderFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Provider

    municipality = factory.SubFactory(MunicipalityFactory)
    code = factory.Sequence(lambda n: f"P{n:04d}")
    name = factory.Sequence(lambda n: f"小樽海産{n}")


class CarrierFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Carrier
        django_get_or_create = ("code",)

    code = "yamato"
    name = "ヤマト運輸"
    short_name = "ヤマト"
    tracking_url_template = "https://toi.kuronekoyamato.co.jp/cgi-bin/tneko?number01={number}"
    tracking_rule = Carrier.TrackingRule.MOD7_12


class GiftItemFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = GiftItem

    municipality = factory.SubFactory(MunicipalityFactory)
    provider = factory.SubFactory(
        ProviderFactory, municipality=factory.SelfAttribute("..municipality")
    )
    code = factory.Sequence(lambda n: f"G{n:05d}")
    name = "北海道産 いくら醤油漬け 500g"


class DonationFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Donation

    donor = factory.SubFactory(DonorFactory)
    municipality = factory.SelfAttribute("donor.municipality")
    portal = Portal.RAKUTEN
    # Generated numbers use their own shop code / prefix, so that numbers written out in a test
    # (123456-…, F…) can never collide with them.
    portal_order_number = factory.Sequence(lambda n: f"987654-20241201-{n:08d}")
    external_id = factory.Sequence(lambda n: f"G{n:09d}")
    donated_at = factory.LazyFunction(lambda: timezone.now() - datetime.timedelta(days=20))
    amount = 10000
    payment_method = "credit_card"


class ShipmentFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Shipment

    donation = factory.SubFactory(DonationFactory)
    municipality = factory.SelfAttribute("donation.municipality")
    gift_item = factory.SubFactory(
        GiftItemFactory, municipality=factory.SelfAttribute("..municipality")
    )
    ship_to_name = "山田 太郎"
    ship_to_postal_code = "0470032"
    ship_to_address = "北海道小樽市稲穂1-2-3"
    carrier = factory.SubFactory(CarrierFactory)
    tracking_number = factory.Sequence(
        lambda n: tracking_with_check_digit(f"{40000000000 + n:011d}")
    )
    status = Shipment.Status.SHIPPED
    shipped_on = factory.LazyFunction(lambda: timezone.localdate() - datetime.timedelta(days=3))
