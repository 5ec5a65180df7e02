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
