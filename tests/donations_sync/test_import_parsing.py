"""Reading the three export styles into typed rows: files generated here as the sources write
them (CP932 with 髙/﨑/①, half-width kana, BOM, quoted newlines, 令和 dates)."""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import time
import tracemalloc
from collections.abc import Iterable
from pathlib import Path

import pytest

from donations_sync.imports import (
    PRESETS,
    ImportFileError,
    ParsedRow,
    RowError,
    open_import,
    values,
)
from donations_sync.imports.values import JAPAN

VALID_TRACKING = "123456789013"  # 12345678901 mod 7 = 3
INVALID_TRACKING = "123456789012"


def csv_bytes(header: list[str], rows: Iterable[list[str]], encoding: str) -> bytes:
    text = io.StringIO(newline="")
    writer = csv.writer(text, lineterminator="\r\n")
    writer.writerow(header)
    writer.writerows(rows)
    return text.getvalue().encode(encoding)


def read_all(data: bytes, style: str, encoding: str | None = None):
    imported = open_import(io.BytesIO(data), style, encoding)
    return imported, list(imported)


# --- ふるさとチョイス-style donor export -------------------------------------------------

CHOICE_HEADER = [
    "寄附者番号", "申込日", "入金日", "氏名", "フリガナ", "〒", "都道府県", "市区町村", "町名・番地",
    "マンション名", "電話番号", "E-mailアドレス", "寄附金額", "寄附金の払込方法", "返礼品辞退",
    "返礼品1_コード", "返礼品1_名称", "返礼品1_配達希望日", "返礼品1_配達希望時間", "返礼品1_運送業者",
    "返礼品1_発送日", "返礼品1_送り先_名前", "返礼品1_送り先_フリガナ", "返礼品1_送り先_郵便番号",
    "返礼品1_送り先_電話番号",
    "返礼品2_コード", "返礼品2_名称", "返礼品2_配達希望日", "返礼品2_配達希望時間", "返礼品2_運送業者",
    "返礼品2_発送日", "返礼品2_送り先_名前", "返礼品2_送り先_フリガナ", "返礼品2_送り先_郵便番号",
    "返礼品2_送り先_電話番号",
    "お礼状出力日", "寄附受領証明書出力日", "ワンストップ特例_要望", "ワンストップ特例 申請書返送確認日",
    "外部管理番号", "備考", "システム予備欄",
]  # fmt: skip


def choice_row(number: str, **overrides: str) -> list[str]:
    row = dict.fromkeys(CHOICE_HEADER, "")
    row.update(
        {
            "寄附者番号": number,
            "申込日": "令和6年1月5日",
            "入金日": "2024/1/6",
            "氏名": "髙橋 﨑子",
            "フリガナ": "ﾀｶﾊｼ ｻｷｺ",
            "〒": "０４７－００３２",
            "都道府県": "北海道",
            "市区町村": "小樽市",
            "町名・番地": "稲穂１丁目２－３",
            "電話番号": "０９０−１２３４−５６７８",
            "E-mailアドレス": "Sakiko@Example.JP",
            "寄附金額": "￥１０，０００",
            "寄附金の払込方法": "クレジットカード決済",
            "返礼品辞退": "",
            "返礼品1_コード": "OTR-001",
            "返礼品1_名称": "いくら醤油漬け①",
            "返礼品1_配達希望日": "2024-01-20",
            "返礼品1_配達希望時間": "14時～16時",
            "返礼品1_運送業者": "ヤマト運輸",
            "返礼品1_発送日": "R6.1.12",
            "返礼品1_送り先_名前": "髙橋 﨑子",
            "返礼品1_送り先_フリガナ": "ﾀｶﾊｼ ｻｷｺ",
            "返礼品1_送り先_郵便番号": "0470032",
            "返礼品1_送り先_電話番号": "0134-22-1234",
            "ワンストップ特例_要望": "希望する",
            "ワンストップ特例 申請書返送確認日": "2024年1月25日",
            "外部管理番号": f"EX-{number}",
            "備考": "",
        }
    )
    row.update(overrides)
    return list(row.values())


