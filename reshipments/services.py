"""Every write of re-shipments and returned mail.

A re-shipment is requested by operator staff from a ticket, approved by a supervisor and, where
the municipality asks for it, by the city. The final approval creates the replacement shipment
and the outbox message to the core in the same transaction, so the core hears of exactly the
re-shipments that were approved (the outbox delivers it, retries it and keeps its answers).
Every step is an entry on the ticket's timeline (tickets' services) and a row in crm's AuditLog.
"""

from __future__ import annotations

import datetime
import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from crm.access import (
    can_see_municipality,
    is_city_official,
    is_supervisor,
    require_write,
)
from crm.audit import audit_record
from crm.models import Donor, Municipality
from crm.templatetags.ja import tracking
from donations_sync.models import Donation, GiftItem, Shipment
from reshipments.models import (
    CallbackAttempt,
    Reshipment,
    ReshipmentSettings,
    ReturnedItem,
)
from reshipments.rules import Fault, Reason, billable_to_city
from tickets import services as ticket_services
from tickets.mail.models import InboundAttachment
from tickets.mail.selectors import reply_recipient
from tickets.models import Inquiry

if TYPE_CHECKING:
    from django.http import HttpRequest

    from crm.models import User
    from donations_sync.signals import DecisionAnswer

logger = logging.getLogger(__name__)

AUDIT_RESHIPMENT = "reshipment"
AUDIT_RETURNED = "returned_mail"
AUDIT_SETTINGS = "reshipment_config"

Status = Reshipment.Status
_REASONS = dict(Reason.choices)
_FAULTS = dict(Fault.choices)


class ReshipmentError(ValueError):
    """A request that cannot be made as asked (shown to the user as it is)."""


def _audit(
    actor: User, request: HttpRequest | None, step: str, r: Reshipment, **detail: Any
) -> None:
    # municipality_id: a hand-over deletion anonymises the audit rows that name the municipality.
    audit_record(
        action=AUDIT_RESHIPMENT,
        request=request,
        user=actor,
        step=step,
        reshipment=r.pk,
        municipality_id=r.municipality_id,
        **detail,
    )


def city_approval_required(municipality_id: int) -> bool:
    return ReshipmentSettings.objects.filter(
        municipality_id=municipality_id, city_approval_required=True
    ).exists()


@transaction.atomic
def reshipment_settings_save(
    *,
    actor: User,
    municipality: Municipality,
    city_approval_required: bool,
    request: HttpRequest | None = None,
) -> ReshipmentSettings:
    if not is_supervisor(actor):
        raise PermissionDenied("再送の設定はスーパーバイザー・運営管理者のみ変更できます。")
    require_write(actor, municipality.pk)
    row, _ = ReshipmentSettings.objects.select_for_update().get_or_create(municipality=municipality)
    before = row.city_approval_required
    row.city_approval_required = city_approval_required
    row.updated_by = actor
    row.save()
    audit_record(
        action=AUDIT_SETTINGS,
        request=request,
        user=actor,
        municipality_id=municipality.pk,
        city_approval_required=[before, city_approval_required],
    )
    return row


# --- requests -------------------------------------------------------------------------------


@dataclass
class ShipTo:
    name: str
    postal_code: str
    address: str
    phone: str = ""

    def as_dict(self) -> dict[str, str]:
        return {
            "name": self.name,
            "postal_code": self.postal_code,
            "address": self.address,
            "phone": self.phone,
        }


def _describe(r: Reshipment) -> str:
    lines = [
        f"理由：{_REASONS.get(r.reason, r.reason)}／原因者：{_FAULTS.get(r.fault, r.fault)}"
        f"／{'市の負担' if r.billable_to_city else '市の負担なし'}",
        f"返礼品：{r.gift_item.name}{'（代品）' if r.substitute else '（同一品）'}",
        f"送り先：{r.ship_to_name} 様 〒{r.ship_to_postal_code} {r.ship_to_address}"
        f"{'（住所訂正）' if r.address_corrected else ''}",
    ]
    if r.desired_date or r.desired_time_slot:
        slot = dict(Shipment.TimeSlot.choices).get(r.desired_time_slot, "")
        when = f"{r.desired_date:%Y-%m-%d}" if r.desired_date else ""
        lines.append(f"希望日時：{when} {slot}".rstrip())
    lines.append(f"費用：返礼品代 ¥{r.gift_cost:,}・送料 ¥{r.shipping_cost:,}")
    photos = [p.filename for p in r.photos.all()]
    if photos:
        lines.append("写真：" + "、".join(photos))
    if r.note:
        lines.append(r.note)
    return "\n".join(lines)


