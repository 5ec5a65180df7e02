"""Months as Japan sees them: a month starts at 00:00 Asia/Tokyo on its first day."""

from __future__ import annotations

import datetime
import re
from dataclasses import dataclass
from zoneinfo import ZoneInfo

TOKYO = ZoneInfo("Asia/Tokyo")
_MONTH = re.compile(r"^(\d{4})-(\d{1,2})$")


@dataclass(frozen=True, order=True)
class Month:
    year: int
    month: int

    @classmethod
    def parse(cls, value: str) -> Month | None:
        match = _MONTH.match(value or "")
        if not match:
            return None
        year, month = int(match.group(1)), int(match.group(2))
        if not (1 <= month <= 12 and 2000 <= year <= 2100):
            return None
        return cls(year, month)

    @classmethod
    def of(cls, day: datetime.date) -> Month:
        return cls(day.year, day.month)

    @classmethod
    def containing(cls, at: datetime.datetime) -> Month:
        return cls.of(at.astimezone(TOKYO).date())

    @property
    def first_day(self) -> datetime.date:
        return datetime.date(self.year, self.month, 1)

    @property
    def next_first_day(self) -> datetime.date:
        return self.next().first_day

    @property
    def start(self) -> datetime.datetime:
        return datetime.datetime.combine(self.first_day, datetime.time.min, tzinfo=TOKYO)

    @property
    def end(self) -> datetime.datetime:
        """Exclusive: 00:00 JST on the first day of the next month."""
        return self.next().start

    def days(self) -> list[datetime.date]:
        day, last = self.first_day, self.next_first_day
        out = []
        while day < last:
            out.append(day)
            day += datetime.timedelta(days=1)
        return out

    def next(self) -> Month:
        return Month(self.year + 1, 1) if self.month == 12 else Month(self.year, self.month + 1)

    def previous(self) -> Month:
        return Month(self.year - 1, 12) if self.month == 1 else Month(self.year, self.month - 1)

    def year_ago(self) -> Month:
        return Month(self.year - 1, self.month)

    def key(self) -> str:
        return f"{self.year:04d}-{self.month:02d}"

    def label(self) -> str:
        return f"{self.year}年{self.month}月"

    def __str__(self) -> str:
        return self.key()
