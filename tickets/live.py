"""Telling open agent consoles that a municipality's tickets changed (new ticket, a requester's
message), so queue counts and lists refresh at once instead of at the next 30-second poll."""

from __future__ import annotations

from crm.push import push_after_commit, push_many_after_commit


def console_group(municipality_id: int) -> str:
    return f"municipality.{municipality_id}.tickets"


def announce_tickets_changed(municipality_id: int) -> None:
    """After commit: consoles of agents who see this municipality refresh (their poll still
    catches up when the push is lost)."""
    push_after_commit(
        console_group(municipality_id),
        {"type": "tickets.changed", "municipality_id": municipality_id},
    )


def ticket_group(ticket_id: int) -> str:
    """Everyone with the ticket's page open (tickets.consumers.TicketPresenceConsumer)."""
    return f"ticket.{ticket_id}.presence"


def announce_ticket_changed(ticket_id: int, *, part: str) -> None:
    """After commit: open pages of this ticket refresh ``part`` (e.g. "escalation") without a
    reload; the page's own poll catches up when the push is lost."""
    push_after_commit(ticket_group(ticket_id), {"type": "ticket.changed", "part": part})


def announce_tickets_part_changed(ticket_ids: list[int], *, part: str) -> None:
    """``announce_ticket_changed`` for many tickets, sent together after one commit."""
    push_many_after_commit(
        (ticket_group(ticket_id), {"type": "ticket.changed", "part": part})
        for ticket_id in ticket_ids
    )


def console_user_group(user_id: int) -> str:
    """One agent's open consoles (an @mention of them is announced here)."""
    return f"console.user.{user_id}"
