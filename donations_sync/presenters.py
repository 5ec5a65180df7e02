"""Donations and shipments as every screen shows them, in the words of the call center.

A donation reads 入金済 12/1・受領証明書 発送済 12/10・ワンストップ 希望（申請書 未着）; a shipment
reads 発送済（ヤマト 1234-5678-9012, 12/20 配達完了） with its tracking link, and a 定期便 says
which delivery it is (定期便 3回中2回目). The screen pop, the donor page, the ticket page, the
console search and the API take these words from here and nowhere else. Raw values travel with
them; templates and the browser format dates and amounts.
"""

from __future__ import annotations

import datetime
from collections.abc import Iterable
from dataclasses import dataclass, field

from crm.presenters import DANGER, WARN, Flag
from crm.templatetags.ja import md, tracking
from donations_sync.models import Donation, PaymentMethod, Portal, Shipment

GIFT_DECLINED = "返礼品辞退"
ONE_STOP = "ワンストップ 希望"

_PORTALS = dict(Portal.choices)
_PAYMENT_METHODS = dict(PaymentMethod.choices)
_DONATION_STATUSES = dict(Donation.Status.choices)
_SHIPMENT_STATUSES = dict(Shipment.Status.choices)
_TIME_SLOTS = dict(Shipment.TimeSlot.choices)


@dataclass
class ShipmentView:
    id: int
    donation_id: int
    gift_name: str
    gift_code: str
    delivery_number: int
    deliveries: int
    status: str
    status_label: str
    carrier_name: str
    tracking_number: str
    tracking_url: str  # '' when the number fails its check digit: no link to a wrong parcel
    tracking_valid: bool | None  # None: no number, or not checked
    tracking_warning: str  # TRACKING_INVALID when the check digit fails, else ''
    shipped_on: datetime.date | None
    delivered_on: datetime.date | None
    desired_date: datetime.date | None
    desired_time_slot_label: str
    ship_to_name: str
    subscription: str
    state: str
    # A re-shipment (再送・代品) names the shipment it replaces.
    replaces_id: int | None = None


@dataclass
class DonationView:
    id: int
    donor_id: int
    municipality_id: int
    portal: str
    portal_label: str
    portal_order_number: str
    external_id: str
    number: str
    donated_at: datetime.datetime
    amount: int
    payment_method: str
    payment_method_label: str
    status: str
    status_label: str
    paid_on: datetime.date | None
    receipt_issued_on: datetime.date | None
    one_stop_requested: bool
    one_stop_received_on: datetime.date | None
    gift_declined: bool
    note: str
    state: str
    flags: list[Flag] = field(default_factory=list)
    shipments: list[ShipmentView] = field(default_factory=list)


def donation_state(d: Donation) -> str:
    """入金済 12/1・受領証明書 発送済 12/10・ワンストップ 希望（申請書 未着）."""
    status_label = _DONATION_STATUSES.get(d.status, d.status)
    parts = [status_label]
    if d.paid_on:
        if d.status == Donation.Status.PAID:
            parts[0] = f"{status_label} {md(d.paid_on)}"
        else:
            parts.append(f"入金 {md(d.paid_on)}")
    if d.receipt_issued_on:
        parts.append(f"受領証明書 発送済 {md(d.receipt_issued_on)}")
    else:
        parts.append("受領証明書 未発行")
    if d.one_stop_requested:
        if d.one_stop_received_on:
            parts.append(f"{ONE_STOP}（申請書 受付済 {md(d.one_stop_received_on)}）")
        else:
            parts.append(f"{ONE_STOP}（申請書 未着）")
    return "・".join(parts)


def donation_flags(d: Donation) -> list[Flag]:
    return [Flag(GIFT_DECLINED, DANGER)] if d.gift_declined else []


