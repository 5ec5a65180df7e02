"""When the next step of an escalation is due: minutes counted in the city's business hours, or
on the wall clock (personal-data incidents).

Business minutes use the municipality's calendar (telephony's: weekly hours, national holidays,
its exceptions) and never count January 1–3, when city offices are closed whatever the line's
hours. A municipality with no weekly hours configured counts weekdays 9:00–17:00.
"""

from __future__ import annotations

import datetime

from django.utils import timezone

from telephony.calendar import BusinessCalendar, DayHours

NEW_YEAR_CLOSURE = ((1, 1), (1, 2), (1, 3))
DEFAULT_HOURS = (datetime.time(9, 0), datetime.time(17, 0))
# Far enough for any calendar; a calendar that is never open falls back to the wall clock.
MAX_DAYS = 60


class CityClock:
    def __init__(self, calendar: BusinessCalendar) -> None:
        if not calendar.weekly:
            calendar = BusinessCalendar(weekly=dict.fromkeys(range(5), DEFAULT_HOURS))
        self.calendar = calendar

    @classmethod
    def for_municipality(cls, municipality_id: int) -> CityClock:
        return cls(BusinessCalendar.for_municipality(municipality_id))

    def hours_on(self, day: datetime.date) -> DayHours:
        if (day.month, day.day) in NEW_YEAR_CLOSURE:
            return DayHours(None, None, "年始休業")
        return self.calendar.hours_on(day)

    def add(self, start: datetime.datetime, minutes: int) -> datetime.datetime:
        """``start`` plus ``minutes`` of the city's open time."""
        local = timezone.localtime(start)
        remaining = datetime.timedelta(minutes=minutes)
        for offset in range(MAX_DAYS):
            day = local.date() + datetime.timedelta(days=offset)
            hours = self.hours_on(day)
            if not hours.is_open_day:
                continue
            opens = timezone.make_aware(datetime.datetime.combine(day, hours.opens))
            closes = timezone.make_aware(datetime.datetime.combine(day, hours.closes))
            begin = max(opens, local)
            if begin >= closes:
                continue
            if begin + remaining <= closes:
                return begin + remaining
            remaining -= closes - begin
        return start + datetime.timedelta(minutes=minutes)

    def is_open(self, at: datetime.datetime) -> bool:
        local = timezone.localtime(at)
        hours = self.hours_on(local.date())
        return hours.is_open_day and hours.opens <= local.time() < hours.closes


def wall_clock_add(start: datetime.datetime, minutes: int) -> datetime.datetime:
    return start + datetime.timedelta(minutes=minutes)
