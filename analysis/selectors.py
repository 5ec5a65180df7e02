"""The monthly analysis of one municipality: every figure aggregated in the database.

A month is Japan's (``analysis.periods.Month``): a ticket received at 23:59 JST on the last day
belongs to that month, one at 00:00 JST to the next. The figures come from tickets' own tables
(never django-helpdesk's reports, which bucket months in UTC and mix queues), telephony's call
records and the donation mirror. Each section is a few grouped queries; nothing loops over
tickets in Python except the word count of complaint texts (bounded, see ``COMPLAINT_TEXTS_MAX``).

The result is plain JSON-safe data (the snapshot a ``MonthlyReport`` keeps), so pages, the PDF,
the XLSX and the CSV all read the same figures.
"""

from __future__ import annotations

import bisect
import collections
import dataclasses
import datetime
import functools
import itertools
from collections.abc import Collection, Iterable, Sequence
from typing import Any

from django.db import connection
from django.db.models import (
    Avg,
    Count,
    DurationField,
    ExpressionWrapper,
    F,
    Q,
    QuerySet,
    Sum,
)
from django.db.models.functions import Coalesce, ExtractHour, TruncDate
from django.utils import timezone

from analysis.periods import TOKYO, Month
from crm.models import Municipality
from donations_sync.models import Donation, Portal, Shipment
from escalation.selectors import escalation_figures
from reshipments.selectors import ReshipmentRow, reshipment_figures
from telephony.calendar import BusinessCalendar
from telephony.models import Call
from telephony.selectors import SERVICE_LEVEL_SECONDS, SHORT_ABANDON_SECONDS
from tickets.models import Category, Channel, Inquiry, RequesterType, Status

# 苦情: the categories that are complaints about a gift or its delivery (the ones the city hears
# about and that are counted per 1,000 donations and shipments).
COMPLAINT_CATEGORY_CODES = ("damaged", "wrong_missing", "shipping_status")
# Backlog ageing at month end, in days: [0,1) [1,3) [3,7) [7,14) [14,30) [30,∞).
AGEING_BOUNDS = (1, 3, 7, 14, 30)
AGEING_LABELS = ("1日未満", "1〜3日", "3〜7日", "7〜14日", "14〜30日", "30日以上")
TOP_N = 10
CLOCK_LOOKBACK_DAYS = 366
FREQUENT_WORDS_N = 30
# The word count reads at most this many complaint texts (newest first) per month.
COMPLAINT_TEXTS_MAX = 1500
# What 再送's billable_share is a share of (the page and the exports print it beside the figure).
BILLABLE_SHARE_BASIS = "費用（返礼品代＋送料）に占める市の負担の割合"


def complaint_q(prefix: str = "") -> Q:
    return Q(**{f"{prefix}category__code__in": COMPLAINT_CATEGORY_CODES})


def month_inquiries(municipality_ids: Collection[int], month: Month) -> QuerySet[Inquiry]:
    """Tickets received in the month (Asia/Tokyo), merged duplicates left out."""
    return Inquiry.objects.filter(
        municipality_id__in=list(municipality_ids),
        created_at__gte=month.start,
        created_at__lt=month.end,
    ).exclude(status=Status.DUPLICATE)


def backlog_inquiries(municipality_ids: Collection[int], month: Month) -> QuerySet[Inquiry]:
    """Open at the month's end: received before it, not resolved before it."""
    return (
        Inquiry.objects.filter(municipality_id__in=list(municipality_ids), created_at__lt=month.end)
        .exclude(status=Status.DUPLICATE)
        .filter(Q(resolved_at__isnull=True) | Q(resolved_at__gte=month.end))
    )


# --- Business-hour clocks -------------------------------------------------------------------


def business_intervals(
    calendar: BusinessCalendar, first: datetime.date, last: datetime.date
) -> list[tuple[datetime.datetime, datetime.datetime]]:
    """The municipality's open hours from ``first`` to ``last`` (inclusive) as aware intervals."""
    out = []
    day = first
    while day <= last:
        hours = calendar.hours_on(day)
        if hours.is_open_day:
            out.append(
                (
                    datetime.datetime.combine(day, hours.opens, tzinfo=TOKYO),
                    datetime.datetime.combine(day, hours.closes, tzinfo=TOKYO),
                )
            )
        day += datetime.timedelta(days=1)
    return out


