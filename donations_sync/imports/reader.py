"""From a binary CSV file to ParsedRow / RowError, one record at a time.

Every record of the file ends as exactly one of the two; blank lines are the only thing passed
over. File-level problems (an undetectable header, required columns missing) raise
ImportFileError before any row is read.
"""

from __future__ import annotations

import csv
import datetime as dt
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, fields
from functools import lru_cache
from typing import Any, BinaryIO

from crm import normalize
from donations_sync.imports import values
from donations_sync.imports.encoding import open_text
from donations_sync.imports.styles import PRESETS, SPACE_JOINED, Mapping

# Some exports hold long 備考 fields; the csv module's default limit (128 KiB) is too tight.
csv.field_size_limit(16 * 1024 * 1024)


class ImportFileError(Exception):
    """The file as a whole cannot be read with this mapping."""

    def __init__(self, message: str, missing_columns: list[str] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.missing_columns = missing_columns or []


@dataclass
class DonorBlock:
    donor_number: str = ""
    name: str = ""
    kana: str = ""  # folded to full-width katakana, spaces kept
    postal_code: str = ""  # seven digits
    prefecture: str = ""
    address: str = ""
    building: str = ""
    phone: str | None = None  # E.164
    email: str = ""


@dataclass
class DonationBlock:
    portal: str = ""
    portal_order_number: str = ""
    external_id: str = ""
    donated_at: dt.datetime | None = None  # aware, Asia/Tokyo
    paid_on: dt.date | None = None
    amount: int | None = None
    payment_method: str = ""  # PaymentMethod value
    gift_declined: bool = False
    one_stop_requested: bool = False
    one_stop_received_on: dt.date | None = None
    receipt_issued_on: dt.date | None = None
    thank_you_letter_on: dt.date | None = None
    note: str = ""


@dataclass
class GiftBlock:
    """One gift item of the donation with where and how it ships."""

    group: int = 1  # n of 返礼品n_ / お礼の品_n
    code: str = ""
    name: str = ""
    desired_date: dt.date | None = None
    desired_weekday: str = ""
    desired_time_slot: str = ""  # Shipment.TimeSlot value
    carrier: str = ""  # as written; matched to a Carrier by the importer
    tracking_number: str = ""  # cleaned; kept even when its check digit is wrong
    tracking_valid: bool | None = None  # None: no number
    shipped_on: dt.date | None = None
    ship_to_name: str = ""
    ship_to_kana: str = ""
    ship_to_postal_code: str = ""
    ship_to_address: str = ""
    ship_to_phone: str | None = None


@dataclass
class ParsedRow:
    line: int  # physical line where the record starts (the header is line 1)
    donor: DonorBlock
    donation: DonationBlock
    gifts: list[GiftBlock]
    warnings: list[str] = field(default_factory=list)
    # 要確認: reasons an agent should call the donor back (no phone and no address, unreadable name).
    needs_callback: list[str] = field(default_factory=list)
    duplicate_of: int | None = None  # line of an earlier row with the same number

    @property
    def key(self) -> str:
        """The source's own number for the donation, used to upsert it."""
        d = self.donation
        if d.portal_order_number or d.external_id:
            return d.portal_order_number or d.external_id
        return f"{self.donor.donor_number}|{d.donated_at:%Y-%m-%d %H:%M:%S}|{d.amount}"


@dataclass
class RowError:
    line: int
    column: str  # source column name, '' when the row as a whole is wrong
    reason: str  # Japanese, shown to the operator
    raw: list[str]  # the row as read, for the rejected-rows download


# The donor's and the ship-to phone are usually the same number; a small cache keeps memory flat.
_cached_phone = lru_cache(maxsize=4096)(normalize.normalize_phone)
_PHONE_NOISE = re.compile(r"[\s\-‐‑‒–—―ー−()（）.]")
# Mobile numbers (070/080/090, then 1-9): every one is valid, so the common case skips the
# phonenumbers library (a quarter of a row's parsing time). Anything else goes through it.
_MOBILE = re.compile(r"0[789]0[1-9]\d{7}")


def _normalize_phone(raw: str | None) -> str | None:
    if raw:
        digits = _PHONE_NOISE.sub("", raw if raw.isascii() else normalize.nfkc(raw))
        if _MOBILE.fullmatch(digits):
            return "+81" + digits[1:]
    return _cached_phone(raw)


# field → cell parser; unlisted fields are text. Exports repeat the same cells row after row
# (dates of a day's donations, amounts, 希望する, carriers, time slots), so each parser keeps its
# recent answers: bounded caches of pure functions of the cell (a ValueError is not kept and is
# raised again for the next bad cell).
def _remembered(parser: Callable[[str], Any]) -> Callable[[str], Any]:
    return lru_cache(maxsize=8192)(parser)


_DATE = _remembered(values.parse_date)
_PARSERS: dict[str, Callable[[str], Any]] = {
    "donated_at": _remembered(values.parse_datetime),
    "paid_on": _DATE,
    "one_stop_received_on": _DATE,
    "receipt_issued_on": _DATE,
    "thank_you_letter_on": _DATE,
    "desired_date": _DATE,
    "shipped_on": _DATE,
    "amount": _remembered(values.parse_amount),
    "gift_declined": _remembered(values.parse_bool),
    "one_stop_requested": _remembered(values.parse_bool),
    "payment_method": _remembered(values.parse_payment_method),
    "desired_time_slot": _remembered(values.parse_time_slot),
}
# Readings and postal codes repeat too (families, neighbours, the ship-to copy of the donor's).
_fold_kana = _remembered(normalize.fold_kana)
_postal_code = _remembered(normalize.normalize_postal_code)
# A bad value here is noted on the row instead of rejecting it: the donation is still right.
_LENIENT = frozenset({"payment_method", "desired_time_slot"})


_ABSENT: tuple[list[int], str] = ([], "")


class _CellError(Exception):
    def __init__(self, column: str, reason: str, line: int = 0) -> None:
        self.column = column
        self.reason = reason
        self.line = line  # 0: the record's first line


class CsvImport:
    """An open export: the header checked against the mapping, rows read on iteration."""

    def __init__(
        self,
        binary: BinaryIO,
        mapping: Mapping | str,
        encoding: str | None = None,
        find_duplicates: bool = True,
    ):
        self.find_duplicates = find_duplicates
        self.mapping: Mapping = PRESETS[mapping] if isinstance(mapping, str) else mapping
        check_mapping(self.mapping)
        self.portal: str = self.mapping.get("portal", "")
        # 楽天 writes an order with several items as several rows (mappings saved before this
        # key existed are 楽天 ones by their style).
        self.one_row_per_item = bool(
            self.mapping.get("one_row_per_item", self.mapping.get("style") == "rakuten")
        )
        self._text, self.encoding = open_text(binary, encoding)
        self._reader = csv.reader(self._text)
        try:
            header = next(self._reader)
        except StopIteration:
            raise ImportFileError("ファイルが空です") from None
        self.header = [name.strip() for name in header]
        if any("\ufffd" in name for name in self.header):
            raise ImportFileError(
                f"見出し行を{self.encoding}として読めません。文字コードを指定してください"
            )
        repeated = sorted({name for name in self.header if name and self.header.count(name) > 1})
        if repeated:
            raise ImportFileError(f"見出しが重複しています：{'、'.join(repeated)}")
        self._index = {name: i for i, name in enumerate(self.header)}
        self.groups = self._group_numbers()
        self._check_required()
        # Where each field's cells sit, worked out once rather than per row.
        self._plan: dict[tuple[str, str, int], tuple[list[int], str]] = {}
        for block in ("donor", "donation", "gift"):
            for name in self.mapping.get(block, {}):
                for n in self.groups if block == "gift" else [1]:
                    present = [c for c in self._columns(block, name, n) if c in self._index]
                    indices = [self._index[c] for c in present]
                    self._plan[(block, name, n)] = (indices, present[0] if present else "")
        # Only a group's own columns say whether it is filled in (a shared お届け先 block alone
        # is no gift).
        gift = self.mapping.get("gift", {})
        own = [name for name in gift if any("{n}" in c for c in _as_list(gift[name]))] or list(gift)
        self._gift_own_cells = {
            n: [i for name in own for i in self._plan[("gift", name, n)][0]] for n in self.groups
        }
        # Per block (and gift group): the fields to read with their cells, joiner and parser.
        self._fields: dict[tuple[str, int], list[tuple[str, list[int], str, str, Any]]] = {}
        for block, cls in (("donor", DonorBlock), ("donation", DonationBlock), ("gift", GiftBlock)):
            for n in self.groups if block == "gift" else [1]:
                self._fields[(block, n)] = [
                    (
                        name,
                        *self._plan[(block, name, n)],
                        " " if name in SPACE_JOINED else "",
                        _PARSERS.get(name),
                    )
                    for name in self.mapping.get(block, {})
                    if name in cls.__dataclass_fields__
                ]
        used = {self.header[i] for indices, _ in self._plan.values() for i in indices}
        self.unknown_columns = [name for name in self.header if name not in used]

    # --- header ------------------------------------------------------------------------

    def _group_numbers(self) -> list[int]:
        templates = [c for cols in self.mapping.get("gift", {}).values() for c in _as_list(cols)]
        patterns = [
            re.compile(re.escape(t).replace(re.escape("{n}"), r"(\d+)"))
            for t in templates
            if "{n}" in t
        ]
        if not patterns:
            return [1]
        found = {int(m[1]) for p in patterns for name in self.header if (m := p.fullmatch(name))}
        return sorted(found)

    def _columns(self, block: str, name: str, n: int = 1) -> list[str]:
        return [
            c.replace("{n}", str(n)) for c in _as_list(self.mapping.get(block, {}).get(name, []))
        ]

    def _check_required(self) -> None:
        missing: list[str] = []
        for name in self.mapping.get("required", []):
            block = next(
                b for b in ("donor", "donation", "gift") if name in self.mapping.get(b, {})
            )
            missing += [c for c in self._columns(block, name) if c not in self._index]
        if missing:
            raise ImportFileError(f"必須の列がありません：{'、'.join(missing)}", missing)

    # --- rows --------------------------------------------------------------------------

    def __iter__(self) -> Iterator[ParsedRow | RowError]:
        # Hash of each key → its first line: 100–200 bytes a row (up to 200 MB for a million rows).
        # An importer that finds duplicates in its staging table can turn this off.
        seen: dict[int, int] = {}
        for record in self.records():
            if isinstance(record, RowError):
                yield record
                continue
            row = self.parse_record(*record)
            if isinstance(row, ParsedRow) and self.find_duplicates:
                first = seen.setdefault(hash(row.key), row.line)
                if first != row.line:
                    row.duplicate_of = first
                    row.warnings.append(f"{first}行目と同じ番号の行です")
            yield row

    def records(self) -> Iterator[tuple[int, list[str]] | RowError]:
        """Each record as (line, cells), unparsed; a record that is not even a row of this
        header (wrong width, undecodable bytes, broken quoting) is a RowError already.

        In an export with one row per item (楽天: the order blocks repeated on every row), the
        consecutive rows of one order are one record: their cells joined end to end, a multiple
        of the header's width, at the line of the first. Rows of an order that come back later
        in the file are not merged (the file would have to be held whole); they reach the
        importer as a second record with the same number and are rejected naming the first."""
        if not self.one_row_per_item:
            yield from self._rows()
            return
        order_line, order_cells, order_number = 0, [], ""
        held: list[RowError] = []  # errors inside an order come after it: lines stay ascending
        for record in self._rows():
            if isinstance(record, RowError):
                if order_cells:
                    held.append(record)
                else:
                    yield record
                continue
            line, raw = record
            number = self.record_numbers(raw)[0]
            if order_cells and number and number == order_number:
                order_cells.extend(raw)
                continue
            if order_cells:
                yield order_line, order_cells
                yield from held
                held = []
            order_line, order_cells, order_number = line, list(raw), number
        if order_cells:
            yield order_line, order_cells
            yield from held

    def _rows(self) -> Iterator[tuple[int, list[str]] | RowError]:
        end_of_previous = self._reader.line_num
        width = len(self.header)
        while True:
            line = end_of_previous + 1
            try:
                raw = next(self._reader)
            except StopIteration:
                return
            except csv.Error as error:  # e.g. a field over the size limit: that record only
                end_of_previous = self._reader.line_num
                yield RowError(line, "", f"CSVとして読めません（{error}）", [])
                continue
            end_of_previous = self._reader.line_num
            if not raw or raw == [""]:
                continue  # a blank line is no record
            if len(raw) != width:
                yield RowError(
                    line,
                    "",
                    f"列の数が見出しと違います（見出し{width}列、この行{len(raw)}列）",
                    raw,
                )
                continue
            if "\ufffd" in "\x00".join(raw):  # rare: only then find the column
                undecodable = next(i for i, cell in enumerate(raw) if "\ufffd" in cell)
                reason = f"{self.encoding}として読めない文字があります"
                yield RowError(line, self.header[undecodable], reason, raw)
                continue
            yield line, raw

    def record_numbers(self, raw: list[str]) -> tuple[str, str]:
        """(受付番号, 外部管理番号) of a record as its parsed row would have them, unparsed."""
        order = normalize.nfkc(self._cell(raw, "donation", "portal_order_number")[0]).strip()
        return order, self._cell(raw, "donation", "external_id")[0].replace("\r\n", "\n")

    def parse_record(self, line: int, raw: list[str]) -> ParsedRow | RowError:
        try:
            return self._parse(line, raw)
        except _CellError as error:
            reason = error.reason
            if len(raw) > len(self.header):
                reason += f"（{line}行目からの注文は、どの商品の行も取り込んでいません）"
            return RowError(error.line or line, error.column, reason, raw)

    def _cell(self, raw: list[str], block: str, name: str, n: int = 1) -> tuple[str, str]:
        """(joined value, first column) of a field; ('', '') when its columns are absent."""
        indices, column = self._plan.get((block, name, n), _ABSENT)
        if len(indices) == 1:
            return raw[indices[0]].strip(), column
        joiner = " " if name in SPACE_JOINED else ""
        return joiner.join(part for i in indices if (part := raw[i].strip())), column

    def _value(self, raw: list[str], block: str, name: str, warnings: list[str], n: int = 1) -> Any:
        text, column = self._cell(raw, block, name, n)
        parser = _PARSERS.get(name, values.parse_text)
        try:
            return parser(text)
        except ValueError as error:
            if name in _LENIENT:
                warnings.append(f"{column}：{error}")
                return ""
            raise _CellError(column, str(error)) from None

    def _parse(self, line: int, raw: list[str]) -> ParsedRow:
        warnings: list[str] = []
        donor = DonorBlock(**self._block(raw, "donor", DonorBlock, warnings))
        donation = DonationBlock(
            portal=self.portal, **self._block(raw, "donation", DonationBlock, warnings)
        )
        self._check_donation(raw, donation)
        gifts = [g for n in self.groups if (g := self._gift(raw, n, warnings)) is not None]
        width = len(self.header)
        if len(raw) > width:  # the further rows of a 楽天 order: one more item each
            item_line = line
            for start in range(width, len(raw), width):
                item_line += _lines_spanned(raw[start - width : start])
                row_cells = raw[start : start + width]
                for n in self.groups:
                    try:
                        gift = self._gift(row_cells, n, warnings)
                    except _CellError as error:
                        raise _CellError(error.column, error.reason, item_line) from None
                    if gift is not None:
                        gift.group = start // width * max(self.groups) + n
                        gifts.append(gift)
        row = ParsedRow(line, donor, donation, gifts, warnings)
        if values.name_is_unreadable(donor.name):
            row.needs_callback.append("氏名が読めません")
        if not donor.phone and not (donor.address or donor.postal_code):
            row.needs_callback.append("電話番号も住所もありません")
        return row

    def _values(
        self, raw: list[str], block: str, warnings: list[str], n: int = 1
    ) -> dict[str, Any]:
        """Every field of a block, parsed (the hot loop: one pass over a precomputed plan)."""
        result: dict[str, Any] = {}
        for name, indices, column, joiner, parser in self._fields[(block, n)]:
            if len(indices) == 1:
                text = raw[indices[0]].strip()
            else:
                text = joiner.join(part for i in indices if (part := raw[i].strip()))
            if parser is None:  # values.parse_text
                result[name] = text.replace("\r\n", "\n") if "\r" in text else text
                continue
            try:
                result[name] = parser(text)
            except ValueError as error:
                if name in _LENIENT:
                    warnings.append(f"{column}：{error}")
                    result[name] = ""
                else:
                    raise _CellError(column, str(error)) from None
        return result

    def _block(self, raw: list[str], block: str, cls: type, warnings: list[str]) -> dict[str, Any]:
        result = self._values(raw, block, warnings)
        if block == "donor":
            self._normalize_contact(result, "", raw, block, warnings)
        return result

    def _normalize_contact(
        self,
        result: dict[str, Any],
        prefix: str,
        raw: list[str],
        block: str,
        warnings: list[str],
        n: int = 1,
    ) -> None:
        """Phone → E.164, kana folded, postal code → 7 digits; bad ones noted, not fatal."""
        if f"{prefix}kana" in result:
            result[f"{prefix}kana"] = _fold_kana(result[f"{prefix}kana"]).strip()
        if f"{prefix}phone" in result:
            written = result[f"{prefix}phone"]
            result[f"{prefix}phone"] = _normalize_phone(written)
            if written and not result[f"{prefix}phone"]:
                warnings.append(
                    f"{self._cell(raw, block, f'{prefix}phone', n)[1]}：電話番号として読めません（{written}）"
                )
        if f"{prefix}postal_code" in result:
            written = result[f"{prefix}postal_code"]
            result[f"{prefix}postal_code"] = _postal_code(written)
            if written and not result[f"{prefix}postal_code"]:
                column = self._cell(raw, block, f"{prefix}postal_code", n)[1]
                warnings.append(f"{column}：郵便番号は7桁です（{written}）")
        if "email" in result:
            written = result["email"]
            result["email"] = normalize.normalize_email(written)
            if written and "@" not in written:
                warnings.append(f"メールアドレスの形ではありません（{written}）")

    def _check_donation(self, raw: list[str], donation: DonationBlock) -> None:
        for name, reason in (
            ("donated_at", "申込日がありません"),
            ("amount", "寄附金額がありません"),
        ):
            if getattr(donation, name) is None:
                raise _CellError(self._cell(raw, "donation", name)[1], reason)
        try:
            donation.portal_order_number = values.parse_order_number(
                donation.portal_order_number, self.portal
            )
        except ValueError as error:
            raise _CellError(
                self._cell(raw, "donation", "portal_order_number")[1], str(error)
            ) from None
        if not (
            donation.portal_order_number
            or donation.external_id
            or self._cell(raw, "donor", "donor_number")[0]
        ):
            raise _CellError(
                "", "寄附を特定する番号（受付番号・外部管理番号・寄附者番号）がありません"
            )

    def _gift(self, raw: list[str], n: int, warnings: list[str]) -> GiftBlock | None:
        names = self.mapping.get("gift", {})
        if not any(raw[i].strip() for i in self._gift_own_cells[n]):
            return None
        result = self._values(raw, "gift", warnings, n)
        if "code_and_name" in names:
            text, column = self._cell(raw, "gift", "code_and_name", n)
            try:
                result["code"], result["name"] = values.parse_code_and_name(text)
            except ValueError as error:
                raise _CellError(column, str(error)) from None
        self._normalize_contact(result, "ship_to_", raw, "gift", warnings, n)
        gift = GiftBlock(group=n, **result)
        if gift.tracking_number:
            gift.tracking_number = normalize.clean_tracking_number(gift.tracking_number)
            gift.tracking_valid = normalize.tracking_rule_for(gift.tracking_number) is not None
            if not gift.tracking_valid:
                column = self._cell(raw, "gift", "tracking_number", n)[1]
                warnings.append(
                    f"{column}：伝票番号のチェックディジットが合いません（{gift.tracking_number}）"
                )
        return gift


def _lines_spanned(cells: list[str]) -> int:
    """Physical lines one CSV row took: quoted cells may hold line breaks."""
    breaks = sum(cell.count("\n") + cell.count("\r") - cell.count("\r\n") for cell in cells)
    return 1 + breaks


def check_mapping(mapping: Mapping) -> None:
    """Refuse a (saved, edited) mapping naming fields we do not have, or leaving required ones out."""
    allowed = {
        "donor": {f.name for f in fields(DonorBlock)},
        "donation": {f.name for f in fields(DonationBlock)} - {"portal"},
        "gift": ({f.name for f in fields(GiftBlock)} - {"group", "tracking_valid"})
        | {"code_and_name"},
    }
    mapped: set[str] = set()
    for block, names in allowed.items():
        for name, columns in mapping.get(block, {}).items():
            if name not in names:
                raise ImportFileError(f"列の対応表：{block} に {name} という項目はありません")
            if not columns or not all(isinstance(c, str) and c for c in _as_list(columns)):
                raise ImportFileError(f"列の対応表：{block}.{name} の列名が空です")
            mapped.add(name)
    unmapped = [name for name in mapping.get("required", []) if name not in mapped]
    if unmapped:
        raise ImportFileError(
            f"列の対応表：必須項目に列が割り当てられていません：{'、'.join(unmapped)}"
        )


def _as_list(columns: str | list[str]) -> list[str]:
    return [columns] if isinstance(columns, str) else list(columns)


def open_import(
    binary: BinaryIO,
    mapping: Mapping | str,
    encoding: str | None = None,
    find_duplicates: bool = True,
) -> CsvImport:
    """Open an export for reading. ``mapping`` is a preset name (choice, furusato360, rakuten)
    or a saved mapping; ``encoding`` overrides detection (e.g. 'cp932', 'utf-8')."""
    return CsvImport(binary, mapping, encoding, find_duplicates)
