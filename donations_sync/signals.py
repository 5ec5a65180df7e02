"""Signals of the donation mirror. Receivers are connected in an app's ready()."""

from django.dispatch import Signal

# An import run's counts or state changed (about once a second while it runs, and at its end).
# sender=ImportRun, kwargs: run_id.
import_run_progressed = Signal()

# A run was recorded and waits for a worker (sent after the commit). sender=ImportRun,
# kwargs: run_id. donations_sync.apps connects the Celery task that runs it.
import_run_queued = Signal()
