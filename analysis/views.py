"""Monthly analysis pages: supervisors (their municipalities, one or all, any month, live or
kept) and city officials (their own city's submitted reports only).

Every page fetches through ``crm.access``: another municipality's month, report or tickets do
not exist (404). Figures link to the tickets behind them (``drilldown``), scoped the same way.
"""

from __future__ import annotations

import csv
import io
from typing import Any
from urllib.parse import urlencode

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_POST

from analysis import exports, services
from analysis.charts import Bar, bar_chart, column_chart
from analysis.models import MonthlyReport
from analysis.periods import Month
from analysis.selectors import DRILL_PARAMS, drilldown, headline, monthly_report_data
from crm.access import (
    is_city_official,
    is_supervisor,
    scoped_or_404,
)
from crm.models import Municipality, PersonalDataAccess, User
from crm.services import personal_data_access_record

DRILL_LIMIT = 500


def _require_supervisor(user: User) -> None:
    if not is_supervisor(user):
        raise PermissionDenied("この画面は監督者専用です。")


def _month_param(request: HttpRequest, default: Month | None = None) -> Month:
    value = request.GET.get("month") or request.POST.get("month") or ""
    month = Month.parse(value)
    if month is not None:
        return month
    return default or Month.containing(timezone.now()).previous()


def _report(user: User, report_id: int) -> MonthlyReport:
    """A report the user may read: supervisors any of their municipalities', a city official
    only their city's submitted ones, agents none."""
    report = scoped_or_404(
        MonthlyReport.objects.select_related("municipality", "submitted_by", "reviewed_by"),
        user,
        pk=report_id,
    )
    if is_supervisor(user):
        return report
    if is_city_official(user) and report.is_submitted:
        return report
    raise Http404


def _drill_base(municipality_id: int, month: Month) -> str:
    return (
        reverse("analysis:drilldown", args=[municipality_id])
        + "?"
        + urlencode({"month": month.key()})
    )


def _charts(data: dict[str, Any], drill: str) -> dict[str, Any]:
    def href(**params: Any) -> str:
        return f"{drill}&{urlencode(params)}" if drill else ""

    inq = data["inquiries"]
    return {
        "daily": column_chart(
            [
                Bar(
                    label=r["day"],
                    value=r["count"],
                    href=href(day=r["day"]),
                    tick=str(int(r["day"][-2:]))
                    if int(r["day"][-2:]) in (1, 5, 10, 15, 20, 25, 30)
                    else "",
                )
                for r in inq["daily"]
            ],
            title="日別の問合せ件数",
        ),
        "hourly": column_chart(
            [
                Bar(
                    label=f"{r['hour']}時",
                    value=r["count"],
                    href=href(hour=r["hour"]),
                    tick=str(r["hour"]) if r["hour"] % 3 == 0 else "",
                )
                for r in inq["hourly"]
            ],
            title="時間帯別の問合せ件数",
        ),
        "categories": bar_chart(
            [
                Bar(label=r["label"], value=r["count"], href=href(category=r["code"]))
                for r in inq["by_category"]
            ],
            title="分類別の問合せ件数",
        ),
        "words": bar_chart(
            [Bar(label=r["word"], value=r["count"]) for r in data["complaints"]["words"][:15]],
            title="苦情の頻出語",
        ),
    }


def _report_context(data: dict[str, Any], *, drill: str) -> dict[str, Any]:
    return {"data": data, "charts": _charts(data, drill), "drill": drill}


@login_required
def index(request: HttpRequest) -> HttpResponse:
    user = request.user
    reports = MonthlyReport.objects.visible_to(user).select_related("municipality")
    if is_city_official(user):
        reports = reports.filter(state=MonthlyReport.State.SUBMITTED)
    elif not is_supervisor(user):
        raise PermissionDenied("この画面は監督者専用です。")
    month = _month_param(request)
    return render(
        request,
        "analysis/index.html",
        {
            "reports": reports.order_by("-month", "municipality__code")[:200],
            "municipalities": Municipality.objects.visible_to(user).order_by("code"),
            "month": month,
            "is_supervisor": is_supervisor(user),
        },
    )


