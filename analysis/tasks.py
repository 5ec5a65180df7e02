"""Beat's monthly cycle: every report generated on the 1st, late ones chased after the 15th."""

from __future__ import annotations

from celery import shared_task
from django.utils import timezone

from analysis import services
from analysis.periods import Month


@shared_task(name="analysis.generate_previous_month")
def generate_previous_month() -> int:
    return services.reports_generate_all(month=Month.containing(timezone.now()).previous())


@shared_task(name="analysis.alert_overdue")
def alert_overdue() -> int:
    return services.reports_alert_overdue()
