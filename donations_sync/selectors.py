"""Reads that reach the core's mirror.

- Lookups: caller ID (donors, then shipments' recipients), portal order and management numbers,
  tracking numbers. Like crm.selectors, each takes the municipality ids to search within and
  returns ids, and each is a single index probe at operator scale (see benchmarks/lookup.py).
- Donations and shipments, presented (see donations_sync.presenters).
"""

from __future__ import annotations

from collections.abc import Collection

from django.db import connection
from django.db.models import Count, Q, QuerySet

from crm import normalize
from crm.access import is_operator_admin
from crm.models import Carrier, DonorPhone
from crm.rows import row_date, row_datetime
from crm.selectors import DEFAULT_LIMIT
from donations_sync.models import CoreChange, Donation, GiftItem, OutboxMessage, Shipment
from donations_sync.presenters import DonationView, present_donation


def donor_ids_by_phone(
    municipality_ids: Collection[int], raw_phone: str, *, limit: int = DEFAULT_LIMIT
) -> list[int]:
    """Caller ID (any format) → donors who gave that number, then donors who had a gift shipped
    to it. One statement: this runs on every ringing call, and most callers are unknown."""
    e164 = normalize.normalize_phone(raw_phone)
    if not e164 or not municipality_ids:
        return []
    ids = list(municipality_ids)
    marks = ", ".join(["%s"] * len(ids))
    sql = f"""
        SELECT donor_id FROM (
            SELECT donor_id, 0 AS rank FROM {DonorPhone._meta.db_table}
            WHERE municipality_id IN ({marks}) AND e164 = %s
            UNION ALL
            SELECT d.donor_id, 1 AS rank FROM {Shipment._meta.db_table} s
            JOIN {Donation._meta.db_table} d ON d.id = s.donation_id
            WHERE s.municipality_id IN ({marks}) AND s.ship_to_phone = %s
        ) AS found
        GROUP BY donor_id ORDER BY MIN(rank), donor_id LIMIT %s
    """  # noqa: S608 - table names come from the models; every value is a bound parameter
    with connection.cursor() as cursor:
        cursor.execute(sql, [*ids, e164, *ids, e164, limit])
        return [row[0] for row in cursor.fetchall()]


def donation_ids_by_number(
    municipality_ids: Collection[int], raw_number: str, *, limit: int = DEFAULT_LIMIT
) -> list[int]:
    """A portal order number (受付番号) or management-system number (外部管理番号)."""
    number = normalize.nfkc(raw_number).strip()
    if not number or not municipality_ids:
        return []
    # One statement: PostgreSQL ORs the two number indexes in a bitmap scan.
    matches = Donation.objects.filter(
        Q(portal_order_number=number) | Q(external_id=number), municipality_id__in=municipality_ids
    )
    return list(matches.order_by().values_list("id", flat=True)[:limit])


def shipment_ids_by_tracking_number(
    municipality_ids: Collection[int], raw_number: str, *, limit: int = DEFAULT_LIMIT
) -> list[int]:
    number = normalize.clean_tracking_number(raw_number)
    if not number or not municipality_ids:
        return []
    return list(
        Shipment.objects.filter(
            municipality_id__in=municipality_ids, tracking_number=number
        ).values_list("id", flat=True)[:limit]
    )


# Plain SQL, one statement for every donation and shipment of the donors: the screen pop runs it
# while the phone rings, and compiling the ORM query would cost more than running it (see
# benchmarks/telephony.py). Table names come from the models so they follow any rename.
_SQL = """
SELECT d.id, d.donor_id, d.portal, d.portal_order_number, d.external_id, d.donated_at,
       d.paid_on, d.amount, d.payment_method, d.status, d.one_stop_requested,
       d.one_stop_received_on, d.receipt_issued_on, d.gift_declined, d.note,
       s.id, s.status, s.delivery_number, s.tracking_number, s.shipped_on, s.delivered_on,
       s.desired_date, s.desired_time_slot, s.ship_to_name,
       g.id, g.name, g.code, g.deliveries, c.id, c.short_name, c.tracking_url_template,
       s.tracking_valid, s.replaces_id
FROM {donation} d
LEFT JOIN {shipment} s ON s.donation_id = d.id AND s.municipality_id = d.municipality_id
LEFT JOIN {gift} g ON g.id = s.gift_item_id
LEFT JOIN {carrier} c ON c.id = s.carrier_id
WHERE d.municipality_id = %s AND d.donor_id IN ({ids})
ORDER BY d.donor_id, d.donated_at DESC, d.id, s.delivery_number, s.id
"""