def test_choice_cp932_file_reads_into_typed_rows() -> None:
    rows = [
        choice_row("D001", 備考="不在時は\n宅配ボックスへ, よろしく"),  # lines 2-3
        choice_row(
            "D002",
            **{
                "返礼品2_コード": "OTR-002",
                "返礼品2_名称": "鮭の親子漬け",
                "返礼品2_発送日": "2024/1/15",
            },
        ),
        choice_row("D003", 申込日="2024/13/05"),  # line 5: no such month
        choice_row(
            "D002", **{"返礼品2_コード": "OTR-002", "返礼品2_名称": "鮭の親子漬け"}
        ),  # again
    ]
    imported, result = read_all(csv_bytes(CHOICE_HEADER, rows, "cp932"), "choice")

    assert imported.encoding == "cp932"
    assert imported.unknown_columns == ["システム予備欄"]
    assert imported.groups == [1, 2]
    assert [(type(r).__name__, r.line) for r in result] == [
        ("ParsedRow", 2),
        ("ParsedRow", 4),
        ("RowError", 5),
        ("ParsedRow", 6),
    ]
    first: ParsedRow = result[0]
    assert first.donor.name == "髙橋 﨑子"
    assert first.donor.kana == "タカハシ サキコ"
    assert first.donor.postal_code == "0470032"
    assert first.donor.address == "小樽市稲穂１丁目２－３"
    assert first.donor.phone == "+819012345678"
    assert first.donor.email == "sakiko@example.jp"
    assert first.donation.donated_at == dt.datetime(2024, 1, 5, tzinfo=JAPAN)
    assert first.donation.amount == 10000
    assert first.donation.payment_method == "credit_card"
    assert first.donation.one_stop_requested is True
    assert first.donation.one_stop_received_on == dt.date(2024, 1, 25)
    assert first.donation.note == "不在時は\n宅配ボックスへ, よろしく"
    [gift] = first.gifts
    assert (gift.code, gift.name) == ("OTR-001", "いくら醤油漬け①")
    assert gift.shipped_on == dt.date(2024, 1, 12)
    assert gift.desired_time_slot == "14-16"
    assert gift.ship_to_phone == "+81134221234"
    assert first.needs_callback == [] and first.warnings == []

    assert [g.code for g in result[1].gifts] == ["OTR-001", "OTR-002"]
    error: RowError = result[2]
    assert error.column == "申込日"
    assert "存在しない日付" in error.reason
    assert error.raw[0] == "D003"
    assert result[3].duplicate_of == 4
    assert "4行目と同じ番号の行です" in result[3].warnings


def test_missing_required_column_is_a_file_error() -> None:
    header = [name for name in CHOICE_HEADER if name != "寄附金額"]
    data = csv_bytes(header, [], "cp932")
    with pytest.raises(ImportFileError) as raised:
        open_import(io.BytesIO(data), "choice")
    assert raised.value.missing_columns == ["寄附金額"]
    assert "寄附金額" in raised.value.message


def test_incomplete_donor_is_kept_for_a_callback() -> None:
    rows = [
        choice_row("D010", 電話番号="", 市区町村="", **{"〒": "", "町名・番地": ""}),
        choice_row("D011", 氏名="〓橋 花子"),
    ]
    _, result = read_all(csv_bytes(CHOICE_HEADER, rows, "cp932"), "choice")
    assert all(isinstance(r, ParsedRow) for r in result)
    assert result[0].needs_callback == ["電話番号も住所もありません"]
    assert result[1].needs_callback == ["氏名が読めません"]


