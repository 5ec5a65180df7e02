"""Reads for the operator admin's pages."""

from __future__ import annotations

import datetime
from dataclasses import dataclass

from django.conf import settings
from django.db.models import Count, Prefetch
from django.urls import reverse
from django.utils import timezone
from django_otp.plugins.otp_totp.models import TOTPDevice

from crm import lockout
from crm.models import AuditLog, Municipality, User
from telephony import calendar_services
from telephony.models import CalendarException, PhoneSettings, WeeklyHours
from tickets.mail.models import Mailbox, MunicipalityMailSettings

# Twilio's phone-number settings: what to paste into "A call comes in" and "Call status changes".
WEBHOOKS = (
    ("着信時（A call comes in・HTTP POST）", "telephony:voice_inbound"),
    ("通話状態の変化（Call status changes・HTTP POST）", "telephony:status_call"),
)


def municipality_rows():
    return Municipality.objects.annotate(
        number_count=Count("phone_numbers", distinct=True),
        address_count=Count("email_addresses", distinct=True),
        staff_count=Count("staff", distinct=True),
    ).order_by("code")


def webhook_urls() -> list[tuple[str, str]]:
    base = settings.TWILIO_PUBLIC_BASE_URL.rstrip("/")
    return [(label, base + reverse(name)) for label, name in WEBHOOKS]


@dataclass
class MunicipalityDetail:
    municipality: Municipality
    phone_settings: PhoneSettings
    mail_settings: MunicipalityMailSettings | None
    mailboxes: dict[int, Mailbox]
    weekly: dict[int, WeeklyHours]
    exceptions: list[CalendarException]
    preview: list[calendar_services.PreviewDay]


def municipality_detail(municipality: Municipality, *, today: datetime.date | None = None):
    phone_settings = PhoneSettings.objects.filter(municipality=municipality).first()
    if phone_settings is None:
        phone_settings = PhoneSettings(municipality=municipality)  # the defaults, unsaved
    return MunicipalityDetail(
        municipality=municipality,
        phone_settings=phone_settings,
        mail_settings=MunicipalityMailSettings.objects.filter(municipality=municipality).first(),
        mailboxes={b.address_id: b for b in Mailbox.objects.filter(municipality=municipality)},
        weekly={w.weekday: w for w in WeeklyHours.objects.filter(municipality=municipality)},
        exceptions=list(CalendarException.objects.filter(municipality=municipality)),
        preview=calendar_services.business_calendar_preview(
            municipality_id=municipality.pk, start=today or timezone.localdate(), days=14
        ),
    )


@dataclass
class StaffRow:
    user: User
    enrolled: bool
    locked: bool
    municipality_ids: set[int]


def staff_rows() -> list[StaffRow]:
    users = User.objects.prefetch_related(
        Prefetch("municipalities", queryset=Municipality.objects.only("id", "code", "name"))
    ).order_by("role", "username")
    enrolled = set(
        TOTPDevice.objects.filter(confirmed=True).values_list("user_id", flat=True).distinct()
    )
    locked = lockout.locked_usernames()
    return [
        StaffRow(
            user=u,
            enrolled=u.pk in enrolled,
            locked=lockout.username_key(u.get_username()) in locked,
            municipality_ids={m.pk for m in u.municipalities.all()},
        )
        for u in users
    ]


def access_matrix() -> tuple[list[Municipality], list[tuple[User, list[bool]]]]:
    """Who can see which municipality: operator admins see all, others what they are assigned
    (a city official only with exactly one assignment, as crm.access decides)."""
    municipalities = list(Municipality.objects.order_by("code"))
    rows = []
    for row in staff_rows():
        user = row.user
        if not user.is_active:
            cells = [False] * len(municipalities)
        elif user.role == User.Role.OPERATOR_ADMIN:
            cells = [True] * len(municipalities)
        elif user.role == User.Role.CITY_OFFICIAL:
            only = row.municipality_ids if len(row.municipality_ids) == 1 else set()
            cells = [m.pk in only for m in municipalities]
        else:
            cells = [m.pk in row.municipality_ids for m in municipalities]
        rows.append((user, cells))
    return municipalities, rows


LOGIN_ACTIONS = (
    AuditLog.Action.LOGIN,
    AuditLog.Action.LOGIN_FAILED,
    AuditLog.Action.LOGOUT,
    AuditLog.Action.IDLE_TIMEOUT,
    AuditLog.Action.LOGOUT_EVERYWHERE,
    AuditLog.Action.PASSWORD_CHANGED,
)


def own_recent_logins(user: User, *, limit: int = 20):
    """The user's own log-ins, failed attempts on their name and log-outs, newest first."""
    from django.db.models import Q

    return AuditLog.objects.filter(
        Q(user=user) | Q(user__isnull=True, username__iexact=user.get_username()),
        action__in=LOGIN_ACTIONS,
    ).order_by("-at")[:limit]


def config_changes(*, municipality: Municipality | None = None, limit: int = 50):
    rows = AuditLog.objects.filter(action=AuditLog.Action.CONFIG_CHANGED)
    if municipality is not None:
        rows = rows.filter(detail__municipality=municipality.code)
    return rows.order_by("-at")[:limit]
