"""Every figure of the hand-built November (tests/analysis/conftest.py) as the report holds it."""

from __future__ import annotations

import datetime

import pytest

from analysis.periods import Month
from analysis.selectors import monthly_report_data

pytestmark = pytest.mark.django_db

NOV = Month(2026, 11)
NOW = datetime.datetime(2026, 12, 1, 3, 30, tzinfo=datetime.UTC)


@pytest.fixture
def data(november, city_a):
    return monthly_report_data(city_a, NOV, now=NOW)


def counts(rows, key="code"):
    return {r[key]: r["count"] for r in rows}


def test_inquiries_by_tokyo_month_category_channel_and_requester(data):
    inq = data["inquiries"]
    # T1, T2, T4 (30 Nov 23:59 JST), T6; not T3 (31 Oct 23:59) nor T5 (1 Dec 00:00), nor city B's.
    assert inq["total"] == 4
    # T4 was moved from 配送状況 to 誤配・欠品: it counts where it is now.
    assert counts(inq["by_category"]) == {
        "how_to_donate": 1,
        "gift_contents": 1,
        "damaged": 1,
        "wrong_missing": 1,
    }
    assert counts(inq["by_channel"]) == {"phone": 3, "email": 1}
    assert counts(inq["by_requester"]) == {"donor": 2, "prospective_donor": 1, "provider": 1}
    cube = {
        (r["category_code"], r["channel_code"], r["requester_code"]): r["count"]
        for r in inq["cube"]
    }
    assert cube == {
        ("how_to_donate", "email", "prospective_donor"): 1,
        ("gift_contents", "phone", "provider"): 1,
        ("damaged", "phone", "donor"): 1,
        ("wrong_missing", "phone", "donor"): 1,
    }
    matrix = {
        row["code"]: {c["channel"]: c["count"] for c in row["cells"]} for row in inq["matrix"]
    }
    assert matrix["damaged"] == {"phone": 1, "email": 0}


def test_daily_and_hourly_volume_in_tokyo_time(data):
    daily = {r["day"]: r["count"] for r in data["inquiries"]["daily"] if r["count"]}
    assert daily == {"2026-11-02": 1, "2026-11-06": 1, "2026-11-10": 1, "2026-11-30": 1}
    assert len(data["inquiries"]["daily"]) == 30
    hourly = {r["hour"]: r["count"] for r in data["inquiries"]["hourly"] if r["count"]}
    assert hourly == {16: 1, 18: 1, 10: 1, 23: 1}


def test_first_response_and_resolution_in_business_hours(data):
    # First responses: T1 2 h (across 文化の日), T2 0.5 h (after hours, over the weekend), T6 2 h.
    assert data["times"]["first_response"] == {"count": 3, "p50": 7200.0, "p90": 7200.0}
    # Resolved in November: T3 0.5 h (received in October), T2 1 h, T1 3 h.
    resolution = data["times"]["resolution"]
    assert resolution["count"] == 3
    assert resolution["p50"] == 3600.0
    assert resolution["p90"] == pytest.approx(3600 + 0.8 * 7200)


def test_backlog_and_ageing_at_month_end(data):
    backlog = data["backlog"]
    # T4 (hours old), T6 (20 days), T7 (41 days); T5 came after the month.
    assert backlog["total"] == 3
    assert [r["count"] for r in backlog["ageing"]] == [1, 0, 0, 0, 1, 1]


def test_complaints_against_donations_and_shipments(data):
    c = data["complaints"]
    assert c["count"] == 2  # T1 破損・傷み, T4 誤配・欠品
    assert c["donations"] == 3  # cancelled and other months' left out
    assert c["shipments"] == 4
    assert c["per_1000_donations"] == 666.67
    assert c["per_1000_shipments"] == 500.0
    assert counts(c["top_gift_items"], "label") == {"いくら醤油漬け": 1, "夕張メロン": 1}
    assert counts(c["top_carriers"], "label") == {"ヤマト運輸": 1, "佐川急便": 1}
    assert "小樽海産" in counts(c["top_providers"], "label")
    words = counts(c["words"], "word")
    assert words["破損"] == 2
    assert words["容器"] == 1
    assert "こと" not in words and "問合せ" not in words


def test_call_metrics(data):
    calls = data["calls"]
    assert calls["offered"] == 5  # after-hours calls are not offered to agents
    assert calls["answered"] == 2
    assert calls["short_abandons"] == 2  # 3 s in the queue, 2 s in the menu
    assert calls["abandoned"] == 1
    assert calls["abandon_rate"] == 33.3  # 1 of (5 - 2)
    assert calls["asa_seconds"] == 25.0
    assert calls["service_level"] == 33.3  # 1 within 30 s of (2 answered + 1 long abandon)
    assert calls["avg_talk_seconds"] == 160.0
    assert calls["avg_wrap_seconds"] == 30.0
    assert calls["aht_seconds"] == 190.0
    assert calls["after_hours"] == 2
    assert calls["after_hours_hangups"] == 1
    assert calls["voicemails"] == 1
    assert calls["callbacks"] == 1
    assert calls["callbacks_connected"] == 1


