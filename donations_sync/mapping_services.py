"""Writes of the import settings: who may import, and the saved column mappings."""

from __future__ import annotations

import copy
from typing import Any

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction

from crm.access import can_write, is_supervisor
from crm.models import Municipality, User
from donations_sync.imports import PRESETS, ImportFileError
from donations_sync.imports.reader import check_mapping
from donations_sync.models import ImportMapping


def can_manage_imports(user: Any, municipality_id: int) -> bool:
    """Supervisors (and operator admins) import into, and map columns for, their municipalities."""
    return is_supervisor(user) and can_write(user, municipality_id)


def _require(user: User, municipality_id: int) -> None:
    if not can_manage_imports(user, municipality_id):
        raise PermissionDenied("この自治体の取込を扱う権限がありません。")


def _check(mapping: dict[str, Any]) -> None:
    try:
        check_mapping(mapping)
    except ImportFileError as error:
        raise ValidationError(error.message) from None


@transaction.atomic
def import_mapping_create(
    *, actor: User, municipality: Municipality, style: str, name: str
) -> ImportMapping:
    """A saved mapping for ``municipality`` starting as a copy of the style's preset."""
    _require(actor, municipality.id)
    if style not in PRESETS:
        raise ValidationError("取込形式を選んでください。")
    mapping = copy.deepcopy(PRESETS[style])
    _check(mapping)
    if ImportMapping.objects.filter(municipality=municipality, name=name).exists():
        raise ValidationError("同じ名前の対応表がすでにあります。")
    return ImportMapping.objects.create(
        municipality=municipality, style=style, name=name, mapping=mapping, updated_by=actor
    )


@transaction.atomic
def import_mapping_update(
    *, actor: User, mapping: ImportMapping, name: str, columns: dict[str, Any]
) -> ImportMapping:
    """Replace the fields' columns and the required fields (``columns`` has the blocks donor,
    donation, gift and required); the style and portal stay the preset's."""
    mapping = ImportMapping.objects.select_for_update().get(pk=mapping.pk)
    _require(actor, mapping.municipality_id)
    data = {
        "style": mapping.mapping.get("style", mapping.style),
        "portal": mapping.mapping.get("portal", PRESETS[mapping.style]["portal"]),
        "donor": dict(columns.get("donor", {})),
        "donation": dict(columns.get("donation", {})),
        "gift": dict(columns.get("gift", {})),
        "required": list(columns.get("required", [])),
    }
    _check(data)
    if (
        ImportMapping.objects.filter(municipality_id=mapping.municipality_id, name=name)
        .exclude(pk=mapping.pk)
        .exists()
    ):
        raise ValidationError("同じ名前の対応表がすでにあります。")
    mapping.name = name
    mapping.mapping = data
    mapping.updated_by = actor
    mapping.save(update_fields=["name", "mapping", "updated_by", "updated_at"])
    return mapping