def _timeline(
    r: Reshipment,
    actor: User | None,
    title: str,
    body: str = "",
    *,
    link: Shipment | None = None,
    mail: str = "",
) -> None:
    if r.inquiry_id is None:
        return
    ticket_services.inquiry_record_reshipment(
        actor=actor,
        inquiry=r.inquiry,
        title=title,
        body=body,
        link_shipments=[link] if link is not None else (),
        mail_to_requester=mail,
    )


@transaction.atomic
def reshipment_request(
    *,
    actor: User,
    inquiry: Inquiry | None,
    original: Shipment,
    reason: str,
    fault: str,
    gift_item: GiftItem,
    ship_to: ShipTo,
    address_corrected: bool = False,
    desired_date: datetime.date | None = None,
    desired_time_slot: str = "",
    gift_cost: int = 0,
    shipping_cost: int = 0,
    photos: list[InboundAttachment] | tuple = (),
    note: str = "",
    request: HttpRequest | None = None,
) -> Reshipment:
    """A re-shipment request; it waits for a supervisor's approval."""
    require_write(actor, original.municipality_id)
    if inquiry is not None and inquiry.municipality_id != original.municipality_id:
        raise ReshipmentError("問合せと配送の自治体が異なります。")
    if gift_item.municipality_id != original.municipality_id:
        raise ReshipmentError("他の自治体の返礼品は代品にできません。")
    if reason not in _REASONS or fault not in _FAULTS:
        raise ReshipmentError("理由または原因者が正しくありません。")
    photos = list(photos)
    if any(p.inquiry_id is None or p.inquiry_id != getattr(inquiry, "pk", None) for p in photos):
        raise ReshipmentError("写真はこの問合せの添付ファイルから選んでください。")
    if any(p.restricted for p in photos) and not is_supervisor(actor):
        raise ReshipmentError("閲覧制限のある添付ファイルは写真に選べません。")
    if Reshipment.objects.filter(original=original, status__in=Reshipment.PENDING).exists():
        raise ReshipmentError("この配送には承認待ちの再送依頼がすでにあります。")
    r = Reshipment.objects.create(
        municipality_id=original.municipality_id,
        inquiry=inquiry,
        original=original,
        reason=reason,
        fault=fault,
        billable_to_city=billable_to_city(reason=reason, fault=fault),
        gift_item=gift_item,
        ship_to_name=ship_to.name,
        ship_to_postal_code=ship_to.postal_code,
        ship_to_address=ship_to.address,
        ship_to_phone=ship_to.phone,
        address_corrected=address_corrected,
        desired_date=desired_date,
        desired_time_slot=desired_time_slot or "",
        gift_cost=gift_cost,
        shipping_cost=shipping_cost,
        note=note,
        city_approval_required=city_approval_required(original.municipality_id),
        requested_by=actor,
        requested_at=timezone.now(),
    )
    if photos:
        r.photos.set(photos)
    _timeline(r, actor, f"再送を依頼（再送 #{r.pk}・SV承認待ち）", _describe(r))
    _audit(
        actor,
        request,
        "requested",
        r,
        reason=reason,
        fault=fault,
        billable=r.billable_to_city,
    )
    return r


def _locked(r: Reshipment) -> Reshipment:
    return (
        Reshipment.objects.select_for_update(of=("self",))
        .select_related("inquiry__ticket", "original__gift_item", "gift_item")
        .get(pk=r.pk)
    )


