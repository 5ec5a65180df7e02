"""Reads behind the agent console, the donor page and the ticket page.

Every function takes the requesting user and narrows to what ``crm.access`` lets them see. Phone,
e-mail, order, tracking, postal and reading lookups are crm.selectors' and
donations_sync.selectors' index probes; kanji name prefixes are searched here, one index range per
municipality and spelling, because an agent's search spans all the municipalities they serve (see
benchmarks/console.py).
"""

from __future__ import annotations

import datetime
import re
from collections.abc import Collection
from dataclasses import dataclass, field
from typing import Any

from django.db import connection
from django.db.models import Count, Exists, OuterRef, Prefetch, Q, QuerySet
from django.urls import reverse
from helpdesk.models import Ticket

from crm import normalize, selectors
from crm.access import visible_municipality_ids
from crm.models import Donor, Municipality, PersonalDataAccess, Provider, User
from crm.presenters import present_donor
from crm.rows import row_datetime
from donations_sync import selectors as sync_selectors
from donations_sync.models import Donation, GiftItem, Shipment
from donations_sync.presenters import (
    present_donation,
    present_shipment,
    shipment_state,
    summary_flags,
    tracking_warning,
)
from tickets.filters import AccessLogFilter, InquiryFilter
from tickets.models import OPEN_STATUSES, Category, Channel, Inquiry, SlaTarget, Status
from tickets.search import matching_text

SEARCH_LIMIT = 10

_TICKET_NUMBER = re.compile(r"^(?:#|＃|問合せ)?\s*(\d{1,9})$")
# As long as the carriers' numbers (DOMAIN.md): 11 or 12 digits, 13 characters for EMS.
_TRACKING_LIKE = re.compile(r"\d{10,12}|[A-Z]{2}\d{9}[A-Z]{2}")


@dataclass
class SearchHit:
    kind: str  # "donor" | "donation" | "shipment" | "ticket"
    kind_label: str
    title: str
    detail: str
    url: str
    municipality: str
    # Why it matched, in the caller's words: "電話番号", "伝票番号" …
    matched_by: str = ""
    # Said next to the hit: a tracking number whose check digit fails (see TRACKING_INVALID).
    warning: str = ""


@dataclass
class SearchResults:
    query: str
    hits: list[SearchHit] = field(default_factory=list)
    interpreted_as: list[str] = field(default_factory=list)

    @property
    def top(self) -> SearchHit | None:
        return self.hits[0] if self.hits else None


def search_municipality_ids(user: User, municipality_id: int | None) -> frozenset[int]:
    """The search scope: one of the user's municipalities, or all of them; never beyond."""
    ids = visible_municipality_ids(user)
    if municipality_id is not None:
        return ids & {municipality_id}
    return ids


def _name_variants(name: str) -> set[str]:
    """How a name said with a space may be stored: half-width, full-width or no space."""
    words = name.split()
    return {" ".join(words), "\u3000".join(words), "".join(words)}


def _spaced_variants(name: str) -> set[str]:
    """A name said without a space (山田太郎): the space may fall after any of the first four
    characters (姓 is 1–4 characters), half- or full-width."""
    return {
        name[:i] + space + name[i:]
        for i in range(1, min(len(name), 5))
        for space in (" ", "\u3000")
    }


def _donor_ids_by_name(municipality_ids: Collection[int], raw: str) -> list[int]:
    """Kanji names by prefix, with or without the space between family and given name."""
    name = normalize.nfkc(raw).strip()
    if not name:
        return []
    if len(name.split()) > 1:
        return selectors.donor_ids_by_prefixes(
            municipality_ids, "name", _name_variants(name), limit=SEARCH_LIMIT
        )
    # Usually the family name alone, or the whole name as stored; only then guess the space.
    found = selectors.donor_ids_by_prefixes(municipality_ids, "name", {name}, limit=SEARCH_LIMIT)
    if not found and len(name) >= 2:
        found = selectors.donor_ids_by_prefixes(
            municipality_ids, "name", _spaced_variants(name), limit=SEARCH_LIMIT
        )
    return found


