"""Signals of the donation mirror. Receivers are connected in an app's ready()."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from django.dispatch import Signal

if TYPE_CHECKING:
    from donations_sync.models import OutboxMessage

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

# The core answered decisions sent through the outbox (sent after the commit that recorded the
# answers: once per delivered batch, once for an answer through the feed or the callback).
# sender=OutboxMessage, kwargs: answers (list of DecisionAnswer, one per message, the messages
# read back in one query). A receiver handles each answer on its own (one that fails must not
# keep the others from being handled) and looks up what it needs for the whole batch at once.
# Upper apps update their tickets and notify donors from it.
core_decision_answered = Signal()


@dataclass(frozen=True)
class DecisionAnswer:
    """One answer of ``core_decision_answered``."""

    message: OutboxMessage  # as committed, with its shipment and donation
    answer: str  # "accepted" | "refused" | "shipped" | "delivered" | "tracking"
    # core_reference, tracking_number, carrier, shipped_on, delivered_on, reason, … as the core
    # gave them.
    detail: dict[str, Any]
