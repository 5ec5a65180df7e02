"""Writes owned by crm."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from axes.utils import reset as axes_reset
from django.conf import settings
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.http import HttpRequest
from django.utils import timezone
from django_otp.plugins.otp_totp.models import TOTPDevice

from crm import enrolment, lockout
from crm.access import needs_two_factor
from crm.audit import audit_record, client_ip
from crm.models import AuditLog, EnrolmentLink, Municipality, PersonalDataAccess, User


def personal_data_access_record(
    *,
    user: User,
    action: str,
    record_type: str,
    record_id: str | int = "",
    municipality_id: int | None = None,
    request: HttpRequest | None = None,
    **detail: Any,
) -> PersonalDataAccess:
    return PersonalDataAccess.objects.create(
        user=user,
        action=action,
        record_type=record_type,
        record_id=str(record_id),
        municipality_id=municipality_id,
        path=(request.get_full_path()[:300] if request else ""),
        ip_address=client_ip(request),
        detail=detail,
    )


# --- Second factor and log-in locks (operator admins' staff page, manage.py commands) ---


@transaction.atomic
def enrolment_link_issue(
    *, actor: User | None, user: User, request: HttpRequest | None = None
) -> str:
    """A new enrolment link for ``user``; returns its token, which is stored only as a hash.
    Earlier unused links of the user stop working."""
    if not user.is_operator_staff and not needs_two_factor(user):
        raise ValidationError(
            "この自治体の職員は二要素認証を使わない設定のため、登録用リンクは発行できません。"
        )
    now = timezone.now()
    EnrolmentLink.objects.filter(user=user, used_at__isnull=True, revoked_at__isnull=True).update(
        revoked_at=now
    )
    token = enrolment.new_token()
    link = EnrolmentLink.objects.create(
        user=user,
        token_hash=enrolment.hash_token(token),
        issued_by=actor,
        expires_at=now + timedelta(hours=settings.TWO_FACTOR_ENROLMENT_LINK_HOURS),
    )
    audit_record(
        action=AuditLog.Action.OTP_LINK_ISSUED,
        request=request,
        user=actor,
        target=user.get_username(),
        link=link.pk,
        expires_at=link.expires_at.isoformat(),
    )
    return token


@transaction.atomic
def enrolment_device(*, link: EnrolmentLink) -> TOTPDevice:
    """The authenticator key this link shows: made on first use, kept for later views of the
    same link. Unconfirmed keys from before are dropped, since they may have been seen."""
    link = (
        EnrolmentLink.objects.select_for_update(of=("self",))
        .select_related("device")
        .get(pk=link.pk)
    )
    if link.device is not None and not link.device.confirmed:
        return link.device
    TOTPDevice.objects.filter(user_id=link.user_id, confirmed=False).delete()
    device = TOTPDevice.objects.create(user_id=link.user_id, name="認証アプリ", confirmed=False)
    link.device = device
    link.save(update_fields=["device"])
    return device


@transaction.atomic
def enrolment_complete(*, link: EnrolmentLink, request: HttpRequest | None = None) -> TOTPDevice:
    """Confirm the link's key (its code was verified): it becomes the user's only authenticator,
    and the link is used up."""
    link = (
        enrolment.usable_links()
        .select_for_update(of=("self",))
        .select_related("device")
        .get(pk=link.pk)
    )
    device = link.device
    TOTPDevice.objects.filter(user_id=link.user_id).exclude(pk=device.pk).delete()
    device.confirmed = True
    device.save(update_fields=["confirmed"])
    link.used_at = timezone.now()
    link.save(update_fields=["used_at"])
    audit_record(action=AuditLog.Action.OTP_ENROLLED, request=request, user=link.user, link=link.pk)
    return device


@transaction.atomic
def two_factor_reset(*, actor: User, user: User, request: HttpRequest | None = None) -> int:
    """Remove the user's authenticators (a lost phone, a leaver's device): they must enrol again
    with a new link, and sessions verified with the old device are no longer verified."""
    removed, _ = TOTPDevice.objects.filter(user=user).delete()
    EnrolmentLink.objects.filter(user=user, used_at__isnull=True, revoked_at__isnull=True).update(
        revoked_at=timezone.now()
    )
    audit_record(
        action=AuditLog.Action.OTP_RESET,
        request=request,
        user=actor,
        target=user.get_username(),
        devices=removed,
    )
    return removed


@transaction.atomic
def login_lock_clear(
    *,
    actor: User,
    request: HttpRequest | None = None,
    user: User | None = None,
    ip_address: str | None = None,
) -> int:
    """Lift a log-in lock, on an account or on a client address, before it expires."""
    if (user is None) == (ip_address is None):
        raise ValueError("give exactly one of user and ip_address")
    if user is not None:
        cleared = axes_reset(username=lockout.username_key(user.get_username()))
        detail = {"target": user.get_username()}
    else:
        cleared = axes_reset(ip=ip_address)
        detail = {"ip": ip_address}
    audit_record(
        action=AuditLog.Action.LOGIN_UNLOCKED,
        request=request,
        user=actor,
        cleared=cleared,
        **detail,
    )
    return cleared


@transaction.atomic
def municipality_city_totp_set(*, actor: User, municipality: Municipality, required: bool) -> None:
    """Whether the city's own officials must pass TOTP (operator admins decide, with the city)."""
    if not actor.is_operator_admin:
        raise PermissionDenied("運営管理者のみ変更できます。")
    municipality.city_officials_use_totp = required
    municipality.save(update_fields=["city_officials_use_totp"])
