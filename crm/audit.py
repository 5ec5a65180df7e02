"""Security audit rows (log-in, log-out, failures). One function per event kind."""

from __future__ import annotations

from typing import Any

from axes.signals import user_locked_out
from django.contrib.auth.signals import user_logged_in, user_logged_out, user_login_failed
from django.dispatch import receiver
from django.http import HttpRequest

from crm.models import AuditLog, User


def client_ip(request: HttpRequest | None) -> str | None:
    if request is None:
        return None
    return request.META.get("REMOTE_ADDR") or None


def audit_record(
    *,
    action: str,
    request: HttpRequest | None,
    user: Any = None,
    username: str = "",
    ip_address: str | None = None,
    user_agent: str = "",
    **detail: Any,
) -> AuditLog:
    """``ip_address`` and ``user_agent`` stand in for ``request`` where there is none (a
    websocket's own connection)."""
    real_user = user if getattr(user, "pk", None) else None
    return AuditLog.objects.create(
        action=action,
        user=real_user,
        username=username or (real_user.get_username() if real_user else ""),
        ip_address=client_ip(request) if request is not None else ip_address,
        user_agent=(request.META.get("HTTP_USER_AGENT", "") if request else user_agent)[:300],
        detail=detail,
    )


@receiver(user_logged_in)
def _on_login(sender, request, user, **kwargs):
    audit_record(action=AuditLog.Action.LOGIN, request=request, user=user)


@receiver(user_logged_out)
def _on_logout(sender, request, user, **kwargs):
    if user is not None:
        audit_record(action=AuditLog.Action.LOGOUT, request=request, user=user)


@receiver(user_login_failed)
def _on_login_failed(sender, credentials, request=None, **kwargs):
    # Never store the attempted password; credentials are already cleansed by Django.
    audit_record(
        action=AuditLog.Action.LOGIN_FAILED,
        request=request,
        username=str(credentials.get("username", ""))[:150],
    )


@receiver(user_locked_out)
def _on_locked_out(sender, request, username=None, ip_address=None, **kwargs):
    # Axes also sends this for each attempt refused while the lock holds; only the attempt that
    # reached the limit (and so was counted) is the lock itself.
    failures = getattr(request, "axes_failures_since_start", None)
    if failures is None:
        return
    user = User.objects.filter(username__iexact=username).first() if username else None
    audit_record(
        action=AuditLog.Action.LOGIN_LOCKED,
        request=request,
        user=user,
        username=str(username or "")[:150],
        failures=failures,
    )
