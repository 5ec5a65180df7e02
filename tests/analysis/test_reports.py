"""Reports through the pages: supervisors' months and drill-downs, the city's submitted reports,
the review and submission, the exports, and beat's monthly cycle."""

from __future__ import annotations

import datetime
import email
import email.policy
import io
from zoneinfo import ZoneInfo

import pytest
import time_machine
from django.core import mail
from openpyxl import load_workbook
from pypdf import PdfReader

from analysis import tasks
from analysis.models import MonthlyReport
from crm.models import PersonalDataAccess, User
from tests.conftest import response_bytes
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db

TOKYO = ZoneInfo("Asia/Tokyo")


def _generate(client, city, month="2026-11") -> MonthlyReport:
    response = client.post(f"/analysis/municipalities/{city.pk}/generate/", {"month": month})
    assert response.status_code == 302
    return MonthlyReport.objects.get(municipality=city, month=datetime.date(2026, 11, 1))


@pytest.fixture
def supervisor_a(city_a):
    return UserFactory(
        username="sv_a", role=User.Role.SUPERVISOR, municipalities=[city_a], email="sv_a@example.jp"
    )


@pytest.fixture
def supervisor_only_b(city_b):
    return UserFactory(username="sv_b", role=User.Role.SUPERVISOR, municipalities=[city_b])


def test_supervisor_sees_the_month_and_drills_into_a_category(
    login, november, supervisor_a, city_a
):
    client = login(supervisor_a)
    page = client.get(f"/analysis/municipalities/{city_a.pk}/", {"month": "2026-11"})
    assert page.status_code == 200
    body = page.content.decode()
    assert "小樽市 2026年11月 月次分析" in body
    assert "<svg" in body
    escalations = body[body.index('id="report-escalations"') :]
    assert '報告件数</th><td class="n">3件' in escalations
    assert '月末時点で未確認</th><td class="n">2件' in escalations
    assert "未集計：市への報告" not in body
    reshipments = body[body.index('id="report-reshipment-totals"') :]
    assert '再送件数（承認月）</th><td class="n">2件' in reshipments
    assert "¥8,200" in reshipments and "¥1,000" in reshipments
    assert "費用（返礼品代＋送料）に占める市の負担の割合" in reshipments
    assert "12.2%" in reshipments
    assert '<td>理由</td><td>誤配送</td><td class="n">1</td><td class="n">¥7,200</td>' in (
        reshipments
    )
    assert "未集計：再送" not in body
    drill = f"/analysis/municipalities/{city_a.pk}/tickets/?month=2026-11&amp;category=damaged"
    assert drill in body
    listed = client.get(
        f"/analysis/municipalities/{city_a.pk}/tickets/",
        {"month": "2026-11", "category": "damaged"},
    )
    rows = listed.content.decode()
    assert "いくらの容器が破損していた" in rows
    assert "12月の問合せ" not in rows  # 1 Dec 00:00 JST is December's
    assert "福山市の問合せ" not in rows
    backlog = client.get(
        f"/analysis/municipalities/{city_a.pk}/tickets/", {"month": "2026-11", "backlog": "1"}
    ).content.decode()
    assert "カタログ送付依頼" in backlog and "メロンが届かない" in backlog
    assert "寄附の方法について" not in backlog


def test_supervisor_of_other_cities_and_agents_get_nothing(
    login, november, supervisor_only_b, agent_a, city_a
):
    client = login(supervisor_only_b)
    for url in (
        f"/analysis/municipalities/{city_a.pk}/?month=2026-11",
        f"/analysis/municipalities/{city_a.pk}/tickets/?month=2026-11",
        f"/analysis/municipalities/{city_a.pk}/tickets.csv?month=2026-11",
    ):
        assert client.get(url).status_code == 404, url
    overview = client.get("/analysis/all/", {"month": "2026-11"}).content.decode()
    assert "小樽市" not in overview and "福山市" in overview
    assert login(agent_a).get("/analysis/").status_code == 403


