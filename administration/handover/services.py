"""Hand-over writes: request an export or a deletion (audited), and run them.

Requests are short transactions that record the run and announce it after commit; the runs
themselves (``handover_export_run``, ``handover_deletion_run``) are long and deliberately not
one transaction: the export reads through server-side cursors, the deletion commits batch by
batch. Either may be started again after a crash (the sweep does): a PostgreSQL advisory lock
held by the running process makes a second delivery return at once, and the lock goes with the
process if it dies.
"""

from __future__ import annotations

import contextlib
import datetime
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import connection, transaction
from django.http import HttpRequest
from django.utils import timezone

from administration.handover import deletion as deletion_engine
from administration.handover import export as export_writer
from administration.handover import signals
from administration.handover.models import (
    HandoverDeletion,
    HandoverExport,
    RetentionPolicy,
    RunStatus,
)
from crm.audit import audit_record
from crm.models import AuditLog, Municipality, User

logger = logging.getLogger("administration.handover")

AUDIT_EXPORT = AuditLog.Action.HANDOVER_EXPORT
AUDIT_EXPORT_DOWNLOAD = AuditLog.Action.HANDOVER_DOWNLOAD
AUDIT_DELETION = AuditLog.Action.HANDOVER_DELETE
AUDIT_DELETION_OVERRIDE = AuditLog.Action.HANDOVER_OVERRIDE
AUDIT_RETENTION_CHANGE = AuditLog.Action.RETENTION_CHANGE
AUDIT_RETENTION_PURGE = AuditLog.Action.RETENTION_PURGE

LOCK_EXPORT = 1_701_000_000
LOCK_DELETION = 1_701_000_001


@contextlib.contextmanager
def _exclusive(kind: int, run_id: int) -> Iterator[bool]:
    """True while this process alone runs the given run (PostgreSQL advisory lock)."""
    if connection.vendor != "postgresql":
        yield True
        return
    with connection.cursor() as cur:
        cur.execute("SELECT pg_try_advisory_lock(%s, %s)", [kind, run_id])
        got = cur.fetchone()[0]
    try:
        yield got
    finally:
        if got:
            with connection.cursor() as cur:
                cur.execute("SELECT pg_advisory_unlock(%s, %s)", [kind, run_id])


def _announce_export(export_id: int) -> None:
    signals.export_requested.send(sender=HandoverExport, export_id=export_id)


def _announce_deletion(deletion_id: int) -> None:
    signals.deletion_requested.send(sender=HandoverDeletion, deletion_id=deletion_id)


@transaction.atomic
def handover_export_request(
    *, actor: User | None, municipality: Municipality, request: HttpRequest | None = None
) -> HandoverExport:
    export = HandoverExport.objects.create(
        municipality=municipality,
        municipality_code=municipality.code,
        municipality_name=municipality.name,
        requested_by=actor,
    )
    audit_record(
        action=AUDIT_EXPORT,
        request=request,
        user=actor,
        handover_municipality=municipality.code,
        export=export.pk,
    )
    transaction.on_commit(lambda: _announce_export(export.pk), robust=True)
    return export


def handover_export_run(*, export_id: int) -> HandoverExport:
    """Write the export's zip (again, from the start, if a previous attempt died)."""
    with _exclusive(LOCK_EXPORT, export_id) as mine:
        export = HandoverExport.objects.get(pk=export_id)
        if not mine or export.status == RunStatus.DONE:
            return export
        if export.municipality_id is None:
            HandoverExport.objects.filter(pk=export_id).update(
                status=RunStatus.FAILED, error="自治体が削除済みのため出力できません。"
            )
            export.refresh_from_db()
            return export
        HandoverExport.objects.filter(pk=export_id).update(
            status=RunStatus.RUNNING,
            started_at=timezone.now(),
            heartbeat_at=timezone.now(),
            error="",
            tables_done=0,
            rows_written=0,
        )
        stamp = timezone.localtime().strftime("%Y%m%d-%H%M%S")
        name = f"exports/{export.municipality_code}-{export.pk}-{stamp}.zip"

        def progress(label: str, done: int, total: int, rows: int) -> None:
            HandoverExport.objects.filter(pk=export_id).update(
                current_table=label,
                tables_done=done,
                tables_total=total,
                rows_written=rows,
                heartbeat_at=timezone.now(),
            )

        try:
            result = export_writer.write_export(
                municipality_id=export.municipality_id,
                destination=Path(settings.HANDOVER_ROOT) / name,
                progress=progress,
            )
        except Exception as exc:
            logger.exception("export %s failed", export_id)
            HandoverExport.objects.filter(pk=export_id).update(
                status=RunStatus.FAILED, error=f"{type(exc).__name__}: {exc}"[:4000]
            )
            raise
        HandoverExport.objects.filter(pk=export_id).update(
            status=RunStatus.DONE,
            finished_at=timezone.now(),
            file_name=name,
            file_size=result.size,
            sha256=result.sha256,
            row_counts=result.row_counts,
            rows_written=sum(result.row_counts.values()),
            current_table="",
        )
        export.refresh_from_db()
        return export