def test_bad_values_are_rejected_or_noted_with_their_column() -> None:
    rows = [
        choice_row("D020", 寄附金額="一万円"),
        choice_row("D021", **{"返礼品1_発送日": "平成31年5月1日"}),  # 平成 ended on 4/30
        choice_row("D022", 電話番号="12345", 寄附金の払込方法="物々交換"),
    ]
    _, result = read_all(csv_bytes(CHOICE_HEADER, rows, "cp932"), "choice")
    assert [(r.line, r.column) for r in result[:2]] == [(2, "寄附金額"), (3, "返礼品1_発送日")]
    noted: ParsedRow = result[2]
    assert noted.donor.phone is None and noted.donation.payment_method == ""
    assert noted.needs_callback == []  # the address is still there
    assert any(w.startswith("電話番号：") for w in noted.warnings)
    assert any(w.startswith("寄附金の払込方法：") for w in noted.warnings)


def test_row_with_the_wrong_number_of_columns_is_an_error() -> None:
    data = csv_bytes(CHOICE_HEADER, [choice_row("D030")[:-3]], "cp932")
    [error] = read_all(data, "choice")[1]
    assert isinstance(error, RowError) and error.line == 2 and "列の数" in error.reason


def test_undecodable_bytes_reject_only_their_row() -> None:
    good = csv_bytes(CHOICE_HEADER, [choice_row("D040")], "utf-8")
    bad = csv_bytes(["x"], [choice_row("D041")], "cp932").split(b"\r\n", 1)[1]
    imported, result = read_all(good + bad, "choice", encoding="utf-8")
    assert isinstance(result[0], ParsedRow)
    assert isinstance(result[1], RowError) and result[1].line == 3
    assert result[1].column == "申込日" and "utf-8-sig" in result[1].reason


def test_an_edited_mapping_reads_a_variant_export() -> None:
    # A system version that calls 寄附金額 "金額" and has no 寄附者番号: a saved copy of the
    # preset (plain JSON) with two edits reads it.
    mapping = json.loads(json.dumps(PRESETS["choice"]))
    mapping["donation"]["amount"] = "金額"
    del mapping["donor"]["donor_number"]
    mapping["required"] = ["donated_at", "name", "amount"]
    header = [
        "金額" if name == "寄附金額" else name for name in CHOICE_HEADER if name != "寄附者番号"
    ]
    row = choice_row("D050")[1:]
    imported, [parsed] = read_all(csv_bytes(header, [row], "cp932"), mapping)
    assert parsed.donation.amount == 10000 and parsed.key == "EX-D050"


def test_broken_mappings_and_headers_are_file_errors() -> None:
    data = csv_bytes(CHOICE_HEADER, [], "cp932")
    mapping = json.loads(json.dumps(PRESETS["choice"]))
    mapping["donor"]["birthday"] = "生年月日"
    with pytest.raises(ImportFileError, match="birthday"):
        open_import(io.BytesIO(data), mapping)
    with pytest.raises(ImportFileError, match="見出しが重複"):
        open_import(io.BytesIO(csv_bytes([*CHOICE_HEADER, "氏名"], [], "cp932")), "choice")
    with pytest.raises(ImportFileError, match="空"):
        open_import(io.BytesIO(b""), "choice")


def test_unreadable_record_is_an_error_and_reading_goes_on() -> None:
    rows = [choice_row("D060", 備考="長い" * 100), choice_row("D061")]
    data = csv_bytes(CHOICE_HEADER, rows, "cp932")
    limit = csv.field_size_limit(100)  # a 200-character note now overflows the field limit
    try:
        _, result = read_all(data, "choice")
    finally:
        csv.field_size_limit(limit)
    assert isinstance(result[0], RowError) and result[0].line == 2
    assert "CSVとして読めません" in result[0].reason
    assert isinstance(result[1], ParsedRow) and result[1].line == 3


# --- Furusato360-style import ------------------------------------------------------------

F360_HEADER = [
    "外部管理番号", "寄附申込日", "入金処理日", "名前", "ふりがな", "郵便番号", "都道府県", "市区町村",
    "番地", "建物名", "電話番号", "メールアドレス", "寄附金額", "寄附金の払込方法",
    "ワンストップ特例_希望", "お礼の品_1", "お礼の品_2", "お届け先_名前", "お届け先_ふりがな",
    "お届け先_郵便番号", "お届け先_都道府県", "お届け先_市区町村", "お届け先_番地", "お届け先_建物名",
    "お届け先_電話番号", "お届け希望曜日", "お届け希望時間帯", "備考",
]  # fmt: skip


