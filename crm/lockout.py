"""Log-in throttling with django-axes: how attempts are keyed, and which locks are in force.

Axes counts failures per username and per client address (settings: LOGIN_FAILURE_LIMIT,
LOGIN_LOCKOUT_MINUTES); either reaching the limit refuses further log-ins, the right password
included, until the lock expires or an operator admin clears it (/staff/).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from axes.models import AccessAttempt
from django.conf import settings
from django.db.models import Count, Max, Sum
from django.http import HttpRequest
from django.utils import timezone


def username_key(username: str | None) -> str | None:
    """Usernames are unique regardless of case, so "ADMIN" and "admin" share one count."""
    return username.lower() if username else None


def attempted_username(request: HttpRequest, credentials: dict | None = None) -> str | None:
    """AXES_USERNAME_CALLABLE: the username a log-in attempt names."""
    if credentials is not None:
        return username_key(credentials.get("username"))
    return username_key(request.POST.get("username"))


def _in_force():
    since = timezone.now() - settings.AXES_COOLOFF_TIME
    return AccessAttempt.objects.filter(attempt_time__gte=since)


def locked_usernames() -> set[str]:
    """Username keys (see username_key) whose log-ins are refused now."""
    return set(
        _in_force()
        .exclude(username=None)
        .values("username")
        .annotate(failures=Sum("failures_since_start"))
        .filter(failures__gte=settings.AXES_FAILURE_LIMIT)
        .values_list("username", flat=True)
    )


@dataclass(frozen=True)
class LockedAddress:
    ip_address: str
    failures: int
    usernames: int
    last_attempt_at: datetime
    until: datetime


def locked_addresses() -> list[LockedAddress]:
    """Client addresses refused now, whatever username they try."""
    rows = (
        _in_force()
        .exclude(ip_address=None)
        .values("ip_address")
        .annotate(
            failures=Sum("failures_since_start"),
            usernames=Count("username", distinct=True),
            last=Max("attempt_time"),
        )
        .filter(failures__gte=settings.AXES_FAILURE_LIMIT)
        .order_by("-last")
    )
    return [
        LockedAddress(
            ip_address=row["ip_address"],
            failures=row["failures"],
            usernames=row["usernames"],
            last_attempt_at=row["last"],
            until=row["last"] + settings.AXES_COOLOFF_TIME,
        )
        for row in rows
    ]
