"""Signals of the donation mirror. Receivers are connected in an app's ready()."""

from django.dispatch import Signal

# An import run's counts or state changed (about once a second while it runs, and at its end).
# sender=ImportRun, kwargs: run_id.
import_run_progressed = Signal()

# A run was recorded and waits for a worker (sent after the commit). sender=ImportRun,
# kwargs: run_id. donations_sync.apps connects the Celery task that runs it.
import_run_queued = Signal()
# A change from the core (pulled or pushed) was applied to a donation or shipment. Sent once the
# transaction that applied it committed, with: change_id, kind ("donation" | "shipment"),
# municipality_id, donation_id, shipment_id (None for a donation change), created (a shipment
# the core created, e.g. a re-shipment), fields (the names of the fields that changed).
core_change_applied = Signal()