def universal_search(
    user: User, query: str, *, municipality_id: int | None = None
) -> SearchResults:
    """Everything a caller might say, tried in the order most likely to be unambiguous."""
    results = SearchResults(query=query)
    text = normalize.nfkc(query or "").strip()
    scope = search_municipality_ids(user, municipality_id)
    if not text or not scope:
        return results
    compact = re.sub(r"\s", "", text)
    found = _interpret(user, scope, text, compact, results.interpreted_as)

    # Identifiers first: a tracking or order number names exactly one record.
    results.hits += _shipment_hits(user, found.shipment_ids)
    results.hits += _donation_hits(user, found.donation_ids)
    results.hits += _ticket_hits(user, found.inquiry_ids, "問合せ番号")
    results.hits += _donor_hits(user, found.donor_hits)
    if not (found.shipment_ids or found.donation_ids or found.inquiry_ids) and "@" not in text:
        results.hits += _provider_hits(user, provider_ids_by_name(scope, text))

    # Free text last: the ticket search matches titles, bodies and replies.
    if not (found.shipment_ids or found.donation_ids or found.inquiry_ids) and len(compact) >= 2:
        text_ids = list(
            matching_text(Inquiry.objects.filter(municipality_id__in=scope), user, text)
            .order_by("-last_activity_at")
            .values_list("pk", flat=True)[:SEARCH_LIMIT]
        )
        results.hits += _ticket_hits(user, text_ids, "問合せ本文")
    return results


def inquiry_ids_for_query(user: User, scope: frozenset[int], query: str) -> Q | None:
    """The tickets a query names the way the console understands it, as a filter: by number
    (#98), by linked shipment (tracking number) or donation (order number), by donor (name,
    reading, phone, e-mail, postal code), the latter also with the tickets whose text matches.
    None when the query names no record: then it is text alone."""
    text = normalize.nfkc(query or "").strip()
    if not text or not scope:
        return None
    compact = re.sub(r"\s", "", text)
    found = _interpret(user, scope, text, compact, [])
    if found.inquiry_ids or found.shipment_ids or found.donation_ids:
        condition = Q(pk__in=found.inquiry_ids)
        if found.shipment_ids:
            condition |= Q(
                pk__in=Inquiry.shipments.through.objects.filter(
                    shipment_id__in=found.shipment_ids
                ).values("inquiry_id")
            )
        if found.donation_ids:
            condition |= Q(
                pk__in=Inquiry.donations.through.objects.filter(
                    donation_id__in=found.donation_ids
                ).values("inquiry_id")
            )
        return condition
    if found.donor_hits:
        donor_ids = list(dict.fromkeys(donor_id for donor_id, _ in found.donor_hits))
        # The caller's queryset is scoped already: scoping the subquery too would make the
        # planner square the selectivity (see tickets.search.matching_text).
        text_matches = matching_text(Inquiry.objects.all(), user, text).values("pk")
        return Q(donor_id__in=donor_ids) | Q(pk__in=text_matches)
    return None


@dataclass
class _Found:
    shipment_ids: list[int] = field(default_factory=list)
    donation_ids: list[int] = field(default_factory=list)
    inquiry_ids: list[int] = field(default_factory=list)
    donor_hits: list[tuple[int, str]] = field(default_factory=list)  # (donor id, matched by)


def _interpret(
    user: User, scope: frozenset[int], text: str, compact: str, interpreted_as: list[str]
) -> _Found:
    """What the query could be (ticket number, e-mail, tracking, phone, order number, postal
    code, reading, name), each looked up within ``scope``; ``interpreted_as`` says which."""
    found = _Found()
    ticket_match = _TICKET_NUMBER.match(text)
    if ticket_match:
        found.inquiry_ids = list(
            Inquiry.objects.visible_to(user)
            .filter(municipality_id__in=scope, pk=int(ticket_match.group(1)))
            .values_list("pk", flat=True)
        )
        if found.inquiry_ids:
            interpreted_as.append("問合せ番号")

    if "@" in text:
        interpreted_as.append("メールアドレス")
        found.donor_hits += [(i, "メール") for i in selectors.donor_ids_by_email(scope, text)]
        return found
    cleaned = normalize.clean_tracking_number(text)
    if normalize.tracking_rule_for(cleaned):
        interpreted_as.append("伝票番号")
        found.shipment_ids = sync_selectors.shipment_ids_by_tracking_number(scope, cleaned)
    elif _TRACKING_LIKE.fullmatch(cleaned):
        # Imports keep numbers whose check digit fails: the number as the donor reads it from
        # their slip must still find the shipment.
        found.shipment_ids = sync_selectors.shipment_ids_by_tracking_number(scope, cleaned)
        if found.shipment_ids:
            interpreted_as.append("伝票番号")
    if normalize.normalize_phone(text) and not text.startswith("〒"):
        interpreted_as.append("電話番号")
        found.donor_hits += [
            (i, "電話番号") for i in sync_selectors.donor_ids_by_phone(scope, text)
        ]
    if re.fullmatch(r"[0-9A-Za-z\-_]{4,40}", compact):
        donation_ids = sync_selectors.donation_ids_by_number(scope, compact)
        if donation_ids:
            interpreted_as.append("受付番号・外部管理番号")
            found.donation_ids = donation_ids
    postal = normalize.normalize_postal_code(text)
    if postal and (text.startswith("〒") or re.fullmatch(r"\d{3}-?\d{4}", compact)):
        interpreted_as.append("郵便番号")
        found.donor_hits += [
            (i, "郵便番号") for i in selectors.donor_ids_by_postal_code(scope, postal)
        ]
    if normalize.looks_like_kana(text):
        interpreted_as.append("フリガナ")
        found.donor_hits += [
            (i, "フリガナ")
            for i in selectors.donor_ids_by_kana_prefix(scope, text, limit=SEARCH_LIMIT)
        ]
    elif not re.search(r"\d", text):
        found.donor_hits += [(i, "氏名") for i in _donor_ids_by_name(scope, text)]
    return found


