"""The monthly report in Chromium: a supervisor opens the month, drills into a category and
downloads the PDF; a city official sees only their city's submitted report."""

from __future__ import annotations

import datetime

import pytest
from playwright.sync_api import expect

from analysis import services as analysis_services
from analysis.models import MonthlyReport
from analysis.periods import Month
from crm.models import User
from tests.analysis.conftest import november  # noqa: F401 - the hand-built month
from tests.factories import UserFactory

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True, serialized_rollback=True)]


@pytest.mark.usefixtures("november")
def test_supervisor_opens_the_month_drills_down_and_downloads_the_pdf(
    page, browser_login, csp_violations, city_a
):
    supervisor = UserFactory(username="sv_e2e", role=User.Role.SUPERVISOR, municipalities=[city_a])
    browser_login(page, supervisor)
    page.goto("/analysis/")
    page.select_option("#pick-municipality", label="小樽市")
    page.fill("#pick-month", "2026-11")
    page.click("#analysis-pick button[type=submit]")
    page.wait_for_url(f"**/analysis/municipalities/{city_a.pk}/?month=2026-11")
    expect(page.locator("h1")).to_contain_text("小樽市 2026年11月 月次分析")
    expect(page.locator("svg.chart").first).to_be_visible()

    page.get_by_role("link", name="破損・傷み", exact=True).first.click()
    page.wait_for_url("**/tickets/?month=2026-11&category=damaged")
    rows = page.locator("#drilldown-rows tbody tr")
    expect(rows).to_have_count(1)
    expect(rows.first).to_contain_text("いくらの容器が破損していた")

    page.go_back()
    page.get_by_role("button", name="月次報告を作成").click()
    expect(page.locator("h1")).to_contain_text("小樽市 2026年11月 月次報告")
    with page.expect_download() as download_info:
        page.click("#download-pdf")
    download = download_info.value
    assert download.suggested_filename == f"monthly-report-{city_a.code}-2026-11.pdf"
    with open(download.path(), "rb") as pdf:
        assert pdf.read(5) == b"%PDF-"
    assert csp_violations == []


def test_city_official_sees_only_the_submitted_report_of_their_city(
    page, browser_login, csp_violations, city_a, city_b, city_official_a
):
    submitted = analysis_services.report_generate(municipality=city_a, month=Month(2026, 10))
    submitted.state, submitted.measures = "submitted", "梱包の見直しを依頼しました。"
    submitted.submitted_at = datetime.datetime(2026, 11, 10, tzinfo=datetime.UTC)
    submitted.save()
    analysis_services.report_generate(municipality=city_a, month=Month(2026, 9))  # a draft
    other = analysis_services.report_generate(municipality=city_b, month=Month(2026, 10))
    MonthlyReport.objects.filter(pk=other.pk).update(state="submitted")

    browser_login(page, city_official_a)
    page.goto("/analysis/")
    rows = page.locator("table.grid tbody tr")
    expect(rows).to_have_count(1)
    expect(rows.first).to_contain_text("2026年10月")
    expect(rows.first).to_contain_text("小樽市")
    rows.first.get_by_role("link").click()
    expect(page.locator("h1")).to_contain_text("小樽市 2026年10月 月次報告")
    expect(page.locator("main")).to_contain_text("梱包の見直しを依頼しました。")
    expect(page.get_by_role("button", name="市へ提出")).to_have_count(0)
    assert page.goto(f"/analysis/reports/{other.pk}/").status == 404
    assert csp_violations == []
