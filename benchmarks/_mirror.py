"""The mirror the core benchmarks (core_feed, outbox; imports uses its municipality) start from: one municipality (小樽市) with
the Yamato carrier, a provider, a gift and ``count`` donors with one donation and one shipment
each, written in bulk. Imported after ``django.setup()``."""

from __future__ import annotations

from django.utils import timezone

from crm.models import Carrier, Donor, Municipality, Provider
from donations_sync.models import CoreShipmentId, Donation, GiftItem, Shipment

CODE = "012033"


def mirror_reset() -> None:
    """Delete the municipality's mirror (the caller first deletes what refers to it)."""
    CoreShipmentId.objects.all().delete()
    # Replacements first: a shipment's ``replaces`` protects the one it replaces.
    Shipment.objects.filter(municipality__code=CODE, replaces__isnull=False).delete()
    Shipment.objects.filter(municipality__code=CODE).delete()
    Donation.objects.filter(municipality__code=CODE).delete()
    GiftItem.objects.filter(municipality__code=CODE).delete()
    Provider.objects.filter(municipality__code=CODE).delete()
    Donor.objects.filter(municipality__code=CODE).delete()


def mirror_municipality() -> Municipality:
    """小樽市 and the Yamato carrier (created once, kept by later runs)."""
    municipality, _ = Municipality.objects.get_or_create(
        code=CODE,
        defaults={
            "name": "小樽市",
            "name_kana": "オタルシ",
            "prefecture": "北海道",
            "answer_name": "小樽市ふるさと納税コールセンター",
        },
    )
    Carrier.objects.get_or_create(
        code="yamato",
        defaults={
            "name": "ヤマト運輸",
            "short_name": "ヤマト",
            "tracking_url_template": "https://example.invalid/{number}",
            "tracking_rule": Carrier.TrackingRule.MOD7_12,
        },
    )
    return municipality


def mirror_load(count: int, *, delivered: bool = False) -> tuple[Municipality, list[Shipment]]:
    """``count`` donors, donations and shipments (gift G-1); ``delivered``: the shipments are
    配達完了 today, else the model's default status."""
    municipality = mirror_municipality()
    provider = Provider.objects.create(municipality=municipality, code="P1", name="小樽海産")
    gift = GiftItem.objects.create(
        municipality=municipality, provider=provider, code="G-1", name="いくら醤油漬け"
    )
    donors = Donor.objects.bulk_create(
        [
            Donor(
                municipality=municipality,
                name=f"寄附者 {i}",
                name_kana="キフシャ",
                postal_code="0470032",
                prefecture="北海道",
                address=f"小樽市稲穂{i}",
            )
            for i in range(count)
        ],
        batch_size=2000,
    )
    now = timezone.now()
    donations = Donation.objects.bulk_create(
        [
            Donation(
                municipality=municipality,
                donor=donor,
                portal="rakuten",
                portal_order_number=f"123456-20261101-{i:08d}",
                external_id=f"B{i:09d}",
                donated_at=now,
                amount=10000,
                payment_method="credit_card",
            )
            for i, donor in enumerate(donors)
        ],
        batch_size=2000,
    )
    status = {"status": Shipment.Status.DELIVERED, "delivered_on": now.date()} if delivered else {}
    shipments = Shipment.objects.bulk_create(
        [
            Shipment(
                municipality=municipality,
                donation=d,
                gift_item=gift,
                ship_to_name="寄附者",
                ship_to_postal_code="0470032",
                ship_to_address="北海道小樽市稲穂",
                **status,
            )
            for d in donations
        ],
        batch_size=2000,
    )
    return municipality, shipments