def test_review_submit_mails_the_city_and_the_city_sees_only_its_submitted_report(
    login,
    november,
    supervisor_a,
    city_a,
    city_official_a,
    city_official_b,
    django_capture_on_commit_callbacks,
):
    city_official_a.email = "kikaku@city.otaru.example.jp"
    city_official_a.save()
    client = login(supervisor_a)
    report = _generate(client, city_a)
    assert report.state == "draft"
    assert report.data["inquiries"]["total"] == 4

    city = login(city_official_a)
    assert city.get(f"/analysis/reports/{report.pk}/").status_code == 404  # a draft
    assert "2026年11月" not in city.get("/analysis/").content.decode()

    refused = client.post(
        f"/analysis/reports/{report.pk}/review/", {"comments": "破損が増加", "submit": "1"}
    )
    assert refused.status_code == 302
    report.refresh_from_db()
    assert report.state == "draft"  # no measures yet

    with django_capture_on_commit_callbacks(execute=True):
        client.post(
            f"/analysis/reports/{report.pk}/review/",
            {
                "comments": "破損の苦情が2件ありました。",
                "measures": "梱包材の見直しを事業者に依頼しました。",
                "submit": "1",
            },
        )
    report.refresh_from_db()
    assert report.state == "submitted"
    assert report.submitted_by == supervisor_a
    assert report.city_notified_at is not None
    assert len(mail.outbox) == 1
    message = mail.outbox[0]
    assert message.to == ["kikaku@city.otaru.example.jp"]
    raw = message.message().as_bytes()
    headers, _, _ = raw.partition(b"\n\n")
    assert headers.isascii()  # the Japanese subject travels MIME-encoded
    parsed = email.message_from_bytes(raw, policy=email.policy.default)
    assert parsed["Subject"].strip() == "【小樽市】2026年11月の月次報告を提出しました"
    assert "月次報告を提出しました" in parsed.get_content()
    assert f"/analysis/reports/{report.pk}/".encode() in raw

    # Regenerating keeps the submitted snapshot.
    before = report.data
    client.post(f"/analysis/reports/{report.pk}/regenerate/")
    client.post(f"/analysis/municipalities/{city_a.pk}/generate/", {"month": "2026-11"})
    report.refresh_from_db()
    assert report.data == before and report.generated_at is not None

    page = city.get(f"/analysis/reports/{report.pk}/")
    assert page.status_code == 200
    body = page.content.decode()
    assert "梱包材の見直しを事業者に依頼しました。" in body
    assert "市へ提出" not in body  # read-only for the city
    assert "2026年11月" in city.get("/analysis/").content.decode()
    drill = city.get(
        f"/analysis/municipalities/{city_a.pk}/tickets/", {"month": "2026-11", "complaint": "1"}
    )
    assert drill.status_code == 200 and "メロンが届かない" in drill.content.decode()
    # Another month (no submitted report) and the supervisors' live pages stay closed to the city.
    assert (
        city.get(f"/analysis/municipalities/{city_a.pk}/tickets/", {"month": "2026-10"}).status_code
        == 404
    )
    assert city.get(f"/analysis/municipalities/{city_a.pk}/").status_code == 403

    other = login(city_official_b)
    assert other.get(f"/analysis/reports/{report.pk}/").status_code == 404
    assert other.get(f"/analysis/reports/{report.pk}/report.pdf").status_code == 404
    assert (
        other.get(
            f"/analysis/municipalities/{city_a.pk}/tickets/", {"month": "2026-11"}
        ).status_code
        == 404
    )
    assert "小樽市" not in other.get("/analysis/").content.decode()


