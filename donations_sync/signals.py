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

# An outbox message was written and waits for delivery (sent after the commit). sender=
# OutboxMessage, kwargs: message_id. donations_sync.apps connects the Celery task that sends it.
outbox_message_queued = Signal()

# The core answered a decision sent through the outbox (sent after the commit that recorded the
# answer). sender=OutboxMessage, kwargs: message (OutboxMessage), answer ("accepted" |
# "refused" | "shipped" | "delivered" | "tracking"), detail (dict: core_reference,
# tracking_number, carrier, shipped_on, delivered_on, reason, … as the core gave them). Upper
# apps update their tickets and notify donors from it.
core_decision_answered = Signal()