def latest_completed_export(municipality: Municipality) -> HandoverExport | None:
    return (
        HandoverExport.objects.filter(
            municipality=municipality, status=RunStatus.DONE, file_removed_at__isnull=True
        )
        .order_by("-finished_at")
        .first()
    )


@transaction.atomic
def handover_deletion_request(
    *,
    actor: User | None,
    municipality: Municipality,
    confirm_code: str,
    override_reason: str = "",
    actor_name: str = "",
    request: HttpRequest | None = None,
) -> HandoverDeletion:
    """Record a deletion; refused without the typed code, or without a completed export
    unless a reason to delete without one is given (audited as such)."""
    municipality = Municipality.objects.select_for_update().get(pk=municipality.pk)
    if confirm_code.strip() != municipality.code:
        raise ValidationError("確認のための団体コードが一致しません。")
    if HandoverDeletion.objects.filter(
        municipality=municipality, status__in=[RunStatus.QUEUED, RunStatus.RUNNING]
    ).exists():
        raise ValidationError("この自治体の削除はすでに実行中です。")
    export = latest_completed_export(municipality)
    override_reason = override_reason.strip()
    if export is None and not override_reason:
        raise ValidationError(
            "引継ぎデータの出力が完了していません。先に出力するか、出力せずに削除する理由を入力してください。"
        )
    run = HandoverDeletion.objects.create(
        municipality=municipality,
        municipality_code=municipality.code,
        municipality_name=municipality.name,
        export=export,
        override_reason=override_reason if export is None else "",
        requested_by=actor,
        requested_by_name=actor_name or (str(actor) if actor else "管理コマンド"),
    )
    audit_record(
        action=AUDIT_DELETION_OVERRIDE if export is None else AUDIT_DELETION,
        request=request,
        user=actor,
        handover_municipality=municipality.code,
        deletion=run.pk,
        export=export.pk if export else None,
        reason=override_reason if export is None else "",
    )
    transaction.on_commit(lambda: _announce_deletion(run.pk), robust=True)
    return run


def handover_deletion_run(*, deletion_id: int) -> HandoverDeletion:
    with _exclusive(LOCK_DELETION, deletion_id) as mine:
        if not mine:
            return HandoverDeletion.objects.get(pk=deletion_id)
        return deletion_engine.run_deletion(deletion_id=deletion_id)


def handover_export_downloaded(
    *, actor: User, export: HandoverExport, request: HttpRequest | None = None
) -> None:
    from crm.services import personal_data_access_record

    audit_record(
        action=AUDIT_EXPORT_DOWNLOAD,
        request=request,
        user=actor,
        handover_municipality=export.municipality_code,
        export=export.pk,
    )
    personal_data_access_record(
        user=actor,
        action="export",
        record_type="handover.zip",
        record_id=export.pk,
        municipality_id=export.municipality_id,
        request=request,
    )


def stale_runs(*, now: datetime.datetime | None = None) -> tuple[list[int], list[int]]:
    """Exports and deletions queued or running whose worker gave no sign of life for a while."""
    now = now or timezone.now()
    cutoff = now - datetime.timedelta(seconds=settings.HANDOVER_STALE_SECONDS)
    open_states = [RunStatus.QUEUED, RunStatus.RUNNING]
    exports = list(
        HandoverExport.objects.filter(status__in=open_states, requested_at__lt=cutoff)
        .exclude(heartbeat_at__gte=cutoff)
        .values_list("pk", flat=True)
    )
    deletions = list(
        HandoverDeletion.objects.filter(status__in=open_states, requested_at__lt=cutoff)
        .exclude(heartbeat_at__gte=cutoff)
        .values_list("pk", flat=True)
    )
    return exports, deletions


@transaction.atomic
def retention_policy_save(
    *,
    actor: User | None,
    municipality: Municipality | None,
    values: dict[str, Any],
    request: HttpRequest | None = None,
) -> RetentionPolicy:
    policy, _ = RetentionPolicy.objects.get_or_create(municipality=municipality)
    for name in ("recordings_days", "raw_mail_days", "attachments_days", "closed_inquiries_years"):
        setattr(policy, name, values.get(name))
    policy.save()
    audit_record(
        action=AUDIT_RETENTION_CHANGE,
        request=request,
        user=actor,
        policy_municipality=municipality.code if municipality else "",
        **{
            k: values.get(k)
            for k in (
                "recordings_days",
                "raw_mail_days",
                "attachments_days",
                "closed_inquiries_years",
            )
        },
    )
    return policy
