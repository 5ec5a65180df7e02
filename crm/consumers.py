"""The base of every websocket consumer of a signed-in user: who may connect, and the socket
following its session afterwards (see crm/sessions.py)."""

from __future__ import annotations

import asyncio
import time
from typing import TYPE_CHECKING, Any

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncJsonWebsocketConsumer

from crm.sessions import SocketSession, session_digest, socket_session, user_group

if TYPE_CHECKING:
    from crm.models import User

CLOSE_FORBIDDEN = 4403
# Wake a little after the deadline, so the session is past it when looked at.
_DEADLINE_MARGIN_SECONDS = 0.2


class SessionBoundConsumer(AsyncJsonWebsocketConsumer):
    """``connect`` asks ``signed_in_user()`` and, once it accepts, ``bind_to_session(user)``.

    Afterwards the socket closes with 4403 when its session ends (log-out, idle deadline, new
    password, user deactivated, TOTP device removed), and calls ``rescope(user)`` with the
    freshly loaded user when their access changes: a subclass re-joins the groups still
    visible, or answers False to be closed.
    """

    _bound_user_id: int | None = None
    _ended = False
    _idle_task: asyncio.Task | None = None

    async def signed_in_user(self) -> User | None:
        self._opened_at = time.time()
        session = self.scope.get("session")
        self._session_key = getattr(session, "session_key", None) if session else None
        checked = await self._check()
        return checked.user if checked else None

    async def bind_to_session(self, user: User) -> None:
        self._bound_user_id = user.pk
        await self.channel_layer.group_add(user_group(user.pk), self.channel_name)
        self._schedule_idle_check()

    async def rescope(self, user: User) -> bool:
        return True

    # --- events on user.<id> ------------------------------------------------------------------

    async def session_revoked(self, event: dict[str, Any]) -> None:
        if event.get("session") == session_digest(self._session_key):
            await self.end_session_socket()
        else:
            await self._recheck()

    async def access_changed(self, event: dict[str, Any]) -> None:
        await self._recheck()

    # --- internals ----------------------------------------------------------------------------

    async def _check(self) -> SocketSession | None:
        headers = dict(self.scope.get("headers") or [])
        client = self.scope.get("client")
        checked = await database_sync_to_async(socket_session)(
            self._session_key,
            opened_at=self._opened_at,
            ip_address=client[0] if client else None,
            user_agent=headers.get(b"user-agent", b"").decode("latin-1"),
        )
        if checked is not None:
            self._idle_deadline = checked.idle_deadline
        return checked

    async def _recheck(self) -> None:
        if self._ended:
            return
        checked = await self._check()
        if checked is None or not await self.rescope(checked.user):
            await self.end_session_socket()
            return
        self._schedule_idle_check()

    def _schedule_idle_check(self) -> None:
        self._cancel_idle_check()
        delay = max(0.0, self._idle_deadline - time.time()) + _DEADLINE_MARGIN_SECONDS
        self._idle_task = asyncio.create_task(self._idle_check_after(delay))

    async def _idle_check_after(self, delay: float) -> None:
        # Sleeps until the deadline instead of polling: a page load in between has moved the
        # deadline, and the check then sleeps again until the new one.
        await asyncio.sleep(delay)
        await self._recheck()

    def _cancel_idle_check(self) -> None:
        task = self._idle_task
        if task is not None and task is not asyncio.current_task():
            task.cancel()
        self._idle_task = None

    async def end_session_socket(self) -> None:
        if self._ended:
            return
        self._ended = True
        self._cancel_idle_check()
        if self._bound_user_id is not None:
            await self.channel_layer.group_discard(
                user_group(self._bound_user_id), self.channel_name
            )
        await self.close(code=CLOSE_FORBIDDEN)

    async def dispatch(self, message: dict[str, Any]) -> None:
        # Once closed for its session, nothing more is forwarded (pops queued for this channel
        # included); only the server's disconnect still runs, for the subclass's clean-up.
        if self._ended and message["type"] != "websocket.disconnect":
            return
        await super().dispatch(message)

    async def websocket_disconnect(self, message: dict[str, Any]) -> None:
        self._cancel_idle_check()
        if self._bound_user_id is not None and not self._ended:
            await self.channel_layer.group_discard(
                user_group(self._bound_user_id), self.channel_name
            )
        await super().websocket_disconnect(message)
