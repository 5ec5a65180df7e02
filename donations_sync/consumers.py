"""The run page's socket: the progress of one import, for those who may see that run."""

from __future__ import annotations

from typing import Any

from channels.db import database_sync_to_async

from crm.consumers import CLOSE_FORBIDDEN, SessionBoundConsumer
from donations_sync.live import import_run_group, progress_message
from donations_sync.mapping_services import can_manage_imports
from donations_sync.models import ImportRun


@database_sync_to_async
def _visible_run(user: Any, run_id: int) -> dict[str, Any] | None:
    """The run's progress now, or None when ``user`` may not watch it."""
    if user is None:
        return None
    run = ImportRun.objects.visible_to(user).filter(pk=run_id).first()
    if run is None or not can_manage_imports(user, run.municipality_id):
        return None
    return progress_message(run)


class ImportRunConsumer(SessionBoundConsumer):
    async def connect(self) -> None:
        self.run_id = int(self.scope["url_route"]["kwargs"]["run_id"])
        self.group = None
        user = await self.signed_in_user()
        current = await _visible_run(user, self.run_id)
        if current is None:
            await self.accept()
            await self.close(code=CLOSE_FORBIDDEN)
            return
        self.group = import_run_group(self.run_id)
        await self.channel_layer.group_add(self.group, self.channel_name)
        await self.bind_to_session(user)
        await self.accept()
        # What happened between the page load and this socket.
        await self.import_progress(current)

    async def rescope(self, user: Any) -> bool:
        return await _visible_run(user, self.run_id) is not None

    async def disconnect(self, code: int) -> None:
        if self.group:
            await self.channel_layer.group_discard(self.group, self.channel_name)

    async def import_progress(self, event: dict[str, Any]) -> None:
        if event.get("run_id") != self.run_id:
            return
        await self.send_json({key: value for key, value in event.items() if key != "type"})