def test_pdf_holds_the_japanese_headings_and_figures(login, november, supervisor_a, city_a):
    client = login(supervisor_a)
    report = _generate(client, city_a)
    response = client.get(f"/analysis/reports/{report.pk}/report.pdf")
    assert response.status_code == 200
    assert response["Content-Type"] == "application/pdf"
    text = "".join(
        page.extract_text() for page in PdfReader(io.BytesIO(response_bytes(response))).pages
    )
    text = text.replace(" ", "")
    for words in (
        "小樽市",
        "月次報告（2026年11月）",
        "問合せ件数",
        "苦情",
        "寄附1,000件あたり",
        "666.7",
        "500",
        "破損・傷み",
        "放棄率",
        "33.3%",
        "受領証明書発行",
        # 9. エスカレーション: 3 reports, 2 not acknowledged at the month's end, the minutes to
        # the first notification and to acknowledgement (mean・p50・p90).
        "報告件数3件",
        "月末時点で未確認2件",
        "20.0分・20.0分・28.0分",
        "300.5分・300.5分・492.9分",
        "苦情の集中",
        "（問合せなし）",
        "自動音声電話",
        # 10. 再送: November's two (¥7,200 not billable, ¥1,000 billable), the share by cost.
        "再送件数（承認月）2件",
        "¥8,200",
        "うち市の負担1件",
        "12.2%",
        "誤配送",
        "住所不明返送",
        "運営事業者",
        "寄附者",
        "¥7,200",
    ):
        assert words in text, words
    assert "未集計：再送" not in text


def test_xlsx_has_one_sheet_per_section(login, november, supervisor_a, city_a):
    client = login(supervisor_a)
    report = _generate(client, city_a)
    response = client.get(f"/analysis/reports/{report.pk}/report.xlsx")
    book = load_workbook(io.BytesIO(response_bytes(response)))
    for name in (
        "概要",
        "分類別",
        "日別",
        "対応時間",
        "月末未解決",
        "苦情",
        "電話",
        "寄附・発送・受領証明書",
    ):
        assert name in book.sheetnames
    categories = {row[0]: row[1] for row in book["分類別"].iter_rows(min_row=2, values_only=True)}
    assert categories["破損・傷み"] == 1 and categories["誤配・欠品"] == 1
    times = list(book["対応時間"].iter_rows(min_row=2, values_only=True))
    assert times[0] == ("初回回答時間（営業時間）", 3, 2.0, 2.0)
    phone = {row[0]: row[1] for row in book["電話"].iter_rows(min_row=2, values_only=True)}
    assert phone["放棄率（%）"] == 33.3
    csv_text = response_bytes(client.get(f"/analysis/reports/{report.pk}/report.csv")).decode()
    assert csv_text.startswith("\ufeff■概要")
    assert '"寄附1,000件あたり",666.67' in csv_text

    escalations = dict(book["エスカレーション"].iter_rows(min_row=2, values_only=True))
    assert escalations["報告件数"] == 3 and escalations["月末時点で未確認"] == 2
    assert escalations["市の確認まで 90%値（分）"] == 492.9
    breakdown = list(book["エスカレーション（内訳）"].iter_rows(min_row=2, values_only=True))
    assert ("種別", "苦情の集中", 1) in breakdown and ("重要度", "通常", 2) in breakdown
    channels = list(book["エスカレーション（通知手段）"].iter_rows(min_row=2, values_only=True))
    assert channels[0] == ("メール", 3, 2, 1)
    totals = dict(book["再送（合計）"].iter_rows(min_row=2, values_only=True))
    assert totals["再送件数"] == 2 and totals["費用（円）"] == 8200
    assert totals["うち市の負担（件）"] == 1 and totals["うち市の負担（円）"] == 1000
    assert totals["費用（返礼品代＋送料）に占める市の負担の割合（%）"] == 12.2
    assert list(book["再送"].iter_rows(min_row=2, values_only=True)) == [
        ("理由", "誤配送", 1, 7200, 0),
        ("理由", "住所不明返送", 1, 1000, 1),
        ("責任区分", "運営事業者", 1, 7200, 0),
        ("責任区分", "寄附者", 1, 1000, 1),
    ]
    assert "■再送（合計）\r\n項目,値\r\n再送件数,2\r\n費用（円）,8200\r\n" in csv_text
    assert "理由,誤配送,1,7200,0\r\n理由,住所不明返送,1,1000,1\r\n" in csv_text
    assert "責任区分,運営事業者,1,7200,0\r\n責任区分,寄附者,1,1000,1\r\n" in csv_text
    assert "■エスカレーション\r\n項目,値\r\n報告件数,3\r\n" in csv_text
    assert "初回通知まで 90%値（分）,28.0" in csv_text


