"""Lookups that reach the core's mirror: caller ID (donors, then shipments' recipients), portal
order and management numbers, tracking numbers.

Like crm.selectors, each takes the municipality ids to search within and returns ids, and each is
a single index probe at operator scale (see benchmarks/lookup.py).
"""

from __future__ import annotations

from collections.abc import Collection

from django.db import connection
from django.db.models import Q

from crm import normalize
from crm.models import DonorPhone
from crm.selectors import DEFAULT_LIMIT
from donations_sync.models import Donation, Shipment


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
