"""楽天 orders with several items: one row per item, the order and orderer blocks repeated.

The consecutive rows of one 受注番号 become one donation with one shipment per item; a row of an
order further down the file is refused naming the order's first line; a bad cell in any item's
row refuses the whole order, and the rejected-rows download gives back every row of it."""

from __future__ import annotations

import csv
import io

import pytest

from crm.models import User
from donations_sync import selectors
from donations_sync.models import Donation, ImportRejection, Shipment
from tests.conftest import response_bytes
from tests.donations_sync.test_import_apply import carriers, counts, media, run_import  # noqa: F401
from tests.donations_sync.test_import_parsing import RAKUTEN_HEADER, csv_bytes, rakuten_row
from tests.factories import UserFactory

pytestmark = pytest.mark.usefixtures("carriers", "media")

ORDER = "123456-20240301-00000301"
SINGLE = "123456-20240301-00000302"


def yamato(serial: int) -> str:
    """A ヤマト number whose check digit holds: the first 11 digits mod 7."""
    return f"{serial:011d}{serial % 7}"


def item(number: str, code: str, name: str, tracking: str, **overrides: str) -> list[str]:
    fields = {
        "商品番号": code,
        "商品名": name,
        "お荷物伝票番号": tracking,
        "発送日": "2024/3/5" if tracking else "",
        "合計金額": "30000",
        **overrides,
    }
    return rakuten_row(number, **fields)


def order_rows(second_tracking: str = "") -> list[list[str]]:
    # The orderer's address holds a quoted line break: line numbers must still be right.
    return [
        item(ORDER, "10000123", "【ふるさと納税】小樽ワイン①", yamato(10000000001)),
        item(ORDER, "10000456", "【ふるさと納税】髙島屋の干物セット", second_tracking),
        item(ORDER, "10000789", "【ふるさと納税】﨑山のいくら", yamato(10000000003)),
        item(
            SINGLE, "10000123", "【ふるさと納税】小樽ワイン①", yamato(10000000004), 合計金額="10000"
        ),
    ]


def rakuten_file(rows: list[list[str]]) -> bytes:
    return csv_bytes(RAKUTEN_HEADER, rows, "cp932")


def shipments_of(number: str) -> list[tuple[int, str, str, str]]:
    donation = Donation.objects.get(portal="rakuten", portal_order_number=number)
    return [
        (s.delivery_number, s.gift_item.code, s.gift_item.name, s.tracking_number)
        for s in donation.shipments.select_related("gift_item").order_by("delivery_number")
    ]


def test_a_three_item_order_is_one_donation_reimported_unchanged_then_updated(city_a) -> None:
    first = run_import(city_a, "rakuten", rakuten_file(order_rows()))
    assert counts(first) == (2, 0, 0, 0)
    assert Donation.objects.filter(municipality=city_a).count() == 2
    donation = Donation.objects.get(portal_order_number=ORDER)
    assert donation.amount == 30000  # the order's total, not three times it
    assert shipments_of(ORDER) == [
        (1, "10000123", "【ふるさと納税】小樽ワイン①", yamato(10000000001)),
        (2, "10000456", "【ふるさと納税】髙島屋の干物セット", ""),
        (3, "10000789", "【ふるさと納税】﨑山のいくら", yamato(10000000003)),
    ]
    assert [s.status for s in donation.shipments.order_by("delivery_number")] == [
        "shipped",
        "pending",
        "shipped",
    ]
    assert shipments_of(SINGLE) == [
        (1, "10000123", "【ふるさと納税】小樽ワイン①", yamato(10000000004))
    ]

    again = run_import(city_a, "rakuten", rakuten_file(order_rows()))
    assert counts(again) == (0, 0, 2, 0)
    assert Shipment.objects.filter(municipality=city_a).count() == 4

    # The next export: the second item has shipped.
    later = run_import(city_a, "rakuten", rakuten_file(order_rows(yamato(10000000002))))
    assert counts(later) == (0, 1, 1, 0)
    assert shipments_of(ORDER)[1] == (
        2,
        "10000456",
        "【ふるさと納税】髙島屋の干物セット",
        yamato(10000000002),
    )
    second = Donation.objects.get(portal_order_number=ORDER).shipments.get(delivery_number=2)
    assert second.status == "shipped" and second.tracking_valid is True
    assert Shipment.objects.filter(municipality=city_a).count() == 4


def test_rows_of_an_order_apart_from_each_other_are_refused_naming_the_first_line(city_a) -> None:
    rows = order_rows()
    # Line 2: the order's first item; line 3 holds a quoted line break, so the single order
    # starts on line 4 … the order's third item comes last, apart from the others.
    rows = [rows[0], rows[1], rows[3], rows[2]]
    run = run_import(city_a, "rakuten", rakuten_file(rows))
    assert counts(run) == (2, 0, 0, 1)
    [rejection] = ImportRejection.objects.filter(run=run)
    # Each row is two physical lines (the address has a line break): 2-3, 4-5, 6-7, 8-9.
    assert rejection.line == 8
    assert rejection.reason.startswith("2行目からの注文と同じ受注番号です")
    assert "続けて並べてください" in rejection.reason
    assert [code for _, code, _, _ in shipments_of(ORDER)] == ["10000123", "10000456"]