def _require_decider(actor: User, r: Reshipment) -> None:
    """Who may decide at the step ``r`` waits at: a supervisor of its municipality, then (where
    the city approves) an official of that city. An agent decides nothing."""
    if r.status == Status.SUPERVISOR_PENDING:
        if not (is_supervisor(actor) and can_see_municipality(actor, r.municipality_id)):
            raise PermissionDenied("再送の承認はスーパーバイザーが行います。")
        require_write(actor, r.municipality_id)
    elif r.status == Status.CITY_PENDING:
        if not (is_city_official(actor) and can_see_municipality(actor, r.municipality_id)):
            raise PermissionDenied("この再送は市の承認待ちです。")
    else:
        raise ReshipmentError("この再送はすでに判断済みです。")


@transaction.atomic
def reshipment_approve(
    *, actor: User, reshipment: Reshipment, comment: str = "", request: HttpRequest | None = None
) -> Reshipment:
    r = _locked(reshipment)
    _require_decider(actor, r)
    now = timezone.now()
    if r.status == Status.SUPERVISOR_PENDING:
        r.supervisor_approved_by, r.supervisor_approved_at = actor, now
        if r.city_approval_required:
            r.status = Status.CITY_PENDING
            r.save(update_fields=["supervisor_approved_by", "supervisor_approved_at", "status"])
            _timeline(r, actor, f"再送をSVが承認（再送 #{r.pk}・市の承認待ち）", comment)
            _audit(actor, request, "supervisor_approved", r)
            return r
        step = "supervisor_approved"
        title = f"再送をSVが承認（再送 #{r.pk}・手配）"
    else:
        r.city_decided_by, r.city_decided_at, r.city_comment = actor, now, comment
        step = "city_approved"
        title = f"再送を市が承認（再送 #{r.pk}・手配）"
    _finalize(r, now)
    _timeline(r, actor, title, comment, link=r.replacement)
    _audit(actor, request, step, r, replacement=r.replacement_id)
    return r


def _finalize(r: Reshipment, now: datetime.datetime) -> None:
    """The replacement shipment and the outbox message, in the caller's transaction."""
    from donations_sync.services import outbox_enqueue, shipment_create_replacement

    try:
        replacement = shipment_create_replacement(
            original_id=r.original_id,
            gift_item_id=r.gift_item_id,
            ship_to={
                "name": r.ship_to_name,
                "postal_code": r.ship_to_postal_code,
                "address": r.ship_to_address,
                "phone": r.ship_to_phone,
            },
            desired_date=r.desired_date,
            desired_time_slot=r.desired_time_slot,
        )
    except ValidationError as exc:
        raise ReshipmentError(" ".join(exc.messages)) from exc
    r.replacement = replacement
    r.status = Status.APPROVED
    r.approved_at = now
    r.save()
    outbox_enqueue(
        municipality_id=r.municipality_id,
        kind="reshipment",
        payload=reshipment_payload(r),
        idempotency_key=r.idempotency_key,
        shipment_id=replacement.pk,
        donation_id=r.original.donation_id,
    )


def reshipment_payload(r: Reshipment) -> dict[str, Any]:
    """What the core is told: which parcel to send again, what, where and who pays."""
    return {
        "reshipment_id": r.pk,
        "original_shipment_id": r.original_id,
        "replacement_shipment_id": r.replacement_id,
        "donation_id": r.original.donation_id,
        "gift_item_code": r.gift_item.code,
        "substitute": r.substitute,
        "reason": r.reason,
        "fault": r.fault,
        "billable_to_city": r.billable_to_city,
        "ship_to": {
            "name": r.ship_to_name,
            "postal_code": r.ship_to_postal_code,
            "address": r.ship_to_address,
            "phone": r.ship_to_phone,
        },
        "address_corrected": r.address_corrected,
        "desired_date": r.desired_date.isoformat() if r.desired_date else None,
        "desired_time_slot": r.desired_time_slot,
        "gift_cost": r.gift_cost,
        "shipping_cost": r.shipping_cost,
    }


