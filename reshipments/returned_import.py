"""Returned mail from a CSV (the post office's or the provider's list of undeliverables).

Columns (header names, any order; CP932 or UTF-8 with or without BOM):
受付番号 or 外部管理番号 (the donation), 返送物 (返礼品 / 受領証明書 / ワンストップ), 返送日,
伝票番号 (for a returned gift: which shipment), 備考. A row that names no donation of this
municipality, or no shipment for a gift, is kept on the import with its reason and cells.
"""

from __future__ import annotations

import csv
from typing import IO, TYPE_CHECKING

from django.db import transaction
from django.db.models import Q

from crm import normalize
from crm.access import require_write
from crm.audit import audit_record
from crm.models import Municipality
from donations_sync.imports.encoding import open_text
from donations_sync.imports.values import parse_date
from donations_sync.models import Donation, Shipment
from reshipments.models import ReturnedImport, ReturnedItem
from reshipments.services import AUDIT_RETURNED, ReshipmentError, returned_item_add

if TYPE_CHECKING:
    from django.http import HttpRequest

    from crm.models import User

KIND_WORDS = {
    "返礼品": ReturnedItem.Kind.GIFT,
    "お礼の品": ReturnedItem.Kind.GIFT,
    "受領証明書": ReturnedItem.Kind.RECEIPT,
    "寄附金受領証明書": ReturnedItem.Kind.RECEIPT,
    "ワンストップ": ReturnedItem.Kind.ONE_STOP,
    "ワンストップ特例申請書": ReturnedItem.Kind.ONE_STOP,
}
NUMBER_COLUMNS = ("受付番号", "外部管理番号", "寄附番号")


class ReturnedFileError(ValueError):
    """The file as a whole cannot be read (no header, no number column)."""


def _cell(row: dict[str, str], *names: str) -> str:
    for name in names:
        value = (row.get(name) or "").strip()
        if value:
            return normalize.nfkc(value).strip()
    return ""


def _row_item(
    municipality: Municipality, row: dict[str, str]
) -> tuple[Donation, Shipment | None, str, object, str]:
    number = _cell(row, *NUMBER_COLUMNS)
    if not number:
        raise ReshipmentError("受付番号・外部管理番号がありません")
    donation = (
        Donation.objects.filter(municipality=municipality)
        .filter(Q(portal_order_number=number) | Q(external_id=number))
        .select_related("donor")
        .first()
    )
    if donation is None:
        raise ReshipmentError(f"寄附が見つかりません: {number}")
    kind = KIND_WORDS.get(_cell(row, "返送物", "種別"))
    if kind is None:
        raise ReshipmentError("返送物は 返礼品・受領証明書・ワンストップ のいずれかです")
    returned_on = parse_date(_cell(row, "返送日"))
    if returned_on is None:
        raise ReshipmentError("返送日が読めません")
    shipment = None
    if kind == ReturnedItem.Kind.GIFT:
        tracking_number = normalize.clean_tracking_number(_cell(row, "伝票番号"))
        shipments = Shipment.objects.filter(donation=donation)
        if tracking_number:
            shipments = shipments.filter(tracking_number=tracking_number)
        candidates = list(shipments[:2])
        if len(candidates) != 1:
            raise ReshipmentError("返送された配送を特定できません（伝票番号を入れてください）")
        shipment = candidates[0]
    return donation, shipment, kind, returned_on, _cell(row, "備考")


@transaction.atomic
def returned_items_import(
    *,
    actor: User,
    municipality: Municipality,
    file: IO[bytes],
    original_name: str,
    request: HttpRequest | None = None,
) -> ReturnedImport:
    require_write(actor, municipality.pk)
    text, _encoding = open_text(file)
    reader = csv.DictReader(text)
    if not reader.fieldnames or not any(c in reader.fieldnames for c in NUMBER_COLUMNS):
        raise ReturnedFileError(
            "見出し行に 受付番号 または 外部管理番号 の列がありません。"
            "（列: 受付番号/外部管理番号, 返送物, 返送日, 伝票番号, 備考）"
        )
    run = ReturnedImport.objects.create(
        municipality=municipality, original_name=original_name[:255], created_by=actor
    )
    rejections = []
    added = 0
    for line, row in enumerate(reader, start=2):
        try:
            donation, shipment, kind, returned_on, note = _row_item(municipality, row)
            with transaction.atomic():
                returned_item_add(
                    actor=actor,
                    donor=donation.donor,
                    kind=kind,
                    returned_on=returned_on,
                    donation=donation,
                    shipment=shipment,
                    note=note,
                    source=ReturnedItem.Source.CSV,
                    audit=False,
                )
            added += 1
        except ReshipmentError as exc:
            cells = [row.get(name) or "" for name in reader.fieldnames]
            rejections.append({"line": line, "reason": str(exc), "raw": cells})
    run.added, run.rejections = added, rejections
    run.save(update_fields=["added", "rejections"])
    audit_record(
        action=AUDIT_RETURNED,
        request=request,
        user=actor,
        step="imported",
        import_id=run.pk,
        municipality_id=municipality.pk,
        added=added,
        rejected=len(rejections),
    )
    return run
