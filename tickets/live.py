"""Telling open agent consoles that a municipality's tickets changed (new ticket, a requester's
message), so queue counts and lists refresh at once instead of at the next 30-second poll."""

from __future__ import annotations

import logging

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.db import transaction

logger = logging.getLogger(__name__)


def console_group(municipality_id: int) -> str:
    return f"municipality.{municipality_id}.tickets"


def announce_tickets_changed(municipality_id: int) -> None:
    """After commit: consoles of agents who see this municipality refresh. A channel layer that
    is down must not undo or fail the write itself: the consoles' poll still catches up."""

    def send() -> None:
        try:
            async_to_sync(get_channel_layer().group_send)(
                console_group(municipality_id),
                {"type": "tickets.changed", "municipality_id": municipality_id},
            )
        except Exception:
            logger.warning(
                "console push for municipality %s failed", municipality_id, exc_info=True
            )

    transaction.on_commit(send)
