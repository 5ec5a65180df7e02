"""Signals of the core's mirror, sent after commit (never for a rolled-back write)."""

from __future__ import annotations

from django.dispatch import Signal

# A change from the core (pulled or pushed) was applied to a donation or shipment. Sent once the
# transaction that applied it committed, with: change_id, kind ("donation" | "shipment"),
# municipality_id, donation_id, shipment_id (None for a donation change), created (a shipment
# the core created, e.g. a re-shipment), fields (the names of the fields that changed).
core_change_applied = Signal()