def donation_views_for_donors(
    municipality_id: int, donor_ids: Collection[int], *, per_donor: int
) -> dict[int, list[DonationView]]:
    """Each donor's newest ``per_donor`` donations of one municipality, shipments nested."""
    ids = list(donor_ids)
    if not ids:
        return {}
    sql = _SQL.format(
        donation=Donation._meta.db_table,
        shipment=Shipment._meta.db_table,
        gift=GiftItem._meta.db_table,
        carrier=Carrier._meta.db_table,
        ids=", ".join(["%s"] * len(ids)),
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, [municipality_id, *ids])
        rows = cursor.fetchall()
    donations: dict[int, dict[int, tuple[Donation, list[Shipment]]]] = {}
    for row in rows:
        by_id = donations.setdefault(row[1], {})
        if row[0] not in by_id:
            if len(by_id) >= per_donor:
                continue
            by_id[row[0]] = (_donation(municipality_id, row), [])
        if row[15] is not None:
            by_id[row[0]][1].append(_shipment(municipality_id, row))
    return {
        donor_id: [present_donation(d, shipments) for d, shipments in by_id.values()]
        for donor_id, by_id in donations.items()
    }


def _donation(municipality_id: int, row: tuple) -> Donation:
    return Donation(
        id=row[0],
        municipality_id=municipality_id,
        donor_id=row[1],
        portal=row[2],
        portal_order_number=row[3],
        external_id=row[4],
        donated_at=row_datetime(row[5]),
        paid_on=row_date(row[6]),
        amount=row[7],
        payment_method=row[8],
        status=row[9],
        one_stop_requested=row[10],
        one_stop_received_on=row_date(row[11]),
        receipt_issued_on=row_date(row[12]),
        gift_declined=row[13],
        note=row[14],
    )


def _shipment(municipality_id: int, row: tuple) -> Shipment:
    shipment = Shipment(
        id=row[15],
        municipality_id=municipality_id,
        donation_id=row[0],
        status=row[16],
        delivery_number=row[17],
        tracking_number=row[18],
        shipped_on=row_date(row[19]),
        delivered_on=row_date(row[20]),
        desired_date=row_date(row[21]),
        desired_time_slot=row[22],
        ship_to_name=row[23],
        tracking_valid=row[31],
        replaces_id=row[32],
    )
    shipment.gift_item = GiftItem(id=row[24], name=row[25], code=row[26], deliveries=row[27])
    if row[28] is not None:
        shipment.carrier = Carrier(id=row[28], short_name=row[29], tracking_url_template=row[30])
    return shipment


# --- The core's change feed ------------------------------------------------------------------


def core_changes_quarantined(user) -> QuerySet[CoreChange]:
    """保留 changes the user may see: their municipalities' ones; those naming no known
    municipality (or unreadable) only for operator admins."""
    qs = CoreChange.objects.visible_to(user)
    if is_operator_admin(user):
        qs = CoreChange.objects.filter(Q(pk__in=qs.values("pk")) | Q(municipality__isnull=True))
    return (
        qs.filter(outcome=CoreChange.Outcome.QUARANTINED)
        .select_related("municipality")
        .order_by("-received_at", "-id")
    )


def outbox_messages_visible(
    user, *, status: str = "", kind: str = "", municipality_id: int | None = None
) -> QuerySet[OutboxMessage]:
    """The outbox as a supervisor sees it: their municipalities' messages, newest first."""
    qs = OutboxMessage.objects.visible_to(user)
    if status:
        qs = qs.filter(status=status)
    if kind:
        qs = qs.filter(kind=kind)
    if municipality_id:
        qs = qs.filter(municipality_id=municipality_id)
    return qs.select_related("municipality", "donation", "shipment__carrier")


def outbox_counts_by_status(user) -> dict[str, int]:
    rows = (
        OutboxMessage.objects.visible_to(user)
        .values("status")
        .annotate(n=Count("id"))
        .values_list("status", "n")
    )
    return dict(rows)