def _percentiles_python(
    pairs: Iterable[tuple[datetime.datetime, datetime.datetime]],
    intervals: list[tuple[datetime.datetime, datetime.datetime]],
) -> dict[str, Any]:
    """SQLite (the embedded demo) has no percentile_cont: the same clock, computed here."""
    starts = [s for s, _ in intervals]
    values = []
    for begin, end in pairs:
        total = 0.0
        i = max(0, bisect.bisect_right(starts, begin) - 1)
        while i < len(intervals) and intervals[i][0] < end:
            s, e = intervals[i]
            total += max(0.0, (min(end, e) - max(begin, s)).total_seconds())
            i += 1
        values.append(total)
    values.sort()

    def pct(p: float) -> float | None:
        if not values:
            return None
        k = (len(values) - 1) * p
        lo, hi = int(k), min(int(k) + 1, len(values) - 1)
        return values[lo] + (values[hi] - values[lo]) * (k - lo)

    return {"count": len(values), "p50": pct(0.5), "p90": pct(0.9)}


def business_clock(
    qs: QuerySet[Inquiry],
    begin_field: str,
    end_field: str,
    intervals: list[tuple[datetime.datetime, datetime.datetime]],
) -> dict[str, Any]:
    """p50 and p90 (seconds) of the business time between two columns of the rows of ``qs``.

    In PostgreSQL the open hours go in as two arrays and each row's clock is the sum of its
    overlaps with them: one statement, whatever the number of tickets.
    """
    rows = qs.filter(**{f"{end_field}__isnull": False}).values_list(begin_field, end_field)
    if connection.vendor != "postgresql":
        return _percentiles_python(rows, intervals)
    inner, params = rows.query.sql_with_params()
    # Open hours as a running total: the business time up to any moment is the total before its
    # interval plus the part of the interval already gone (width_bucket finds the interval by
    # binary search), so each ticket costs two look-ups, not a join with every interval.
    intervals = intervals or [(datetime.datetime(2000, 1, 1, tzinfo=TOKYO),) * 2]
    starts = [start for start, _ in intervals]
    lengths = [(end - start).total_seconds() for start, end in intervals]
    totals = list(itertools.accumulate(lengths, initial=0.0))[:-1]
    sql = f"""
        WITH p AS (SELECT %s::timestamptz[] AS s, %s::float8[] AS len, %s::float8[] AS cum),
        t AS (
            SELECT q.b, q.x, width_bucket(q.b, p.s) AS ib, width_bucket(q.x, p.s) AS ix
            FROM ({inner}) AS q(b, x), p
        ),
        c AS (
            SELECT
                CASE WHEN ix = 0 THEN 0 ELSE p.cum[ix] + LEAST(GREATEST(
                    EXTRACT(EPOCH FROM x - p.s[ix]), 0), p.len[ix]) END
              - CASE WHEN ib = 0 THEN 0 ELSE p.cum[ib] + LEAST(GREATEST(
                    EXTRACT(EPOCH FROM b - p.s[ib]), 0), p.len[ib]) END AS secs
            FROM t, p
        )
        SELECT count(*), percentile_cont(0.5) WITHIN GROUP (ORDER BY secs),
               percentile_cont(0.9) WITHIN GROUP (ORDER BY secs)
        FROM c
    """  # noqa: S608 - the inner query is the ORM's, with its own parameters
    with connection.cursor() as cursor:
        cursor.execute(sql, [starts, lengths, totals, *params])
        count, p50, p90 = cursor.fetchone()
    return {
        "count": count,
        "p50": float(p50) if p50 is not None else None,
        "p90": float(p90) if p90 is not None else None,
    }


# --- Words ---------------------------------------------------------------------------------

STOP_WORDS = frozenset(
    """
    こと もの ため よう これ それ あれ どれ ここ そこ 方 様 さま さん 件 際 時 中 前 後 上 下 等
    問合せ 問い合わせ お問い合わせ お問合せ 連絡 確認 対応 お願い 願い 件名 内容 以下 以上 今回 当方
    こちら そちら 私 自分 とき ところ 場合 本日 今日 昨日 明日 あと まま 感じ 方法 電話 メール
    """.split()
)


@functools.lru_cache(maxsize=1)
def _dictionary():
    # SudachiPy (Rust) with the core dictionary as a wheel: nothing to install on the system,
    # and some twenty times faster than a pure-Python analyser on a month of complaints.
    from sudachipy import Dictionary

    return Dictionary(dict="core")


# Nouns that say nothing about what went wrong.
_SKIPPED_NOUN_KINDS = frozenset({"数詞", "代名詞", "助動詞語幹"})


