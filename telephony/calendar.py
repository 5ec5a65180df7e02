"""Business hours per municipality: weekly hours, national holidays, yearly and one-off exceptions.

Rules apply in this order for a given day (Asia/Tokyo):
1. a CalendarException covering the day (closed, or its own hours) — wins over everything,
2. a national holiday (incl. 振替休日 and 国民の休日) closes the line unless the municipality
   answers on holidays, in which case the weekday's hours apply,
3. the weekday's hours (no row = closed).
"""

from __future__ import annotations

import datetime
from dataclasses import dataclass, field
from functools import lru_cache

import holidays
from django.utils import timezone

from telephony.models import CalendarException, PhoneSettings, WeeklyHours

WEEKDAY_JA = "月火水木金土日"
# How far ahead the closed message announces special hours (a year-end peak, a one-off closure).
SPECIAL_HOURS_AHEAD_DAYS = 21


@lru_cache(maxsize=64)
def _japan_holidays(year: int) -> holidays.HolidayBase:
    return holidays.country_holidays("JP", years=year, language="ja")


def national_holiday_name(day: datetime.date) -> str | None:
    """The holiday's Japanese name, or None. Substitute holidays count (振替休日)."""
    return _japan_holidays(day.year).get(day)


@dataclass(frozen=True)
class DayHours:
    opens: datetime.time | None
    closes: datetime.time | None
    reason: str = ""  # why the day differs from the weekly rule, e.g. "元日", "年末年始繁忙期"

    @property
    def is_open_day(self) -> bool:
        return self.opens is not None and self.closes is not None


@dataclass
class BusinessCalendar:
    """A municipality's rules, loaded once; answering questions is then pure computation."""

    weekly: dict[int, tuple[datetime.time, datetime.time]]
    exceptions: list[CalendarException] = field(default_factory=list)
    open_on_holidays: bool = False

    @classmethod
    def for_municipality(cls, municipality_id: int) -> BusinessCalendar:
        weekly = {
            row.weekday: (row.opens, row.closes)
            for row in WeeklyHours.objects.filter(municipality_id=municipality_id)
        }
        exceptions = list(CalendarException.objects.filter(municipality_id=municipality_id))
        open_on_holidays = (
            PhoneSettings.objects.filter(municipality_id=municipality_id)
            .values_list("open_on_holidays", flat=True)
            .first()
        )
        return cls(weekly=weekly, exceptions=exceptions, open_on_holidays=bool(open_on_holidays))

    def exception_on(self, day: datetime.date) -> CalendarException | None:
        # One-off ranges beat yearly ones, so a single year's change can refine a standing rule.
        for exc in sorted(self.exceptions, key=lambda e: e.every_year):
            if exc.covers(day):
                return exc
        return None

    def hours_on(self, day: datetime.date) -> DayHours:
        exc = self.exception_on(day)
        if exc is not None:
            if exc.closed:
                return DayHours(None, None, exc.label)
            return DayHours(exc.opens, exc.closes, exc.label)
        holiday = national_holiday_name(day)
        if holiday and not self.open_on_holidays:
            return DayHours(None, None, holiday)
        hours = self.weekly.get(day.weekday())
        if hours is None:
            return DayHours(None, None, "")
        return DayHours(hours[0], hours[1], holiday or "")

    def is_open(self, at: datetime.datetime) -> bool:
        local = timezone.localtime(at)
        hours = self.hours_on(local.date())
        return hours.is_open_day and hours.opens <= local.time() < hours.closes

    def next_opening(self, at: datetime.datetime, *, days: int = 31) -> datetime.datetime | None:
        local = timezone.localtime(at)
        for offset in range(days + 1):
            day = local.date() + datetime.timedelta(days=offset)
            hours = self.hours_on(day)
            if not hours.is_open_day:
                continue
            opening = timezone.make_aware(datetime.datetime.combine(day, hours.opens))
            if opening > local:
                return opening
        return None

    def add_business_minutes(
        self, start: datetime.datetime, minutes: int, *, max_days: int = 400
    ) -> datetime.datetime | None:
        """The moment ``minutes`` of opening hours after ``start``: closed days, national
        holidays and exceptions do not count. None when the calendar never opens that long
        within ``max_days`` (no hours set)."""
        if not self.weekly and all(exc.closed for exc in self.exceptions):
            return None  # never open: no need to walk the days
        local = timezone.localtime(start)
        remaining = datetime.timedelta(minutes=minutes)
        for offset in range(max_days + 1):
            day = local.date() + datetime.timedelta(days=offset)
            hours = self.hours_on(day)
            if not hours.is_open_day:
                continue
            opens = timezone.make_aware(datetime.datetime.combine(day, hours.opens))
            closes = timezone.make_aware(datetime.datetime.combine(day, hours.closes))
            begin = max(opens, local)
            if begin >= closes:
                continue
            if closes - begin >= remaining:
                return begin + remaining
            remaining -= closes - begin
        return None

    def summary(self) -> str:
        """受付時間 in words, for the closed message and the settings page."""
        if not self.weekly:
            return "受付時間は設定されていません。"
        groups: dict[tuple[datetime.time, datetime.time], list[int]] = {}
        for weekday in sorted(self.weekly):
            groups.setdefault(self.weekly[weekday], []).append(weekday)
        parts = []
        for (opens, closes), weekdays in groups.items():
            parts.append(f"{_weekdays_ja(weekdays)}{ja_time(opens)}から{ja_time(closes)}まで")
        text = "受付時間は、" + "、".join(parts)
        excluded = []
        if not self.open_on_holidays:
            excluded.append("祝日")
        for exc in self.exceptions:
            if exc.closed and exc.every_year:
                excluded.append(
                    f"{exc.start_date.month}月{exc.start_date.day}日から"
                    f"{exc.end_date.month}月{exc.end_date.day}日"
                )
        if excluded:
            text += "（" + "、".join(excluded) + "を除く）"
        return text + "です。"

    def special_periods(
        self, start: datetime.date, *, days: int = SPECIAL_HOURS_AHEAD_DAYS
    ) -> list[tuple[datetime.date, datetime.date, CalendarException]]:
        """Exception periods that begin or run within ``days`` from ``start``: (first day, last
        day, exception), the last day followed past the window so a peak is named whole."""
        periods: list[tuple[datetime.date, datetime.date, CalendarException]] = []
        day = start
        while day <= start + datetime.timedelta(days=days):
            exc = self.exception_on(day)
            if exc is None:
                day += datetime.timedelta(days=1)
                continue
            last = day
            # A range is at most a year long; the bound stops a rule covering every day.
            while last - day < datetime.timedelta(days=366):
                following = last + datetime.timedelta(days=1)
                if self.exception_on(following) is not exc:
                    break
                last = following
            periods.append((day, last, exc))
            day = last + datetime.timedelta(days=1)
        return periods

    def special_hours_notice(self, at: datetime.datetime) -> str:
        """Upcoming days that differ from the weekly rule, as read aloud after the hours.

        Yearly closures are already named in ``summary`` (…を除く) and are not repeated.
        """
        sentences = []
        for first, last, exc in self.special_periods(timezone.localtime(at).date()):
            span = _md(first) if first == last else f"{_md(first)}から{_md(last)}まで"
            if not exc.closed:
                sentences.append(
                    f"{span}は{ja_time(exc.opens)}から{ja_time(exc.closes)}まで受付いたします。"
                )
            elif not exc.every_year:
                sentences.append(f"{span}は休業いたします。")
        return "".join(sentences)


