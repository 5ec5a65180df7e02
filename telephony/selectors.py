"""Reads for the agent's screen pop and the supervisors' wallboard."""

from __future__ import annotations

import datetime
from collections import defaultdict
from collections.abc import Collection
from typing import Any

from django.db.models import Count, Min, Q
from django.urls import NoReverseMatch, reverse
from django.utils import timezone

from crm import normalize
from crm.access import visible_municipality_ids
from crm.models import Donor, User
from crm.selectors import donor_ids_by_phone
from crm.templatetags.ja import ja_date, ja_datetime, md, tracking, yen
from donations_sync.models import Donation, Shipment
from telephony.models import AgentPresence, Call

MAX_DONATIONS_PER_DONOR = 10
MAX_OPEN_INQUIRIES = 10
SERVICE_LEVEL_SECONDS = 30
SHORT_ABANDON_SECONDS = 5


def _url(name: str, *args: Any) -> str:
    try:
        return reverse(name, args=args)
    except NoReverseMatch:
        return ""


def inquiry_url(inquiry_id: int) -> str:
    return _url("ticket_detail", inquiry_id)


def call_for_user(user: Any, call_id: int) -> Call | None:
    """The call, if it belongs to a municipality the user may see."""
    return (
        Call.objects.visible_to(user)
        .select_related("municipality", "municipality__phone_settings", "answered_by")
        .filter(pk=call_id)
        .first()
    )


def screen_pop_payload(*, user: Any, call_id: int) -> dict[str, Any] | None:
    """Everything the agent needs as the phone rings, matched within the dialled municipality.

    None when the user may not see the call's municipality. About seven queries whatever the
    number of matches (donors, donations, shipments, open tickets are each one query).
    """
    call = call_for_user(user, call_id)
    if call is None:
        return None
    municipality = call.municipality
    try:
        greeting = municipality.phone_settings.greeting_text()
    except Exception:  # no settings row: the municipality's default greeting
        greeting = municipality.greeting
    donor_ids = donor_ids_by_phone([municipality.id], call.from_e164) if call.from_e164 else []
    payload: dict[str, Any] = {
        "call": {
            "id": call.pk,
            "direction": call.direction,
            "status": call.status,
            "status_label": call.get_status_display(),
            "from": normalize.format_phone_national(call.from_e164),
            "from_e164": call.from_e164,
            "withheld": not call.from_e164,
            "offered_at": ja_datetime(call.offered_at),
            "requester_type": call.requester_type,
            "ivr_digit": call.ivr_digit,
            "ivr_label": _ivr_label(call),
            "answered_by": str(call.answered_by) if call.answered_by_id else "",
            "inquiry_id": call.inquiry_id,
            "inquiry_url": inquiry_url(call.inquiry_id) if call.inquiry_id else "",
            "start_ticket_url": reverse("telephony:call_ticket_start", args=[call.pk]),
            "ended": call.is_ended,
            "needs_wrap_up": bool(
                call.ended_at
                and call.disposition_id is None
                and user.pk in (call.answered_by_id, call.placed_by_id)
            ),
            "wrap_up_url": reverse("telephony:call_wrap_up", args=[call.pk]),
        },
        "municipality": {"id": municipality.id, "name": municipality.name},
        "greeting": greeting,
        "search": {"query": call.from_e164 and normalize.format_phone_national(call.from_e164)},
        "matches": _donor_cards(municipality.id, donor_ids),
    }
    return payload


def _ivr_label(call: Call) -> str:
    if not call.ivr_digit:
        return ""
    try:
        options = call.municipality.phone_settings.ivr_options
    except Exception:
        from telephony.models import default_ivr_options

        options = default_ivr_options()
    return options.get(call.ivr_digit, {}).get("label", "")


