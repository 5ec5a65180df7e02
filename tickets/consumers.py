"""Who else has a ticket open: presence over a websocket group per ticket.

No state is kept on the server: each connection announces itself when it joins and when its
state changes (viewing / editing), answers newcomers' announcements, and says goodbye on close.
Both consumers close when their session ends and follow changes of the user's access
(crm.consumers.SessionBoundConsumer).
"""

from __future__ import annotations

import secrets
from typing import Any

from channels.db import database_sync_to_async

from crm.access import is_operator_staff, visible_municipality_ids
from crm.consumers import SessionBoundConsumer
from tickets.live import console_group, console_user_group, ticket_group
from tickets.models import Inquiry

STATES = {"viewing", "editing"}


def group_name(ticket_id: int) -> str:
    return ticket_group(ticket_id)


@database_sync_to_async
def _may_view(user: Any, ticket_id: int) -> bool:
    if user is None:
        return False
    return Inquiry.objects.visible_to(user).filter(pk=ticket_id).exists()


@database_sync_to_async
def _console_municipalities(user: Any) -> list[int] | None:
    """The municipalities whose ticket changes this user's console hears; None: no console."""
    if user is None or not is_operator_staff(user):
        return None
    return sorted(visible_municipality_ids(user))


class TicketPresenceConsumer(SessionBoundConsumer):
    async def connect(self) -> None:
        self.ticket_id = int(self.scope["url_route"]["kwargs"]["ticket_id"])
        user = await self.signed_in_user()
        if not await _may_view(user, self.ticket_id):
            # Accept-then-close gives the browser a code it can tell from a network failure.
            await self.accept()
            await self.close(code=4403)
            return
        self.group = group_name(self.ticket_id)
        self.conn = secrets.token_hex(8)
        self.name = str(user)
        self.state = "viewing"
        await self.channel_layer.group_add(self.group, self.channel_name)
        await self.bind_to_session(user)
        await self.accept()
        await self._announce(ask_others=True)

    async def rescope(self, user: Any) -> bool:
        return await _may_view(user, self.ticket_id)

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

    async def ticket_changed(self, event: dict[str, Any]) -> None:
        # Only which part changed: the page fetches it through its own permission-checked view.
        await self.send_json({"type": "ticket_changed", "part": event.get("part", "")})

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


class ConsoleConsumer(SessionBoundConsumer):
    """An agent console hears "tickets changed" for each municipality the agent may see."""

    async def connect(self) -> None:
        user = await self.signed_in_user()
        ids = await _console_municipalities(user)
        if ids is None:
            await self.accept()
            await self.close(code=4403)
            return
        self.groups_joined = [console_group(i) for i in ids]
        for group in self.groups_joined:
            await self.channel_layer.group_add(group, self.channel_name)
        # The agent's own: @mentions of them.
        self.user_group = console_user_group(user.pk)
        await self.channel_layer.group_add(self.user_group, self.channel_name)
        await self.bind_to_session(user)
        await self.accept()

    async def rescope(self, user: Any) -> bool:
        """Re-join only the municipalities still visible."""
        ids = await _console_municipalities(user)
        if ids is None:
            return False
        groups = [console_group(i) for i in ids]
        for group in set(self.groups_joined) - set(groups):
            await self.channel_layer.group_discard(group, self.channel_name)
        for group in set(groups) - set(self.groups_joined):
            await self.channel_layer.group_add(group, self.channel_name)
        self.groups_joined = groups
        return True

    async def disconnect(self, code: int) -> None:
        for group in getattr(self, "groups_joined", []):
            await self.channel_layer.group_discard(group, self.channel_name)
        if getattr(self, "user_group", None):
            await self.channel_layer.group_discard(self.user_group, self.channel_name)

    async def mention_created(self, event: dict[str, Any]) -> None:
        # Only that a mention arrived: the console re-reads its list through its own page,
        # which shows only tickets the agent may still see.
        await self.send_json({"type": "mention", "ticket_id": event["ticket_id"]})

    async def tickets_changed(self, event: dict[str, Any]) -> None:
        # A push queued before a municipality was taken away may still arrive: drop it.
        if console_group(event["municipality_id"]) not in self.groups_joined:
            return
        await self.send_json(
            {"type": "tickets_changed", "municipality_id": event["municipality_id"]}
        )