def frequent_words(texts: Iterable[str], n: int = FREQUENT_WORDS_N) -> list[dict[str, Any]]:
    """Nouns of two or more characters (normalized: ﾒﾛﾝ and メロン are one word), stop words,
    numbers and adverb-like nouns (今日, 後) left out; each word counts once per complaint."""
    from sudachipy import SplitMode

    counts: collections.Counter[str] = collections.Counter()
    tokenizer = _dictionary().tokenizer(mode=SplitMode.C, fields={"pos", "normalized_form"})
    for text in texts:
        seen = set()
        for token in tokenizer.tokenize(text[:2000]):
            pos = token.part_of_speech()
            if pos[0] != "名詞" or pos[1] in _SKIPPED_NOUN_KINDS or pos[2] == "副詞可能":
                continue
            word = token.normalized_form()
            if len(word) < 2 or word in STOP_WORDS or word.isascii():
                continue
            seen.add(word)
        counts.update(seen)
    return [{"word": w, "count": c} for w, c in counts.most_common(n)]


# --- The report ----------------------------------------------------------------------------


def _per_thousand(count: int, base: int) -> float | None:
    return round(1000 * count / base, 2) if base else None


def _rate(part: int, whole: int) -> float | None:
    return round(100 * part / whole, 1) if whole else None


def _empty_headline() -> dict[str, Any]:
    return {
        "inquiries": 0,
        "complaints": 0,
        "calls_offered": 0,
        "calls_answered": 0,
        "calls_abandoned": 0,
        "abandon_rate": None,
        "donations": 0,
        "donation_amount": 0,
        "shipments": 0,
        "backlog": 0,
    }


def _any_of(field: str, months: Sequence[Month], *, dates: bool = False) -> Q:
    q = Q()
    for month in months:
        q |= _in_month(field, month, dates=dates)
    return q


def _in_month(field: str, month: Month, *, dates: bool = False) -> Q:
    if dates:
        return Q(**{f"{field}__gte": month.first_day, f"{field}__lt": month.next_first_day})
    return Q(**{f"{field}__gte": month.start, f"{field}__lt": month.end})


def headlines(
    municipality_ids: Collection[int], months: Sequence[Month], *, shipments: bool = True
) -> dict[tuple[int, str], dict[str, Any]]:
    """The few figures compared across months and municipalities, keyed by (municipality,
    month key): one grouped statement per source for all the months together."""
    ids = list(municipality_ids)
    out = {(m, month.key()): _empty_headline() for m in ids for month in months}
    tickets = Inquiry.objects.filter(municipality_id__in=ids).exclude(status=Status.DUPLICATE)
    aggregates: dict[str, Any] = {}
    for i, month in enumerate(months):
        in_month = _in_month("created_at", month)
        aggregates[f"n{i}"] = Count("pk", filter=in_month)
        aggregates[f"c{i}"] = Count("pk", filter=in_month & complaint_q())
    for row in (
        tickets.filter(_any_of("created_at", months))
        .values("municipality_id")
        .annotate(**aggregates)
        .order_by()
    ):
        for i, month in enumerate(months):
            out[row["municipality_id"], month.key()].update(
                inquiries=row[f"n{i}"], complaints=row[f"c{i}"]
            )
    backlog = {
        f"b{i}": Count(
            "pk",
            filter=Q(created_at__lt=month.end)
            & (Q(resolved_at__isnull=True) | Q(resolved_at__gte=month.end)),
        )
        for i, month in enumerate(months)
    }
    latest_end = max(month.end for month in months)
    for row in (
        tickets.filter(created_at__lt=latest_end)
        .filter(Q(resolved_at__isnull=True) | Q(resolved_at__gte=min(m.end for m in months)))
        .values("municipality_id")
        .annotate(**backlog)
        .order_by()
    ):
        for i, month in enumerate(months):
            out[row["municipality_id"], month.key()]["backlog"] = row[f"b{i}"]
    calls: dict[str, Any] = {}
    for i, month in enumerate(months):
        for name, aggregate in _call_aggregates(_in_month("offered_at", month)).items():
            calls[f"{name}__{i}"] = aggregate
    for row in (
        Call.objects.filter(municipality_id__in=ids)
        .filter(_any_of("offered_at", months))
        .values("municipality_id")
        .annotate(**calls)
        .order_by()
    ):
        for i, month in enumerate(months):
            figures = _call_figures({name: row[f"{name}__{i}"] for name in _call_aggregates(Q())})
            out[row["municipality_id"], month.key()].update(
                calls_offered=figures["offered"],
                calls_answered=figures["answered"],
                calls_abandoned=figures["abandoned"],
                abandon_rate=figures["abandon_rate"],
            )
    donations: dict[str, Any] = {}
    for i, month in enumerate(months):
        in_month = _in_month("donated_at", month)
        donations[f"n{i}"] = Count("pk", filter=in_month)
        donations[f"a{i}"] = Coalesce(Sum("amount", filter=in_month), 0)
    for row in (
        Donation.objects.filter(municipality_id__in=ids)
        .exclude(status=Donation.Status.CANCELLED)
        .filter(_any_of("donated_at", months))
        .values("municipality_id")
        .annotate(**donations)
        .order_by()
    ):
        for i, month in enumerate(months):
            out[row["municipality_id"], month.key()].update(
                donations=row[f"n{i}"], donation_amount=row[f"a{i}"]
            )
    if not shipments:  # the caller counts them in a scan of its own
        return out
    shipped = {
        f"s{i}": Count("pk", filter=_in_month("shipped_on", month, dates=True))
        for i, month in enumerate(months)
    }
    for row in (
        Shipment.objects.filter(municipality_id__in=ids)
        .filter(_any_of("shipped_on", months, dates=True))
        .values("municipality_id")
        .annotate(**shipped)
        .order_by()
    ):
        for i, month in enumerate(months):
            out[row["municipality_id"], month.key()]["shipments"] = row[f"s{i}"]
    return out