def test_a_bad_cell_in_one_item_row_refuses_the_whole_order_and_gives_back_all_its_rows(
    city_a, login
) -> None:
    rows = order_rows()
    rows[2] = item(ORDER, "10000789", "【ふるさと納税】﨑山のいくら", "", 発送日="2024/13/45")
    run = run_import(city_a, "rakuten", rakuten_file(rows))
    assert counts(run) == (1, 0, 0, 1)
    assert not Donation.objects.filter(portal_order_number=ORDER).exists()
    [rejection] = ImportRejection.objects.filter(run=run)
    assert (rejection.line, rejection.column) == (6, "発送日")
    assert "2行目からの注文は、どの商品の行も取り込んでいません" in rejection.reason

    supervisor = UserFactory(
        username="sv_rakuten", role=User.Role.SUPERVISOR, municipalities=[city_a]
    )
    data = response_bytes(login(supervisor).get(f"/imports/runs/{run.id}/rejections.csv"))
    written = list(csv.reader(io.StringIO(data.decode("cp932"))))
    assert written[0] == [*RAKUTEN_HEADER, "理由"]
    # Every row of the order, fixable and importable again as it is.
    assert [r[:-1] for r in written[1:]] == rows[:3]
    assert all(r[-1].startswith("6行目・発送日：") for r in written[1:])

    fixed = rakuten_file([*rows[:2], item(ORDER, "10000789", "【ふるさと納税】﨑山のいくら", "")])
    assert counts(run_import(city_a, "rakuten", fixed)) == (1, 0, 0, 0)
    assert len(shipments_of(ORDER)) == 3


def test_items_of_one_order_in_one_parcel_share_its_tracking_number(city_a) -> None:
    """楽天 prints one お荷物伝票番号 for the parcel: every item of the order carries it."""
    parcel = yamato(10000000001)
    rows = order_rows()
    rows[1] = item(ORDER, "10000456", "【ふるさと納税】髙島屋の干物セット", parcel)
    assert counts(run_import(city_a, "rakuten", rakuten_file(rows))) == (2, 0, 0, 0)
    assert [s[3] for s in shipments_of(ORDER)] == [parcel, parcel, yamato(10000000003)]
    # Searching the number shows every item of the parcel, all of the one donation.
    found = selectors.shipment_ids_by_tracking_number([city_a.id], parcel)
    sharing = Shipment.objects.filter(tracking_number=parcel)
    assert sorted(found) == sorted(s.pk for s in sharing) and len(found) == 2
    assert {s.donation.portal_order_number for s in sharing} == {ORDER}

    assert counts(run_import(city_a, "rakuten", rakuten_file(rows))) == (0, 0, 2, 0)
    # A later export puts the third item into the same parcel: the mirror's own number.
    rows[2] = item(ORDER, "10000789", "【ふるさと納税】﨑山のいくら", parcel)
    assert counts(run_import(city_a, "rakuten", rakuten_file(rows))) == (0, 1, 1, 0)
    assert [s[3] for s in shipments_of(ORDER)] == [parcel, parcel, parcel]


def test_another_order_in_the_file_with_the_same_number_is_refused(city_a) -> None:
    rows = order_rows()
    rows[3] = item(
        SINGLE, "10000123", "【ふるさと納税】小樽ワイン①", yamato(10000000001), 合計金額="10000"
    )
    run = run_import(city_a, "rakuten", rakuten_file(rows))
    assert counts(run) == (1, 0, 0, 1)
    [rejection] = ImportRejection.objects.filter(run=run)
    assert rejection.line == 8  # each row spans two lines: its address holds a line break
    assert rejection.reason == (
        f"伝票番号 {yamato(10000000001)} がこのファイルの別の注文の行（2行目）にもあります"
    )
    assert not Donation.objects.filter(portal_order_number=SINGLE).exists()


def test_another_donation_taking_a_stored_number_is_refused(city_a) -> None:
    assert counts(run_import(city_a, "rakuten", rakuten_file(order_rows()))) == (2, 0, 0, 0)
    other = "123456-20240301-00000303"
    taken = yamato(10000000003)  # the third item of ORDER
    run = run_import(
        city_a,
        "rakuten",
        rakuten_file([item(other, "10000123", "【ふるさと納税】小樽ワイン①", taken)]),
    )
    assert counts(run) == (0, 0, 0, 1)
    [rejection] = ImportRejection.objects.filter(run=run)
    assert rejection.line == 2
    assert rejection.reason == f"伝票番号 {taken} は別の寄附の配送で使われています"
    assert not Donation.objects.filter(portal_order_number=other).exists()
    # Nor may an order already in the mirror take it.
    single = [item(SINGLE, "10000123", "【ふるさと納税】小樽ワイン①", taken, 合計金額="10000")]
    run = run_import(city_a, "rakuten", rakuten_file(single))
    assert counts(run) == (0, 0, 0, 1)
    assert ImportRejection.objects.get(run=run).reason == (
        f"伝票番号 {taken} は別の寄附の配送で使われています"
    )
    assert shipments_of(SINGLE)[0][3] == yamato(10000000004)