def _md(day: datetime.date) -> str:
    return f"{day.month}月{day.day}日"


def _weekdays_ja(weekdays: list[int]) -> str:
    if weekdays == list(range(7)):
        return "毎日"
    if weekdays == list(range(5)):
        return "平日（月曜日から金曜日）"
    if weekdays == [5, 6]:
        return "土曜日・日曜日"
    return "・".join(f"{WEEKDAY_JA[d]}曜日" for d in weekdays)


def ja_time(value: datetime.time) -> str:
    """9:00 → 午前9時, 17:30 → 午後5時30分 (how times are read aloud)."""
    period = "午前" if value.hour < 12 else "午後"
    hour = value.hour if value.hour <= 12 else value.hour - 12
    minutes = f"{value.minute}分" if value.minute else ""
    return f"{period}{hour}時{minutes}"


def ja_day(day: datetime.date) -> str:
    return f"{day.month}月{day.day}日({WEEKDAY_JA[day.weekday()]})"


def closed_message(calendar: BusinessCalendar, at: datetime.datetime, *, greeting: str = "") -> str:
    """What a caller hears out of hours (the voicemail prompt follows): who they reached, that
    we are closed, the hours and any special hours coming up, and when we open next."""
    text = greeting
    text += (
        "本日の受付は終了しております。"
        if _opened_today(calendar, at)
        else "ただいま受付時間外です。"
    )
    text += calendar.summary()
    text += calendar.special_hours_notice(at)
    opening = calendar.next_opening(at)
    if opening is not None:
        local = timezone.localtime(opening)
        text += f"次の受付開始は、{ja_day(local.date())}{ja_time(local.time())}です。"
    return text


def _opened_today(calendar: BusinessCalendar, at: datetime.datetime) -> bool:
    local = timezone.localtime(at)
    hours = calendar.hours_on(local.date())
    return hours.is_open_day and local.time() >= hours.closes
