"""Who else has a ticket open: presence over a websocket group per ticket.

No state is kept on the server: each connection announces itself when it joins and when its
state changes (viewing / editing), answers newcomers' announcements, and says goodbye on close.
"""

from __future__ import annotations

import secrets
from typing import Any

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncJsonWebsocketConsumer
from django.conf import settings
from django_otp import DEVICE_ID_SESSION_KEY
from django_otp.models import Device

from crm.access import visible_municipality_ids
from tickets.live import console_group
from tickets.models import Inquiry

STATES = {"viewing", "editing"}


def group_name(ticket_id: int) -> str:
    return f"ticket.{ticket_id}.presence"


def _signed_in(user: Any, session: Any) -> bool:
    if not user or not user.is_authenticated:
        return False
    if settings.TWO_FACTOR_REQUIRED and user.is_operator_staff:
        # The same rule as the pages: operator staff must have passed TOTP in this session.
        device = Device.from_persistent_id(session.get(DEVICE_ID_SESSION_KEY) or "")
        if device is None or device.user_id != user.pk:
            return False
    return True


@database_sync_to_async
def _may_view(user: Any, session: Any, ticket_id: int) -> bool:
    if not _signed_in(user, session):
        return False
    return Inquiry.objects.visible_to(user).filter(pk=ticket_id).exists()


@database_sync_to_async
def _console_municipalities(user: Any, session: Any) -> list[int] | None:
    """The municipalities whose ticket changes this user's console hears; None: no console."""
    if not _signed_in(user, session) or not user.is_operator_staff:
        return None
    return sorted(visible_municipality_ids(user))


class TicketPresenceConsumer(AsyncJsonWebsocketConsumer):
    async def connect(self) -> None:
        self.ticket_id = int(self.scope["url_route"]["kwargs"]["ticket_id"])
        user = self.scope.get("user")
        if not await _may_view(user, self.scope.get("session") or {}, self.ticket_id):
            # Accept-then-close gives the browser a code it can tell from a network failure.
            await self.accept()
            await self.close(code=4403)
            return
        self.group = group_name(self.ticket_id)
        self.conn = secrets.token_hex(8)
        self.name = str(user)
        self.state = "viewing"
        await self.channel_layer.group_add(self.group, self.channel_name)
        await self.accept()
        await self._announce(ask_others=True)

    async def disconnect(self, code: int) -> None:
        if getattr(self, "group", None):
            await self.channel_layer.group_send(
                self.group,
                {"type": "presence.update", "conn": self.conn, "name": self.name, "state": "left"},
            )
            await self.channel_layer.group_discard(self.group, self.channel_name)

    async def receive_json(self, content: Any, **kwargs: Any) -> None:
        state = content.get("state") if isinstance(content, dict) else None
        if getattr(self, "group", None) and state in STATES and state != self.state:
            self.state = state
            await self._announce()

    async def _announce(self, *, ask_others: bool = False) -> None:
        await self.channel_layer.group_send(
            self.group,
            {
                "type": "presence.update",
                "conn": self.conn,
                "name": self.name,
                "state": self.state,
                "ask_others": ask_others,
            },
        )

    async def presence_update(self, event: dict[str, Any]) -> None:
        if event["conn"] == self.conn:
            return
        await self.send_json(
            {
                "type": "presence",
                "conn": event["conn"],
                "name": event["name"],
                "state": event["state"],
            }
        )
        if event.get("ask_others"):
            await self._announce()


class ConsoleConsumer(AsyncJsonWebsocketConsumer):
    """An agent console hears "tickets changed" for each municipality the agent may see."""

    async def connect(self) -> None:
        ids = await _console_municipalities(self.scope.get("user"), self.scope.get("session") or {})
        if ids is None:
            await self.accept()
            await self.close(code=4403)
            return
        self.groups_joined = [console_group(i) for i in ids]
        for group in self.groups_joined:
            await self.channel_layer.group_add(group, self.channel_name)
        await self.accept()

    async def disconnect(self, code: int) -> None:
        for group in getattr(self, "groups_joined", []):
            await self.channel_layer.group_discard(group, self.channel_name)

    async def tickets_changed(self, event: dict[str, Any]) -> None:
        await self.send_json(
            {"type": "tickets_changed", "municipality_id": event["municipality_id"]}
        )