def headline(municipality_ids: Collection[int], month: Month) -> dict[int, dict[str, Any]]:
    """One month's headline figures per municipality (the supervisors' side-by-side page)."""
    figures = headlines(municipality_ids, [month])
    return {m: figures[m, month.key()] for m in municipality_ids}


def _month_donations(ids: Collection[int], month: Month) -> QuerySet[Donation]:
    return Donation.objects.filter(
        municipality_id__in=list(ids), donated_at__gte=month.start, donated_at__lt=month.end
    ).exclude(status=Donation.Status.CANCELLED)


def _call_rows(ids: Collection[int], month: Month) -> QuerySet[Call]:
    return Call.objects.filter(
        municipality_id__in=list(ids), offered_at__gte=month.start, offered_at__lt=month.end
    )


def _call_aggregates(scope: Q | None = None) -> dict[str, Any]:
    """The call counts; ``scope`` narrows every one of them (a month among several)."""
    scope = scope if scope is not None else Q()
    inbound = scope & Q(direction=Call.Direction.INBOUND)
    answered = inbound & Q(answered_at__isnull=False)
    wrap = ExpressionWrapper(F("wrapped_up_at") - F("ended_at"), output_field=DurationField())
    queue_abandon = inbound & Q(status=Call.Status.ABANDONED_QUEUE, after_hours=False)
    ivr_abandon = inbound & Q(status=Call.Status.ABANDONED_IVR, after_hours=False)
    return {
        "inbound": Count("pk", filter=inbound),
        "offered": Count("pk", filter=inbound & Q(after_hours=False)),
        "answered": Count("pk", filter=answered),
        "answered_in_sl": Count(
            "pk", filter=answered & Q(queue_seconds__lte=SERVICE_LEVEL_SECONDS)
        ),
        "abandoned_queue": Count("pk", filter=queue_abandon),
        "short_queue": Count(
            "pk", filter=queue_abandon & Q(queue_seconds__lt=SHORT_ABANDON_SECONDS)
        ),
        "abandoned_ivr": Count("pk", filter=ivr_abandon),
        "short_ivr": Count(
            "pk",
            filter=ivr_abandon
            & Q(ended_at__lt=F("offered_at") + datetime.timedelta(seconds=SHORT_ABANDON_SECONDS)),
        ),
        "after_hours": Count("pk", filter=inbound & Q(after_hours=True)),
        "after_hours_hangup": Count(
            "pk", filter=inbound & Q(status=Call.Status.AFTER_HOURS_HANGUP)
        ),
        "voicemails": Count("pk", filter=inbound & Q(voicemail=True)),
        "callbacks": Count("pk", filter=scope & Q(direction=Call.Direction.OUTBOUND)),
        "callbacks_connected": Count(
            "pk", filter=scope & Q(direction=Call.Direction.OUTBOUND, answered_at__isnull=False)
        ),
        "asa": Avg("queue_seconds", filter=answered),
        "avg_talk": Avg("talk_seconds", filter=answered & Q(talk_seconds__isnull=False)),
        "avg_wrap": Avg(
            wrap, filter=answered & Q(wrapped_up_at__isnull=False, ended_at__isnull=False)
        ),
    }


def _seconds(value: Any) -> float | None:
    if value is None:
        return None
    if isinstance(value, datetime.timedelta):
        return value.total_seconds()
    return float(value)


