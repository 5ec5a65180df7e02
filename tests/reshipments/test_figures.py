"""The month's re-shipment figures for the monthly analysis (Asia/Tokyo months)."""

from __future__ import annotations

import datetime
from zoneinfo import ZoneInfo

import pytest

from reshipments.models import Reshipment
from reshipments.rules import billable_to_city
from reshipments.selectors import reshipment_figures
from tests.factories import ShipmentFactory

pytestmark = pytest.mark.django_db
TOKYO = ZoneInfo("Asia/Tokyo")


def _reshipment(original, *, reason, fault, approved_at, status="approved", gift=0, ship=0):
    return Reshipment.objects.create(
        municipality=original.municipality,
        original=original,
        reason=reason,
        fault=fault,
        billable_to_city=billable_to_city(reason=reason, fault=fault),
        gift_item=original.gift_item,
        ship_to_name="x",
        ship_to_postal_code="0470032",
        ship_to_address="y",
        gift_cost=gift,
        shipping_cost=ship,
        status=status,
        requested_at=approved_at,
        approved_at=approved_at if status != "refused" else None,
    )


def test_counts_and_costs_of_a_month(city_a, city_b):
    s = ShipmentFactory(donation__donor__municipality=city_a, gift_item__municipality=city_a)
    other = ShipmentFactory(donation__donor__municipality=city_b, gift_item__municipality=city_b)
    nov = datetime.datetime(2026, 11, 10, 12, tzinfo=TOKYO)
    # Midnight of Dec 1 in Tokyo is still Nov 30 in UTC: it belongs to December.
    dec_first = datetime.datetime(2026, 12, 1, 0, 30, tzinfo=TOKYO)
    # 00:30 on Nov 1 in Tokyo is Oct 31 in UTC: it belongs to November.
    nov_first = datetime.datetime(2026, 11, 1, 0, 30, tzinfo=TOKYO)
    _reshipment(s, reason="damaged", fault="carrier", approved_at=nov, gift=5000, ship=1200)
    _reshipment(s, reason="returned", fault="donor", approved_at=nov_first, gift=0, ship=1000)
    _reshipment(
        s, reason="lost", fault="unknown", approved_at=nov, status="shipped", gift=4000, ship=900
    )
    _reshipment(
        s, reason="damaged", fault="provider", approved_at=nov, status="core_refused", gift=5000
    )
    _reshipment(s, reason="damaged", fault="donor", approved_at=nov, status="refused", gift=9999)
    _reshipment(s, reason="damaged", fault="donor", approved_at=dec_first, gift=7777)
    _reshipment(other, reason="damaged", fault="donor", approved_at=nov, gift=8888)

    f = reshipment_figures(municipality_id=city_a.pk, month="2026-11")
    assert f.count == 4
    assert f.by_reason == {"damaged": 2, "returned": 1, "lost": 1}
    assert f.by_fault == {"carrier": 1, "donor": 1, "unknown": 1, "provider": 1}
    assert f.billable_count == 2  # returned/donor and lost/unknown
    assert f.billable_cost == 1000 + 4000 + 900
    assert f.non_billable_count == 2
    assert f.non_billable_cost == 5000 + 1200 + 5000
    assert f.cost == 1000 + 4000 + 900 + 5000 + 1200 + 5000
    # Per reason and per fault party, in the order of the model's choices, labelled in Japanese.
    rows = [(r.label, r.count, r.cost, r.billable_count, r.billable_cost) for r in f.reason_rows]
    assert rows == [
        ("破損", 2, 5000 + 1200 + 5000, 0, 0),
        ("不着・紛失", 1, 4900, 1, 4900),
        ("住所不明返送", 1, 1000, 1, 1000),
    ]
    rows = [(r.label, r.count, r.cost, r.billable_count, r.billable_cost) for r in f.fault_rows]
    assert rows == [
        ("返礼品提供事業者", 1, 5000, 0, 0),
        ("配送業者", 1, 6200, 0, 0),
        ("寄附者", 1, 1000, 1, 1000),
        ("不明", 1, 4900, 1, 4900),
    ]
    assert reshipment_figures(municipality_id=city_a.pk, month="2026-12").count == 1
    with pytest.raises(ValueError):
        reshipment_figures(municipality_id=city_a.pk, month="november")
