"""The one task every recorded job runs through, and the sweep that re-sends what is due."""

from __future__ import annotations

from celery import shared_task

from jobs import services


@shared_task(name="jobs.run")
def job_run(job_id: int) -> bool:
    # No autoretry: a failure is recorded on the row with a backoff, and the sweep retries it.
    return services.job_run(job_id=job_id)


@shared_task(name="jobs.sweep")
def jobs_sweep() -> int:
    return services.jobs_sweep()
