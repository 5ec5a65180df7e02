"""The core's change feed: pulled page by page from its HTTP API, or pushed to us signed; both
apply each change through ``change_receive``.

- Idempotent: every change id is written once to the receipt log (CoreChange, unique id) in the
  transaction that applies it; a change id seen before is a duplicate and changes nothing.
- In order per record: a change older than the record's ``core_updated_at`` is kept as stale
  and not applied, so a late, older update never overwrites a newer one.
- Nothing dropped: a change naming an unknown municipality, donation, gift item or carrier, or
  unreadable data, is kept as 保留 with its reason (Japanese) until it is retried.
- A pulled page and the cursor after it commit together, under a row lock on the cursor: a
  crash before the commit re-reads the page, and the receipt log skips what had been applied.

The API's shape is in the README (「基幹システムの変更フィード」).
"""

from __future__ import annotations

import datetime
import hashlib
import hmac
import json
import logging
import time
from dataclasses import dataclass, field
from typing import Any

from django.conf import settings
from django.db import DataError, IntegrityError, transaction
from django.db.models import Case, F, Value, When
from django.http import HttpRequest
from django.utils import timezone
from django.utils.dateparse import parse_date, parse_datetime

from crm import normalize
from crm.audit import audit_record
from crm.models import AuditLog, Carrier, Municipality
from donations_sync.core_client import CoreClient, CoreError, CoreRetryableError, core_client
from donations_sync.models import (
    CoreChange,
    CoreFeedCursor,
    CoreShipmentId,
    Donation,
    GiftItem,
    OutboxMessage,
    Portal,
    Shipment,
)
from donations_sync.signals import DecisionAnswer, core_change_applied, core_decision_answered

logger = logging.getLogger("donations_sync.feed")

CURSOR_NAME = "core"
DUPLICATE = "duplicate"
APPLIED = CoreChange.Outcome.APPLIED
STALE = CoreChange.Outcome.STALE
QUARANTINED = CoreChange.Outcome.QUARANTINED

SIGNATURE_HEADER = "X-Core-Signature"
TIMESTAMP_HEADER = "X-Core-Timestamp"


