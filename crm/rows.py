"""Values from plain-SQL rows, alike on PostgreSQL and SQLite (the hot reads skip the ORM)."""

from __future__ import annotations

import datetime
from typing import Any

from django.utils import timezone


def row_datetime(value: Any) -> datetime.datetime | None:
    """PostgreSQL brings aware datetimes; SQLite brings naive UTC or text."""
    if value is None:
        return None
    if isinstance(value, str):
        value = datetime.datetime.fromisoformat(value)
    if timezone.is_naive(value):
        value = value.replace(tzinfo=datetime.UTC)
    return value


def row_date(value: Any) -> datetime.date | None:
    if value is None or isinstance(value, datetime.date):
        return value
    return datetime.date.fromisoformat(str(value)[:10])
