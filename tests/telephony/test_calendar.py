"""The seeds' business hours, each written as the contract states it (see /shared/seeds)."""

from __future__ import annotations

import datetime

import pytest

from telephony import calendar_services
from telephony.calendar import BusinessCalendar, closed_message, national_holiday_name
from telephony.models import CalendarException
from tests.factories import MunicipalityFactory
from tests.telephony.conftest import tokyo


@pytest.fixture
def calendar_for(db):
    def _make(preset: str) -> BusinessCalendar:
        municipality = MunicipalityFactory(code="142051", name="テスト市")
        return calendar_services.business_calendar_apply_preset(
            municipality=municipality, preset=preset
        )

    return _make


def test_holidays_include_substitute_holidays():
    assert national_holiday_name(datetime.date(2025, 2, 24)) == "振替休日"
    assert national_holiday_name(datetime.date(2024, 11, 4)) == "振替休日"
    assert national_holiday_name(datetime.date(2025, 1, 1)) == "元日"
    assert national_holiday_name(datetime.date(2025, 6, 10)) is None


def test_fukuyama_every_day_9_to_17_except_january_1_to_3(calendar_for):
    # 福山市 6(4)ア: 対応日 年中無休（1月1日から1月3日までを除く）対応時間 午前9時から午後5時まで
    cal = calendar_for("every_day_except_new_year")
    assert cal.is_open(tokyo(2025, 6, 15, 10, 0))  # Sunday
    assert cal.is_open(tokyo(2025, 11, 3, 10, 0))  # 文化の日
    assert cal.is_open(tokyo(2025, 2, 24, 9, 0))  # 振替休日, opening minute
    assert not cal.is_open(tokyo(2025, 6, 10, 8, 59))
    assert not cal.is_open(tokyo(2025, 6, 10, 17, 0))  # closes at 17:00 sharp
    for day in (1, 2, 3):
        assert not cal.is_open(tokyo(2026, 1, day, 12, 0))
    assert cal.is_open(tokyo(2026, 1, 4, 9, 30))
    assert cal.is_open(tokyo(2025, 12, 31, 16, 59))
    assert cal.summary() == "受付時間は、毎日午前9時から午後5時まで（1月1日から1月3日を除く）です。"


def test_fujisawa_weekdays_except_holidays_with_year_end_peak(calendar_for):
    # 藤沢市: 休日等を除く月曜日から金曜日までの午前9時から午後5時まで。年末年始の繁忙期
    # （12月29日〜1月3日）は受付時間の延長や休日の対応を行う。
    cal = calendar_for("weekdays_with_year_end_peak")
    assert cal.is_open(tokyo(2025, 6, 11, 10, 0))  # Wednesday
    assert not cal.is_open(tokyo(2025, 6, 14, 10, 0))  # Saturday
    assert not cal.is_open(tokyo(2025, 2, 24, 10, 0))  # 振替休日 (Monday)
    assert not cal.is_open(tokyo(2025, 7, 21, 10, 0))  # 海の日
    # The peak: weekends and 元日 are open, and hours run to 20:00.
    assert cal.is_open(tokyo(2024, 12, 29, 18, 30))  # Sunday
    assert cal.is_open(tokyo(2025, 1, 1, 10, 0))  # 元日
    assert cal.is_open(tokyo(2025, 1, 3, 19, 59))
    assert not cal.is_open(tokyo(2025, 1, 3, 20, 0))
    assert not cal.is_open(tokyo(2025, 1, 4, 10, 0))  # Saturday after the peak
    assert not cal.is_open(tokyo(2024, 12, 27, 18, 0))  # Friday before it: normal hours
    assert cal.hours_on(datetime.date(2025, 1, 2)).reason == "年末年始繁忙期（受付時間延長）"


def test_nakano_every_day_including_weekends_and_holidays(calendar_for):
    # 中野区: 区役所が閉庁している休日（土、日曜日・祝日）も電話、メールによる対応が可能であること
    cal = calendar_for("every_day_including_holidays")
    assert cal.is_open(tokyo(2025, 6, 14, 9, 0))  # Saturday
    assert cal.is_open(tokyo(2025, 6, 15, 16, 30))  # Sunday
    assert cal.is_open(tokyo(2025, 2, 24, 12, 0))  # 振替休日
    assert cal.is_open(tokyo(2026, 1, 1, 12, 0))  # 元日 is a holiday too
    assert not cal.is_open(tokyo(2025, 6, 14, 17, 30))


def test_one_off_override_beats_the_yearly_rule(calendar_for):
    cal = calendar_for("every_day_except_new_year")
    municipality_id = cal.exceptions[0].municipality_id
    CalendarException.objects.create(
        municipality_id=municipality_id,
        label="2026年 臨時受付",
        start_date=datetime.date(2026, 1, 3),
        end_date=datetime.date(2026, 1, 3),
        opens=datetime.time(10),
        closes=datetime.time(15),
    )
    cal = BusinessCalendar.for_municipality(municipality_id)
    assert cal.is_open(tokyo(2026, 1, 3, 11, 0))
    assert not cal.is_open(tokyo(2026, 1, 2, 11, 0))
    assert not cal.is_open(tokyo(2027, 1, 3, 11, 0))  # only that year


def test_closed_message_names_the_hours_and_the_next_opening(calendar_for):
    cal = calendar_for("weekdays_with_year_end_peak")
    message = closed_message(cal, tokyo(2025, 6, 13, 18, 0))  # Friday evening
    assert message.startswith("本日の受付は終了しております。")
    assert "平日（月曜日から金曜日）午前9時から午後5時まで（祝日を除く）" in message
    assert message.endswith("次の受付開始は、6月16日(月)午前9時です。")
    early = closed_message(cal, tokyo(2025, 6, 16, 7, 0))
    assert early.startswith("ただいま受付時間外です。")
    assert early.endswith("次の受付開始は、6月16日(月)午前9時です。")


def test_closed_message_announces_special_hours_coming_up(calendar_for):
    # 藤沢市: the year-end peak (12月29日〜1月3日, 9:00–20:00) is named while it is near.
    cal = calendar_for("weekdays_with_year_end_peak")
    peak = "12月29日から1月3日までは午前9時から午後8時まで受付いたします。"
    friday_before = closed_message(cal, tokyo(2025, 12, 19, 18, 0))
    assert peak in friday_before
    hours = friday_before.index("受付時間は、")
    assert hours < friday_before.index(peak) < friday_before.index("次の受付開始は、12月22日")
    # During the peak, what is left of it.
    assert "1月1日から1月3日までは午前9時から午後8時まで" in closed_message(
        cal, tokyo(2026, 1, 1, 21, 0)
    )
    # Weeks away, or over: not mentioned.
    assert "午後8時" not in closed_message(cal, tokyo(2025, 11, 14, 18, 0))
    assert "午後8時" not in closed_message(cal, tokyo(2026, 1, 5, 18, 0))


def test_closed_message_announces_a_one_off_closure_but_not_yearly_ones_twice(calendar_for):
    cal = calendar_for("every_day_except_new_year")
    CalendarException.objects.create(
        municipality_id=cal.exceptions[0].municipality_id,
        label="システム停止",
        start_date=datetime.date(2025, 12, 30),
        end_date=datetime.date(2025, 12, 30),
        closed=True,
    )
    cal = BusinessCalendar.for_municipality(cal.exceptions[0].municipality_id)
    message = closed_message(cal, tokyo(2025, 12, 26, 18, 0))
    assert "12月30日は休業いたします。" in message
    assert message.count("1月1日から1月3日") == 1  # already in the summary's exclusions