@transaction.atomic
def reshipment_refuse(
    *, actor: User, reshipment: Reshipment, comment: str, request: HttpRequest | None = None
) -> Reshipment:
    if not comment.strip():
        raise ReshipmentError("却下の理由を入力してください。")
    r = _locked(reshipment)
    _require_decider(actor, r)
    now = timezone.now()
    by_city = r.status == Status.CITY_PENDING
    if by_city:
        r.city_decided_by, r.city_decided_at, r.city_comment = actor, now, comment
    r.refused_by, r.refused_at, r.refusal_comment = actor, now, comment
    r.status = Status.REFUSED
    r.save()
    who = "市" if by_city else "SV"
    _timeline(r, actor, f"再送を{who}が却下（再送 #{r.pk}）", comment)
    _audit(actor, request, "city_refused" if by_city else "supervisor_refused", r)
    return r


# --- the core's answers -----------------------------------------------------------------------

# How far a re-shipment has come: an answer that arrives late (delivered before tracking) or
# twice never moves it back or writes the same entry again.
_PROGRESS = {
    Status.APPROVED: 0,
    Status.ACCEPTED: 1,
    Status.SHIPPED: 2,
    Status.DELIVERED: 3,
}
_ANSWER_STATUS = {
    "accepted": Status.ACCEPTED,
    "tracking": Status.SHIPPED,
    "shipped": Status.SHIPPED,
    "delivered": Status.DELIVERED,
}


_KEY_PREFIX = "reshipment-"


def _reshipments_of_messages(messages: Iterable[Any]) -> dict[int, int]:
    """Outbox message id → the id of the re-shipment it carries, in one query for the batch: by
    the message's idempotency key (``reshipment-<id>``), else by its shipment (the replacement)."""
    by_key: dict[int, int] = {}
    by_shipment: dict[int, int] = {}
    for message in messages:
        key = getattr(message, "idempotency_key", "") or ""
        if key.startswith(_KEY_PREFIX) and key[len(_KEY_PREFIX) :].isdigit():
            by_key[message.pk] = int(key[len(_KEY_PREFIX) :])
        elif shipment_id := getattr(message, "shipment_id", None):
            by_shipment[message.pk] = shipment_id
    if not by_key and not by_shipment:
        return {}
    rows = Reshipment.objects.filter(
        Q(pk__in=set(by_key.values())) | Q(replacement_id__in=set(by_shipment.values()))
    ).values_list("pk", "replacement_id")
    known: set[int] = set()
    of_replacement: dict[int, int] = {}
    for pk, replacement_id in rows:
        known.add(pk)
        if replacement_id is not None:
            of_replacement[replacement_id] = pk  # one re-shipment per replacement (one-to-one)
    found = {message_id: pk for message_id, pk in by_key.items() if pk in known}
    for message_id, shipment_id in by_shipment.items():
        if shipment_id in of_replacement:
            found[message_id] = of_replacement[shipment_id]
    return found


def _detail_text(detail: Any) -> str:
    if isinstance(detail, dict):
        return str(detail.get("reason") or detail.get("message") or "")
    return str(detail or "")


def _shipped_mail(r: Reshipment, shipment: Shipment) -> str:
    lines = [
        f"{r.ship_to_name} 様",
        "",
        "このたびはご迷惑をおかけし、誠に申し訳ございません。",
        f"お礼の品「{r.gift_item.name}」を改めて発送いたしました。",
    ]
    carrier = shipment.carrier if shipment.carrier_id else None
    if carrier is not None and shipment.tracking_number:
        lines.append(f"配送業者：{carrier.name}　伝票番号：{tracking(shipment.tracking_number)}")
        lines.append(f"配送状況：{carrier.tracking_url(shipment.tracking_number)}")
    lines += ["", f"{r.municipality.name} ふるさと納税コールセンター"]
    return "\n".join(lines)


