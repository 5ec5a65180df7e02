"""The one access policy: who has signed in properly, what each role may do, and which
municipalities a user may see.

Every QuerySet of municipality-owned data offers ``.visible_to(user)``; views use
``scoped_or_404`` and API viewsets use ``ScopedQuerysetMixin``. Middleware, views, websocket
consumers and templates (``{% load access %}``) ask the predicates below rather than comparing
role names. Nothing else decides visibility.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from django.conf import settings
from django.core.exceptions import PermissionDenied
from django.db import models
from django.http import Http404

if TYPE_CHECKING:
    from crm.models import User


_UNSET = object()


def _signed_in(user: Any) -> bool:
    return user is not None and getattr(user, "is_authenticated", False) and user.is_active


def _role(user: Any) -> str | None:
    return getattr(user, "role", None) if _signed_in(user) else None


def call_taking_roles() -> tuple[str, ...]:
    """Roles whose members answer calls (for queries; ``can_take_calls`` for one user)."""
    from crm.models import User

    return (User.Role.AGENT, User.Role.SUPERVISOR, User.Role.OPERATOR_ADMIN)


def supervising_roles() -> tuple[str, ...]:
    from crm.models import User

    return (User.Role.SUPERVISOR, User.Role.OPERATOR_ADMIN)


def is_operator_admin(user: Any) -> bool:
    """運営管理者: every municipality, operator-wide settings, the access log."""
    from crm.models import User

    return _role(user) == User.Role.OPERATOR_ADMIN


def is_supervisor(user: Any) -> bool:
    """A supervisor or an operator admin: wallboard, quarantined mail, canned replies."""
    return _role(user) in supervising_roles()


def is_operator_staff(user: Any) -> bool:
    """Anyone of the operator (not a city official): console, calls, writes in their cities."""
    from crm.models import User

    role = _role(user)
    return role is not None and role != User.Role.CITY_OFFICIAL


def is_city_official(user: Any) -> bool:
    from crm.models import User

    return _role(user) == User.Role.CITY_OFFICIAL


def can_take_calls(user: Any) -> bool:
    return _role(user) in call_taking_roles()


def needs_two_factor(user: Any) -> bool:
    """Operator staff must pass TOTP (TWO_FACTOR_REQUIRED); a city official must where their
    municipality asks it of its officials (Municipality.city_officials_use_totp)."""
    if not _signed_in(user):
        return False
    if is_operator_staff(user):
        return bool(settings.TWO_FACTOR_REQUIRED)
    from crm.models import Municipality

    ids = visible_municipality_ids(user)
    return (
        bool(ids) and Municipality.objects.filter(pk__in=ids, city_officials_use_totp=True).exists()
    )


def passed_two_factor(user: Any, session: Any) -> bool:
    """Has ``user`` passed TOTP in this ``session``, where they must (``needs_two_factor``)?

    Passed means: the
    session names an OTP device that still exists, belongs to this user and is confirmed, so
    deleting or replacing someone's devices ends what their sessions had passed. Over HTTP,
    django-otp's middleware has already loaded that device from this same session with the same
    checks (``user.otp_device``); websocket consumers have no such middleware and load it here.
    """
    if not _signed_in(user):
        return False
    if not needs_two_factor(user):
        return True
    device = getattr(user, "otp_device", _UNSET)
    if device is _UNSET:
        from django_otp import DEVICE_ID_SESSION_KEY
        from django_otp.models import Device

        persistent_id = session.get(DEVICE_ID_SESSION_KEY) if session is not None else None
        device = Device.from_persistent_id(persistent_id) if persistent_id else None
    return device is not None and device.user_id == user.pk and bool(device.confirmed)


def visible_municipality_ids(user: Any) -> frozenset[int]:
    """The municipalities ``user`` may see. Cached on the user object for the request."""
    if user is None or not getattr(user, "is_authenticated", False) or not user.is_active:
        return frozenset()
    cached = getattr(user, "_visible_municipality_ids", None)
    if cached is not None:
        return cached
    from crm.models import Municipality

    if is_operator_admin(user):
        ids = frozenset(Municipality.objects.values_list("id", flat=True))
    elif is_city_official(user):
        # A city official belongs to exactly one city; more than one assignment is a
        # configuration error and must not widen their view.
        assigned = list(user.municipalities.values_list("id", flat=True)[:2])
        ids = frozenset(assigned) if len(assigned) == 1 else frozenset()
    else:
        ids = frozenset(user.municipalities.values_list("id", flat=True))
    user._visible_municipality_ids = ids
    return ids


def can_see_municipality(user: Any, municipality_id: int) -> bool:
    return municipality_id in visible_municipality_ids(user)


def chosen_municipality_id(user: Any, value: str | None) -> int | None:
    """The municipality a page's picker names (a query parameter such as ``?m=``), if ``user``
    may see it; None for no choice, an unreadable one or a municipality of someone else's."""
    try:
        municipality_id = int(value) if value else None
    except ValueError:
        return None
    if municipality_id is None or not can_see_municipality(user, municipality_id):
        return None
    return municipality_id


def can_write(user: User, municipality_id: int) -> bool:
    """City officials read; operator staff write within their municipalities."""
    return is_operator_staff(user) and can_see_municipality(user, municipality_id)


def require_write(user: User, municipality_id: int) -> None:
    if not can_write(user, municipality_id):
        raise PermissionDenied("この自治体のデータを変更する権限がありません。")


class MunicipalityScopedQuerySet(models.QuerySet):
    """QuerySet for rows owned by one municipality (``municipality_field`` names the FK)."""

    municipality_field = "municipality"

    @classmethod
    def as_manager(cls, municipality_field: str = "municipality"):  # type: ignore[override]
        qs_class = type(cls.__name__, (cls,), {"municipality_field": municipality_field})
        manager = models.Manager.from_queryset(qs_class)()
        manager._built_with_qs = True  # so Django's deconstruct treats it like as_manager()
        return manager

    def visible_to(self, user: Any) -> MunicipalityScopedQuerySet:
        ids = visible_municipality_ids(user)
        if not ids:
            return self.none()
        field = self.municipality_field
        lookup = f"{field}__in" if field != "id" else "id__in"
        return self.filter(**{lookup: ids})

    def for_municipality(self, municipality_id: int) -> MunicipalityScopedQuerySet:
        return self.filter(**{self.municipality_field: municipality_id})


def scoped_or_404(queryset: models.QuerySet, user: Any, **lookup: Any):
    """Fetch one row the user may see; rows of other municipalities do not exist for them."""
    try:
        return queryset.visible_to(user).get(**lookup)
    except queryset.model.DoesNotExist as exc:
        raise Http404 from exc


class ScopedQuerysetMixin:
    """For DRF viewsets: the same policy as the pages."""

    def get_queryset(self):
        return super().get_queryset().visible_to(self.request.user)  # type: ignore[misc]
