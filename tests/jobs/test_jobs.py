"""Recorded jobs: run once, retried with backoff after failures, given up after too many."""

from __future__ import annotations

import datetime

import pytest
import time_machine
from django.utils import timezone

from jobs.models import PendingJob
from jobs.services import job_enqueue, jobs_due
from jobs.tasks import job_run, jobs_sweep

pytestmark = pytest.mark.django_db

RUNS: list[int] = []


def remember(*, n: int) -> None:
    RUNS.append(n)


def explode(*, n: int) -> None:
    PendingJob.objects.update(kwargs={"touched": True})  # rolled back with the failure
    raise RuntimeError(f"boom {n}")


@pytest.fixture(autouse=True)
def eager(settings):
    from config.celery import app

    previous = app.conf.task_always_eager
    app.conf.task_always_eager = True
    RUNS.clear()
    yield
    app.conf.task_always_eager = previous


def test_a_key_is_promised_once_and_run_once(django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        job_enqueue(target="tests.jobs.test_jobs.remember", key="k", n=1)
        job_enqueue(target="tests.jobs.test_jobs.remember", key="k", n=2)
    assert RUNS == [1]
    job = PendingJob.objects.get()
    assert job.done_at is not None and job.attempts == 1
    job_run.delay(job.pk)  # a second delivery of the same message
    assert RUNS == [1]


def test_failures_back_off_then_give_up(settings):
    settings.JOBS_MAX_ATTEMPTS = 3
    job_enqueue(target="tests.jobs.test_jobs.explode", key="x", n=7)
    job = PendingJob.objects.get()
    now = timezone.now()
    for attempt in (1, 2, 3):
        with time_machine.travel(now, tick=False):
            job_run.delay(job.pk)
        job.refresh_from_db()
        assert job.attempts == attempt
        assert job.last_error == "RuntimeError: boom 7"
        assert job.kwargs == {"n": 7}  # the failed work left nothing behind
        assert job.run_after == now + datetime.timedelta(seconds=30 * 2 ** (attempt - 1))
        assert jobs_due(now=now) == []
        now = job.run_after
    assert job.failed_at is not None
    assert jobs_due(now=now + datetime.timedelta(days=1)) == []
    with time_machine.travel(now + datetime.timedelta(days=1)):
        assert jobs_sweep.delay().get() == 0
