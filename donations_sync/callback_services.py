"""Writes of the 要確認 call-back list: an agent marks a call-back done with its outcome."""

from __future__ import annotations

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.utils import timezone

from crm.access import can_write
from crm.models import User
from donations_sync.models import DonorCallback

OUTCOMES = [
    ("confirmed", "連絡がつき、内容を確認した"),
    ("voicemail", "不在（留守番電話に伝言）"),
    ("no_answer", "不在（応答なし）"),
    ("wrong_number", "電話番号が使われていない・別人"),
    ("other", "その他"),
]
_OUTCOME_LABELS = dict(OUTCOMES)


def can_work_callbacks(user: User, municipality_id: int) -> bool:
    """Operator staff of the municipality; city officials only read the list."""
    return can_write(user, municipality_id)


@transaction.atomic
def donor_callback_resolve(
    *, actor: User, callback: DonorCallback, outcome: str, note: str = ""
) -> DonorCallback:
    callback = DonorCallback.objects.select_for_update().get(pk=callback.pk)
    if not can_work_callbacks(actor, callback.municipality_id):
        raise PermissionDenied("この自治体の要確認を対応済みにする権限がありません。")
    if callback.resolved_at is not None:
        raise ValidationError("この要確認はすでに対応済みです。")
    if outcome not in _OUTCOME_LABELS:
        raise ValidationError("結果を選んでください。")
    label = _OUTCOME_LABELS[outcome]
    note = note.strip()
    callback.outcome = (f"{label}：{note}" if note else label)[:200]
    callback.resolved_at = timezone.now()
    callback.resolved_by = actor
    callback.save(update_fields=["outcome", "resolved_at", "resolved_by"])
    return callback