def test_donations_shipments_and_receipts(data):
    d = data["donations"]
    assert d["count"] == 3
    assert d["amount"] == 35000
    assert {r["code"]: (r["count"], r["amount"]) for r in d["by_portal"]} == {
        "rakuten": (2, 30000),
        "choice": (1, 5000),
    }
    assert d["cancelled"] == 1
    assert (d["paid"], d["paid_amount"]) == (1, 20000)
    assert d["shipped"] == 4
    assert d["delivered"] == 1
    assert d["returned"] == 1
    assert d["receipts_issued"] == 2
    assert d["one_stop_received"] == 1


def test_month_over_month_and_year_ago(data):
    rows = {r["key"]: r for r in data["comparison"]}
    assert rows["inquiries"]["value"] == 4
    assert rows["inquiries"]["previous"] == {"before": 2, "diff": 2, "pct": 100.0}
    assert rows["inquiries"]["year_ago"] == {"before": 0, "diff": 4, "pct": None}
    assert rows["calls_answered"]["previous"]["before"] == 1


def test_escalations_of_the_month(data):
    esc = data["escalations"]
    assert esc["available"] is True
    # E1, E2 (30 Nov 23:59), E3; not 31 Oct 23:59, 1 Dec 00:00, nor city B's.
    assert (esc["opened"], esc["urgent"], esc["acknowledged"], esc["closed"]) == (3, 1, 2, 1)
    assert esc["still_open"] == 1
    # E2 was acknowledged on 1 Dec 09:00 and E3 never: both unacknowledged at the month's end.
    assert esc["unacknowledged"] == 2
    # To the first notification: 10, 20, 30 minutes.
    assert (esc["avg_minutes_to_notify"], esc["notify_p50"], esc["notify_p90"]) == (20, 20, 28)
    # To acknowledgement: 60 and 541 minutes.
    assert esc["avg_minutes_to_acknowledge"] == 300.5
    assert (esc["acknowledge_p50"], esc["acknowledge_p90"]) == (300.5, 492.9)
    assert counts(esc["kinds"]) == {"damaged_gift": 1, "non_delivery": 1, "cluster": 1}
    # The escalated ticket's category as it stands (T4 was moved to 誤配・欠品); a cluster has none.
    assert {r["label"]: r["count"] for r in esc["categories"]} == {
        "破損・傷み": 1,
        "誤配・欠品": 1,
        "（問合せなし）": 1,
    }
    assert [(r["label"], r["count"]) for r in esc["severities"]] == [
        ("通常", 2),
        ("（問合せなし）", 1),
    ]
    assert [(r["code"], r["attempts"], r["sent"], r["failed"]) for r in esc["channels"]] == [
        ("email", 3, 2, 1),
        ("sms", 1, 1, 0),
        ("voice", 1, 1, 0),
    ]


def test_reshipments_of_the_month_by_reason_and_fault_with_cost(data, city_a):
    """R1 誤配送/運営事業者 ¥7,200 (not billable) and R2 住所不明返送/寄附者 ¥1,000 (billable,
    approved 30 Nov 23:59 JST); R3 (1 Dec 00:00 JST), the refused R4 and city B's R5 are not
    November's."""
    r = data["reshipments"]
    assert r["available"] is True
    assert (r["count"], r["cost"]) == (2, 8200)
    assert (r["billable_count"], r["billable_cost"]) == (1, 1000)
    # A cost share: ¥1,000 of ¥8,200.
    assert r["billable_share"] == 12.2
    assert "費用" in r["billable_share_basis"]
    rows = [(x["label"], x["count"], x["cost"], x["billable"]) for x in r["by_reason"]]
    assert rows == [("誤配送", 1, 7200, 0), ("住所不明返送", 1, 1000, 1)]
    rows = [(x["label"], x["count"], x["cost"], x["billable"]) for x in r["by_fault"]]
    assert rows == [("運営事業者", 1, 7200, 0), ("寄附者", 1, 1000, 1)]
    # The mirror counts replacement parcels by the core's shipping date: none shipped yet.
    assert data["donations"]["reshipped"] == 0

    december = monthly_report_data(city_a, Month(2026, 12), now=NOW)["reshipments"]
    assert (december["count"], december["cost"], december["billable_count"]) == (1, 9500, 0)
    assert [(x["label"], x["count"]) for x in december["by_fault"]] == [("配送業者", 1)]
    assert december["billable_share"] == 0.0


def test_a_month_without_reshipments_has_no_share(city_a):
    r = monthly_report_data(city_a, NOV, now=NOW)["reshipments"]
    assert (r["available"], r["count"], r["cost"], r["billable_share"]) == (True, 0, 0, None)
    assert r["by_reason"] == [] and r["by_fault"] == []


def test_the_embedded_databases_clock_agrees_with_postgresql(november, city_a):
    """SQLite (the demo) computes the same business-hour clocks in Python."""
    from analysis.selectors import _percentiles_python, business_clock, business_intervals
    from telephony.calendar import BusinessCalendar
    from tickets.models import Inquiry

    calendar = BusinessCalendar.for_municipality(city_a.pk)
    intervals = business_intervals(
        calendar, datetime.date(2026, 10, 1), datetime.date(2026, 12, 31)
    )
    tickets = Inquiry.objects.filter(municipality=city_a)
    for end in ("first_response_at", "resolved_at"):
        in_sql = business_clock(tickets, "created_at", end, intervals)
        pairs = tickets.filter(**{f"{end}__isnull": False}).values_list("created_at", end)
        assert _percentiles_python(pairs, intervals) == pytest.approx(in_sql)
        assert in_sql["count"] > 0