class Refused(Exception):
    """This change cannot be applied as it is: kept as 保留 with ``reason``."""

    def __init__(self, reason: str, municipality: Municipality | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.municipality = municipality


# --- Reading a change ------------------------------------------------------------------------


def _text(data: dict, key: str, label: str, *, required: bool = False, limit: int = 100) -> str:
    value = data.get(key)
    if value is None or value == "":
        if required:
            raise Refused(f"{label}（{key}）がありません")
        return ""
    if isinstance(value, bool) or not isinstance(value, str | int):
        raise Refused(f"{label}（{key}）が文字列ではありません: {value!r}")
    text = str(value).strip()
    if len(text) > limit:
        raise Refused(f"{label}（{key}）が長すぎます（{limit}文字まで）")
    return text


def _date(data: dict, key: str, label: str) -> datetime.date | None:
    value = data.get(key)
    if value is None or value == "":
        return None
    parsed = parse_date(value) if isinstance(value, str) else None
    if parsed is None:
        raise Refused(f"{label}（{key}）が日付として読めません: {value!r}")
    return parsed


def _changed_at(change: dict) -> datetime.datetime:
    value = change.get("changed_at")
    try:
        parsed = parse_datetime(value) if isinstance(value, str) else None
    except ValueError:
        parsed = None
    if parsed is None:
        raise Refused(f"変更日時（changed_at）が日時として読めません: {value!r}")
    if timezone.is_naive(parsed):
        raise Refused(f"変更日時（changed_at）にタイムゾーンがありません: {value!r}")
    return parsed


def _choice(data: dict, key: str, label: str, choices: Any) -> str | None:
    if key not in data:
        return None
    value = data[key]
    if value not in choices.values:
        raise Refused(f"{label}「{value}」は不明です（{'・'.join(choices.values)}）")
    return value


def change_id_of(change: Any) -> str | None:
    if not isinstance(change, dict):
        return None
    value = change.get("id")
    if isinstance(value, bool) or not isinstance(value, str | int) or str(value).strip() == "":
        return None
    text = str(value).strip()
    return text if len(text) <= 100 else None


# --- Finding our records ---------------------------------------------------------------------


class Lookups:
    """Municipalities and carriers by code, read once per page (or push) instead of per change."""

    def __init__(self) -> None:
        self._municipalities: dict[str, Municipality | None] = {}
        self._carriers: dict[str, Carrier | None] = {}

    def municipality(self, code: str) -> Municipality:
        if code not in self._municipalities:
            self._municipalities[code] = Municipality.objects.filter(code=code).first()
        municipality = self._municipalities[code]
        if municipality is None:
            raise Refused(f"団体コード「{code}」の自治体が登録されていません")
        return municipality

    def carrier(self, code: str) -> Carrier | None:
        if code not in self._carriers:
            self._carriers[code] = Carrier.objects.filter(code=code).first()
        return self._carriers[code]


def _donation(municipality: Municipality, key: Any) -> Donation:
    """By 外部管理番号, else by portal and 受付番号, within the municipality; locked."""
    if not isinstance(key, dict):
        raise Refused(
            "寄附を特定する番号（external_id または portal と portal_order_number）がありません"
        )
    external_id = _text(key, "external_id", "外部管理番号", limit=40)
    order_number = _text(key, "portal_order_number", "受付番号", limit=40)
    portal = _text(key, "portal", "ポータル", limit=12)
    donations = Donation.objects.select_for_update().filter(municipality=municipality)
    if external_id:
        found = donations.filter(external_id=external_id).first()
    elif order_number and portal:
        if portal not in Portal.values:
            raise Refused(f"ポータル「{portal}」は不明です", municipality)
        found = donations.filter(portal=portal, portal_order_number=order_number).first()
    else:
        raise Refused(
            "寄附を特定する番号（external_id または portal と portal_order_number）がありません",
            municipality,
        )
    if found is None:
        numbers = "・".join(
            part
            for part in (
                f"外部管理番号 {external_id}" if external_id else "",
                f"受付番号 {order_number}" if order_number else "",
            )
            if part
        )
        raise Refused(
            f"{municipality.name}に該当する寄附が見つかりません（{numbers}）", municipality
        )
    return found


# --- Applying --------------------------------------------------------------------------------


@dataclass
class Applied:
    outcome: str
    donation: Donation | None = None
    shipment: Shipment | None = None
    created: bool = False
    fields: list[str] = field(default_factory=list)
    # A decision's answer announces itself (core_decision_answered), not core_change_applied.
    announced: bool = False


def _is_stale(record: Donation | Shipment, changed_at: datetime.datetime) -> bool:
    return record.core_updated_at is not None and changed_at < record.core_updated_at


def _set(record: Any, name: str, value: Any, changed: list[str]) -> None:
    if getattr(record, name) != value:
        setattr(record, name, value)
        changed.append(name)


def _apply_donation(
    municipality: Municipality, changed_at: datetime.datetime, data: dict
) -> Applied:
    donation = _donation(municipality, data)
    if _is_stale(donation, changed_at):
        return Applied(STALE, donation=donation)
    changed: list[str] = []
    status = _choice(data, "status", "寄附の状態", Donation.Status)
    if status is not None:
        _set(donation, "status", status, changed)
    for key, label in (
        ("paid_on", "入金日"),
        ("receipt_issued_on", "受領証明書発行日"),
        ("one_stop_received_on", "ワンストップ申請書受付日"),
    ):
        if key in data:
            _set(donation, key, _date(data, key, label), changed)
    if "one_stop_requested" in data:
        if not isinstance(data["one_stop_requested"], bool):
            raise Refused("ワンストップ特例希望（one_stop_requested）が true/false ではありません")
        _set(donation, "one_stop_requested", data["one_stop_requested"], changed)
    donation.core_updated_at = changed_at
    donation.save(update_fields=[*changed, "core_updated_at", "updated_at"])
    return Applied(APPLIED, donation=donation, fields=changed)


def _ship_to(data: dict, fallback: Shipment | None, donation: Donation) -> dict[str, str]:
    given = data.get("ship_to")
    if given is not None and not isinstance(given, dict):
        raise Refused("送り先（ship_to）の形が不正です")
    given = given or {}
    if fallback is not None:
        base = {
            "ship_to_name": fallback.ship_to_name,
            "ship_to_kana": fallback.ship_to_kana,
            "ship_to_postal_code": fallback.ship_to_postal_code,
            "ship_to_address": fallback.ship_to_address,
            "ship_to_phone": fallback.ship_to_phone,
        }
    else:
        donor = donation.donor
        base = {
            "ship_to_name": donor.name,
            "ship_to_kana": donor.name_kana,
            "ship_to_postal_code": donor.postal_code,
            "ship_to_address": f"{donor.prefecture}{donor.address}",
            "ship_to_phone": "",
        }
    return {**base, **_ship_to_given(given)}


def _ship_to_given(given: dict) -> dict[str, str]:
    out: dict[str, str] = {}
    if "name" in given:
        out["ship_to_name"] = _text(given, "name", "送り先氏名", required=True, limit=80)
    if "kana" in given:
        out["ship_to_kana"] = normalize.normalize_kana(_text(given, "kana", "送り先フリガナ"))
    if "postal_code" in given:
        postal = normalize.normalize_postal_code(_text(given, "postal_code", "送り先郵便番号"))
        if len(postal) != 7:
            raise Refused(f"送り先郵便番号が7桁ではありません: {given['postal_code']!r}")
        out["ship_to_postal_code"] = postal
    if "address" in given:
        out["ship_to_address"] = _text(given, "address", "送り先住所", required=True, limit=300)
    if "phone" in given:
        raw = _text(given, "phone", "送り先電話番号", limit=30)
        out["ship_to_phone"] = (normalize.normalize_phone(raw) or "") if raw else ""
    return out


def _find_or_create_shipment(
    municipality: Municipality, data: dict
) -> tuple[Shipment | None, bool, Donation]:
    core_id = _text(data, "shipment_id", "基幹システム配送ID", required=True)
    ref = CoreShipmentId.objects.filter(core_id=core_id).first()
    donation = None
    if ref is None:
        # Locks the donation: two changes creating or linking the same new shipment at once
        # (a pull and a push) take turns here, and the second finds the first's link below.
        donation = _donation(municipality, data.get("donation"))
        ref = CoreShipmentId.objects.filter(core_id=core_id).first()
    if ref is not None:
        shipment = (
            Shipment.objects.select_for_update(of=("self",))
            .select_related("donation")
            .get(pk=ref.shipment_id)
        )
        if shipment.municipality_id != municipality.pk:
            raise Refused(f"配送（基幹ID {core_id}）は別の自治体の配送です", municipality)
        return shipment, False, shipment.donation
    assert donation is not None
    gift_code = _text(data, "gift_code", "返礼品コード", required=True, limit=30)
    gift_item = GiftItem.objects.filter(municipality=municipality, code=gift_code).first()
    if gift_item is None:
        raise Refused(f"{municipality.name}に返礼品コード「{gift_code}」がありません", municipality)
    delivery = data.get("delivery_number", 1)
    if isinstance(delivery, bool) or not isinstance(delivery, int) or not 1 <= delivery <= 999:
        raise Refused(
            f"回次（delivery_number）が正の整数ではありません: {delivery!r}", municipality
        )
    replaces_id = _text(data, "replaces", "置き換え元の配送ID")
    replaced = None
    shipment = None
    if replaces_id:
        replaced_ref = CoreShipmentId.objects.filter(core_id=replaces_id).first()
        replaced = replaced_ref.shipment if replaced_ref else None
        if replaced is None or replaced.donation_id != donation.pk:
            raise Refused(
                f"置き換え元の配送（基幹ID {replaces_id}）がこの寄附に見つかりません", municipality
            )
        # A re-shipment we requested ourselves already has its row (waiting for the core's
        # answer): the core's first word about it links that row instead of adding another.
        shipment = (
            Shipment.objects.select_for_update(of=("self",))
            .filter(replaces=replaced, gift_item=gift_item, core_ref__isnull=True)
            .order_by("id")
            .first()
        )
    else:
        # A shipment imported from a CSV before the core named it: its first change links it.
        shipment = (
            Shipment.objects.select_for_update(of=("self",))
            .filter(
                donation=donation,
                gift_item=gift_item,
                delivery_number=delivery,
                replaces__isnull=True,
                core_ref__isnull=True,
            )
            .order_by("id")
            .first()
        )
    created = False
    if shipment is None:
        shipment = Shipment(
            municipality=municipality,
            donation=donation,
            gift_item=gift_item,
            delivery_number=delivery,
            replaces=replaced,
            **_ship_to(data, replaced, donation),
        )
        created = True
    else:
        CoreShipmentId.objects.create(core_id=core_id, shipment=shipment)
    shipment._core_id = core_id  # type: ignore[attr-defined]  # linked once it is saved
    return shipment, created, donation


def _apply_shipment(
    municipality: Municipality, changed_at: datetime.datetime, data: dict, lookups: Lookups
) -> Applied:
    shipment, created, donation = _find_or_create_shipment(municipality, data)
    assert shipment is not None
    if not created and _is_stale(shipment, changed_at):
        return Applied(STALE, donation=donation, shipment=shipment)
    changed: list[str] = []
    status = _choice(data, "status", "配送の状態", Shipment.Status)
    if status is not None:
        _set(shipment, "status", status, changed)
    if not created and isinstance(data.get("ship_to"), dict):
        for name, value in _ship_to_given(data["ship_to"]).items():
            _set(shipment, name, value, changed)
    for key, label in (("shipped_on", "発送日"), ("delivered_on", "配達日")):
        if key in data:
            _set(shipment, key, _date(data, key, label), changed)
    if shipment.status == Shipment.Status.SHIPPED and shipment.shipped_on is None:
        # The core says shipped without a date: the day it said so is the best we know.
        _set(shipment, "shipped_on", timezone.localdate(changed_at), changed)
    if "carrier" in data:
        code = _text(data, "carrier", "配送業者コード", limit=30)
        carrier = lookups.carrier(code) if code else None
        if code and carrier is None:
            raise Refused(f"配送業者コード「{code}」が登録されていません", municipality)
        _set(shipment, "carrier", carrier, changed)
    if "tracking_number" in data or "carrier" in changed:
        if "tracking_number" in data:
            number = normalize.clean_tracking_number(
                _text(data, "tracking_number", "伝票番号", limit=40)
            )
            if len(number) > 20:
                raise Refused(f"伝票番号が長すぎます: {number}", municipality)
            _set(shipment, "tracking_number", number, changed)
        number = shipment.tracking_number
        if not number:
            valid = None
        elif shipment.carrier is not None:
            valid = normalize.tracking_number_is_valid(number, shipment.carrier.tracking_rule)
        else:
            valid = normalize.tracking_rule_for(number) is not None
        # An invalid number is kept (it is what is printed on the parcel) and flagged.
        _set(shipment, "tracking_valid", valid, changed)
        # Items of one donation may travel in one parcel and share its number; another
        # donation's parcel may not (shipment_tracking_one_donation).
        if (
            number
            and shipment.carrier is not None
            and (
                Shipment.objects.filter(carrier=shipment.carrier, tracking_number=number)
                .exclude(donation_id=shipment.donation_id)
                .exists()
            )
        ):
            raise Refused(f"伝票番号 {number} は別の寄附の配送に登録済みです", municipality)
    shipment.core_updated_at = changed_at
    if created:
        shipment.save()
        CoreShipmentId.objects.create(core_id=shipment._core_id, shipment=shipment)  # type: ignore[attr-defined]
    else:
        shipment.save(update_fields=[*changed, "core_updated_at", "updated_at"])
    return Applied(APPLIED, donation=donation, shipment=shipment, created=created, fields=changed)


# --- Answers to decisions sent through the outbox (donations_sync.outbox) ----------------------

ANSWERS = ("accepted", "tracking", "shipped", "delivered", "refused")
# How far an answer takes a decision: answers only move it forward. "tracking" again (the
# carrier re-labelled the parcel) applies when it is newer than the last answer.
_ANSWER_RANK = {"": 0, "accepted": 1, "tracking": 2, "shipped": 3, "delivered": 4}
_SHIPMENT_RANK = {
    Shipment.Status.PENDING: 0,
    Shipment.Status.REQUESTED: 1,
    Shipment.Status.SHIPPED: 2,
    Shipment.Status.DELIVERED: 3,
}
_SHIPMENT_STATUS_OF = {
    "accepted": Shipment.Status.REQUESTED,
    "shipped": Shipment.Status.SHIPPED,
    "delivered": Shipment.Status.DELIVERED,
}


def _answer_is_news(message: OutboxMessage, answer: str, changed_at: datetime.datetime) -> bool:
    if message.status in (OutboxMessage.Status.REFUSED, OutboxMessage.Status.CANCELLED) and (
        message.answer == "refused" or answer == "refused"
    ):
        return False  # refused stays refused; a second refusal is nothing new
    if answer == "refused":
        # The core may still turn down what it accepted, not what it has shipped.
        return _ANSWER_RANK.get(message.answer, 0) < _ANSWER_RANK["shipped"]
    rank, current = _ANSWER_RANK[answer], _ANSWER_RANK.get(message.answer, 0)
    if rank != current:
        return rank > current
    return answer == "tracking" and (
        message.answered_at is None or changed_at > message.answered_at
    )


def _answer_shipment(
    shipment: Shipment,
    municipality: Municipality,
    answer: str,
    data: dict,
    changed_at: datetime.datetime,
    lookups: Lookups,
) -> list[str]:
    """The decision's shipment (a replacement row) as the answer says; status forward only."""
    changed: list[str] = []
    core_id = _text(data, "shipment_id", "基幹システム配送ID")
    if core_id and not CoreShipmentId.objects.filter(shipment=shipment).exists():
        other = CoreShipmentId.objects.filter(core_id=core_id).first()
        if other is not None:
            raise Refused(f"配送（基幹ID {core_id}）は別の配送に登録済みです", municipality)
        CoreShipmentId.objects.create(core_id=core_id, shipment=shipment)
    target = _SHIPMENT_STATUS_OF.get(answer)
    rank = _SHIPMENT_RANK.get(shipment.status)
    if answer == "refused":
        if rank is not None and rank <= _SHIPMENT_RANK[Shipment.Status.REQUESTED]:
            _set(shipment, "status", Shipment.Status.CANCELLED, changed)
    elif target is not None and rank is not None and _SHIPMENT_RANK[target] > rank:
        _set(shipment, "status", target, changed)
    for key, label in (("shipped_on", "発送日"), ("delivered_on", "配達日")):
        if data.get(key):
            _set(shipment, key, _date(data, key, label), changed)
    if shipment.status in (Shipment.Status.SHIPPED, Shipment.Status.DELIVERED) and (
        shipment.shipped_on is None
    ):
        _set(shipment, "shipped_on", timezone.localdate(changed_at), changed)
    if shipment.status == Shipment.Status.DELIVERED and shipment.delivered_on is None:
        _set(shipment, "delivered_on", timezone.localdate(changed_at), changed)
    if data.get("carrier"):
        code = _text(data, "carrier", "配送業者コード", limit=30)
        carrier = lookups.carrier(code)
        if carrier is None:
            raise Refused(f"配送業者コード「{code}」が登録されていません", municipality)
        _set(shipment, "carrier", carrier, changed)
    if data.get("tracking_number"):
        number = normalize.clean_tracking_number(
            _text(data, "tracking_number", "伝票番号", limit=40)
        )
        if len(number) > 20:
            raise Refused(f"伝票番号が長すぎます: {number}", municipality)
        if shipment.carrier is not None:
            valid = normalize.tracking_number_is_valid(number, shipment.carrier.tracking_rule)
            taken = (
                Shipment.objects.filter(carrier=shipment.carrier, tracking_number=number)
                .exclude(pk=shipment.pk)
                .exists()
            )
            if taken:
                raise Refused(f"伝票番号 {number} は別の配送に登録済みです", municipality)
        else:
            valid = normalize.tracking_rule_for(number) is not None
        _set(shipment, "tracking_number", number, changed)
        # An invalid number is kept (it is what is printed on the parcel) and flagged.
        _set(shipment, "tracking_valid", valid, changed)
    if changed:
        shipment.save(update_fields=[*changed, "updated_at"])
    return changed


def _answer_detail(data: dict) -> dict[str, Any]:
    keys = (
        "core_reference",
        "reference",
        "shipment_id",
        "carrier",
        "tracking_number",
        "shipped_on",
        "delivered_on",
        "reason",
    )
    detail = {key: data[key] for key in keys if data.get(key) not in (None, "")}
    if "reference" in detail:
        detail.setdefault("core_reference", detail.pop("reference"))
    return detail


def _apply_answer(
    message: OutboxMessage,
    answer: str,
    data: dict,
    changed_at: datetime.datetime,
    lookups: Lookups,
) -> Applied:
    """``message`` is locked. Records the answer on the message and its shipment, and sends
    ``core_decision_answered`` after the commit; an answer that is no news is STALE."""
    if not _answer_is_news(message, answer, changed_at):
        return Applied(STALE, donation=message.donation, shipment=message.shipment)
    municipality = message.municipality
    detail = _answer_detail(data)
    fields: list[str] = []
    if message.shipment is not None:
        fields = _answer_shipment(message.shipment, municipality, answer, data, changed_at, lookups)
    message.status = (
        OutboxMessage.Status.REFUSED if answer == "refused" else OutboxMessage.Status.ACCEPTED
    )
    message.answer = answer
    message.answered_at = changed_at
    message.next_attempt_at = None
    if detail.get("core_reference"):
        message.core_reference = str(detail["core_reference"])[:100]
    if answer == "refused":
        message.refusal_reason = str(detail.get("reason") or "理由の記載なし")[:500]
    message.save(
        update_fields=[
            "status",
            "answer",
            "answered_at",
            "next_attempt_at",
            "core_reference",
            "refusal_reason",
            "updated_at",
        ]
    )
    message_id = message.pk

    _announce_answer(message_id, answer, detail)
    return Applied(
        APPLIED, donation=message.donation, shipment=message.shipment, fields=fields, announced=True
    )


def _announce_answer(message_id: int, answer: str, detail: dict[str, Any]) -> None:
    """core_decision_answered after the commit, with the message as committed."""
    _announce_answers([(message_id, answer, detail)])


def _announce_answers(answered: list[tuple[int, str, dict[str, Any]]]) -> None:
    """core_decision_answered after the commit, once for the answered messages, read back in one
    query (a delivered batch is announced without a query per message)."""

    def send() -> None:
        if not core_decision_answered.has_listeners(OutboxMessage):
            return
        fresh = OutboxMessage.objects.select_related("shipment", "donation").in_bulk(
            [message_id for message_id, _, _ in answered]
        )
        answers = [
            DecisionAnswer(message=fresh[message_id], answer=answer, detail=detail)
            for message_id, answer, detail in answered
        ]
        for receiver, error in core_decision_answered.send_robust(
            sender=OutboxMessage, answers=answers
        ):
            if isinstance(error, Exception):
                logger.error(
                    "core_decision_answered receiver %r failed for outbox %s: %r",
                    receiver,
                    ", ".join(str(message_id) for message_id, _, _ in answered),
                    error,
                )

    transaction.on_commit(send, robust=True)


@dataclass(frozen=True)
class FirstAnswer:
    message_id: int
    shipment_id: int | None
    answer: str  # accepted or refused
    data: dict


def first_answers_apply(answers: list[FirstAnswer]) -> set[int]:
    """The POST answers of a delivered batch, for the messages that have none yet, in one
    transaction: the messages locked in one query, written by one UPDATE per kind of answer,
    their shipments by one more. Returns the ids applied; the others (an answer came first
    through the feed or the callback, or the answer names a core shipment) go through
    ``decision_answer_apply`` one by one."""
    answers = [
        a for a in answers if a.answer in ("accepted", "refused") and not a.data.get("shipment_id")
    ]
    if not answers:
        return set()
    changed_at = timezone.now()
    with transaction.atomic():
        # FOR UPDATE re-checks ``answer = ''`` on a row a concurrent answer just committed, as
        # the single conditional UPDATE does: an answer is applied once.
        open_ids = set(
            OutboxMessage.objects.select_for_update()
            .filter(pk__in=[a.message_id for a in answers], answer="")
            .values_list("pk", flat=True)
        )
        todo = [a for a in answers if a.message_id in open_ids]
        if not todo:
            return set()
        details = {a.message_id: _answer_detail(a.data) for a in todo}
        for answer in ("accepted", "refused"):
            group = [a for a in todo if a.answer == answer]
            if not group:
                continue
            values: dict[str, Any] = {
                "status": OutboxMessage.Status.REFUSED
                if answer == "refused"
                else OutboxMessage.Status.ACCEPTED,
                "answer": answer,
                "answered_at": changed_at,
                "next_attempt_at": None,
                "updated_at": timezone.now(),
            }
            references = [
                When(pk=a.message_id, then=Value(reference))
                for a in group
                if (reference := str(details[a.message_id].get("core_reference") or "")[:100])
            ]
            if references:
                values["core_reference"] = Case(*references, default=F("core_reference"))
            if answer == "refused":
                values["refusal_reason"] = Case(
                    *[
                        When(
                            pk=a.message_id,
                            then=Value(
                                str(details[a.message_id].get("reason") or "理由の記載なし")[:500]
                            ),
                        )
                        for a in group
                    ],
                    default=F("refusal_reason"),
                )
            OutboxMessage.objects.filter(pk__in=[a.message_id for a in group], answer="").update(
                **values
            )
            shipment_ids = [a.shipment_id for a in group if a.shipment_id is not None]
            if shipment_ids:
                shipments = Shipment.objects.filter(pk__in=shipment_ids)
                if answer == "refused":
                    shipments = shipments.filter(
                        status__in=[Shipment.Status.PENDING, Shipment.Status.REQUESTED]
                    )
                    target = Shipment.Status.CANCELLED
                else:
                    shipments = shipments.filter(status=Shipment.Status.PENDING)
                    target = Shipment.Status.REQUESTED
                shipments.update(status=target, updated_at=timezone.now())
        _announce_answers([(a.message_id, a.answer, details[a.message_id]) for a in todo])
    return open_ids


def _first_answer(
    message_id: int,
    shipment_id: int | None,
    answer: str,
    data: dict,
    changed_at: datetime.datetime,
) -> bool:
    """The POST's answer when the message has none yet: two conditional UPDATEs, no locks held
    across a read (delivery's hot path). False if another answer came first."""
    detail = _answer_detail(data)
    reference = str(detail.get("core_reference") or "")[:100]
    with transaction.atomic():
        values: dict[str, Any] = {
            "status": OutboxMessage.Status.REFUSED
            if answer == "refused"
            else OutboxMessage.Status.ACCEPTED,
            "answer": answer,
            "answered_at": changed_at,
            "next_attempt_at": None,
            "updated_at": timezone.now(),
        }
        if reference:
            values["core_reference"] = reference
        if answer == "refused":
            values["refusal_reason"] = str(detail.get("reason") or "理由の記載なし")[:500]
        if not OutboxMessage.objects.filter(pk=message_id, answer="").update(**values):
            return False
        if shipment_id is not None:
            shipments = Shipment.objects.filter(pk=shipment_id)
            if answer == "refused":
                shipments = shipments.filter(
                    status__in=[Shipment.Status.PENDING, Shipment.Status.REQUESTED]
                )
                target = Shipment.Status.CANCELLED
            else:
                shipments = shipments.filter(status=Shipment.Status.PENDING)
                target = Shipment.Status.REQUESTED
            shipments.update(status=target, updated_at=timezone.now())
        _announce_answer(message_id, answer, detail)
    return True


def _locked_message(**lookup: Any) -> OutboxMessage | None:
    return (
        OutboxMessage.objects.select_for_update(of=("self",))
        .select_related("municipality", "donation", "shipment")
        .filter(**lookup)
        .first()
    )


def _apply_decision(
    municipality: Municipality, changed_at: datetime.datetime, data: dict, lookups: Lookups
) -> Applied:
    key = _text(data, "idempotency_key", "冪等キー", required=True)
    answer = data.get("answer")
    if answer not in ANSWERS:
        raise Refused(f"回答（answer）「{answer}」は不明です（{'・'.join(ANSWERS)}）")
    message = _locked_message(idempotency_key=key)
    if message is None:
        raise Refused(f"送信（冪等キー {key}）が見つかりません", municipality)
    if message.municipality_id != municipality.pk:
        raise Refused(f"送信（冪等キー {key}）は別の自治体の送信です", municipality)
    if message.shipment is not None:
        message.shipment = Shipment.objects.select_for_update().get(pk=message.shipment_id)
    return _apply_answer(message, answer, data, changed_at, lookups)


def decision_answer_apply(
    *,
    message_id: int,
    answer: str,
    data: dict,
    changed_at: datetime.datetime | None,
    shipment_id: int | None | bool = False,
) -> str:
    """The answer in the core's reply to our POST (accepted with its reference, or refused with
    its reason). Returns applied or stale. A part of the answer we cannot apply to the
    shipment (an unknown core shipment id) is noted on the message, not lost."""
    changed_at = changed_at or timezone.now()
    if answer in ("accepted", "refused") and not data.get("shipment_id"):
        if shipment_id is False:  # not given by the caller: read it
            found = OutboxMessage.objects.filter(pk=message_id).values("shipment_id").first()
            if found is None:
                return STALE
            shipment_id = found["shipment_id"]
        if _first_answer(message_id, shipment_id, answer, data, changed_at):  # type: ignore[arg-type]
            return APPLIED
    for attempt in ("whole", "message only"):
        try:
            with transaction.atomic():
                message = _locked_message(pk=message_id)
                if message is None:
                    return STALE
                if message.shipment is not None:
                    message.shipment = Shipment.objects.select_for_update().get(
                        pk=message.shipment_id
                    )
                used = (
                    data
                    if attempt == "whole"
                    else {
                        k: v
                        for k, v in data.items()
                        if k in ("reference", "core_reference", "reason")
                    }
                )
                return _apply_answer(message, answer, used, changed_at, Lookups()).outcome
        except Refused as exc:
            logger.warning("outbox %s: answer not applied to its shipment: %s", message_id, exc)
            OutboxMessage.objects.filter(pk=message_id).update(last_error=exc.reason[:500])
    return STALE


def _apply(change: Any, lookups: Lookups) -> tuple[Applied, Municipality, datetime.datetime]:
    if not isinstance(change, dict):
        raise Refused("変更がオブジェクトではありません")
    if change_id_of(change) is None:
        raise Refused("変更ID（id）がないか不正です")
    kind = change.get("type")
    if kind not in ("donation", "shipment", "decision"):
        raise Refused(f"種別（type）「{kind}」は不明です（donation・shipment・decision）")
    code = _text(change, "municipality_code", "団体コード", required=True, limit=20)
    municipality = lookups.municipality(code)
    try:
        changed_at = _changed_at(change)
        data = change.get("data")
        if not isinstance(data, dict):
            raise Refused("内容（data）がオブジェクトではありません")
        if kind == "donation":
            applied = _apply_donation(municipality, changed_at, data)
        elif kind == "decision":
            applied = _apply_decision(municipality, changed_at, data, lookups)
        else:
            applied = _apply_shipment(municipality, changed_at, data, lookups)
    except Refused as exc:
        exc.municipality = exc.municipality or municipality
        raise
    return applied, municipality, changed_at


def _apply_into(record: CoreChange, change: Any, lookups: Lookups) -> None:
    """Apply ``change`` and write how it ended on ``record`` (not saved)."""
    if isinstance(change, dict):
        record.kind = str(change.get("type") or "")[:12]
        record.municipality_code = str(change.get("municipality_code") or "")[:20]
    try:
        with transaction.atomic():
            applied, municipality, changed_at = _apply(change, lookups)
    except Refused as exc:
        record.outcome = QUARANTINED
        record.reason = exc.reason[:500]
        record.municipality = exc.municipality
    except (IntegrityError, DataError) as exc:
        # A constraint or a value we did not foresee: kept with the database's words, not lost.
        # Transient failures (deadlock, lost connection) are not the change's fault: they
        # propagate, the page rolls back and is pulled again (a push answers 500 and is resent).
        record.outcome = QUARANTINED
        record.reason = f"データベースが受け付けませんでした: {exc}"[:500]
    else:
        record.outcome = applied.outcome
        record.reason = "より新しい変更が反映済みです" if applied.outcome == STALE else ""
        record.municipality = municipality
        record.changed_at = changed_at
        record.donation = applied.donation
        record.shipment = applied.shipment
        if applied.outcome == APPLIED:
            record.applied_at = timezone.now()
            if not applied.announced:
                _announce(record, applied)


def _announce(record: CoreChange, applied: Applied) -> None:
    kwargs = {
        "change_id": record.change_id,
        "kind": record.kind,
        "municipality_id": record.municipality_id,
        "donation_id": applied.donation.pk if applied.donation else None,
        "shipment_id": applied.shipment.pk if applied.shipment else None,
        "created": applied.created,
        "fields": list(applied.fields),
    }

    def send() -> None:
        # A receiver's failure (a ticket notification) must not undo or hide the others.
        for receiver, answer in core_change_applied.send_robust(sender=CoreChange, **kwargs):
            if isinstance(answer, Exception):
                logger.error(
                    "core_change_applied receiver %r failed for %s: %r",
                    receiver,
                    kwargs["change_id"],
                    answer,
                )

    transaction.on_commit(send, robust=True)


class _AlreadyReceived(Exception):
    pass


def change_receive(*, change: Any, source: str, lookups: Lookups | None = None) -> str:
    """Apply one change from the core once. Returns applied, stale, quarantined or duplicate."""
    lookups = lookups or Lookups()
    change_id = change_id_of(change)
    payload = change if isinstance(change, dict) else {"value": change}
    if change_id is not None and CoreChange.objects.filter(change_id=change_id).exists():
        return DUPLICATE
    try:
        with transaction.atomic():
            record = CoreChange(change_id=change_id, source=source, payload=payload)
            _apply_into(record, change, lookups)
            try:
                record.save(force_insert=True)
            except IntegrityError as exc:
                # The same id, received at the same moment by another worker (a pull and a
                # push): its transaction committed first. Undo this one's apply, announcement
                # included.
                raise _AlreadyReceived from exc
    except _AlreadyReceived:
        return DUPLICATE
    return str(record.outcome)


@transaction.atomic
def unreadable_receive(*, raw: bytes, reason: str, source: str) -> CoreChange:
    """Keep input that could not be read as changes; the same bytes again are counted, not
    stored twice."""
    digest = hashlib.sha256(raw).hexdigest()
    existing = (
        CoreChange.objects.select_for_update()
        .filter(raw_sha256=digest, change_id__isnull=True, outcome=QUARANTINED)
        .first()
    )
    if existing is not None:
        existing.attempts += 1
        existing.save(update_fields=["attempts"])
        return existing
    return CoreChange.objects.create(
        change_id=None,
        source=source,
        outcome=QUARANTINED,
        reason=reason[:500],
        raw=raw.decode("utf-8", errors="replace"),
        raw_sha256=digest,
    )


@transaction.atomic
def core_change_retry(
    *, actor: Any = None, change: CoreChange, request: HttpRequest | None = None
) -> CoreChange:
    """Apply a 保留 change again (after its municipality, donation or carrier was added).

    A person's retry is written to the 作業ログ with what it led to, including a retry that
    leaves the change 保留."""
    record = CoreChange.objects.select_for_update().get(pk=change.pk)
    if record.outcome != QUARANTINED:
        return record
    reason_before = record.reason
    record.attempts += 1
    record.retried_at = timezone.now()
    record.retried_by = actor if getattr(actor, "pk", None) else None
    if record.payload is not None:
        _apply_into(record, record.payload, Lookups())  # unreadable bytes stay unreadable
    record.save()
    audit_record(
        action=AuditLog.Action.CORE_CHANGE_RETRY,
        request=request,
        user=actor,
        core_change=record.pk,
        change_id=record.change_id or "",
        source=record.source,
        outcome=record.outcome,
        reason_before=reason_before,
        reason=record.reason if record.outcome == QUARANTINED else "",
        attempts=record.attempts,
    )
    return record


# --- Pull ------------------------------------------------------------------------------------


@dataclass
class PullResult:
    pages: int = 0
    received: int = 0
    outcomes: dict[str, int] = field(default_factory=dict)
    busy: bool = False  # another run holds the cursor
    deferred: bool = False  # backing off after a failure
    error: str = ""

    def count(self, outcome: str) -> None:
        self.outcomes[outcome] = self.outcomes.get(outcome, 0) + 1


@dataclass(frozen=True)
class Page:
    changes: list[Any]
    next_cursor: str
    has_more: bool


def _page(data: Any) -> Page:
    if not isinstance(data, dict) or not isinstance(data.get("changes"), list):
        raise CoreRetryableError("基幹システムの応答に changes の一覧がありません")
    next_cursor = data.get("next_cursor")
    if not isinstance(next_cursor, str | int) or isinstance(next_cursor, bool):
        raise CoreRetryableError("基幹システムの応答に next_cursor がありません")
    return Page(data["changes"], str(next_cursor), bool(data.get("has_more")))


def _backoff(failures: int, retry_after: float | None) -> datetime.timedelta:
    seconds = min(
        settings.CORE_FEED_PULL_SECONDS * 2 ** max(failures - 1, 0),
        settings.CORE_FEED_BACKOFF_MAX_SECONDS,
    )
    if retry_after:
        seconds = max(seconds, min(retry_after, settings.CORE_FEED_BACKOFF_MAX_SECONDS))
    return datetime.timedelta(seconds=seconds)


def _record_failure(cursor: CoreFeedCursor, error: str, retry_after: float | None) -> None:
    cursor.failures += 1
    cursor.last_error = error[:500]
    cursor.next_attempt_at = timezone.now() + _backoff(cursor.failures, retry_after)
    cursor.save(update_fields=["failures", "last_error", "next_attempt_at"])


def _pull_page(client: CoreClient, result: PullResult) -> bool:
    """Pull and apply one page; True if there is more to pull now."""
    with transaction.atomic():
        cursor = (
            CoreFeedCursor.objects.select_for_update(skip_locked=True)
            .filter(name=CURSOR_NAME)
            .first()
        )
        if cursor is None:
            result.busy = True
            return False
        if cursor.next_attempt_at and cursor.next_attempt_at > timezone.now():
            result.deferred = True
            return False
        try:
            response = client.get(
                "changes", params={"cursor": cursor.cursor, "limit": settings.CORE_FEED_PAGE_SIZE}
            )
            page = _page(response.data)
        except CoreError as exc:
            # Nothing of this page was applied; the cursor stays where it was.
            result.error = str(exc)
            _record_failure(cursor, str(exc), exc.retry_after)
            logger.warning("core feed pull failed (%s in a row): %s", cursor.failures, exc)
            return False
        lookups = Lookups()
        for change in page.changes:
            result.received += 1
            result.count(
                change_receive(change=change, source=CoreChange.Source.PULL, lookups=lookups)
            )
        cursor.cursor = page.next_cursor
        cursor.pulled_at = timezone.now()
        cursor.failures = 0
        cursor.next_attempt_at = None
        cursor.last_error = ""
        cursor.save()
        result.pages += 1
        return page.has_more and bool(page.changes)


def feed_pull(*, client: CoreClient | None = None, max_pages: int | None = None) -> PullResult:
    """Pull the core's changes since the stored cursor (the beat task's work)."""
    result = PullResult()
    if client is None:
        if not settings.CORE_API_URL:
            return result
        client = core_client()
    CoreFeedCursor.objects.get_or_create(name=CURSOR_NAME)
    for _ in range(max_pages or settings.CORE_FEED_MAX_PAGES_PER_RUN):
        try:
            more = _pull_page(client, result)
        except Exception as exc:
            # Our own failure while applying (the page rolled back): back off like a core
            # failure, so a poisoned page does not spin, and let the task show the error.
            with transaction.atomic():
                cursor = CoreFeedCursor.objects.select_for_update().get(name=CURSOR_NAME)
                _record_failure(cursor, f"反映中のエラー: {exc!r}", None)
            raise
        if not more:
            break
    return result


def receipts_prune(*, older_than_days: int | None = None) -> int:
    """Forget applied and stale receipts older than CORE_FEED_RECEIPT_DAYS; 保留 ones stay.

    The core resends a change within minutes or hours, not months; a change resent after its
    receipt is gone is still refused if it is older than the record, and one carrying the
    record's own time writes the same values again."""
    days = settings.CORE_FEED_RECEIPT_DAYS if older_than_days is None else older_than_days
    cutoff = timezone.now() - datetime.timedelta(days=days)
    deleted, _ = CoreChange.objects.filter(
        outcome__in=[APPLIED, STALE], received_at__lt=cutoff
    ).delete()
    return deleted


# --- Push ------------------------------------------------------------------------------------


def push_signature(secret: str, timestamp: str, body: bytes) -> str:
    """sha256=<hex of HMAC-SHA256(secret, timestamp + "." + body)>."""
    mac = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256)
    return "sha256=" + mac.hexdigest()