def _call_figures(row: dict[str, Any]) -> dict[str, Any]:
    short = row["short_queue"] + row["short_ivr"]
    abandoned = row["abandoned_queue"] + row["abandoned_ivr"] - short
    counted = row["offered"] - short
    sl_base = row["answered"] + row["abandoned_queue"] - row["short_queue"]
    talk, wrap = _seconds(row["avg_talk"]), _seconds(row["avg_wrap"])
    return {
        "inbound": row["inbound"],
        "offered": row["offered"],
        "answered": row["answered"],
        "abandoned": abandoned,
        "short_abandons": short,
        "abandon_rate": _rate(abandoned, counted),
        "asa_seconds": round(_seconds(row["asa"]), 1) if row["asa"] is not None else None,
        "service_level": _rate(row["answered_in_sl"], sl_base),
        "service_level_seconds": SERVICE_LEVEL_SECONDS,
        "avg_talk_seconds": round(talk, 1) if talk is not None else None,
        "avg_wrap_seconds": round(wrap, 1) if wrap is not None else None,
        "aht_seconds": round((talk or 0) + (wrap or 0), 1) if talk is not None else None,
        "after_hours": row["after_hours"],
        "after_hours_hangups": row["after_hours_hangup"],
        "voicemails": row["voicemails"],
        "callbacks": row["callbacks"],
        "callbacks_connected": row["callbacks_connected"],
    }


def _labelled(choices: Any, rows: Iterable[dict[str, Any]], key: str) -> list[dict[str, Any]]:
    labels = dict(choices)
    return [
        {"code": r[key] or "", "label": labels.get(r[key], r[key] or "未設定"), "count": r["n"]}
        for r in rows
    ]


def _change(now: Any, before: Any) -> dict[str, Any]:
    if now is None or before is None:
        return {"before": before, "diff": None, "pct": None}
    diff = now - before
    pct = round(100 * diff / before, 1) if before else None
    return {"before": before, "diff": round(diff, 2), "pct": pct}


def _category_order() -> list[tuple[str, str]]:
    return list(Category.objects.order_by("sort_order", "code").values_list("code", "name"))