def test_a_report_submitted_before_reshipments_were_counted_keeps_its_snapshot(
    login, november, supervisor_a, city_a
):
    """The city was sent 未集計 for 再送; regenerating and every export still say so."""
    client = login(supervisor_a)
    report = _generate(client, city_a)
    old = "未集計：再送管理機能の導入後に表示されます"
    report.data["reshipments"] = {
        "available": False,
        "note": old,
        "by_reason": [],
        "by_fault": [],
    }
    report.state = MonthlyReport.State.SUBMITTED
    report.save()
    sent = dict(report.data)

    regenerated = _generate(client, city_a)
    assert regenerated.pk == report.pk and regenerated.data == sent
    page = client.get(f"/analysis/reports/{report.pk}/").content.decode()
    assert old in page and 'id="report-reshipment-totals"' not in page
    book = load_workbook(
        io.BytesIO(response_bytes(client.get(f"/analysis/reports/{report.pk}/report.xlsx")))
    )
    assert "再送（合計）" not in book.sheetnames
    assert list(book["再送"].iter_rows(values_only=True))[1][0] == old
    csv_text = response_bytes(client.get(f"/analysis/reports/{report.pk}/report.csv")).decode()
    assert f"■再送\r\n備考\r\n{old}" in csv_text


def test_drilldown_csv_is_logged_as_personal_data_export(login, november, supervisor_a, city_a):
    client = login(supervisor_a)
    response = client.get(
        f"/analysis/municipalities/{city_a.pk}/tickets.csv", {"month": "2026-11", "complaint": "1"}
    )
    text = response_bytes(response).decode()
    assert "寄附 花子" in text and "メロンが届かない" in text
    log = PersonalDataAccess.objects.get(action="export")
    assert log.record_type == "analysis_tickets.csv"
    assert log.municipality_id == city_a.pk and log.user == supervisor_a


def test_beat_generates_on_the_first_and_alerts_after_the_fifteenth(
    november, city_a, city_b, supervisor_a, django_capture_on_commit_callbacks, settings
):
    schedule = settings.CELERY_BEAT_SCHEDULE
    assert (
        schedule["analysis-generate-previous-month"]["task"] == "analysis.generate_previous_month"
    )
    with time_machine.travel(datetime.datetime(2026, 12, 1, 3, 30, tzinfo=TOKYO), tick=False):
        assert tasks.generate_previous_month.delay().get() == 2
    reports = MonthlyReport.objects.filter(month=datetime.date(2026, 11, 1))
    assert {r.municipality_id for r in reports} == {city_a.pk, city_b.pk}
    assert reports.get(municipality=city_a).data["inquiries"]["total"] == 4
    assert reports.get(municipality=city_b).data["inquiries"]["total"] == 1
    b = reports.get(municipality=city_b)
    b.state, b.measures = "submitted", "済"
    b.save()

    with time_machine.travel(datetime.datetime(2026, 12, 15, 9, tzinfo=TOKYO), tick=False):
        with django_capture_on_commit_callbacks(execute=True):
            assert tasks.alert_overdue.delay().get() == 0  # not late yet
    assert mail.outbox == []
    with time_machine.travel(datetime.datetime(2026, 12, 16, 9, tzinfo=TOKYO), tick=False):
        with django_capture_on_commit_callbacks(execute=True):
            assert tasks.alert_overdue.delay().get() == 1  # city A only; B was submitted
        with django_capture_on_commit_callbacks(execute=True):
            tasks.alert_overdue.delay().get()  # the next day's run tells nobody twice
    assert len(mail.outbox) == 1
    assert mail.outbox[0].to == ["sv_a@example.jp"]
    parsed = email.message_from_bytes(
        mail.outbox[0].message().as_bytes(), policy=email.policy.default
    )
    assert parsed["Subject"].strip() == "【未提出】小樽市 2026年11月の月次報告"


