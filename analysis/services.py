"""Monthly reports: generate the snapshot, review, submit, tell the city, chase the late ones."""

from __future__ import annotations

import datetime
import logging

from django.conf import settings
from django.core.exceptions import PermissionDenied
from django.db import transaction
from django.utils import timezone

from analysis.models import MonthlyReport
from analysis.periods import TOKYO, Month
from analysis.selectors import monthly_report_data
from crm.access import can_see_municipality, is_supervisor
from crm.models import CityContact, Municipality, User
from jobs.services import job_enqueue
from tickets.mail.outbound import PrebuiltEmail, build

logger = logging.getLogger("analysis")

# A report of the previous month not submitted by this day of the month alerts its supervisors.
SUBMIT_BY_DAY = 15


class ReportError(Exception):
    """A review or submission that is not allowed in the report's state (message in Japanese)."""


def _require_supervisor(actor: User, municipality_id: int) -> None:
    if not (is_supervisor(actor) and can_see_municipality(actor, municipality_id)):
        raise PermissionDenied("この自治体の月次報告を編集する権限がありません。")


@transaction.atomic
def report_generate(
    *, municipality: Municipality, month: Month, now: datetime.datetime | None = None
) -> MonthlyReport:
    """Compute the month and keep it as the draft's snapshot. A submitted report is kept as it
    was sent: regenerating it changes nothing."""
    now = now or timezone.now()
    report = (
        MonthlyReport.objects.select_for_update()
        .filter(municipality=municipality, month=month.first_day)
        .first()
    )
    if report is not None and report.is_submitted:
        return report
    data = monthly_report_data(municipality, month, now=now)
    if report is None:
        return MonthlyReport.objects.create(
            municipality=municipality, month=month.first_day, data=data, generated_at=now
        )
    report.data = data
    report.generated_at = now
    report.save(update_fields=["data", "generated_at"])
    return report


def reports_generate_all(*, month: Month, now: datetime.datetime | None = None) -> int:
    """Every municipality's report of ``month`` (each in its own transaction)."""
    count = 0
    for municipality in Municipality.objects.order_by("code"):
        report_generate(municipality=municipality, month=month, now=now)
        count += 1
    return count


@transaction.atomic
def report_review(
    *, actor: User, report: MonthlyReport, comments: str, measures: str
) -> MonthlyReport:
    _require_supervisor(actor, report.municipality_id)
    report = MonthlyReport.objects.select_for_update().get(pk=report.pk)
    if report.is_submitted:
        raise ReportError("提出済みの報告は変更できません。")
    report.comments = comments.strip()
    report.measures = measures.strip()
    report.reviewed_by = actor
    report.save(update_fields=["comments", "measures", "reviewed_by"])
    return report


@transaction.atomic
def report_submit(
    *, actor: User, report: MonthlyReport, now: datetime.datetime | None = None
) -> MonthlyReport:
    """Mark the report submitted; the city is told by mail once this commits."""
    _require_supervisor(actor, report.municipality_id)
    report = MonthlyReport.objects.select_for_update().get(pk=report.pk)
    if report.is_submitted:
        raise ReportError("この報告はすでに提出済みです。")
    if not report.measures.strip():
        raise ReportError("満足度向上の方策を記入してから提出してください。")
    report.state = MonthlyReport.State.SUBMITTED
    report.submitted_at = now or timezone.now()
    report.submitted_by = actor
    report.save(update_fields=["state", "submitted_at", "submitted_by"])
    job_enqueue(
        target="analysis.services.report_city_mail_job",
        key=f"analysis-report-city-mail:{report.pk}",
        report_id=report.pk,
    )
    return report


def _send(*, subject: str, body: str, recipients: list[str], key: str) -> None:
    """Through the mail app's builder: headers MIME-encoded and checked, the body UTF-8 (QP)."""
    sender = settings.DEFAULT_FROM_EMAIL
    domain = sender.rpartition("@")[2] or "localhost"
    for index, address in enumerate(recipients):
        message, _ = build(
            from_name="ふるさと納税コールセンター",
            from_address=sender,
            to_address=address,
            subject=subject,
            body=body,
            message_id=f"{key}.{index}.{int(timezone.now().timestamp())}@{domain}",
            auto_submitted=False,
        )
        PrebuiltEmail(message, from_email=sender, to=[address]).send()


def _addresses(users) -> list[str]:
    return sorted({u.email for u in users if u.email})