def monthly_report_data(
    municipality: Municipality, month: Month, *, now: datetime.datetime | None = None
) -> dict[str, Any]:
    """Every figure of one municipality's month, as a JSON-safe snapshot."""
    now = now or timezone.now()
    ids = [municipality.pk]
    inquiries = month_inquiries(ids, month)
    categories = _category_order()
    category_names = dict(categories)

    # Category × channel × requester type, and its margins.
    cube = list(
        inquiries.values("category__code", "channel", "requester_type")
        .annotate(n=Count("pk"))
        .order_by()
    )
    total = sum(r["n"] for r in cube)
    by_category: collections.Counter[str] = collections.Counter()
    by_channel: collections.Counter[str] = collections.Counter()
    by_requester: collections.Counter[str] = collections.Counter()
    for r in cube:
        by_category[r["category__code"] or ""] += r["n"]
        by_channel[r["channel"]] += r["n"]
        by_requester[r["requester_type"]] += r["n"]
    channel_labels = dict(Channel.choices)
    requester_labels = dict(RequesterType.choices)
    category_rows = [
        {"code": code, "label": name, "count": by_category[code]}
        for code, name in categories
        if by_category[code]
    ]
    if by_category[""]:
        category_rows.append({"code": "none", "label": "未設定", "count": by_category[""]})
    matrix_channels = [c for c, _ in Channel.choices if by_channel[c]]
    matrix = [
        {
            "code": row["code"],
            "label": row["label"],
            "cells": [
                {
                    "channel": ch,
                    "count": sum(
                        r["n"]
                        for r in cube
                        if (r["category__code"] or "none") == row["code"] and r["channel"] == ch
                    ),
                }
                for ch in matrix_channels
            ],
            "count": row["count"],
        }
        for row in category_rows
    ]
    cube_rows = [
        {
            "category": category_names.get(r["category__code"], "未設定"),
            "category_code": r["category__code"] or "none",
            "channel": channel_labels.get(r["channel"], r["channel"]),
            "channel_code": r["channel"],
            "requester_type": requester_labels.get(r["requester_type"], r["requester_type"]),
            "requester_code": r["requester_type"],
            "count": r["n"],
        }
        for r in sorted(
            cube,
            key=lambda r: (
                [c for c, _ in categories].index(r["category__code"])
                if r["category__code"] in category_names
                else 999,
                r["channel"],
                r["requester_type"],
            ),
        )
    ]

    daily_counts = dict(
        inquiries.annotate(day=TruncDate("created_at", tzinfo=TOKYO))
        .values("day")
        .annotate(n=Count("pk"))
        .values_list("day", "n")
    )
    daily = [{"day": d.isoformat(), "count": daily_counts.get(d, 0)} for d in month.days()]
    hourly_counts = dict(
        inquiries.annotate(hour=ExtractHour("created_at", tzinfo=TOKYO))
        .values("hour")
        .annotate(n=Count("pk"))
        .values_list("hour", "n")
    )
    hourly = [{"hour": h, "count": hourly_counts.get(h, 0)} for h in range(24)]

    # Business-hour clocks: first response of the month's tickets, resolution of the tickets
    # resolved in the month (whenever they came in).
    calendar = BusinessCalendar.for_municipality(municipality.pk)
    resolved = Inquiry.objects.filter(
        municipality_id=municipality.pk, resolved_at__gte=month.start, resolved_at__lt=month.end
    ).exclude(status=Status.DUPLICATE)
    # Tickets resolved in the month may have come in long before: their clocks start at most
    # CLOCK_LOOKBACK_DAYS before the month (older open hours are not counted).
    first_day = month.first_day - datetime.timedelta(days=CLOCK_LOOKBACK_DAYS)
    last_day = max(month.next_first_day, now.astimezone(TOKYO).date())
    intervals = business_intervals(calendar, first_day, last_day)
    first_response = business_clock(inquiries, "created_at", "first_response_at", intervals)
    resolution = business_clock(resolved, "created_at", "resolved_at", intervals)

    # Backlog and its ageing at the month's end.
    end_epoch = month.end
    backlog_qs = backlog_inquiries(ids, month)
    age_filters = {}
    lower = None
    for index, upper in enumerate((*AGEING_BOUNDS, None)):
        q = Q()
        if lower is not None:
            q &= Q(created_at__lte=end_epoch - datetime.timedelta(days=lower))
        if upper is not None:
            q &= Q(created_at__gt=end_epoch - datetime.timedelta(days=upper))
        age_filters[f"a{index}"] = Count("pk", filter=q)
        lower = upper
    ages = backlog_qs.aggregate(total=Count("pk"), **age_filters)
    backlog = {
        "total": ages["total"],
        "ageing": [
            {"label": label, "bucket": i, "count": ages[f"a{i}"]}
            for i, label in enumerate(AGEING_LABELS)
        ],
    }

    # Complaints against the mirror's volumes of the month.
    compared_months = [month, month.previous(), month.year_ago()]
    compared = headlines(ids, compared_months, shipments=False)
    # The municipality's shipments are read once: this month's states and the compared months'
    # counts in one scan.
    ship = Shipment.objects.filter(municipality_id=municipality.pk).aggregate(
        shipped_previous=Count("pk", filter=_in_month("shipped_on", month.previous(), dates=True)),
        shipped_year_ago=Count("pk", filter=_in_month("shipped_on", month.year_ago(), dates=True)),
        shipped=Count("pk", filter=_in_month("shipped_on", month, dates=True)),
        delivered=Count("pk", filter=_in_month("delivered_on", month, dates=True)),
        returned=Count(
            "pk",
            filter=Q(status=Shipment.Status.RETURNED) & _in_month("shipped_on", month, dates=True),
        ),
        reshipped=Count(
            "pk", filter=Q(replaces__isnull=False) & _in_month("shipped_on", month, dates=True)
        ),
    )
    compared[municipality.pk, month.key()]["shipments"] = ship["shipped"]
    compared[municipality.pk, month.previous().key()]["shipments"] = ship["shipped_previous"]
    compared[municipality.pk, month.year_ago().key()]["shipments"] = ship["shipped_year_ago"]
    current = compared[municipality.pk, month.key()]
    previous = compared[municipality.pk, month.previous().key()]
    year_ago = compared[municipality.pk, month.year_ago().key()]
    complaints_qs = inquiries.filter(complaint_q())
    complaint_count = current["complaints"]
    donation_count = current["donations"]
    shipment_count = current["shipments"]
    complaints = {
        "count": complaint_count,
        "categories": [name for code, name in categories if code in COMPLAINT_CATEGORY_CODES],
        "donations": donation_count,
        "shipments": shipment_count,
        "per_1000_donations": _per_thousand(complaint_count, donation_count),
        "per_1000_shipments": _per_thousand(complaint_count, shipment_count),
        "top_gift_items": [
            {
                "id": r["shipments__gift_item_id"],
                "label": r["shipments__gift_item__name"],
                "count": r["n"],
            }
            for r in complaints_qs.filter(shipments__isnull=False)
            .values("shipments__gift_item_id", "shipments__gift_item__name")
            .annotate(n=Count("pk", distinct=True))
            .order_by("-n", "shipments__gift_item__name")[:TOP_N]
        ],
        "top_providers": [
            {"id": r["pid"], "label": r["pname"], "count": r["n"]}
            for r in complaints_qs.annotate(
                pid=Coalesce("provider_id", "shipments__gift_item__provider_id"),
                pname=Coalesce("provider__name", "shipments__gift_item__provider__name"),
            )
            .filter(pid__isnull=False)
            .values("pid", "pname")
            .annotate(n=Count("pk", distinct=True))
            .order_by("-n", "pname")[:TOP_N]
        ],
        "top_carriers": [
            {
                "id": r["shipments__carrier_id"],
                "label": r["shipments__carrier__name"],
                "count": r["n"],
            }
            for r in complaints_qs.filter(shipments__carrier__isnull=False)
            .values("shipments__carrier_id", "shipments__carrier__name")
            .annotate(n=Count("pk", distinct=True))
            .order_by("-n", "shipments__carrier__name")[:TOP_N]
        ],
        "words": frequent_words(
            f"{title}\n{description or ''}"
            for title, description in complaints_qs.order_by("-created_at").values_list(
                "ticket__title", "ticket__description"
            )[:COMPLAINT_TEXTS_MAX]
        ),
    }

    calls = _call_figures(_call_rows(ids, month).aggregate(**_call_aggregates()))

    # The mirror's month: donations by portal, shipments, receipts, one-stop forms.
    portal_labels = dict(Portal.choices)
    donations_by_portal = [
        {
            "code": r["portal"],
            "label": portal_labels.get(r["portal"], r["portal"]),
            "count": r["n"],
            "amount": r["amount"],
        }
        for r in _month_donations(ids, month)
        .values("portal")
        .annotate(n=Count("pk"), amount=Coalesce(Sum("amount"), 0))
        .order_by("-amount", "portal")
    ]
    all_donations = Donation.objects.filter(municipality_id=municipality.pk)
    mirror = all_donations.aggregate(
        paid=Count("pk", filter=Q(paid_on__gte=month.first_day, paid_on__lt=month.next_first_day)),
        paid_amount=Coalesce(
            Sum("amount", filter=Q(paid_on__gte=month.first_day, paid_on__lt=month.next_first_day)),
            0,
        ),
        receipts=Count(
            "pk",
            filter=Q(
                receipt_issued_on__gte=month.first_day, receipt_issued_on__lt=month.next_first_day
            ),
        ),
        one_stop=Count(
            "pk",
            filter=Q(
                one_stop_received_on__gte=month.first_day,
                one_stop_received_on__lt=month.next_first_day,
            ),
        ),
        cancelled=Count(
            "pk",
            filter=Q(
                status=Donation.Status.CANCELLED,
                donated_at__gte=month.start,
                donated_at__lt=month.end,
            ),
        ),
    )
    donations = {
        "count": donation_count,
        "amount": sum(r["amount"] for r in donations_by_portal),
        "by_portal": donations_by_portal,
        "paid": mirror["paid"],
        "paid_amount": mirror["paid_amount"],
        "cancelled": mirror["cancelled"],
        "receipts_issued": mirror["receipts"],
        "one_stop_received": mirror["one_stop"],
        "shipped": ship["shipped"],
        "delivered": ship["delivered"],
        "returned": ship["returned"],
        "reshipped": ship["reshipped"],
    }

    # Month over month and the same month a year before.
    compare_keys = [
        ("inquiries", "問合せ件数"),
        ("complaints", "苦情件数"),
        ("backlog", "月末未解決"),
        ("calls_offered", "着信数"),
        ("calls_answered", "応答数"),
        ("abandon_rate", "放棄率（%）"),
        ("donations", "寄附件数"),
        ("donation_amount", "寄附金額"),
        ("shipments", "発送件数"),
    ]
    comparison = [
        {
            "key": key,
            "label": label,
            "value": current[key],
            "previous": _change(current[key], previous[key]),
            "year_ago": _change(current[key], year_ago[key]),
        }
        for key, label in compare_keys
    ]

    return {
        "version": 1,
        "municipality": {
            "id": municipality.pk,
            "code": municipality.code,
            "name": municipality.name,
        },
        "month": month.key(),
        "month_label": month.label(),
        "computed_at": now.isoformat(),
        "inquiries": {
            "total": total,
            "by_category": category_rows,
            "by_channel": [
                {"code": c, "label": channel_labels[c], "count": by_channel[c]}
                for c, _ in Channel.choices
                if by_channel[c]
            ],
            "by_requester": [
                {"code": c, "label": requester_labels[c], "count": by_requester[c]}
                for c, _ in RequesterType.choices
                if by_requester[c]
            ],
            "matrix_channels": [{"code": c, "label": channel_labels[c]} for c in matrix_channels],
            "matrix": matrix,
            "cube": cube_rows,
            "daily": daily,
            "hourly": hourly,
        },
        "times": {
            "first_response": first_response,
            "resolution": resolution,
            "calendar": calendar.summary(),
        },
        "backlog": backlog,
        "complaints": complaints,
        "calls": calls,
        "donations": donations,
        "comparison": comparison,
        "escalations": escalation_section(municipality.pk, month),
        "reshipments": reshipment_section(municipality.pk, month),
    }