def _donor_cards(municipality_id: int, donor_ids: list[int]) -> list[dict[str, Any]]:
    if not donor_ids:
        return []
    donors = list(
        Donor.objects.filter(pk__in=donor_ids, municipality_id=municipality_id)
        .select_related("municipality")
        .order_by("id")
    )
    ids = [d.pk for d in donors]
    donations_by_donor: dict[int, list[Donation]] = defaultdict(list)
    for donation in (
        Donation.objects.filter(donor_id__in=ids, municipality_id=municipality_id)
        .order_by("donor_id", "-donated_at")
        .only(
            "id",
            "donor_id",
            "portal",
            "portal_order_number",
            "external_id",
            "donated_at",
            "paid_on",
            "amount",
            "status",
            "one_stop_requested",
            "one_stop_received_on",
            "receipt_issued_on",
            "gift_declined",
        )
    ):
        if len(donations_by_donor[donation.donor_id]) < MAX_DONATIONS_PER_DONOR:
            donations_by_donor[donation.donor_id].append(donation)
    donation_ids = [d.pk for ds in donations_by_donor.values() for d in ds]
    shipments_by_donation: dict[int, list[Shipment]] = defaultdict(list)
    for shipment in Shipment.objects.filter(
        donation_id__in=donation_ids, municipality_id=municipality_id
    ).select_related("gift_item", "carrier"):
        shipments_by_donation[shipment.donation_id].append(shipment)
    inquiries_by_donor = _open_inquiries(municipality_id, ids)
    cards = []
    for donor in donors:
        cards.append(
            {
                "id": donor.pk,
                "name": donor.name,
                "name_kana": donor.name_kana,
                "donor_number": donor.donor_number,
                "address": f"{donor.prefecture}{donor.address}{donor.building}",
                "url": _url("donor_detail", donor.pk),
                "flags": _donor_flags(donor),
                "donations": [
                    _donation_card(d, shipments_by_donation.get(d.pk, []))
                    for d in donations_by_donor.get(donor.pk, [])
                ],
                "open_inquiries": inquiries_by_donor.get(donor.pk, []),
            }
        )
    return cards


def _donor_flags(donor: Donor) -> list[str]:
    flags = []
    if donor.gets_no_gift:
        flags.append("区内在住（返礼品なし）")
    if donor.returned_mail:
        flags.append("住所不明返送あり")
    if donor.do_not_contact:
        flags.append("連絡不可")
    return flags


def _donation_card(donation: Donation, shipments: list[Shipment]) -> dict[str, Any]:
    state = [donation.get_status_display()]
    if donation.paid_on:
        state.append(f"入金 {md(donation.paid_on)}")
    if donation.receipt_issued_on:
        state.append(f"受領証明書 発送済 {md(donation.receipt_issued_on)}")
    if donation.one_stop_requested:
        state.append(
            "ワンストップ 受付済" if donation.one_stop_received_on else "ワンストップ 希望"
        )
    flags = ["返礼品辞退"] if donation.gift_declined else []
    return {
        "id": donation.pk,
        "number": donation.portal_order_number or donation.external_id,
        "portal": donation.get_portal_display(),
        "donated_on": ja_date(donation.donated_at),
        "amount": yen(donation.amount),
        "state": "・".join(state),
        "flags": flags,
        "shipments": [_shipment_card(s) for s in shipments],
    }


def _shipment_card(shipment: Shipment) -> dict[str, Any]:
    item = shipment.gift_item
    state = shipment.get_status_display()
    details = []
    if shipment.carrier_id and shipment.tracking_number:
        details.append(f"{shipment.carrier.short_name} {tracking(shipment.tracking_number)}")
    if shipment.shipped_on:
        details.append(f"{md(shipment.shipped_on)} 発送")
    if shipment.delivered_on:
        details.append(f"{md(shipment.delivered_on)} 配達完了")
    return {
        "id": shipment.pk,
        "gift": item.name,
        "gift_code": item.code,
        "subscription": (
            f"定期便 {item.deliveries}回中{shipment.delivery_number}回目"
            if item.deliveries > 1
            else ""
        ),
        "status": shipment.status,
        "state": f"{state}（{', '.join(details)}）" if details else state,
        "tracking_url": shipment.tracking_url,
    }


def _open_inquiries(municipality_id: int, donor_ids: list[int]) -> dict[int, list[dict]]:
    try:
        from tickets.models import OPEN_STATUSES, Inquiry
    except ImportError:  # the ticket store is not installed
        return {}
    result: dict[int, list[dict]] = defaultdict(list)
    for inquiry in (
        Inquiry.objects.filter(
            municipality_id=municipality_id, donor_id__in=donor_ids, status__in=OPEN_STATUSES
        )
        .select_related("ticket", "category")
        .order_by("-created_at")[: MAX_OPEN_INQUIRIES * max(1, len(donor_ids))]
    ):
        if len(result[inquiry.donor_id]) < MAX_OPEN_INQUIRIES:
            result[inquiry.donor_id].append(
                {
                    "id": inquiry.pk,
                    "title": inquiry.ticket.title,
                    "status": inquiry.get_status_display(),
                    "category": inquiry.category.name if inquiry.category_id else "",
                    "created_at": ja_datetime(inquiry.created_at),
                    "url": inquiry_url(inquiry.pk),
                }
            )
    return result


