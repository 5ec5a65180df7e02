"""Websockets: each agent's screen pop (group ``agent.<id>``) and the supervisors' wallboard.

Consumers authenticate, join groups and forward; they close when their session ends and follow
changes of the user's access (crm.consumers.SessionBoundConsumer). What a message shows is
loaded by the selectors for the connected user, so a push that reached the wrong group would
still show nothing.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

from asgiref.sync import sync_to_async
from channels.db import database_sync_to_async
from django.conf import settings

from crm.access import can_take_calls, is_supervisor
from crm.consumers import SessionBoundConsumer
from crm.models import User
from telephony import heartbeats, selectors, services
from telephony.events import agent_group, wallboard_group

# A reload closes the old page's websocket before the new page opens its own: wait this long
# before calling the agent gone.
DISCONNECT_GRACE_SECONDS = 10.0
_pending: set[asyncio.Task] = set()


async def _offline_unless_back(user_id: int) -> None:
    await asyncio.sleep(
        getattr(settings, "TELEPHONY_DISCONNECT_GRACE_SECONDS", DISCONNECT_GRACE_SECONDS)
    )
    if await sync_to_async(heartbeats.alive)(user_id) <= 0:
        await database_sync_to_async(services.agent_disconnected)(user_id=user_id)


class AgentConsumer(SessionBoundConsumer):
    """ws/telephony/agent/: pops for calls ringing this agent, and their presence.

    While open, the socket keeps a heartbeat (telephony.heartbeats) that says the agent has a
    tab open; the beat stops with the consumer however it ends, even without disconnect().
    """

    _beating: asyncio.Task | None = None

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        try:
            await super().__call__(scope, receive, send)
        finally:
            if self._beating is not None:
                self._beating.cancel()

    async def connect(self) -> None:
        user = await self.signed_in_user()
        if user is None or not can_take_calls(user):
            # Accepted first so the browser sees 4403 (log in again), not a network failure.
            await self.accept()
            await self.close(code=4403)
            return
        self.user: User = user
        self.group = agent_group(self.user.pk)
        await self.channel_layer.group_add(self.group, self.channel_name)
        await sync_to_async(heartbeats.beat)(self.user.pk, self.channel_name)
        self._beating = asyncio.create_task(self._beat_while_open())
        await self.bind_to_session(self.user)
        await self.accept()
        await self.send_json(await database_sync_to_async(self._state)())

    async def rescope(self, user: User) -> bool:
        # Pops are loaded for self.user: the fresh user carries the municipalities they still see.
        if not can_take_calls(user):
            return False
        self.user = user
        return True

    async def disconnect(self, code: int) -> None:
        if not getattr(self, "group", None):
            return
        await self.channel_layer.group_discard(self.group, self.channel_name)
        if self._beating is not None:
            self._beating.cancel()
        await sync_to_async(heartbeats.drop)(self.user.pk, self.channel_name)
        # Several tabs: the agent is gone only when the last of them has closed (and stayed
        # closed through a reload's gap).
        if await sync_to_async(heartbeats.alive)(self.user.pk) <= 0:
            task = asyncio.create_task(_offline_unless_back(self.user.pk))
            _pending.add(task)
            task.add_done_callback(_pending.discard)

    async def _beat_while_open(self) -> None:
        while True:
            await asyncio.sleep(heartbeats.interval())
            # A Redis hiccup skips one beat; the heartbeat's lifetime covers a few missed ones.
            with contextlib.suppress(Exception):
                await sync_to_async(heartbeats.beat)(self.user.pk, self.channel_name)

    def _state(self) -> dict[str, Any]:
        """On (re)connect: presence, plus the call ringing or in progress, or awaiting wrap-up."""
        presence = services.presence_for(self.user)
        message: dict[str, Any] = {
            "type": "state",
            "presence": presence.state,
            "presence_label": presence.get_state_display(),
        }
        call_id = presence.current_call_id
        pending = services.pending_wrap_up(self.user)
        if call_id is None and pending is not None:
            call_id = pending.pk
        if call_id:
            message["pop"] = selectors.screen_pop_payload(user=self.user, call_id=call_id)
        return message

    async def call_ring(self, event: dict[str, Any]) -> None:
        payload = await database_sync_to_async(selectors.screen_pop_payload)(
            user=self.user, call_id=event["call_id"]
        )
        if payload is not None:
            await self.send_json({"type": "pop", **payload})

    async def call_update(self, event: dict[str, Any]) -> None:
        payload = await database_sync_to_async(selectors.screen_pop_payload)(
            user=self.user, call_id=event["call_id"]
        )
        if payload is not None:
            await self.send_json({"type": "call", **payload})

    async def call_clear(self, event: dict[str, Any]) -> None:
        await self.send_json(
            {
                "type": "clear",
                "call_id": event["call_id"],
                "answered": bool(event.get("answered_by")),
            }
        )

    async def presence_changed(self, event: dict[str, Any]) -> None:
        await self.send_json({"type": "presence", "presence": event["state"]})


class WallboardConsumer(SessionBoundConsumer):
    """ws/telephony/wallboard/[?municipality=<id>]: live figures for the supervisor's cities."""

    async def connect(self) -> None:
        user = await self.signed_in_user()
        if user is None or not is_supervisor(user):
            await self.accept()
            await self.close(code=4403)
            return
        self.user = user
        requested = _requested_ids(self.scope.get("query_string", b""))
        self.municipality_ids = await database_sync_to_async(selectors.wallboard_municipality_ids)(
            user, requested
        )
        self.groups_joined = [wallboard_group(m) for m in self.municipality_ids]
        for group in self.groups_joined:
            await self.channel_layer.group_add(group, self.channel_name)
        await self.bind_to_session(user)
        await self.accept()
        await self._send_stats()

    async def rescope(self, user: User) -> bool:
        """Only the municipalities still visible; none left (or no longer a supervisor): close."""
        if not is_supervisor(user):
            return False
        requested = _requested_ids(self.scope.get("query_string", b""))
        ids = await database_sync_to_async(selectors.wallboard_municipality_ids)(user, requested)
        if not ids:
            return False
        if ids != self.municipality_ids:
            groups = [wallboard_group(m) for m in ids]
            for group in set(self.groups_joined) - set(groups):
                await self.channel_layer.group_discard(group, self.channel_name)
            for group in set(groups) - set(self.groups_joined):
                await self.channel_layer.group_add(group, self.channel_name)
            self.municipality_ids, self.groups_joined = ids, groups
            await self._send_stats()
        self.user = user
        return True

    async def disconnect(self, code: int) -> None:
        for group in getattr(self, "groups_joined", []):
            await self.channel_layer.group_discard(group, self.channel_name)

    async def wallboard_changed(self, event: dict[str, Any]) -> None:
        await self._send_stats()

    async def _send_stats(self) -> None:
        stats = await database_sync_to_async(selectors.wallboard_stats)(self.municipality_ids)
        await self.send_json({"type": "wallboard", **stats})


def _requested_ids(query_string: bytes) -> list[int]:
    from urllib.parse import parse_qs

    values = parse_qs(query_string.decode("latin-1")).get("municipality", [])
    return [int(v) for v in values if v.isdigit()]