def report_city_recipients(report: MonthlyReport) -> list[str]:
    """The city's active officials and its contacts flagged to receive the monthly report."""
    officials = User.objects.filter(
        role=User.Role.CITY_OFFICIAL, is_active=True, municipalities=report.municipality
    )
    contacts = CityContact.objects.filter(
        municipality=report.municipality, receives_monthly_report=True
    ).exclude(email="")
    addresses = {u.email.strip().lower(): u.email.strip() for u in officials if u.email.strip()}
    for contact in contacts:
        addresses.setdefault(contact.email.strip().lower(), contact.email.strip())
    return sorted(addresses.values())


def report_city_mail_job(*, report_id: int) -> None:
    """Tell the city that the month's report is there: one durable job per address, so a mail
    refused for one address is retried alone and never sent twice to the others."""
    with transaction.atomic():
        report = (
            MonthlyReport.objects.select_for_update()
            .select_related("municipality")
            .get(pk=report_id)
        )
        if report.city_notified_at is not None:
            return
        for address in report_city_recipients(report):
            job_enqueue(
                target="analysis.services.report_city_mail_send",
                key=f"analysis-report-city-mail:{report.pk}:{address}",
                report_id=report.pk,
                address=address,
            )
        MonthlyReport.objects.filter(pk=report.pk).update(city_notified_at=timezone.now())


def report_city_mail_send(*, report_id: int, address: str) -> None:
    """One address's mail: a link to the report, no figures (the city logs in to read them)."""
    report = MonthlyReport.objects.select_related("municipality").get(pk=report_id)
    base = settings.ANALYSIS_PUBLIC_BASE_URL.rstrip("/")
    _send(
        key=f"analysis-report-{report.pk}",
        subject=f"【{report.municipality.name}】{report.month_label}の月次報告を提出しました",
        body=(
            f"{report.municipality.name} ご担当者様\n\n"
            f"ふるさと納税コールセンターの{report.month_label}の月次報告を提出しました。\n"
            "問合せ・寄附・発送・受領証明書の集計と、満足度向上の方策を記載しています。\n"
            "下記よりログインのうえご確認ください。\n\n"
            f"{base}/analysis/reports/{report.pk}/\n"
        ),
        recipients=[address],
    )


def reports_alert_overdue(*, now: datetime.datetime | None = None) -> int:
    """After the 15th, the previous month's reports still in draft alert their supervisors once."""
    now = now or timezone.now()
    today = now.astimezone(TOKYO).date()
    if today.day <= SUBMIT_BY_DAY:
        return 0
    month = Month.of(today).previous()
    late = list(
        MonthlyReport.objects.filter(
            month=month.first_day,
            state=MonthlyReport.State.DRAFT,
            overdue_alerted_at__isnull=True,
        ).values_list("pk", flat=True)
    )
    # Municipalities with no report at all are late too: generate it, then alert.
    missing = Municipality.objects.exclude(monthly_reports__month=month.first_day).order_by("code")
    for municipality in missing:
        late.append(report_generate(municipality=municipality, month=month, now=now).pk)
    for report_id in late:
        with transaction.atomic():
            claimed = MonthlyReport.objects.filter(
                pk=report_id, overdue_alerted_at__isnull=True, state=MonthlyReport.State.DRAFT
            ).update(overdue_alerted_at=now)
            if claimed:
                job_enqueue(
                    target="analysis.services.report_overdue_mail_job",
                    key=f"analysis-report-overdue:{report_id}",
                    report_id=report_id,
                )
    return len(late)


def report_overdue_mail_job(*, report_id: int) -> None:
    report = MonthlyReport.objects.select_related("municipality").get(pk=report_id)
    if report.is_submitted:
        return
    recipients = _addresses(
        User.objects.filter(
            role=User.Role.SUPERVISOR, is_active=True, municipalities=report.municipality
        )
    )
    if not recipients:
        logger.warning("Monthly report %s is overdue and has no supervisor to tell", report_id)
        return
    base = settings.ANALYSIS_PUBLIC_BASE_URL.rstrip("/")
    _send(
        key=f"analysis-overdue-{report.pk}",
        subject=f"【未提出】{report.municipality.name} {report.month_label}の月次報告",
        body=(
            f"{report.municipality.name}の{report.month_label}の月次報告が、"
            f"{SUBMIT_BY_DAY}日を過ぎても提出されていません。\n"
            "市への報告期限は翌月20日です。内容を確認し、満足度向上の方策を記入して提出してください。\n\n"
            f"{base}/analysis/reports/{report.pk}/\n"
        ),
        recipients=recipients,
    )
