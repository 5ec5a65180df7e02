"""Background runs of CSV imports and outbox deliveries (receivers of donations_sync.signals,
and the beat sweeps)."""

from __future__ import annotations

import logging

from celery import shared_task

from donations_sync import outbox, services
from donations_sync.models import ImportRun

logger = logging.getLogger("donations_sync.imports")


@shared_task(name="donations_sync.import_run_execute", ignore_result=True)
def import_run_execute(run_id: int) -> None:
    # No autoretry: a failure is recorded on the run (status 取込不可), which can be re-run.
    if ImportRun.objects.filter(pk=run_id).exists():  # not deleted meanwhile
        services.import_run_execute(run_id=run_id)


@shared_task(name="donations_sync.import_runs_sweep", ignore_result=True)
def import_runs_sweep() -> int:
    """Celery beat: queued runs no worker took, and runs whose worker died, are sent again."""
    due = services.import_runs_due()
    for run_id in due:
        import_run_execute.delay(run_id)
    return len(due)


def import_run_queued(run_id: int, **kwargs) -> None:
    """Receiver of import_run_queued (after the commit). A broker outage is only logged: the
    run stays queued and the sweep sends it."""
    try:
        import_run_execute.delay(run_id)
    except Exception:
        logger.warning("Import run %s not dispatched; the sweep will retry", run_id, exc_info=True)


# --- The outbox (donations_sync.outbox) ------------------------------------------------------


@shared_task(name="donations_sync.outbox_deliver", ignore_result=True)
def outbox_deliver(message_id: int) -> str | None:
    # No Celery retry: a failure is recorded on the message with its next attempt, and the
    # sweep sends it when that is due. A message already claimed elsewhere is left alone.
    return outbox.outbox_deliver(message_id)


@shared_task(name="donations_sync.outbox_sweep", ignore_result=True)
def outbox_sweep() -> dict:
    """Celery beat: every due message (new ones whose task was lost, retries whose backoff ran
    out, claims whose worker died), batch by batch, for at most CORE_OUTBOX_SWEEP_MAX_SECONDS."""
    result = outbox.outbox_deliver_due()
    return {"claimed": result.claimed, "outcomes": result.outcomes}


def outbox_message_queued(message_id: int, **kwargs) -> None:
    """Receiver of outbox_message_queued (after the commit). A broker outage is only logged:
    the message stays due and the sweep sends it."""
    try:
        outbox_deliver.delay(message_id)
    except Exception:
        logger.warning("Outbox message %s not dispatched; the sweep will send it", message_id)
