"""{% escalation_panel inquiry %}: a ticket's escalations, on both ticket pages."""

from __future__ import annotations

from typing import Any

from django import template
from django.utils import timezone

from crm.access import can_write, is_supervisor
from escalation import selectors
from escalation.forms import ReportForm

register = template.Library()


@register.inclusion_tag("escalation/_panel.html", takes_context=True)
def escalation_panel(context: template.Context, inquiry: Any) -> dict[str, Any]:
    request = context.get("request")
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return {"enabled": False}
    return {
        "enabled": True,
        "inquiry": inquiry,
        "user": user,
        "escalations": selectors.escalations_for_inquiry(user, inquiry.pk),
        "may_report": can_write(user, inquiry.municipality_id),
        "report_form": ReportForm(),
        "csrf_token": context.get("csrf_token"),
        "now": timezone.now(),
    }


@register.filter
def minutes_since(value, now) -> int:
    if value is None:
        return 0
    return int((now - value).total_seconds() // 60)


@register.inclusion_tag("escalation/_console_alerts.html", takes_context=True)
def escalation_console_alerts(context: template.Context) -> dict[str, Any]:
    """The supervisor's alerts on the console: complaint clusters and reports the city has not
    acknowledged, in the municipalities they supervise."""
    request = context.get("request")
    user = getattr(request, "user", None)
    if user is None or not is_supervisor(user):
        return {"enabled": False}
    return {"enabled": True, "alerts": selectors.console_alerts(user), "now": timezone.now()}