def _shipment_hits(user: User, ids: list[int]) -> list[SearchHit]:
    if not ids:
        return []
    return [
        SearchHit(
            kind="shipment",
            kind_label="配送",
            title=f"{s.gift_item.name}（{shipment_state(s)}）",
            detail=f"{s.donation.donor.name} 様・{s.ship_to_address}",
            url=reverse("donor_detail", args=[s.donation.donor_id]) + f"#shipment-{s.id}",
            municipality=s.municipality.name,
            matched_by="伝票番号",
            warning=tracking_warning(s),
        )
        for s in Shipment.objects.visible_to(user)
        .filter(id__in=ids)
        .select_related("donation__donor", "gift_item", "carrier", "municipality")
    ]


def _donation_hits(user: User, ids: list[int]) -> list[SearchHit]:
    if not ids:
        return []
    return [
        SearchHit(
            kind="donation",
            kind_label="寄附",
            title=f"{d.portal_order_number or d.external_id}（{d.get_portal_display()}）",
            detail=f"{d.donor.name} 様・¥{d.amount:,}・{present_donation(d).state}",
            url=reverse("donor_detail", args=[d.donor_id]) + f"#donation-{d.id}",
            municipality=d.municipality.name,
            matched_by="受付番号・外部管理番号",
        )
        for d in Donation.objects.visible_to(user)
        .filter(id__in=ids)
        .select_related("donor", "municipality")
    ]


def _donor_hits(user: User, donor_hits: list[tuple[int, str]]) -> list[SearchHit]:
    """Each donor once, in the order found, with what matched first."""
    ordered: dict[int, str] = {}
    for donor_id, why in donor_hits:
        ordered.setdefault(donor_id, why)
    if not ordered:
        return []
    donors = {
        d.id: d
        for d in Donor.objects.visible_to(user)
        .filter(id__in=list(ordered))
        .select_related("municipality")
        .prefetch_related("phones")
    }
    hits = []
    for donor_id, why in list(ordered.items())[:SEARCH_LIMIT]:
        donor = donors.get(donor_id)
        if donor is None:
            continue
        phones = "・".join(normalize.format_phone_national(p.e164) for p in donor.phones.all())
        detail = (
            phones,
            f"〒{normalize.format_postal_code(donor.postal_code)}",
            donor.prefecture + donor.address,
        )
        hits.append(
            SearchHit(
                kind="donor",
                kind_label="寄附者",
                title=f"{donor.name}（{donor.name_kana}）" if donor.name_kana else donor.name,
                detail=" ".join(x for x in detail if x),
                url=reverse("donor_detail", args=[donor.id]),
                municipality=donor.municipality.name,
                matched_by=why,
            )
        )
    return hits