def escalation_section(municipality_id: int, month: Month) -> dict[str, Any]:
    """The report's 市への報告 section: escalation's own figures for the month (its selector
    computes them in SQL; the snapshot keeps them as plain JSON)."""
    figures = escalation_figures(municipality_id=municipality_id, month=month.key())
    return {"available": True, **dataclasses.asdict(figures)}


def reshipment_section(municipality_id: int, month: Month) -> dict[str, Any]:
    """The report's 再送 section: the re-shipments approved in the month (Asia/Tokyo) by reason
    and by fault party, each with count, cost (gift + shipping) and how many the city pays
    for; reshipments' selector computes them in SQL.

    ``billable_share`` is the share of the month's cost that is billable to the city (a cost
    share, in percent, one decimal; None when nothing cost anything) — the page says so.
    Submitted reports keep the snapshot they were sent with (report_generate leaves them), so a
    report sent before re-shipments were counted still shows its 未集計 note."""
    figures = reshipment_figures(municipality_id=municipality_id, month=month.key())

    def rows(source: list[ReshipmentRow]) -> list[dict[str, Any]]:
        return [
            {
                "code": r.code,
                "label": r.label,
                "count": r.count,
                "cost": r.cost,
                "billable": r.billable_count,
                "billable_cost": r.billable_cost,
            }
            for r in source
        ]

    cost = figures.cost
    return {
        "available": True,
        "count": figures.count,
        "cost": cost,
        "billable_count": figures.billable_count,
        "billable_cost": figures.billable_cost,
        "billable_share": round(100 * figures.billable_cost / cost, 1) if cost else None,
        "billable_share_basis": BILLABLE_SHARE_BASIS,
        "by_reason": rows(figures.reason_rows),
        "by_fault": rows(figures.fault_rows),
    }