def shipment_state(s: Shipment) -> str:
    """発送済（ヤマト 1234-5678-9012, 12/20 配達完了） — the state an agent reads out.

    A delivered parcel still reads 発送済, with 配達完了 and its date in the details."""
    label = _SHIPMENT_STATUSES.get(s.status, s.status)
    if s.status == Shipment.Status.DELIVERED:
        label = _SHIPMENT_STATUSES[Shipment.Status.SHIPPED]
    parts: list[str] = []
    carrier = s.carrier if s.carrier_id else None
    if carrier is not None and s.tracking_number:
        parts.append(f"{carrier.short_name} {tracking(s.tracking_number)}")
    elif s.shipped_on:
        parts.append(f"{md(s.shipped_on)} 発送")
    if s.delivered_on:
        parts.append(f"{md(s.delivered_on)} 配達完了")
    elif s.status == Shipment.Status.DELIVERED:
        parts.append("配達完了")
    return f"{label}（{', '.join(parts)}）" if parts else label


def subscription_label(deliveries: int, delivery_number: int) -> str:
    return f"定期便 {deliveries}回中{delivery_number}回目" if deliveries > 1 else ""


# Said wherever a tracking number is shown whose carrier check digit fails (DOMAIN.md): the
# number is kept as the source wrote it, but an agent must not read it out as certain.
TRACKING_INVALID = "伝票番号の検査数字が一致しません"


def tracking_warning(s: Shipment) -> str:
    return TRACKING_INVALID if s.tracking_number and s.tracking_valid is False else ""


def present_shipment(s: Shipment) -> ShipmentView:
    """``s`` with ``gift_item`` and ``carrier`` loaded (select_related, or set by the caller)."""
    gift = s.gift_item
    carrier = s.carrier if s.carrier_id else None
    return ShipmentView(
        id=s.id,
        donation_id=s.donation_id,
        gift_name=gift.name,
        gift_code=gift.code,
        delivery_number=s.delivery_number,
        deliveries=gift.deliveries,
        status=s.status,
        status_label=_SHIPMENT_STATUSES.get(s.status, s.status),
        carrier_name=carrier.short_name if carrier else "",
        tracking_number=s.tracking_number,
        tracking_url=carrier.tracking_url(s.tracking_number)
        if carrier and s.tracking_number and s.tracking_valid is not False
        else "",
        tracking_valid=s.tracking_valid,
        tracking_warning=tracking_warning(s),
        shipped_on=s.shipped_on,
        delivered_on=s.delivered_on,
        desired_date=s.desired_date,
        desired_time_slot_label=_TIME_SLOTS.get(s.desired_time_slot, "")
        if s.desired_time_slot
        else "",
        ship_to_name=s.ship_to_name,
        subscription=subscription_label(gift.deliveries, s.delivery_number),
        state=shipment_state(s),
        replaces_id=s.replaces_id,
    )


def present_donation(d: Donation, shipments: Iterable[Shipment] = ()) -> DonationView:
    return DonationView(
        id=d.id,
        donor_id=d.donor_id,
        municipality_id=d.municipality_id,
        portal=d.portal,
        portal_label=_PORTALS.get(d.portal, d.portal),
        portal_order_number=d.portal_order_number,
        external_id=d.external_id,
        number=d.portal_order_number or d.external_id,
        donated_at=d.donated_at,
        amount=d.amount,
        payment_method=d.payment_method,
        payment_method_label=_PAYMENT_METHODS.get(d.payment_method, d.payment_method),
        status=d.status,
        status_label=_DONATION_STATUSES.get(d.status, d.status),
        paid_on=d.paid_on,
        receipt_issued_on=d.receipt_issued_on,
        one_stop_requested=d.one_stop_requested,
        one_stop_received_on=d.one_stop_received_on,
        gift_declined=d.gift_declined,
        note=d.note,
        state=donation_state(d),
        flags=donation_flags(d),
        shipments=[present_shipment(s) for s in shipments],
    )


def summary_flags(donations: Iterable[DonationView]) -> list[Flag]:
    """What the donor's donations as a whole change in the answer (the donor page's header)."""
    donations = list(donations)
    flags = []
    if any(d.gift_declined for d in donations):
        flags.append(Flag(GIFT_DECLINED, DANGER))
    if any(d.one_stop_requested for d in donations):
        flags.append(Flag(ONE_STOP, WARN))
    return flags