# --- Wallboard ------------------------------------------------------------------------------


def wallboard_municipality_ids(user: Any, requested: Collection[int] | None = None) -> list[int]:
    ids = visible_municipality_ids(user)
    if requested:
        ids = ids & frozenset(requested)
    return sorted(ids)


def wallboard_stats(
    municipality_ids: Collection[int], *, now: datetime.datetime | None = None
) -> dict[str, Any]:
    """Live figures for some municipalities: waiting calls, agents by state, today's service level.

    Today is the Asia/Tokyo calendar day. Service level = answered within 30 s of entering the
    queue ÷ (answered + abandoned after waiting at least 5 s); short abandons are not held
    against the center, abandons in the menu never reached the queue.
    """
    now = now or timezone.now()
    ids = list(municipality_ids)
    local_today = timezone.localtime(now).date()
    day_start = timezone.make_aware(datetime.datetime.combine(local_today, datetime.time.min))
    waiting = Call.objects.filter(
        municipality_id__in=ids, status=Call.Status.QUEUED, ended_at__isnull=True
    ).aggregate(n=Count("id"), oldest=Min("routed_at"))
    longest = int((now - waiting["oldest"]).total_seconds()) if waiting["oldest"] is not None else 0
    inbound_today = Call.objects.filter(
        municipality_id__in=ids,
        direction=Call.Direction.INBOUND,
        offered_at__gte=day_start,
        offered_at__lt=day_start + datetime.timedelta(days=1),
    )
    today = inbound_today.aggregate(
        offered=Count("id", filter=Q(after_hours=False)),
        answered=Count("id", filter=Q(answered_at__isnull=False)),
        answered_in_sl=Count(
            "id",
            filter=Q(answered_at__isnull=False, queue_seconds__lte=SERVICE_LEVEL_SECONDS),
        ),
        abandoned_queue=Count("id", filter=Q(status=Call.Status.ABANDONED_QUEUE)),
        abandoned_short=Count(
            "id",
            filter=Q(status=Call.Status.ABANDONED_QUEUE, queue_seconds__lt=SHORT_ABANDON_SECONDS),
        ),
        abandoned_ivr=Count("id", filter=Q(status=Call.Status.ABANDONED_IVR, after_hours=False)),
        voicemail=Count("id", filter=Q(voicemail=True)),
        after_hours=Count("id", filter=Q(after_hours=True)),
    )
    counted = today["answered"] + today["abandoned_queue"] - today["abandoned_short"]
    service_level = round(100 * today["answered_in_sl"] / counted, 1) if counted else None
    agents = _agents_by_state(ids)
    return {
        "municipality_ids": ids,
        "as_of": ja_datetime(now),
        "date": ja_date(local_today),
        "waiting": waiting["n"],
        "longest_wait_seconds": longest,
        "offered": today["offered"],
        "answered": today["answered"],
        "abandoned": today["abandoned_queue"] + today["abandoned_ivr"],
        "abandoned_queue": today["abandoned_queue"],
        "abandoned_ivr": today["abandoned_ivr"],
        "abandoned_short": today["abandoned_short"],
        "voicemail": today["voicemail"],
        "after_hours": today["after_hours"],
        "service_level": service_level,
        "service_level_seconds": SERVICE_LEVEL_SECONDS,
        "agents": agents,
    }


def _agents_by_state(municipality_ids: list[int]) -> dict[str, Any]:
    rows = list(
        AgentPresence.objects.filter(
            user__is_active=True,
            user__municipalities__in=municipality_ids,
            user__role__in=(User.Role.AGENT, User.Role.SUPERVISOR, User.Role.OPERATOR_ADMIN),
        )
        .select_related("user")
        .distinct()
        .order_by("state", "since")
    )
    counts = {state: 0 for state, _ in AgentPresence.State.choices}
    people = []
    for row in rows:
        counts[row.state] += 1
        people.append(
            {
                "name": str(row.user),
                "state": row.state,
                "state_label": row.get_state_display(),
                "since": ja_datetime(row.since),
            }
        )
    return {
        "counts": [
            {"state": state, "label": label, "count": counts[state]}
            for state, label in AgentPresence.State.choices
        ],
        "people": people,
    }
