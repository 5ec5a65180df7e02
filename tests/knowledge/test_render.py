"""Canned-reply variables: known names are filled, everything else stays exactly as written."""

from __future__ import annotations

import datetime

import pytest
from django.conf import settings
from django.utils import timezone

from knowledge.render import render_text, variables_for
from tests.factories import DonorFactory, ShipmentFactory


def test_known_variables_are_filled_and_missing_ones_listed():
    result = render_text(
        "{寄附者名} 様 受付番号 {受付番号} 伝票 {伝票番号}",
        {"寄附者名": "山田 太郎", "受付番号": "123-1"},
    )
    assert result.text == "山田 太郎 様 受付番号 123-1 伝票 {伝票番号}"
    assert result.used == ["寄附者名", "受付番号"]
    assert result.missing == ["伝票番号"]


@pytest.mark.parametrize(
    "hostile",
    [
        "{{ settings.SECRET_KEY }}",
        "{% load static %}{% debug %}",
        "{寄附者名.__class__}",
        "{ 寄附者名 }",
        "{unknown}",
        "{{寄附者名}}",
    ],
)
def test_template_syntax_is_never_evaluated(hostile):
    result = render_text(f"前 {hostile} 後", {"寄附者名": "X"})
    if hostile == "{{寄附者名}}":
        # The inner placeholder is a variable; the outer braces stay literal text.
        assert result.text == "前 {X} 後"
    else:
        assert result.text == f"前 {hostile} 後"
    assert settings.SECRET_KEY not in result.text


def test_values_are_inserted_once_not_re_expanded():
    result = render_text(
        "{寄附者名}/{受付番号}",
        {"寄附者名": "{受付番号}{{ settings.SECRET_KEY }}", "受付番号": "R-1"},
    )
    assert result.text == "{受付番号}{{ settings.SECRET_KEY }}/R-1"


@pytest.mark.django_db
def test_variables_from_records(city_a):
    donor = DonorFactory(municipality=city_a, name="佐藤 花子")
    shipment = ShipmentFactory(
        donation__donor=donor,
        donation__amount=30000,
        donation__portal_order_number="123456-20241201-00000001",
        donation__donated_at=timezone.make_aware(datetime.datetime(2024, 12, 1, 10, 0)),
        tracking_number="400000000017",
        shipped_on=datetime.date(2024, 12, 16),
    )
    values = variables_for(shipment=shipment, ticket_number=42)
    assert values["寄附者名"] == "佐藤 花子"
    assert values["自治体名"] == "小樽市"
    assert values["受付番号"] == "123456-20241201-00000001"
    assert values["寄附金額"] == "¥30,000"
    assert values["寄附日"] == "2024年12月1日(日)"
    assert values["発送日"] == "2024年12月16日(月)"
    assert values["伝票番号"] == "4000-0000-0017"
    assert values["配送業者"] == "ヤマト運輸"
    assert values["問合せ番号"] == "42"