def _ticket_hits(user: User, ids: list[int], why: str) -> list[SearchHit]:
    if not ids:
        return []
    rows = (
        Inquiry.objects.visible_to(user)
        .filter(pk__in=ids)
        .select_related("ticket", "municipality", "donor", "category")
        .order_by("-last_activity_at")
    )
    return [
        SearchHit(
            kind="ticket",
            kind_label="問合せ",
            title=f"#{i.pk} {i.ticket.title}",
            detail=" ".join(
                x
                for x in (
                    i.get_status_display(),
                    i.category.name if i.category else "",
                    f"{i.donor.name} 様" if i.donor else i.requester_display,
                )
                if x
            ),
            url=reverse("ticket_detail", args=[i.pk]),
            municipality=i.municipality.name,
            matched_by=why,
        )
        for i in rows
    ]


# --- Lists: one selector each, behind the page, the API and the CSV ----------------------


def inquiry_rows() -> QuerySet[Inquiry]:
    """Every inquiry with what a list row shows; ``filters.InquiryFilter`` scopes and filters."""
    # The normalized search columns are for the database only; never fetch them.
    return Inquiry.objects.select_related(
        "ticket__assigned_to", "municipality", "category", "donor", "provider"
    ).defer("search_text", "search_text_internal")


def inquiry_list(
    request: Any, filterset_class: type[InquiryFilter] = InquiryFilter
) -> InquiryFilter:
    """The ticket list's filters applied to what the user may see (``.qs``, ``.form``)."""
    return filterset_class(request.GET, queryset=inquiry_rows(), request=request)


def access_log_rows() -> QuerySet[PersonalDataAccess]:
    return PersonalDataAccess.objects.select_related("user", "municipality")


def access_log_list(request: Any) -> AccessLogFilter:
    """The access log's filters applied to what the user may see (``.qs``, ``.form``)."""
    return AccessLogFilter(request.GET, queryset=access_log_rows(), request=request)


# --- Console --------------------------------------------------------------------------


def my_open_tickets(user: User, *, limit: int = 20) -> QuerySet[Inquiry]:
    """With ``reply_failed``: a reply's mail failed and nobody has sent it again yet."""
    from tickets.mail.models import OutboundMessage

    failed = OutboundMessage.objects.filter(
        inquiry=OuterRef("pk"),
        kind=OutboundMessage.Kind.REPLY,
        status__in=OutboundMessage.RESENDABLE,
    )
    return (
        Inquiry.objects.visible_to(user)
        .filter(status__in=OPEN_STATUSES, assigned_to=user)
        .annotate(reply_failed=Exists(failed))
        .select_related("ticket", "municipality", "donor", "category")
        .order_by("-last_activity_at")[:limit]
    )


def queue_counts(user: User) -> list[dict[str, Any]]:
    """Open tickets per municipality the user serves, with how many are unassigned or severe."""
    ids = visible_municipality_ids(user)
    counts = {
        row["municipality_id"]: row
        for row in Inquiry.objects.visible_to(user)
        .filter(status__in=OPEN_STATUSES)
        .values("municipality_id")
        .annotate(
            open=Count("pk"),
            unassigned=Count("pk", filter=Q(assigned_to__isnull=True)),
            severe=Count("pk", filter=Q(severity__in=["high", "urgent"])),
        )
    }
    rows = []
    for m in Municipality.objects.filter(id__in=ids).order_by("code"):
        c = counts.get(m.id, {})
        rows.append(
            {
                "municipality": m,
                "open": c.get("open", 0),
                "unassigned": c.get("unassigned", 0),
                "severe": c.get("severe", 0),
            }
        )
    return rows


# --- Donor page -----------------------------------------------------------------------


def donor_page(user: User, donor: Donor) -> dict[str, Any]:
    """The donor, their donations with shipments nested, and their tickets, presented as the
    screen pop presents them, in a fixed number of queries."""
    donations = [
        present_donation(d, d.shipments.all())
        for d in Donation.objects.visible_to(user)
        .filter(donor=donor)
        .prefetch_related(
            Prefetch(
                "shipments",
                queryset=Shipment.objects.select_related("gift_item", "carrier").order_by(
                    "delivery_number", "id"
                ),
            )
        )
        .order_by("-donated_at")
    ]
    inquiries = [
        present_inquiry(i)
        for i in Inquiry.objects.visible_to(user)
        .filter(donor=donor)
        .select_related("ticket", "category", "ticket__assigned_to")
        .order_by("-created_at")[:50]
    ]
    return {
        "donor_view": present_donor(donor),
        "donations": donations,
        "inquiries": inquiries,
        "open_inquiries": [i for i in inquiries if i.is_open],
        "summary_flags": summary_flags(donations),
    }


