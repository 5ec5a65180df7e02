"""The one access policy: which municipalities a user may see, and what they may do there.

Every QuerySet of municipality-owned data offers ``.visible_to(user)``; views use
``scoped_or_404`` and API viewsets use ``ScopedQuerysetMixin``.
Nothing else decides visibility.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from django.core.exceptions import PermissionDenied
from django.db import models
from django.http import Http404

if TYPE_CHECKING:
    from crm.models import User


def visible_municipality_ids(user: Any) -> frozenset[int]:
    """The municipalities ``user`` may see. Cached on the user object for the request."""
    if user is None or not getattr(user, "is_authenticated", False) or not user.is_active:
        return frozenset()
    cached = getattr(user, "_visible_municipality_ids", None)
    if cached is not None:
        return cached
    from crm.models import Municipality, User

    if user.role == User.Role.OPERATOR_ADMIN:
        ids = frozenset(Municipality.objects.values_list("id", flat=True))
    elif user.role == User.Role.CITY_OFFICIAL:
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


def can_write(user: User, municipality_id: int) -> bool:
    """City officials read; operator staff write within their municipalities."""
    return user.is_operator_staff and can_see_municipality(user, municipality_id)


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
