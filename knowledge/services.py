"""Writes of the knowledge base."""

from __future__ import annotations

from typing import Any

from django.core.exceptions import PermissionDenied
from django.db import transaction

from crm.access import is_operator_admin, is_supervisor, require_write
from crm.models import Municipality, User
from knowledge import seed
from knowledge.models import Article, CannedReply

KnowledgeModel = type[Article] | type[CannedReply]


def can_edit_knowledge(user: User, municipality_id: int | None) -> bool:
    """Supervisors edit their cities' rows; the operator-wide defaults are the admins'."""
    if municipality_id is None:
        return is_operator_admin(user)
    if not is_supervisor(user):
        return False
    try:
        require_write(user, municipality_id)
    except PermissionDenied:
        return False
    return True


def _require_edit(user: User, municipality_id: int | None) -> None:
    if not can_edit_knowledge(user, municipality_id):
        raise PermissionDenied("この定型文・記事を編集する権限がありません。")


@transaction.atomic
def knowledge_save(
    *,
    actor: User,
    model: KnowledgeModel,
    instance: Article | CannedReply | None = None,
    municipality: Municipality | None,
    title: str,
    body: str,
    keywords: str = "",
    category_code: str = "",
    sort_order: int = 100,
    is_active: bool = True,
    **actions: Any,
) -> Article | CannedReply:
    """Create (instance None) or update an FAQ article or canned reply; ``actions`` are a
    定型文's macro fields (``knowledge.forms.ACTION_FIELDS``)."""
    if actions and model is not CannedReply:
        raise ValueError("only 定型文 have actions")
    if instance is not None:
        # Both the old and the new scope must be the actor's to edit.
        _require_edit(actor, instance.municipality_id)
    _require_edit(actor, municipality.id if municipality else None)
    row = instance or model()
    row.municipality = municipality
    row.title = title
    row.body = body
    row.keywords = keywords
    row.category_code = category_code
    row.sort_order = sort_order
    row.is_active = is_active
    for field, value in actions.items():
        setattr(row, field, value if value is not None or field == "action_status" else "")
    row.updated_by = actor
    row.full_clean(exclude=["updated_by", "municipality"])
    row.save()
    return row


@transaction.atomic
def seed_starter_content() -> int:
    return seed.seed_starter_content(Article, CannedReply) + seed.seed_macros(CannedReply)
