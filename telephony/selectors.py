"""Reads for the agent's screen pop and the supervisors' wallboard."""

from __future__ import annotations

import datetime
from collections.abc import Collection
from functools import lru_cache
from typing import Any

from django.conf import settings
from django.db.models import Count, Min, Q, QuerySet
from django.urls import NoReverseMatch, reverse
from django.utils import timezone

from crm import normalize
from crm.access import call_taking_roles, visible_municipality_ids
from crm.presenters import as_json
from crm.selectors import donor_views
from crm.templatetags.ja import ja_date, ja_datetime
from donations_sync.selectors import donation_views_for_donors, donor_ids_by_phone
from telephony.models import AgentPresence, Call
from tickets.selectors import open_inquiries_for_donors

MAX_DONATIONS_PER_DONOR = 10
MAX_OPEN_INQUIRIES = 10
SERVICE_LEVEL_SECONDS = 30
SHORT_ABANDON_SECONDS = 5
MAX_WAITING_CALLS_SHOWN = 50


def recordings_playable_by(user: Any) -> QuerySet[Call]:
    """Calls whose recording ``user`` may play.

    Operator staff: any call of their municipalities. A city official: none, unless their city
    allows it, and then only calls linked to an inquiry they may see.
    """
    from tickets.models import Inquiry

    calls = Call.objects.visible_to(user).exclude(recording_sid="")
    if getattr(user, "is_operator_staff", False):
        return calls
    return calls.filter(
        municipality__city_may_play_recordings=True,
        inquiry__in=Inquiry.objects.visible_to(user).values("pk"),
    )


_PLACEHOLDER_ID = 987654321


@lru_cache(maxsize=32)
def _url_template(name: str) -> str:
    # reverse() once per URL name: the pop builds many links while the phone rings.
    try:
        return reverse(name, args=[_PLACEHOLDER_ID])
    except NoReverseMatch:
        return ""


def _url(name: str, pk: int) -> str:
    return _url_template(name).replace(str(_PLACEHOLDER_ID), str(pk))


def inquiry_url(inquiry_id: int) -> str:
    return _url("ticket_detail", inquiry_id)


def call_for_user(user: Any, call_id: int) -> Call | None:
    """The call, if it belongs to a municipality the user may see."""
    try:
        return (
            Call.objects.visible_to(user)
            .select_related("municipality", "municipality__phone_settings", "answered_by")
            .get(pk=call_id)
        )
    except Call.DoesNotExist:
        return None


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
            "start_ticket_url": _url("telephony:call_ticket_start", call.pk),
            "ended": call.is_ended,
            "needs_wrap_up": bool(
                call.ended_at
                and call.disposition_id is None
                and user.pk in (call.answered_by_id, call.placed_by_id)
            ),
            "wrap_up_url": _url("telephony:call_wrap_up", call.pk),
        },
        "municipality": {"id": municipality.id, "name": municipality.name},
        "greeting": greeting,
        "search": {"query": call.from_e164 and normalize.format_phone_national(call.from_e164)},
        "matches": _donor_cards(municipality, donor_ids),
        "providers": _provider_cards(municipality.id, call.from_e164),
    }
    return payload


def _provider_cards(municipality_id: int, from_e164: str) -> list[dict[str, Any]]:
    """返礼品提供事業者 of the dialled municipality whose registered number called (two queries)."""
    from crm.models import Provider
    from tickets.models import OPEN_STATUSES, Inquiry

    if not from_e164:
        return []
    providers = list(
        Provider.objects.filter(municipality_id=municipality_id, phone=from_e164).order_by("code")
    )
    if not providers:
        return []
    open_inquiries: dict[int, list[dict[str, Any]]] = {}
    rows = (
        Inquiry.objects.filter(
            municipality_id=municipality_id,
            provider__in=providers,
            status__in=OPEN_STATUSES,
        )
        .select_related("ticket")
        .order_by("-created_at")
    )
    for inquiry in rows:
        found = open_inquiries.setdefault(inquiry.provider_id, [])
        if len(found) < MAX_OPEN_INQUIRIES:
            found.append(
                {
                    "id": inquiry.pk,
                    "title": inquiry.ticket.title,
                    "status_label": inquiry.get_status_display(),
                    "created_at": inquiry.created_at.isoformat(),
                    "url": inquiry_url(inquiry.pk),
                }
            )
    return [
        {
            "id": p.pk,
            "code": p.code,
            "name": p.name,
            "name_kana": p.name_kana,
            "contact_person": p.contact_person,
            "open_inquiries": open_inquiries.get(p.pk, []),
        }
        for p in providers
    ]