@login_required
def overview(request: HttpRequest) -> HttpResponse:
    """All of a supervisor's municipalities side by side for one month."""
    _require_supervisor(request.user)
    month = _month_param(request)
    municipalities = list(Municipality.objects.visible_to(request.user).order_by("code"))
    figures = headline([m.pk for m in municipalities], month)
    rows = [(m, figures[m.pk]) for m in municipalities]
    totals = {
        key: sum(f[key] for _, f in rows)
        for key in (
            "inquiries",
            "complaints",
            "backlog",
            "calls_offered",
            "calls_answered",
            "calls_abandoned",
            "donations",
            "donation_amount",
            "shipments",
        )
    }
    return render(
        request,
        "analysis/overview.html",
        {
            "month": month,
            "rows": rows,
            "totals": totals,
            "previous": month.previous(),
            "next": month.next(),
        },
    )


@login_required
def month_view(request: HttpRequest, municipality_id: int) -> HttpResponse:
    """One municipality's month computed now (supervisors' daily follow-up)."""
    _require_supervisor(request.user)
    municipality = scoped_or_404(Municipality.objects.all(), request.user, pk=municipality_id)
    month = _month_param(request, default=Month.containing(timezone.now()))
    data = monthly_report_data(municipality, month)
    report = MonthlyReport.objects.filter(municipality=municipality, month=month.first_day).first()
    return render(
        request,
        "analysis/month.html",
        {
            **_report_context(data, drill=_drill_base(municipality.pk, month)),
            "municipality": municipality,
            "month": month,
            "report": report,
            "computed_at": timezone.now(),
            "previous": month.previous(),
            "next": month.next(),
        },
    )


@login_required
@require_POST
def report_generate(request: HttpRequest, municipality_id: int) -> HttpResponse:
    _require_supervisor(request.user)
    municipality = scoped_or_404(Municipality.objects.all(), request.user, pk=municipality_id)
    month = _month_param(request)
    report = services.report_generate(municipality=municipality, month=month)
    messages.success(request, f"{month.label()}の月次報告を集計しました。")
    return redirect("analysis:report", report.pk)


@login_required
def report_detail(request: HttpRequest, report_id: int) -> HttpResponse:
    report = _report(request.user, report_id)
    month = Month.of(report.month)
    return render(
        request,
        "analysis/report.html",
        {
            **_report_context(report.data, drill=_drill_base(report.municipality_id, month)),
            "report": report,
            "month": month,
            "can_edit": is_supervisor(request.user) and not report.is_submitted,
        },
    )


@login_required
@require_POST
def report_review(request: HttpRequest, report_id: int) -> HttpResponse:
    report = _report(request.user, report_id)
    _require_supervisor(request.user)
    try:
        report = services.report_review(
            actor=request.user,
            report=report,
            comments=request.POST.get("comments", ""),
            measures=request.POST.get("measures", ""),
        )
        if request.POST.get("submit"):
            services.report_submit(actor=request.user, report=report)
            messages.success(
                request, "月次報告を提出しました。市の担当者にメールでお知らせします。"
            )
        else:
            messages.success(request, "所見と方策を保存しました。")
    except services.ReportError as exc:
        messages.error(request, str(exc))
    return redirect("analysis:report", report.pk)


@login_required
@require_POST
def report_regenerate(request: HttpRequest, report_id: int) -> HttpResponse:
    report = _report(request.user, report_id)
    _require_supervisor(request.user)
    if report.is_submitted:
        messages.error(
            request, "提出済みの報告は再集計しません（提出した内容のまま保存されます）。"
        )
    else:
        services.report_generate(municipality=report.municipality, month=Month.of(report.month))
        messages.success(request, "再集計しました。")
    return redirect("analysis:report", report.pk)


def _filename(report: MonthlyReport, ext: str) -> str:
    return f"monthly-report-{report.municipality.code}-{report.month_key}.{ext}"