def linked_records(user: User, inquiry: Inquiry) -> dict[str, list[Any]]:
    """The ticket page's linked donations and shipments, in the donor page's words."""
    donations = [present_donation(d) for d in inquiry.donations.visible_to(user)]
    shipments = [
        present_shipment(s)
        for s in inquiry.shipments.visible_to(user).select_related("gift_item", "carrier")
    ]
    return {"donations": donations, "shipments": shipments}


# --- Tickets as records ------------------------------------------------------------------


@dataclass
class InquiryView:
    id: int
    title: str
    status: int
    status_label: str
    is_open: bool
    category: str
    channel_label: str
    severity: str
    assignee: str
    created_at: datetime.datetime
    url: str


_STATUS_LABELS = dict(Status.choices)


def _ticket_url(pk: int) -> str:
    return reverse("ticket_detail", args=[pk])


def present_inquiry(i: Inquiry) -> InquiryView:
    """``i`` with ``ticket`` and ``category`` loaded."""
    assignee = i.ticket.assigned_to if i.ticket.assigned_to_id else None
    return InquiryView(
        id=i.pk,
        title=i.ticket.title,
        status=i.status,
        status_label=_STATUS_LABELS.get(i.status, str(i.status)),
        is_open=i.is_open,
        category=i.category.name if i.category_id else "",
        channel_label=i.get_channel_display(),
        severity=i.severity,
        assignee=str(assignee) if assignee else "",
        created_at=i.created_at,
        url=_ticket_url(i.pk),
    )


# Plain SQL: the screen pop runs this while the phone rings (see benchmarks/telephony.py).
_OPEN_FOR_DONORS_SQL = """
SELECT i.ticket_id, i.donor_id, i.status, i.created_at, i.channel, i.severity, t.title,
       cat.name
FROM {inquiry} i
JOIN {ticket} t ON t.id = i.ticket_id
LEFT JOIN {category} cat ON cat.id = i.category_id
WHERE i.municipality_id = %s AND i.donor_id IN ({ids}) AND i.status IN ({statuses})
ORDER BY i.created_at DESC
"""
_CHANNEL_LABELS = dict(Channel.choices)


def open_inquiries_for_donors(
    municipality_id: int, donor_ids: Collection[int], *, per_donor: int
) -> dict[int, list[InquiryView]]:
    """Each donor's newest ``per_donor`` open tickets in one municipality, one statement."""
    ids = list(donor_ids)
    if not ids:
        return {}
    statuses = [int(s) for s in OPEN_STATUSES]
    sql = _OPEN_FOR_DONORS_SQL.format(
        inquiry=Inquiry._meta.db_table,
        ticket=Ticket._meta.db_table,
        category=Category._meta.db_table,
        ids=", ".join(["%s"] * len(ids)),
        statuses=", ".join(["%s"] * len(statuses)),
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, [municipality_id, *ids, *statuses])
        rows = cursor.fetchall()
    result: dict[int, list[InquiryView]] = {}
    for pk, donor_id, status, created_at, channel, severity, title, category in rows:
        found = result.setdefault(donor_id, [])
        if len(found) < per_donor:
            found.append(
                InquiryView(
                    id=pk,
                    title=title,
                    status=status,
                    status_label=_STATUS_LABELS.get(status, str(status)),
                    is_open=True,
                    category=category or "",
                    channel_label=_CHANNEL_LABELS.get(channel, channel),
                    severity=severity,
                    assignee="",
                    created_at=row_datetime(created_at),
                    url=_ticket_url(pk),
                )
            )
    return result


# --- Ticket page ----------------------------------------------------------------------


def ticket_timeline(user: User, inquiry: Inquiry) -> list[Any]:
    """Follow-ups the user may read, each with its event and field changes."""
    followups = list(inquiry.followups_visible_to(user).prefetch_related("ticketchange_set"))
    return followups


# --- Service levels -----------------------------------------------------------------------


@dataclass
class SlaInput:
    inquiry_id: int
    municipality_id: int
    created_at: datetime.datetime
    first_response_minutes: int | None
    resolution_minutes: int | None


