"""Telling open browsers that something changed: the one way to push to Channels groups.

Pushes go out after the transaction commits, so a browser never hears of a state the database
does not hold, and a rolled-back write tells nobody. A channel layer that is down (Redis
unreachable) must not undo or fail the write that caused the push: the failure is logged and
the request goes on; pages and sockets catch up at their next poll or check.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import Any

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.db import transaction

logger = logging.getLogger(__name__)

Push = tuple[str, dict[str, Any]]


def _send_now(messages: list[Push]) -> None:
    try:
        layer = get_channel_layer()
        if layer is None:
            return

        async def send_all() -> None:
            for group, message in messages:
                await layer.group_send(group, message)

        async_to_sync(send_all)()
    except Exception:
        logger.warning("push to %s failed", [group for group, _ in messages], exc_info=True)


def push_many_after_commit(messages: Iterable[Push]) -> None:
    """Send each ``(group, message)`` once the current transaction commits (at once outside one)."""
    messages = list(messages)
    if messages:
        transaction.on_commit(lambda: _send_now(messages))


def push_after_commit(group: str, message: dict[str, Any]) -> None:
    push_many_after_commit([(group, message)])