@pytest.mark.parametrize(
    ("params", "shown", "not_shown"),
    [
        ({"hour": "23"}, ["メロンが届かない"], ["12月の問合せ", "いくらの容器が破損していた"]),
        ({"day": "2026-11-30"}, ["メロンが届かない"], ["12月の問合せ", "出荷日の確認"]),
        ({"channel": "email"}, ["寄附の方法について"], ["メロンが届かない"]),
        ({"requester_type": "provider"}, ["出荷日の確認"], ["寄附の方法について"]),
        ({"resolved": "1"}, ["受領証明書が届かない", "寄附の方法について"], ["出荷日の確認"]),
        ({"complaint": "1", "carrier": "sagawa"}, ["メロンが届かない"], ["いくらの容器"]),
    ],
)
def test_drilldown_filters(login, november, supervisor_a, city_a, params, shown, not_shown):
    if params.get("carrier"):
        from crm.models import Carrier

        params = {**params, "carrier": str(Carrier.objects.get(code=params["carrier"]).pk)}
    body = (
        login(supervisor_a)
        .get(f"/analysis/municipalities/{city_a.pk}/tickets/", {"month": "2026-11", **params})
        .content.decode()
    )
    for title in shown:
        assert title in body, title
    for title in not_shown:
        assert title not in body, title


def test_monthly_reports_command(november, city_a, city_b):
    from io import StringIO

    from django.core.management import call_command

    out = StringIO()
    call_command("monthly_reports", "--month", "2026-11", "--municipality", city_a.code, stdout=out)
    assert "小樽市 2026年11月: 下書き（問合せ 4件）" in out.getvalue()
    assert list(MonthlyReport.objects.values_list("municipality_id", flat=True)) == [city_a.pk]


def test_the_submitted_report_is_also_mailed_to_the_city_contacts_flagged_for_it(
    login,
    november,
    supervisor_a,
    operator_admin,
    city_a,
    city_b,
    city_official_a,
    django_capture_on_commit_callbacks,
):
    from django.urls import reverse

    from crm.models import CityContact
    from jobs.models import PendingJob

    city_official_a.email = "kikaku@city.otaru.example.jp"
    city_official_a.save()
    # The operator admin flags who receives the report where city contacts are edited.
    admin = login(operator_admin)
    add = reverse("administration:city_contact_add", args=[city_a.pk])
    for name, address, flagged in (
        ("小樽 一郎", "ichiro@city.otaru.example.jp", "on"),
        ("小樽 花子", "hanako@city.otaru.example.jp", ""),
        # Also an official's address: one mail, not two.
        ("企画 係", "KIKAKU@city.otaru.example.jp", "on"),
    ):
        data = {"name": name, "department": "企画政策室", "email": address, "escalation_order": "1"}
        if flagged:
            data["receives_monthly_report"] = flagged
        assert admin.post(add, data).status_code == 302
    refused = admin.post(
        add,
        {"name": "番号 のみ", "department": "総務", "phone": "0134-32-4111",
         "escalation_order": "2", "receives_monthly_report": "on"},
        follow=True,
    )  # fmt: skip
    assert "月次報告を受け取るにはメールアドレスが必要です。" in refused.content.decode()
    assert not CityContact.objects.filter(name="番号 のみ").exists()
    page = admin.get(reverse("administration:municipality_detail", args=[city_a.pk]))
    assert "月次報告" in page.content.decode()
    CityContact.objects.create(
        municipality=city_b, name="福山", department="企画", email="x@city.fukuyama.example.jp",
        receives_monthly_report=True,
    )  # fmt: skip

    client = login(supervisor_a)
    report = _generate(client, city_a)
    with django_capture_on_commit_callbacks(execute=True):
        client.post(
            f"/analysis/reports/{report.pk}/review/",
            {"comments": "", "measures": "梱包材の見直しを依頼しました。", "submit": "1"},
        )
    assert sorted(address for m in mail.outbox for address in m.to) == [
        "ichiro@city.otaru.example.jp",
        "kikaku@city.otaru.example.jp",
    ]
    assert all(
        f"/analysis/reports/{report.pk}/".encode() in m.message().as_bytes() for m in mail.outbox
    )
    # Each address is a durable job of its own, done.
    sends = PendingJob.objects.filter(target="analysis.services.report_city_mail_send")
    assert sends.count() == 2 and all(job.done_at for job in sends)