def f360_row(number: str, **overrides: str) -> list[str]:
    row = dict.fromkeys(F360_HEADER, "")
    row.update(
        {
            "外部管理番号": number,
            "寄附申込日": "令和5年12月31日 23:59",
            "入金処理日": "R6.1.4",
            "名前": "山﨑 太郎",
            "ふりがな": "やまざき たろう",
            "郵便番号": "100-0001",
            "都道府県": "東京都",
            "市区町村": "千代田区",
            "番地": "千代田1-1",
            "建物名": "〇〇ハイツ101",
            "電話番号": "03-1234-5678",
            "メールアドレス": "taro@example.jp",
            "寄附金額": "30,000円",
            "寄附金の払込方法": "銀行振込",
            "ワンストップ特例_希望": "希望しない",
            "お礼の品_1": "[HK-0101] 北海道産ホタテ 1kg",
            "お礼の品_2": "［HK-0202］ 夕張メロン",
            "お届け先_名前": "山﨑 花子",
            "お届け先_ふりがな": "やまざき はなこ",
            "お届け先_郵便番号": "0600001",
            "お届け先_都道府県": "北海道",
            "お届け先_市区町村": "札幌市中央区",
            "お届け先_番地": "北1条西1",
            "お届け先_電話番号": "+819012345678",
            "お届け希望曜日": "土曜日",
            "お届け希望時間帯": "午前中",
        }
    )
    row.update(overrides)
    return list(row.values())


def test_furusato360_utf8_bom_file() -> None:
    rows = [
        f360_row("F-1"),
        f360_row("F-2", **{"お礼の品_1": "ホタテ（コードなし）", "お礼の品_2": ""}),
    ]
    data = b"\xef\xbb\xbf" + csv_bytes(F360_HEADER, rows, "utf-8")
    imported, result = read_all(data, "furusato360")

    assert imported.encoding == "utf-8-sig"
    assert imported.unknown_columns == []
    row: ParsedRow = result[0]
    assert row.donor.kana == "ヤマザキ タロウ"
    assert row.donor.name == "山﨑 太郎"
    assert row.donation.donated_at == dt.datetime(2023, 12, 31, 23, 59, tzinfo=JAPAN)
    assert row.donation.paid_on == dt.date(2024, 1, 4)
    assert row.donation.amount == 30000
    assert row.donation.payment_method == "bank_transfer"
    assert row.donation.one_stop_requested is False
    assert [(g.group, g.code, g.name) for g in row.gifts] == [
        (1, "HK-0101", "北海道産ホタテ 1kg"),
        (2, "HK-0202", "夕張メロン"),
    ]
    # The one お届け先 block belongs to every gift of the row.
    for gift in row.gifts:
        assert gift.ship_to_kana == "ヤマザキ ハナコ"
        assert gift.ship_to_address == "北海道札幌市中央区北1条西1"
        assert gift.ship_to_phone == "+819012345678"
        assert gift.desired_time_slot == "am" and gift.desired_weekday == "土曜日"

    error: RowError = result[1]
    assert (error.line, error.column) == (3, "お礼の品_1")
    assert "[コード] 名称" in error.reason


# --- 楽天 order CSV ------------------------------------------------------------------------

RAKUTEN_HEADER = [
    "受注番号", "注文日時", "入金日", "注文者名字", "注文者名前", "注文者名字フリガナ",
    "注文者名前フリガナ", "注文者郵便番号1", "注文者郵便番号2", "注文者住所都道府県", "注文者住所郡市区",
    "注文者住所それ以降の住所", "注文者電話番号1", "注文者電話番号2", "注文者電話番号3", "メールアドレス",
    "合計金額", "決済方法", "商品番号", "商品名", "送付先名字", "送付先名前", "送付先名字フリガナ",
    "送付先名前フリガナ", "送付先郵便番号1", "送付先郵便番号2", "送付先住所都道府県", "送付先住所郡市区",
    "送付先住所それ以降の住所", "送付先電話番号1", "送付先電話番号2", "送付先電話番号3", "お荷物伝票番号",
    "配送会社", "発送日", "ポイント利用額",
]  # fmt: skip


