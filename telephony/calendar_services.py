"""Calendar writes: a municipality's weekly hours and yearly exceptions set from a preset."""

from __future__ import annotations

import datetime
from dataclasses import dataclass
from typing import Any

from django.core.exceptions import ValidationError
from django.db import transaction

from crm.models import Municipality
from telephony.calendar import BusinessCalendar, DayHours, national_holiday_name
from telephony.lines import rules_changed
from telephony.models import CalendarException, PhoneSettings, WeeklyHours

# The hours the seeds' contracts state, as presets a municipality can be given.
CALENDAR_PRESETS: dict[str, dict[str, Any]] = {
    # 福山市: 年中無休（1月1日から1月3日までを除く）午前9時から午後5時まで
    "every_day_except_new_year": {
        "weekdays": range(7),
        "open_on_holidays": True,
        "exceptions": [("年始休業", (1, 1), (1, 3), True, None)],
    },
    # 藤沢市: 休日等を除く月曜日から金曜日までの午前9時から午後5時まで。年末年始の繁忙期
    # （12月29日〜1月3日）は受付時間の延長・休日の対応。
    "weekdays_with_year_end_peak": {
        "weekdays": range(5),
        "open_on_holidays": False,
        "exceptions": [
            ("年末年始繁忙期（受付時間延長）", (12, 29), (1, 3), False, (9, 20)),
        ],
    },
    # 中野区: 区役所が閉庁している休日（土、日曜日・祝日）も電話対応
    "every_day_including_holidays": {
        "weekdays": range(7),
        "open_on_holidays": True,
        "exceptions": [],
    },
    "weekdays": {"weekdays": range(5), "open_on_holidays": False, "exceptions": []},
}


@transaction.atomic
def business_calendar_apply_preset(
    *,
    municipality: Municipality,
    preset: str,
    opens: datetime.time = datetime.time(9, 0),
    closes: datetime.time = datetime.time(17, 0),
) -> BusinessCalendar:
    """Replace a municipality's weekly hours and yearly exceptions with one of the presets."""
    rule = CALENDAR_PRESETS[preset]
    phone_settings, _ = PhoneSettings.objects.get_or_create(municipality=municipality)
    phone_settings.open_on_holidays = rule["open_on_holidays"]
    phone_settings.save(update_fields=["open_on_holidays"])
    WeeklyHours.objects.filter(municipality=municipality).delete()
    WeeklyHours.objects.bulk_create(
        WeeklyHours(municipality=municipality, weekday=d, opens=opens, closes=closes)
        for d in rule["weekdays"]
    )
    CalendarException.objects.filter(municipality=municipality, every_year=True).delete()
    for label, (m1, d1), (m2, d2), closed, hours in rule["exceptions"]:
        # Yearly ranges keep month/day only; 2000 is a leap year so Feb 29 would fit too.
        CalendarException.objects.create(
            municipality=municipality,
            label=label,
            start_date=datetime.date(2000, m1, d1),
            end_date=datetime.date(2000, m2, d2),
            every_year=True,
            closed=closed,
            opens=datetime.time(hours[0]) if hours else None,
            closes=datetime.time(hours[1]) if hours else None,
        )
    rules_changed()  # bulk_create sends no signals
    return BusinessCalendar.for_municipality(municipality.id)


@transaction.atomic
def weekly_hours_set(
    *,
    municipality: Municipality,
    hours: dict[int, tuple[datetime.time, datetime.time] | None],
    open_on_holidays: bool,
) -> BusinessCalendar:
    """Set the weekly hours (weekday → (opens, closes), None = closed) and the holiday rule."""
    for weekday, span in hours.items():
        if span is not None and not span[0] < span[1]:
            raise ValidationError(f"{WeeklyHours.WEEKDAYS[weekday][1]}曜日の開始が終了より後です。")
    phone_settings, _ = PhoneSettings.objects.get_or_create(municipality=municipality)
    phone_settings.open_on_holidays = open_on_holidays
    phone_settings.save(update_fields=["open_on_holidays"])
    WeeklyHours.objects.filter(municipality=municipality).delete()
    WeeklyHours.objects.bulk_create(
        WeeklyHours(municipality=municipality, weekday=d, opens=span[0], closes=span[1])
        for d, span in sorted(hours.items())
        if span is not None
    )
    rules_changed()  # bulk_create sends no signals
    return BusinessCalendar.for_municipality(municipality.id)


@transaction.atomic
def calendar_exception_add(
    *,
    municipality: Municipality,
    label: str,
    start_date: datetime.date,
    end_date: datetime.date,
    closed: bool,
    opens: datetime.time | None = None,
    closes: datetime.time | None = None,
    every_year: bool = False,
) -> CalendarException:
    """A closure (``closed``) or a date override with its own hours."""
    if end_date < start_date and not every_year:
        raise ValidationError("終了日が開始日より前です。")
    if not closed and not (opens and closes and opens < closes):
        raise ValidationError("休業でない日は開始・終了時刻を指定してください。")
    exc = CalendarException(
        municipality=municipality,
        label=label,
        start_date=start_date,
        end_date=end_date,
        every_year=every_year,
        closed=closed,
        opens=None if closed else opens,
        closes=None if closed else closes,
    )
    exc.save()
    return exc


@transaction.atomic
def calendar_exception_delete(*, exception: CalendarException) -> None:
    exception.delete()


@dataclass(frozen=True)
class PreviewDay:
    day: datetime.date
    hours: DayHours
    holiday: str | None


def business_calendar_preview(
    *, municipality_id: int, start: datetime.date, days: int = 14
) -> list[PreviewDay]:
    """How the line will answer on each of the next ``days`` days, as the calls will see it."""
    calendar = BusinessCalendar.for_municipality(municipality_id)
    return [
        PreviewDay(day=d, hours=calendar.hours_on(d), holiday=national_holiday_name(d))
        for d in (start + datetime.timedelta(days=i) for i in range(days))
    ]
