"""Celery tasks: run an export or a deletion, re-send stale runs, purge by retention."""

from __future__ import annotations

import logging

from celery import shared_task

from administration.handover import retention, services

logger = logging.getLogger("administration.handover")


@shared_task(name="administration.handover.tasks.handover_export")
def handover_export(export_id: int) -> str:
    return services.handover_export_run(export_id=export_id).status


@shared_task(name="administration.handover.tasks.handover_deletion")
def handover_deletion(deletion_id: int) -> str:
    return services.handover_deletion_run(deletion_id=deletion_id).status


@shared_task(name="administration.handover.tasks.handover_sweep")
def handover_sweep() -> int:
    exports, deletions = services.stale_runs()
    for pk in exports:
        queue_export(sender=None, export_id=pk)
    for pk in deletions:
        queue_deletion(sender=None, deletion_id=pk)
    return len(exports) + len(deletions)


@shared_task(name="administration.handover.tasks.retention_purge_all")
def retention_purge_all() -> int:
    return sum(r.total for r in retention.purge_all().values())


def queue_export(sender, export_id: int, **kwargs) -> None:
    try:
        handover_export.apply_async(args=[export_id])
    except Exception:  # broker down: the sweep sends it later
        logger.warning("export %s not queued; the sweep will", export_id, exc_info=True)


def queue_deletion(sender, deletion_id: int, **kwargs) -> None:
    try:
        handover_deletion.apply_async(args=[deletion_id])
    except Exception:
        logger.warning("deletion %s not queued; the sweep will", deletion_id, exc_info=True)