def reshipment_core_answers(*, answers: Sequence[DecisionAnswer]) -> list[Reshipment]:
    """The core answered outbox messages of re-shipments (the outbox has already written the
    tracking numbers and statuses onto the replacement shipments); returns the re-shipments
    the answers were for. Each answer is applied in a transaction of its own: one that fails is
    logged and does not keep the batch's other answers from being applied."""
    # Looked up for the whole batch before any transaction, in one query: answers to decisions
    # that are no re-shipment of ours cost nothing more (the outbox announces every answer it
    # records).
    found = _reshipments_of_messages(a.message for a in answers)
    done: list[Reshipment] = []
    for a in answers:
        pk = found.get(a.message.pk)
        if pk is None:
            continue
        try:
            done.append(_reshipment_core_answered(pk, answer=a.answer, detail=a.detail))
        except Exception:
            logger.exception(
                "re-shipment %s: the core's answer %r to outbox %s failed",
                pk,
                a.answer,
                a.message.pk,
            )
    return done


@transaction.atomic
def _reshipment_core_answered(pk: int, *, answer: str, detail: Any) -> Reshipment:
    r = (
        Reshipment.objects.select_for_update(of=("self",))
        .select_related("inquiry__ticket", "municipality", "gift_item")
        .get(pk=pk)
    )
    text = _detail_text(detail)
    if answer == "refused":
        if r.status == Status.CORE_REFUSED:
            return r
        r.status, r.core_detail = Status.CORE_REFUSED, text[:300]
        r.save(update_fields=["status", "core_detail"])
        _timeline(r, None, f"基幹システムが再送を受け付けませんでした（再送 #{r.pk}）", text)
        return r
    target = _ANSWER_STATUS.get(answer)
    if target is None or r.status not in _PROGRESS:
        return r
    shipment = Shipment.objects.select_related("carrier").get(pk=r.replacement_id)
    if _PROGRESS[target] <= _PROGRESS[r.status]:
        return r
    r.status = target
    fields = ["status"]
    mail = ""
    if target == Status.ACCEPTED:
        title = f"基幹システムが再送を受け付けました（再送 #{r.pk}）"
    elif target == Status.SHIPPED:
        state = (
            f"{shipment.carrier.short_name} {tracking(shipment.tracking_number)}"
            if shipment.carrier_id and shipment.tracking_number
            else "伝票番号 未着"
        )
        title = f"再送を発送しました（{state}）"
        if r.donor_notified_at is None and r.inquiry_id and reply_recipient(r.inquiry):
            mail = _shipped_mail(r, shipment)
            r.donor_notified_at = timezone.now()
            fields.append("donor_notified_at")
    else:
        title = f"再送が配達されました（再送 #{r.pk}）"
    r.save(update_fields=fields)
    _timeline(r, None, title, mail=mail)
    return r


# --- returned mail (住所不明返送) ----------------------------------------------------------------


@transaction.atomic
def returned_item_add(
    *,
    actor: User,
    donor: Donor,
    kind: str,
    returned_on: datetime.date,
    donation: Donation | None = None,
    shipment: Shipment | None = None,
    note: str = "",
    source: str = ReturnedItem.Source.FORM,
    request: HttpRequest | None = None,
    audit: bool = True,
) -> ReturnedItem:
    require_write(actor, donor.municipality_id)
    for record in (donation, shipment):
        if record is not None and record.municipality_id != donor.municipality_id:
            raise ReshipmentError("他の自治体の記録は指定できません。")
    if shipment is not None and donation is None:
        donation = shipment.donation
    if donation is not None and donation.donor_id != donor.pk:
        raise ReshipmentError("寄附と寄附者が一致しません。")
    if kind == ReturnedItem.Kind.GIFT and shipment is None:
        raise ReshipmentError("返礼品の返送には配送を指定してください。")
    if kind != ReturnedItem.Kind.GIFT and donation is None:
        raise ReshipmentError("書類の返送には寄附を指定してください。")
    item = ReturnedItem.objects.create(
        municipality_id=donor.municipality_id,
        donor=donor,
        donation=donation,
        shipment=shipment,
        kind=kind,
        returned_on=returned_on,
        note=note,
        source=source,
        created_by=actor,
    )
    if not donor.returned_mail:
        Donor.objects.filter(pk=donor.pk).update(returned_mail=True)
    if audit:
        audit_record(action=AUDIT_RETURNED, request=request, user=actor, step="added", item=item.pk)
    return item