@login_required
def report_pdf(request: HttpRequest, report_id: int) -> HttpResponse:
    report = _report(request.user, report_id)
    context = {**_report_context(report.data, drill=""), "report": report, "pdf": True}
    response = HttpResponse(exports.report_pdf(report, context), content_type="application/pdf")
    response["Content-Disposition"] = f'attachment; filename="{_filename(report, "pdf")}"'
    return response


@login_required
def report_xlsx(request: HttpRequest, report_id: int) -> HttpResponse:
    report = _report(request.user, report_id)
    response = HttpResponse(
        exports.report_xlsx(report),
        content_type="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    )
    response["Content-Disposition"] = f'attachment; filename="{_filename(report, "xlsx")}"'
    return response


@login_required
def report_csv(request: HttpRequest, report_id: int) -> HttpResponse:
    report = _report(request.user, report_id)
    response = HttpResponse(exports.report_csv(report), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{_filename(report, "csv")}"'
    return response


def _drill(request: HttpRequest, municipality_id: int) -> tuple[Municipality, Month, Any, dict]:
    """The tickets behind a figure. Supervisors: any month of their municipalities; a city
    official: only a month whose report their city has been sent."""
    user = request.user
    municipality = scoped_or_404(Municipality.objects.all(), user, pk=municipality_id)
    month = _month_param(request)
    if not is_supervisor(user):
        if not (
            is_city_official(user)
            and MonthlyReport.objects.filter(
                municipality=municipality,
                month=month.first_day,
                state=MonthlyReport.State.SUBMITTED,
            ).exists()
        ):
            raise Http404
    params = {k: request.GET.get(k, "") for k in DRILL_PARAMS}
    return municipality, month, drilldown(municipality.pk, month, params), params


@login_required
def drilldown_list(request: HttpRequest, municipality_id: int) -> HttpResponse:
    municipality, month, qs, params = _drill(request, municipality_id)
    rows = list(qs[: DRILL_LIMIT + 1])
    personal_data_access_record(
        user=request.user,
        action=PersonalDataAccess.Action.VIEW,
        record_type="analysis_tickets",
        municipality_id=municipality.pk,
        request=request,
        month=month.key(),
    )
    return render(
        request,
        "analysis/drilldown.html",
        {
            "municipality": municipality,
            "month": month,
            "rows": rows[:DRILL_LIMIT],
            "more": len(rows) > DRILL_LIMIT,
            "filters": {k: v for k, v in params.items() if v},
            "query": request.GET.urlencode(),
            "back": (
                reverse("analysis:month", args=[municipality.pk]) + f"?month={month.key()}"
                if is_supervisor(request.user)
                else reverse("analysis:index")
            ),
        },
    )


@login_required
def drilldown_csv(request: HttpRequest, municipality_id: int) -> HttpResponse:
    """The drill-down list as CSV: it names requesters, so it is logged as a personal-data
    export before the file is made."""
    municipality, month, qs, params = _drill(request, municipality_id)
    personal_data_access_record(
        user=request.user,
        action=PersonalDataAccess.Action.EXPORT,
        record_type="analysis_tickets.csv",
        municipality_id=municipality.pk,
        request=request,
        month=month.key(),
        filters={k: v for k, v in params.items() if v},
    )
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(["番号", "受付日時", "件名", "問合せ者", "分類", "受付経路", "状態"])
    for i in qs[:50000].iterator(chunk_size=2000):
        writer.writerow(
            [
                i.pk,
                timezone.localtime(i.created_at).strftime("%Y-%m-%d %H:%M"),
                i.ticket.title,
                i.donor.name if i.donor_id else i.requester_display,
                i.category.name if i.category_id else "",
                i.get_channel_display(),
                i.get_status_display(),
            ]
        )
    response = HttpResponse("\ufeff" + buffer.getvalue(), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = (
        f'attachment; filename="tickets-{municipality.code}-{month.key()}.csv"'
    )
    return response