def sla_inputs(inquiry_ids: Collection[int]) -> list[SlaInput]:
    """Each inquiry's opening time and the targets that apply to it: its category's row of its
    municipality, else the municipality's default row, else none."""
    rows = list(
        Inquiry.objects.filter(pk__in=list(inquiry_ids)).values_list(
            "pk", "municipality_id", "category_id", "created_at"
        )
    )
    targets = {
        (t.municipality_id, t.category_id): t
        for t in SlaTarget.objects.filter(municipality_id__in={r[1] for r in rows})
    }
    result = []
    for pk, municipality_id, category_id, created_at in rows:
        target = targets.get((municipality_id, category_id)) or targets.get((municipality_id, None))
        result.append(
            SlaInput(
                inquiry_id=pk,
                municipality_id=municipality_id,
                created_at=created_at,
                first_response_minutes=target.first_response_minutes if target else None,
                resolution_minutes=target.resolution_minutes if target else None,
            )
        )
    return result


def sla_targets_for(user: User) -> QuerySet[SlaTarget]:
    return (
        SlaTarget.objects.visible_to(user)
        .select_related("municipality", "category")
        .order_by("municipality__code", "category__sort_order", "category__code")
    )


# --- Providers ----------------------------------------------------------------------------


def provider_page(user: User, provider: Provider) -> dict[str, Any]:
    """A provider's inquiries and gift items, within what the user may see."""
    inquiries = [
        present_inquiry(i)
        for i in Inquiry.objects.visible_to(user)
        .filter(provider=provider)
        .select_related("ticket", "category", "ticket__assigned_to")
        .order_by("-created_at")[:50]
    ]
    gift_items = list(
        GiftItem.objects.visible_to(user).filter(provider=provider).order_by("code")[:200]
    )
    return {"inquiries": inquiries, "gift_items": gift_items}


def provider_ids_by_name(scope: Collection[int], text: str) -> list[tuple[int, str]]:
    """Providers whose name or reading contains ``text`` (kanji, kana, half-width alike), or
    whose number is ``text``: (provider id, matched by). Providers are few per municipality."""
    found: list[tuple[int, str]] = []
    phone = normalize.normalize_phone(text)
    if phone:
        found += [
            (pk, "電話番号")
            for pk in Provider.objects.filter(municipality_id__in=scope, phone=phone).values_list(
                "pk", flat=True
            )[:SEARCH_LIMIT]
        ]
    if re.search(r"\d", text):
        return found
    if normalize.looks_like_kana(text):
        reading = normalize.normalize_kana(text)
        found += [
            (pk, "フリガナ")
            for pk, kana in Provider.objects.filter(municipality_id__in=scope)
            .exclude(name_kana="")
            .values_list("pk", "name_kana")
            .iterator()
            if reading in normalize.normalize_kana(kana)
        ][:SEARCH_LIMIT]
    name = normalize.nfkc(text).strip()
    found += [
        (pk, "事業者名")
        for pk in Provider.objects.filter(
            municipality_id__in=scope, name__icontains=name
        ).values_list("pk", flat=True)[:SEARCH_LIMIT]
    ]
    return found


def _provider_hits(user: User, found: list[tuple[int, str]]) -> list[SearchHit]:
    ordered: dict[int, str] = {}
    for pk, why in found:
        ordered.setdefault(pk, why)
    if not ordered:
        return []
    providers = {
        p.pk: p
        for p in Provider.objects.visible_to(user)
        .filter(pk__in=list(ordered))
        .select_related("municipality")
    }
    hits = []
    for pk, why in list(ordered.items())[:SEARCH_LIMIT]:
        p = providers.get(pk)
        if p is None:
            continue
        detail = (normalize.format_phone_national(p.phone) if p.phone else "", p.contact_person)
        hits.append(
            SearchHit(
                kind="provider",
                kind_label="返礼品提供事業者",
                title=f"{p.name}（{p.name_kana}）" if p.name_kana else p.name,
                detail=" ".join(x for x in detail if x),
                url=reverse("provider_detail", args=[p.pk]),
                municipality=p.municipality.name,
                matched_by=why,
            )
        )
    return hits


def open_inquiry_ids(*, municipality_id: int | None = None, batch: int = 1000):
    """Open tickets' ids in batches, in id order (for recomputing their due times)."""
    qs = Inquiry.objects.filter(status__in=OPEN_STATUSES)
    if municipality_id is not None:
        qs = qs.filter(municipality_id=municipality_id)
    last = 0
    while True:
        ids = list(qs.filter(pk__gt=last).order_by("pk").values_list("pk", flat=True)[:batch])
        if not ids:
            return
        yield ids
        last = ids[-1]