def rakuten_row(number: str, **overrides: str) -> list[str]:
    row = dict.fromkeys(RAKUTEN_HEADER, "")
    row.update(
        {
            "受注番号": number,
            "注文日時": "2024-01-01 10:23:45",
            "入金日": "2024/01/01",
            "注文者名字": "髙木",
            "注文者名前": "一郎",
            "注文者名字フリガナ": "ﾀｶｷﾞ",
            "注文者名前フリガナ": "ｲﾁﾛｳ",
            "注文者郵便番号1": "530",
            "注文者郵便番号2": "0001",
            "注文者住所都道府県": "大阪府",
            "注文者住所郡市区": "大阪市北区",
            "注文者住所それ以降の住所": "梅田1-1-1\n梅田ビル5階",
            "注文者電話番号1": "06",
            "注文者電話番号2": "1234",
            "注文者電話番号3": "5678",
            "メールアドレス": "ichiro@example.jp",
            "合計金額": "15000",
            "決済方法": "クレジットカード",
            "商品番号": "10000123",
            "商品名": "【ふるさと納税】小樽ワイン①",
            "送付先名字": "髙木",
            "送付先名前": "一郎",
            "送付先郵便番号1": "530",
            "送付先郵便番号2": "0001",
            "送付先住所都道府県": "大阪府",
            "送付先住所郡市区": "大阪市北区",
            "送付先住所それ以降の住所": "梅田1-1-1",
            "送付先電話番号1": "06",
            "送付先電話番号2": "1234",
            "送付先電話番号3": "5678",
            "お荷物伝票番号": "1234-5678-9013",
            "配送会社": "ヤマト運輸",
            "発送日": "2024年1月10日",
            "ポイント利用額": "0",
        }
    )
    row.update(overrides)
    return list(row.values())


def test_rakuten_cp932_order_file() -> None:
    rows = [
        rakuten_row("123456-20240101-00111801"),
        rakuten_row("123456-20240101-00111802", お荷物伝票番号=INVALID_TRACKING),
        rakuten_row("20240101-1"),
        rakuten_row("123456-20240101-00111801"),
    ]
    imported, result = read_all(csv_bytes(RAKUTEN_HEADER, rows, "cp932"), "rakuten")

    assert imported.encoding == "cp932"
    assert imported.unknown_columns == ["ポイント利用額"]
    row: ParsedRow = result[0]
    assert row.line == 2
    assert row.key == "123456-20240101-00111801"
    assert row.donation.portal == "rakuten"
    assert row.donor.name == "髙木 一郎" and row.donor.kana == "タカギ イチロウ"
    assert row.donor.postal_code == "5300001"
    assert row.donor.phone == "+81612345678"
    assert row.donor.address == "大阪市北区梅田1-1-1\n梅田ビル5階"
    assert row.donation.donated_at == dt.datetime(2024, 1, 1, 10, 23, 45, tzinfo=JAPAN)
    [gift] = row.gifts
    assert gift.tracking_number == VALID_TRACKING and gift.tracking_valid is True
    assert gift.carrier == "ヤマト運輸" and gift.shipped_on == dt.date(2024, 1, 10)
    assert gift.ship_to_name == "髙木 一郎" and gift.ship_to_postal_code == "5300001"

    # The quoted address spans two lines: the next record starts on line 4.
    flagged: ParsedRow = result[1]
    assert flagged.line == 4
    assert flagged.gifts[0].tracking_number == INVALID_TRACKING
    assert flagged.gifts[0].tracking_valid is False
    assert "お荷物伝票番号：伝票番号のチェックディジットが合いません" in flagged.warnings[0]

    assert isinstance(result[2], RowError) and result[2].column == "受注番号"
    assert result[3].duplicate_of == 2