def _ivr_label(call: Call) -> str:
    if not call.ivr_digit:
        return ""
    try:
        options = call.municipality.phone_settings.ivr_options
    except Exception:
        from telephony.models import default_ivr_options

        options = default_ivr_options()
    return options.get(call.ivr_digit, {}).get("label", "")


def _donor_cards(municipality: Any, donor_ids: list[int]) -> list[dict[str, Any]]:
    """Each matched donor as the donor page shows them: crm presents the donor, donations_sync
    the donations and shipments, tickets the open inquiries (one query each)."""
    donors = donor_views(municipality, donor_ids)
    if not donors:
        return []
    found = [d.id for d in donors]
    donations = donation_views_for_donors(municipality.id, found, per_donor=MAX_DONATIONS_PER_DONOR)
    inquiries = open_inquiries_for_donors(municipality.id, found, per_donor=MAX_OPEN_INQUIRIES)
    return [
        {
            **as_json(donor),
            "full_address": donor.full_address,
            # JSON carries a flag's words only; its tone says how loudly the pop shows it.
            "flag_tones": {str(f): f.tone for f in donor.flags},
            "url": _url("donor_detail", donor.id),
            "donations": as_json(donations.get(donor.id, [])),
            "open_inquiries": as_json(inquiries.get(donor.id, [])),
        }
        for donor in donors
    ]


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
        # after_hours=False: a call offered after hours is never an abandon (see 時間外切断).
        abandoned_ivr=Count("id", filter=Q(status=Call.Status.ABANDONED_IVR, after_hours=False)),
        after_hours_hangup=Count("id", filter=Q(status=Call.Status.AFTER_HOURS_HANGUP)),
        voicemail=Count("id", filter=Q(voicemail=True)),
        after_hours=Count("id", filter=Q(after_hours=True)),
    )
    counted = today["answered"] + today["abandoned_queue"] - today["abandoned_short"]
    service_level = round(100 * today["answered_in_sl"] / counted, 1) if counted else None
    agents = _agents_by_state(ids, now=now)
    waiting_calls = [
        {
            "id": c.pk,
            "municipality": c.municipality.name,
            "from": normalize.format_phone_national(c.from_e164) or "非通知",
            "requester_type": c.requester_type,
            "ivr_label": _ivr_label(c),
            "waiting_since": c.routed_at.isoformat(),
            "wait_seconds": max(0, int((now - c.routed_at).total_seconds())),
        }
        for c in Call.objects.filter(
            municipality_id__in=ids,
            status=Call.Status.QUEUED,
            ended_at__isnull=True,
            routed_at__isnull=False,
        )
        .select_related("municipality", "municipality__phone_settings")
        .order_by("routed_at")[:MAX_WAITING_CALLS_SHOWN]
    ]
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
        "after_hours_hangup": today["after_hours_hangup"],
        "service_level": service_level,
        "service_level_seconds": SERVICE_LEVEL_SECONDS,
        "agents": agents,
        "waiting_calls": waiting_calls,
        "wrap_up_alert_seconds": settings.TELEPHONY_WRAP_UP_ALERT_SECONDS,
    }


def _agents_by_state(municipality_ids: list[int], *, now: datetime.datetime) -> dict[str, Any]:
    rows = list(
        AgentPresence.objects.filter(
            user__is_active=True,
            user__municipalities__in=municipality_ids,
            user__role__in=call_taking_roles(),
        )
        .select_related("user")
        .distinct()
        .order_by("state", "since")
    )
    counts = {state: 0 for state, _ in AgentPresence.State.choices}
    people = []
    for row in rows:
        counts[row.state] += 1
        seconds = max(0, int((now - row.since).total_seconds()))
        people.append(
            {
                "user_id": row.user_id,
                "name": str(row.user),
                "state": row.state,
                "reason": row.reason,
                "state_label": row.get_state_display(),
                "since": ja_datetime(row.since),
                "since_iso": row.since.isoformat(),
                "seconds_in_state": seconds,
                # The browser keeps counting between pushes and raises the flag itself too.
                "wrap_up_overdue": row.state == AgentPresence.State.WRAP_UP
                and seconds >= settings.TELEPHONY_WRAP_UP_ALERT_SECONDS,
            }
        )
    return {
        "counts": [
            {"state": state, "label": label, "count": counts[state]}
            for state, label in AgentPresence.State.choices
        ],
        "people": people,
    }
