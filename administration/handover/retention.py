"""Purge by retention: recordings, raw mail, attachments and closed inquiries past their time.

The policy is per municipality (``RetentionPolicy`` with the municipality), falling back field
by field to the default row (without one); an empty field keeps that material. The beat task
``retention_purge_all`` applies it daily; every purge that removed something is an audit row
(``retention_purge``) with the counts.

- recordings: the call keeps its row (time, caller, duration); its recording reference (SID,
  URL, length) is cleared, so it can no longer be played through us. The audio itself is
  Twilio's: set the same period in Twilio's own recording retention;
- raw mail: the message's raw source is emptied (its row, sender and subject stay);
- attachments: mail attachments' content is emptied and marked refused with the reason;
  helpdesk attachment files are deleted with their rows;
- closed inquiries: resolved or closed more than N years ago, deleted with their whole
  timeline (``tickets.handover.inquiries_delete``).
"""

from __future__ import annotations

import datetime
from dataclasses import asdict, dataclass

from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from administration.handover.models import RetentionPolicy
from crm.audit import audit_record
from crm.models import AuditLog, Municipality
from telephony.models import Call
from tickets import handover as ticket_handover
from tickets.mail.models import InboundAttachment, InboundMessage

FIELDS = ("recordings_days", "raw_mail_days", "attachments_days", "closed_inquiries_years")
INQUIRY_BATCH = 200
PURGED_REASON = "保存期間の経過により削除"


@dataclass
class Effective:
    recordings_days: int | None = None
    raw_mail_days: int | None = None
    attachments_days: int | None = None
    closed_inquiries_years: int | None = None

    @property
    def any(self) -> bool:
        return any(v is not None for v in asdict(self).values())


@dataclass
class PurgeResult:
    recordings: int = 0
    raw_mail: int = 0
    attachments: int = 0
    attachment_files: int = 0
    inquiries: int = 0

    @property
    def total(self) -> int:
        return sum(asdict(self).values())


def effective_policy(municipality_id: int) -> Effective:
    rows = {
        p.municipality_id: p
        for p in RetentionPolicy.objects.filter(
            Q(municipality_id=municipality_id) | Q(municipality__isnull=True)
        )
    }
    own, default = rows.get(municipality_id), rows.get(None)
    values = {}
    for name in FIELDS:
        value = getattr(own, name, None) if own else None
        if value is None and default is not None:
            value = getattr(default, name)
        values[name] = value
    return Effective(**values)


@transaction.atomic
def _purge_material(
    *, municipality_id: int, policy: Effective, now: datetime.datetime, result: PurgeResult
) -> None:
    if policy.recordings_days is not None:
        before = now - datetime.timedelta(days=policy.recordings_days)
        result.recordings = (
            Call.objects.filter(municipality_id=municipality_id, offered_at__lt=before)
            .filter(~Q(recording_sid="") | ~Q(recording_url=""))
            .update(recording_sid="", recording_url="", recording_seconds=None)
        )
    if policy.raw_mail_days is not None:
        before = now - datetime.timedelta(days=policy.raw_mail_days)
        result.raw_mail = (
            InboundMessage.objects.filter(municipality_id=municipality_id, received_at__lt=before)
            .exclude(raw=b"")
            .update(raw=b"")
        )
    if policy.attachments_days is not None:
        before = now - datetime.timedelta(days=policy.attachments_days)
        result.attachments = (
            InboundAttachment.objects.filter(
                municipality_id=municipality_id, message__received_at__lt=before
            )
            .exclude(data=b"")
            .update(data=b"", status=InboundAttachment.Status.REFUSED, refused_reason=PURGED_REASON)
        )
        files = ticket_handover.attachment_files_older_than(
            municipality_id=municipality_id, before=before
        )
        result.attachment_files = ticket_handover.attachment_files_remove(attachments=files)


def purge_municipality(
    *, municipality: Municipality, now: datetime.datetime | None = None
) -> PurgeResult:
    now = now or timezone.now()
    policy = effective_policy(municipality.pk)
    result = PurgeResult()
    if not policy.any:
        return result
    _purge_material(municipality_id=municipality.pk, policy=policy, now=now, result=result)
    if policy.closed_inquiries_years is not None:
        # 366 days a year: "N years" never purges a day early because of a leap year.
        before = now - datetime.timedelta(days=366 * policy.closed_inquiries_years)
        ids = ticket_handover.closed_inquiry_ids(
            municipality_id=municipality.pk, closed_before=before
        )
        for start in range(0, len(ids), INQUIRY_BATCH):
            result.inquiries += ticket_handover.inquiries_delete(
                inquiry_ids=ids[start : start + INQUIRY_BATCH]
            )
    if result.total:
        audit_record(
            action=AuditLog.Action.RETENTION_PURGE,
            request=None,
            username="retention",
            policy_municipality=municipality.code,
            policy=asdict(policy),
            **asdict(result),
        )
    return result


def purge_all(*, now: datetime.datetime | None = None) -> dict[str, PurgeResult]:
    return {m.code: purge_municipality(municipality=m, now=now) for m in Municipality.objects.all()}