def test_explicit_encoding_overrides_detection() -> None:
    data = csv_bytes(RAKUTEN_HEADER, [rakuten_row("123456-20240101-00111801")], "utf-8")
    imported, result = read_all(data, "rakuten", encoding="utf-8")
    assert imported.encoding == "utf-8-sig"
    assert result[0].donor.name == "髙木 一郎"
    with pytest.raises(ImportFileError):
        open_import(io.BytesIO(csv_bytes(RAKUTEN_HEADER, [], "cp932")), "rakuten", "utf-8")


# --- Cell values ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "raw",
    ["2024/1/5", "2024-01-05", "2024年1月5日", "令和6年1月5日", "R6.1.5", "r6/1/5", "20240105",
     "２０２４／１／５", "2024/1/5 0:00"],
)  # fmt: skip
def test_dates(raw: str) -> None:
    assert values.parse_date(raw) == dt.date(2024, 1, 5)


def test_era_dates() -> None:
    assert values.parse_date("令和元年5月1日") == dt.date(2019, 5, 1)
    assert values.parse_date("平成31年4月30日") == dt.date(2019, 4, 30)
    assert values.parse_date("H30.12.1") == dt.date(2018, 12, 1)
    for bad in ("令和元年4月30日", "2024/2/30", "昨日", "2024/1"):
        with pytest.raises(ValueError):
            values.parse_date(bad)


@pytest.mark.parametrize("raw", ["10000", "10,000", "¥10,000", "￥１０，０００", "10,000円"])
def test_amounts(raw: str) -> None:
    assert values.parse_amount(raw) == 10000


def test_booleans_and_slots() -> None:
    assert values.parse_bool("希望する") is True
    assert values.parse_bool("希望しない") is False
    assert values.parse_bool("") is False
    with pytest.raises(ValueError):
        values.parse_bool("たぶん")
    assert values.parse_time_slot("19:00-21:00") == "19-21"
    assert values.parse_time_slot("指定なし") == ""


# --- Streaming ----------------------------------------------------------------------------


def test_large_file_streams_in_constant_memory(tmp_path: Path) -> None:
    path = tmp_path / "choice.csv"
    count = 50_000
    with path.open("wb") as out:
        out.write(csv_bytes(CHOICE_HEADER, [], "cp932"))
        for start in range(0, count, 5_000):
            batch = (
                choice_row(f"D{i:07d}", 電話番号=f"090-{i // 10_000:04d}-{i % 10_000:04d}")
                for i in range(start, start + 5_000)
            )
            out.write(csv_bytes(CHOICE_HEADER, batch, "cp932").split(b"\r\n", 1)[1])
    size = path.stat().st_size

    tracemalloc.start()
    began = time.perf_counter()
    parsed = errors = 0
    with path.open("rb") as binary:
        # Without the duplicate index nothing grows with the file.
        for row in open_import(binary, "choice", find_duplicates=False):
            if isinstance(row, ParsedRow):
                parsed += 1
            else:
                errors += 1
    elapsed = time.perf_counter() - began
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()

    assert (parsed, errors) == (count, 0)
    assert peak < 3_000_000, (peak, size)  # a 16 MB file, a few hundred KB of buffers
    print(
        f"\n{count} rows, {size / 1e6:.1f} MB, {count / elapsed:,.0f} rows/s under tracemalloc, "
        f"peak {peak / 1e6:.1f} MB"
    )


def test_mobile_fast_path_agrees_with_the_phone_normalizer() -> None:
    import random

    from crm import normalize
    from donations_sync.imports import reader

    rng = random.Random(7)
    samples = [
        "０９０−１２３４−５６７８",
        "090 1234 5678",
        "(080)1234-5678",
        "09001234567",
        "+819012345678",
    ]
    for _ in range(2000):
        digits = f"0{rng.choice('789')}0{rng.randint(0, 9)}{rng.randint(0, 9_999_999):07d}"
        samples.append(f"{digits[:3]}-{digits[3:7]}-{digits[7:]}")
    for raw in samples:
        assert reader._normalize_phone(raw) == normalize.normalize_phone(raw), raw