@transaction.atomic
def returned_item_attempt(
    *,
    actor: User,
    item: ReturnedItem,
    outcome: str,
    note: str = "",
    postal_code: str = "",
    address: str = "",
    request: HttpRequest | None = None,
) -> CallbackAttempt:
    """One call to the donor. A confirmed address goes to the core as an address change plus a
    resend: documents are resent at once; a gift becomes a re-shipment request that a
    supervisor approves like any other (it costs a parcel)."""
    require_write(actor, item.municipality_id)
    item = ReturnedItem.objects.select_for_update().select_related("donor").get(pk=item.pk)
    if item.status != ReturnedItem.Status.OPEN:
        raise ReshipmentError("この返送はすでに対応済みです。")
    if outcome not in CallbackAttempt.Outcome.values:
        raise ReshipmentError("結果を選んでください。")
    now = timezone.now()
    attempt = CallbackAttempt.objects.create(
        item=item,
        municipality_id=item.municipality_id,
        at=now,
        by=actor,
        outcome=outcome,
        note=note,
    )
    if outcome == CallbackAttempt.Outcome.CONFIRMED:
        if not (postal_code and address):
            raise ReshipmentError("確認した郵便番号と住所を入力してください。")
        _resend_to_confirmed_address(actor, item, postal_code, address)
        item.status = ReturnedItem.Status.CONFIRMED
        item.confirmed_postal_code, item.confirmed_address = postal_code, address
    elif outcome == CallbackAttempt.Outcome.NOT_NEEDED:
        item.status = ReturnedItem.Status.CLOSED
    if item.status != ReturnedItem.Status.OPEN:
        item.resolved_by, item.resolved_at = actor, now
        if (
            not ReturnedItem.objects.filter(donor_id=item.donor_id, status=ReturnedItem.Status.OPEN)
            .exclude(pk=item.pk)
            .exists()
        ):
            Donor.objects.filter(pk=item.donor_id).update(returned_mail=False)
    item.save()
    audit_record(
        action=AUDIT_RETURNED,
        request=request,
        user=actor,
        step="attempt",
        item=item.pk,
        municipality_id=item.municipality_id,
        outcome=outcome,
    )
    return attempt


_DOCUMENT_RESEND_KIND = {
    ReturnedItem.Kind.RECEIPT: "receipt_reissue",
    ReturnedItem.Kind.ONE_STOP: "onestop_resend",
}


def _resend_to_confirmed_address(
    actor: User, item: ReturnedItem, postal_code: str, address: str
) -> None:
    from donations_sync.services import outbox_enqueue

    donor = item.donor
    outbox_enqueue(
        municipality_id=item.municipality_id,
        kind="address_change",
        payload={
            "donor_id": donor.pk,
            "donor_number": donor.donor_number,
            "donation_id": item.donation_id,
            "postal_code": postal_code,
            "address": address,
            "reason": "住所不明返送",
        },
        idempotency_key=f"returned-{item.pk}-address",
        donation_id=item.donation_id,
        shipment_id=item.shipment_id,
    )
    if item.kind == ReturnedItem.Kind.GIFT:
        shipment = item.shipment
        item.reshipment = reshipment_request(
            actor=actor,
            inquiry=None,
            original=shipment,
            reason=Reason.RETURNED,
            fault=Fault.DONOR,
            gift_item=shipment.gift_item,
            ship_to=ShipTo(
                name=shipment.ship_to_name,
                postal_code=postal_code,
                address=address,
                phone=shipment.ship_to_phone,
            ),
            address_corrected=True,
            note=f"住所不明返送（返送日 {item.returned_on:%Y-%m-%d}）の再送",
        )
        return
    outbox_enqueue(
        municipality_id=item.municipality_id,
        kind=_DOCUMENT_RESEND_KIND[item.kind],
        payload={
            "donation_id": item.donation_id,
            "postal_code": postal_code,
            "address": address,
            "returned_on": item.returned_on.isoformat(),
        },
        idempotency_key=f"returned-{item.pk}-resend",
        donation_id=item.donation_id,
    )
