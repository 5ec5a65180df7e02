"""What tickets does when other apps' records change (connected in TicketsConfig.ready)."""

from __future__ import annotations

from crm.models import Municipality
from tickets.services import municipality_queue_ensure


def create_municipality_queue(
    sender, instance: Municipality, created: bool, raw: bool, **kwargs
) -> None:
    """Every municipality gets its helpdesk queue."""
    if raw:  # loaddata: the fixture carries its own queues
        return
    municipality_queue_ensure(municipality=instance)


def reply_awaits_requester(sender, inquiry, **kwargs) -> None:
    """After our public reply the ticket waits for the requester (「返答待ち」)."""
    from tickets.services import inquiries_set_awaiting_requester

    inquiries_set_awaiting_requester(inquiry_ids=[inquiry.pk], awaiting=True)


def requester_wrote(sender, inquiry_ids, **kwargs) -> None:
    """The requester wrote again: the ball is back with us."""
    from tickets.services import inquiries_set_awaiting_requester

    inquiries_set_awaiting_requester(inquiry_ids=inquiry_ids, awaiting=False)
