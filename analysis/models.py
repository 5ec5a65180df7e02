"""Monthly reports: the snapshot of a municipality's month, reviewed and submitted to the city."""

from __future__ import annotations

from django.conf import settings
from django.db import models

from crm.access import MunicipalityScopedQuerySet
from crm.models import Municipality


class MonthlyReport(models.Model):
    """One municipality's month as it was computed, with the supervisor's comments and measures.

    ``data`` is the snapshot (``analysis.selectors.monthly_report_data``): pages and exports read
    it, never the live tables, so a submitted report says forever what the city was sent.
    """

    class State(models.TextChoices):
        DRAFT = "draft", "下書き"
        SUBMITTED = "submitted", "提出済"

    municipality = models.ForeignKey(
        Municipality,
        on_delete=models.PROTECT,
        related_name="monthly_reports",
        verbose_name="自治体",
    )
    month = models.DateField("対象月")  # the month's first day
    state = models.CharField("状態", max_length=10, choices=State.choices, default=State.DRAFT)
    data = models.JSONField("集計", default=dict)
    generated_at = models.DateTimeField("集計日時")
    comments = models.TextField("所見", blank=True)
    measures = models.TextField("満足度向上の方策", blank=True)
    reviewed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
        verbose_name="確認者",
    )
    submitted_at = models.DateTimeField("提出日時", null=True, blank=True)
    submitted_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
        verbose_name="提出者",
    )
    # The 15th passed without a submission: the supervisors were told once, at this time.
    overdue_alerted_at = models.DateTimeField(null=True, blank=True)
    city_notified_at = models.DateTimeField(null=True, blank=True)

    objects = MunicipalityScopedQuerySet.as_manager()

    class Meta:
        verbose_name = verbose_name_plural = "月次報告"
        ordering = ["-month", "municipality_id"]
        constraints = [
            models.UniqueConstraint(fields=["municipality", "month"], name="monthlyreport_once"),
            models.CheckConstraint(
                condition=models.Q(month__day=1), name="monthlyreport_first_day"
            ),
        ]
        indexes = [models.Index(fields=["state", "month"], name="monthlyreport_state_month")]

    def __str__(self) -> str:
        return f"{self.municipality} {self.month:%Y年%m月} {self.get_state_display()}"

    @property
    def is_submitted(self) -> bool:
        return self.state == self.State.SUBMITTED

    @property
    def month_key(self) -> str:
        return f"{self.month:%Y-%m}"

    @property
    def month_label(self) -> str:
        return f"{self.month.year}年{self.month.month}月"