# --- Drill-down ----------------------------------------------------------------------------

DRILL_PARAMS = (
    "category",
    "channel",
    "requester_type",
    "day",
    "hour",
    "complaint",
    "backlog",
    "resolved",
    "gift_item",
    "provider",
    "carrier",
)


def drilldown(municipality_id: int, month: Month, params: dict[str, str]) -> QuerySet[Inquiry]:
    """The tickets behind one figure of the report (the caller has checked the municipality)."""
    ids = [municipality_id]
    if params.get("backlog"):
        qs = backlog_inquiries(ids, month)
    elif params.get("resolved"):
        qs = Inquiry.objects.filter(
            municipality_id=municipality_id,
            resolved_at__gte=month.start,
            resolved_at__lt=month.end,
        ).exclude(status=Status.DUPLICATE)
    else:
        qs = month_inquiries(ids, month)
    category = params.get("category", "")
    if category == "none":
        qs = qs.filter(category__isnull=True)
    elif category:
        qs = qs.filter(category__code=category)
    if params.get("channel"):
        qs = qs.filter(channel=params["channel"])
    if params.get("requester_type"):
        qs = qs.filter(requester_type=params["requester_type"])
    day = params.get("day", "")
    if day:
        try:
            d = datetime.date.fromisoformat(day)
        except ValueError:
            return qs.none()
        start = datetime.datetime.combine(d, datetime.time.min, tzinfo=TOKYO)
        qs = qs.filter(created_at__gte=start, created_at__lt=start + datetime.timedelta(days=1))
    hour = params.get("hour", "")
    if hour.isdigit():
        qs = qs.annotate(local_hour=ExtractHour("created_at", tzinfo=TOKYO)).filter(
            local_hour=int(hour)
        )
    if params.get("complaint"):
        qs = qs.filter(complaint_q())
    if params.get("gift_item", "").isdigit():
        qs = qs.filter(
            pk__in=Inquiry.objects.filter(shipments__gift_item_id=int(params["gift_item"])).values(
                "pk"
            )
        )
    if params.get("provider", "").isdigit():
        pid = int(params["provider"])
        qs = qs.filter(
            Q(provider_id=pid)
            | Q(pk__in=Inquiry.objects.filter(shipments__gift_item__provider_id=pid).values("pk"))
        )
    if params.get("carrier", "").isdigit():
        qs = qs.filter(
            pk__in=Inquiry.objects.filter(shipments__carrier_id=int(params["carrier"])).values("pk")
        )
    return qs.select_related("category", "ticket", "donor").order_by("-created_at", "-pk")
