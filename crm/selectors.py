"""Donor lookups by what a caller says: caller ID, order numbers, tracking numbers, kana, postal code.

Each takes the municipality ids to search within (from the access policy, or the one municipality
whose number was dialled) and returns donor ids, so that callers compose them freely. Each is a
single index probe at operator scale (see benchmarks/lookup.py).
"""

from __future__ import annotations

from collections.abc import Collection

from django.db import connection
from django.db.models import Q

from crm import normalize
from crm.models import Donor, DonorEmail, DonorPhone
from donations_sync.models import Donation, Shipment

DEFAULT_LIMIT = 20


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


def donor_ids_by_email(
    municipality_ids: Collection[int], raw_email: str, *, limit: int = DEFAULT_LIMIT
) -> list[int]:
    address = normalize.normalize_email(raw_email)
    if not address or not municipality_ids:
        return []
    return list(
        DonorEmail.objects.filter(municipality_id__in=municipality_ids, address=address)
        .values_list("donor_id", flat=True)
        .distinct()[:limit]
    )


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


def donor_ids_by_kana_prefix(
    municipality_ids: Collection[int], raw_kana: str, *, limit: int = DEFAULT_LIMIT
) -> list[int]:
    """ヤマダ, やまだ, ﾔﾏﾀﾞ all find 山田 (readings are stored as full-width katakana)."""
    kana = normalize.normalize_kana(raw_kana)
    if not kana or not municipality_ids:
        return []
    if len(municipality_ids) > 1 and connection.vendor == "postgresql":
        return _donor_ids_by_kana_prefix_per_municipality(list(municipality_ids), kana, limit)
    return list(
        Donor.objects.filter(municipality_id__in=municipality_ids, name_kana__startswith=kana)
        .order_by("name_kana", "id")
        .values_list("id", flat=True)[:limit]
    )


def _donor_ids_by_kana_prefix_per_municipality(
    municipality_ids: list[int], kana: str, limit: int
) -> list[int]:
    """One ordered range scan per municipality, merged: with IN (...) PostgreSQL would read
    every match of every municipality and sort them, which is slow for common readings."""
    pattern = kana.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
    sql = """
        SELECT d.id FROM unnest(%s::bigint[]) AS m(id)
        CROSS JOIN LATERAL (
            SELECT id, name_kana FROM crm_donor
            WHERE municipality_id = m.id AND name_kana LIKE %s
            ORDER BY name_kana, id LIMIT %s
        ) AS d
        ORDER BY d.name_kana, d.id LIMIT %s
    """
    with connection.cursor() as cursor:
        cursor.execute(sql, [municipality_ids, pattern, limit, limit])
        return [row[0] for row in cursor.fetchall()]


def donor_ids_by_postal_code(
    municipality_ids: Collection[int], raw_code: str, *, limit: int = DEFAULT_LIMIT
) -> list[int]:
    code = normalize.normalize_postal_code(raw_code)
    if not code or not municipality_ids:
        return []
    return list(
        Donor.objects.filter(municipality_id__in=municipality_ids, postal_code=code).values_list(
            "id", flat=True
        )[:limit]
    )
