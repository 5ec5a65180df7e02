"""Writes owned by crm."""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest

from crm.audit import client_ip
from crm.models import PersonalDataAccess, User


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
