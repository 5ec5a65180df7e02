"""Lists that stay fast at any depth and any match count: keyset pages and bounded counts.

A page is found from the sort key of the row before it (``WHERE (at, id) < (…)``), which an
index walks straight to, instead of ``OFFSET n``, which reads and throws away n rows. Counts stop
at ``settings.LIST_COUNT_LIMIT`` + 1 rows: past that the screen says 「1,000件以上」 instead of
paying for an exact ``COUNT(*)`` over every match.

A cursor carries only a sort position, never a permission: the rows still come from the caller's
scoped queryset, so a forged cursor can move within the user's rows but never beyond them; one
that does not parse is the first page.
"""

from __future__ import annotations

import base64
import datetime
import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.db.models import Q, QuerySet


@dataclass
class KeysetPage:
    rows: list[Any]
    next_cursor: str | None
    previous_cursor: str | None

    def __iter__(self) -> Iterator[Any]:
        return iter(self.rows)

    def __len__(self) -> int:
        return len(self.rows)


@dataclass
class BoundedCount:
    value: int
    more: bool

    @property
    def label(self) -> str:
        """「12件」, or 「1,000件以上」 past the limit."""
        return f"{self.value:,}件以上" if self.more else f"{self.value:,}件"


def bounded_count(queryset: QuerySet, limit: int | None = None) -> BoundedCount:
    """How many rows, counting at most ``limit`` + 1 of them (unordered: a scan stops there)."""
    limit = settings.LIST_COUNT_LIMIT if limit is None else limit
    found = queryset.order_by().values("pk")[: limit + 1].count()
    return BoundedCount(min(found, limit), found > limit)


def encode_cursor(key: datetime.datetime | int, pk: int) -> str:
    value = key.isoformat() if isinstance(key, datetime.datetime) else key
    raw = json.dumps([value, pk]).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str | None) -> tuple[datetime.datetime | int, int] | None:
    if not cursor:
        return None
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        key, pk = json.loads(raw)
        if not isinstance(pk, int) or isinstance(pk, bool):
            return None
        if isinstance(key, int) and not isinstance(key, bool):
            return key, pk
        moment = datetime.datetime.fromisoformat(key)
        if moment.tzinfo is None:
            return None
        return moment, pk
    except (ValueError, TypeError, UnicodeDecodeError):
        return None


def keyset_page(
    queryset: QuerySet,
    *,
    key: str,
    size: int,
    after: str | None = None,
    before: str | None = None,
    descending: bool = True,
) -> KeysetPage:
    """One page of ``queryset`` by (``key``, pk), newest (largest) first unless ``descending``
    is False. ``key`` must not be null in any row of ``queryset``.

    ``after`` is the next page's cursor (the last row shown), ``before`` the previous page's
    (the first row shown); neither, or one that does not parse, gives the first page.
    """
    forward, backward = ("lt", "gt") if descending else ("gt", "lt")
    sign = "-" if descending else ""
    after_key = decode_cursor(after)
    before_key = decode_cursor(before) if after_key is None else None
    if before_key is not None:
        value, pk = before_key
        reversed_rows = queryset.filter(
            Q(**{f"{key}__{backward}e": value}),
            Q(**{f"{key}__{backward}": value}) | Q(**{f"pk__{backward}": pk}),
        ).order_by(*((key, "pk") if descending else (f"-{key}", "-pk")))
        rows = list(reversed_rows[: size + 1])
        more_before = len(rows) > size
        rows = rows[:size][::-1]
        has_next, has_previous = True, more_before
    else:
        if after_key is not None:
            value, pk = after_key
            # (key, pk) < (value, pk) as an index range on key, then the tie-break: an OR alone
            # is no range, and the planner walks the index from the newest row.
            queryset = queryset.filter(
                Q(**{f"{key}__{forward}e": value}),
                Q(**{f"{key}__{forward}": value}) | Q(**{f"pk__{forward}": pk}),
            )
        rows = list(queryset.order_by(f"{sign}{key}", f"{sign}pk")[: size + 1])
        has_next = len(rows) > size
        rows = rows[:size]
        has_previous = after_key is not None
    if not rows:
        return KeysetPage([], None, None)
    first, last = rows[0], rows[-1]
    return KeysetPage(
        rows,
        encode_cursor(getattr(last, key), last.pk) if has_next else None,
        encode_cursor(getattr(first, key), first.pk) if has_previous else None,
    )
