"""Telling open agent consoles that a municipality's tickets changed (new ticket, a requester's
message), so queue counts and lists refresh at once instead of at the next 30-second poll."""

from __future__ import annotations

from crm.push import push_after_commit


def console_group(municipality_id: int) -> str:
    return f"municipality.{municipality_id}.tickets"


def announce_tickets_changed(municipality_id: int) -> None:
    """After commit: consoles of agents who see this municipality refresh (their poll still
    catches up when the push is lost)."""
    push_after_commit(
        console_group(municipality_id),
        {"type": "tickets.changed", "municipality_id": municipality_id},
    )