def push_signature_valid(*, body: bytes, timestamp: str, signature: str) -> bool:
    secret = settings.CORE_FEED_SECRET
    if not settings.CORE_FEED_PUSH or not secret or not timestamp or not signature:
        return False
    try:
        sent_at = int(timestamp)
    except ValueError:
        return False
    if abs(time.time() - sent_at) > settings.CORE_FEED_REPLAY_WINDOW_SECONDS:
        return False  # a replay of an old request (or a clock far off): refused
    return hmac.compare_digest(push_signature(secret, timestamp, body), signature)


def callback_signature_valid(*, body: bytes, timestamp: str, signature: str) -> bool:
    """The core's answers to our decisions (POST /core/outbox/answers/): signed like its pushes,
    with CORE_FEED_SECRET, whether or not the change feed itself is pushed."""
    secret = settings.CORE_FEED_SECRET
    if not secret or not timestamp or not signature:
        return False
    try:
        sent_at = int(timestamp)
    except ValueError:
        return False
    if abs(time.time() - sent_at) > settings.CORE_FEED_REPLAY_WINDOW_SECONDS:
        return False
    return hmac.compare_digest(push_signature(secret, timestamp, body), signature)


def push_receive(*, body: bytes, only_kind: str | None = None) -> tuple[int, dict[str, Any]]:
    """A signed push: {"changes": [...]} or one change. Returns (HTTP status, JSON answer).
    ``only_kind``: the callback takes decisions' answers only; others are refused unread."""
    try:
        data = json.loads(body)
    except ValueError as exc:
        kept = unreadable_receive(
            raw=body, reason=f"JSON として読めません: {exc}", source=CoreChange.Source.PUSH
        )
        return 400, {"error": "malformed JSON", "kept_as": kept.pk}
    changes = data.get("changes") if isinstance(data, dict) and "changes" in data else [data]
    if not isinstance(changes, list):
        kept = unreadable_receive(
            raw=body, reason="changes が一覧ではありません", source=CoreChange.Source.PUSH
        )
        return 400, {"error": "changes must be a list", "kept_as": kept.pk}
    if only_kind and any(
        not isinstance(change, dict) or change.get("type") != only_kind for change in changes
    ):
        return 400, {"error": f"only changes of type {only_kind!r} are taken here"}
    lookups = Lookups()
    results = [
        {
            "id": change_id_of(change),
            "outcome": change_receive(change=change, source="push", lookups=lookups),
        }
        for change in changes
    ]
    return 200, {"results": results}
