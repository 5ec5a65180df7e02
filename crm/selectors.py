"""Donor lookups by what a caller says: e-mail, kana, name, postal code.

Each takes the municipality ids to search within (from the access policy, or the one municipality
whose number was dialled) and returns donor ids, so that callers compose them freely. Each is a
single index probe at operator scale (see benchmarks/lookup.py). Lookups that reach donations
and shipments (caller ID, order and tracking numbers) are donations_sync.selectors'.
"""

from __future__ import annotations

from collections.abc import Collection

from django.db import connection
from django.db.models import Q

from crm import normalize
from crm.models import Donor, DonorEmail, Municipality
from crm.presenters import DonorView, present_donor

DEFAULT_LIMIT = 20


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


def donor_ids_by_kana_prefix(
    municipality_ids: Collection[int], raw_kana: str, *, limit: int = DEFAULT_LIMIT
) -> list[int]:
    """ヤマダ, やまだ, ﾔﾏﾀﾞ all find 山田 (readings are stored as full-width katakana)."""
    kana = normalize.normalize_kana(raw_kana)
    if not kana:
        return []
    return donor_ids_by_prefixes(municipality_ids, "name_kana", {kana}, limit=limit)


_TOP = "\U0010ffff"  # the highest code point: every string with the prefix sorts below p + _TOP
# Donor columns a prefix lookup may name (identifiers are put into SQL, so never from input).
PREFIX_FIELDS = frozenset({"name", "name_kana"})


def donor_ids_by_prefixes(
    municipality_ids: Collection[int],
    field: str,
    prefixes: Collection[str],
    *,
    limit: int = DEFAULT_LIMIT,
) -> list[int]:
    """Donors whose ``field`` starts with any of ``prefixes``, in ``field`` order.

    Prefixes are ranges (``>= p AND < p + U+10FFFF``), which a plain (municipality, field)
    b-tree serves under the database's code-point order. On PostgreSQL each (municipality,
    prefix) pair is its own ordered range scan that stops at the limit, all in one statement:
    with ``municipality_id IN (…)`` or OR-ed prefixes the planner would read and sort every
    match, which is slow for common names and readings.
    """
    if field not in PREFIX_FIELDS:
        raise ValueError(field)
    ids, prefixes = sorted(municipality_ids), sorted(p for p in prefixes if p)
    if not ids or not prefixes:
        return []
    if connection.vendor != "postgresql" or len(ids) * len(prefixes) == 1:
        condition = Q()
        for prefix in prefixes:
            condition |= Q(**{f"{field}__gte": prefix, f"{field}__lt": prefix + _TOP})
        return list(
            Donor.objects.filter(condition, municipality_id__in=ids)
            .order_by(field, "id")
            .values_list("id", flat=True)[:limit]
        )
    column = Donor._meta.get_field(field).column
    sql = f"""
        SELECT d.id FROM unnest(%s::bigint[]) AS m(id)
        CROSS JOIN unnest(%s::text[]) AS p(prefix)
        CROSS JOIN LATERAL (
            SELECT id, "{column}" AS key FROM {Donor._meta.db_table}
            WHERE municipality_id = m.id AND "{column}" >= p.prefix AND "{column}" < p.prefix || %s
            ORDER BY "{column}", id LIMIT %s
        ) AS d
        GROUP BY d.id, d.key ORDER BY d.key, d.id LIMIT %s
    """  # noqa: S608 - the column comes from PREFIX_FIELDS; every value is a bound parameter
    with connection.cursor() as cursor:
        cursor.execute(sql, [ids, prefixes, _TOP, limit, limit])
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


_DONOR_CARD_SQL = """
    SELECT id, municipality_id, donor_number, name, name_kana, postal_code, prefecture, address,
           building, is_resident, returned_mail, do_not_contact
    FROM {table} WHERE municipality_id = %s AND id IN ({ids}) ORDER BY id
"""
_DONOR_CARD_FIELDS = (
    "id",
    "municipality_id",
    "donor_number",
    "name",
    "name_kana",
    "postal_code",
    "prefecture",
    "address",
    "building",
    "is_resident",
    "returned_mail",
    "do_not_contact",
)


def donor_views(municipality: Municipality, donor_ids: Collection[int]) -> list[DonorView]:
    """The donors among ``donor_ids`` that belong to ``municipality``, presented, in id order.

    Plain SQL, one statement: the screen pop runs this while the phone rings, and compiling the
    ORM query would cost more than running it (see benchmarks/telephony.py)."""
    ids = list(donor_ids)
    if not ids:
        return []
    sql = _DONOR_CARD_SQL.format(table=Donor._meta.db_table, ids=", ".join(["%s"] * len(ids)))
    with connection.cursor() as cursor:
        cursor.execute(sql, [municipality.id, *ids])
        rows = cursor.fetchall()
    return [
        present_donor(
            Donor(**dict(zip(_DONOR_CARD_FIELDS, row, strict=True))),
            residents_excluded=municipality.residents_excluded,
        )
        for row in rows
    ]
