"""Record work for later (in the caller's transaction), dispatch it, run it exactly once."""

from __future__ import annotations

import datetime
import logging
import os
import socket
from typing import Any

from django.conf import settings
from django.db import transaction
from django.db.models import F, Q
from django.utils import timezone
from django.utils.module_loading import import_string

from jobs.models import PendingJob

logger = logging.getLogger("jobs")


def job_enqueue(*, target: str, key: str, **kwargs: Any) -> None:
    """Promise ``target(**kwargs)`` once this transaction commits; nothing if ``key`` is open.

    The row commits with the caller's own writes, so the work can be late but never lost. A
    message is sent after the commit; if the broker is down it is only logged (the sweep sends
    it later), never raised into the request that caused it.
    """
    now = timezone.now()
    # ignore_conflicts: the key is already promised (a retried webhook, the reconciler). Such an
    # insert returns no id, so the row is looked up after the commit.
    PendingJob.objects.bulk_create(
        [
            PendingJob(
                target=target,
                kwargs=kwargs,
                key=key[:200],
                run_after=now + datetime.timedelta(seconds=settings.JOBS_VISIBILITY_SECONDS),
            )
        ],
        ignore_conflicts=True,
    )

    def dispatch() -> None:
        job_id = (
            PendingJob.objects.filter(key=key[:200], done_at__isnull=True, failed_at__isnull=True)
            .values_list("pk", flat=True)
            .first()
        )
        if job_id is not None and not job_dispatch(job_id):
            # Due at the next sweep, not a visibility window later.
            PendingJob.objects.filter(pk=job_id).update(run_after=timezone.now())

    transaction.on_commit(dispatch, robust=True)


def job_dispatch(job_id: int) -> bool:
    """Send one job to the workers; False (logged) if the broker cannot take it now."""
    from jobs.tasks import job_run

    try:
        job_run.apply_async(args=[job_id])
    except Exception:  # broker down: the row stays due and the sweep sends it again
        logger.warning("Job %s not dispatched; the sweep will retry", job_id, exc_info=True)
        return False
    return True


def _backoff(attempts: int) -> datetime.timedelta:
    return datetime.timedelta(seconds=min(3600, 30 * 2 ** max(0, attempts - 1)))


def job_run(*, job_id: int) -> bool:
    """Run one job if it is still open; True once it is done (now or before).

    The job row stays locked while the work runs and is marked done in the same transaction, so
    two deliveries of one message (redelivery after a lost worker, the sweep) run it once: the
    second waits for the lock and then finds it done. A worker killed mid-work leaves no
    half-done job: its transaction rolls back with its connection.
    """
    ran_by = f"{socket.gethostname()}:{os.getpid()}"
    # Counted in its own commit so the count survives the work's rollback or a killed process.
    if not PendingJob.objects.filter(
        pk=job_id, done_at__isnull=True, failed_at__isnull=True
    ).update(attempts=F("attempts") + 1, ran_by=ran_by):
        return PendingJob.objects.filter(pk=job_id, done_at__isnull=False).exists()
    try:
        with transaction.atomic():
            job = (
                PendingJob.objects.select_for_update()
                .filter(pk=job_id, done_at__isnull=True, failed_at__isnull=True)
                .first()
            )
            if job is None:
                return True
            import_string(job.target)(**job.kwargs)
            job.done_at = timezone.now()
            job.last_error = ""
            job.save(update_fields=["done_at", "last_error"])
            return True
    except Exception as exc:
        job = PendingJob.objects.get(pk=job_id)
        give_up = job.attempts >= settings.JOBS_MAX_ATTEMPTS
        PendingJob.objects.filter(pk=job_id).update(
            last_error=f"{type(exc).__name__}: {exc}"[:2000],
            run_after=timezone.now() + _backoff(job.attempts),
            failed_at=timezone.now() if give_up else None,
        )
        logger.exception("Job %s (%s) failed, attempt %s", job_id, job.target, job.attempts)
        return False


def jobs_due(*, now: datetime.datetime | None = None, limit: int = 500) -> list[int]:
    """Open jobs whose time has come: never dispatched, lost, or due for a retry."""
    now = now or timezone.now()
    return list(
        PendingJob.objects.filter(
            Q(run_after__lte=now), done_at__isnull=True, failed_at__isnull=True
        )
        .order_by("run_after")
        .values_list("pk", flat=True)[:limit]
    )


def jobs_sweep(*, now: datetime.datetime | None = None) -> int:
    """Send every due job again, pushing its next check a visibility window ahead."""
    now = now or timezone.now()
    sent = 0
    window = datetime.timedelta(seconds=settings.JOBS_VISIBILITY_SECONDS)
    for job_id in jobs_due(now=now):
        PendingJob.objects.filter(pk=job_id).update(run_after=now + window)
        if not job_dispatch(job_id):
            # Still down: due again at the next sweep rather than a window later.
            PendingJob.objects.filter(pk=job_id).update(run_after=now)
            break
        sent += 1
    return sent
