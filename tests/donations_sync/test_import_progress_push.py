"""The run page's socket: a supervisor of the run's municipality hears its progress as the engine
signals it, over the real ASGI app and channel layer; nobody else connects."""

from __future__ import annotations

import pytest
from asgiref.sync import sync_to_async
from channels.db import database_sync_to_async
from channels.testing import WebsocketCommunicator
from django.core.files.base import ContentFile
from django.utils import timezone

from config.asgi import application
from crm.models import User
from donations_sync.imports import PRESETS
from donations_sync.models import ImportRun
from donations_sync.signals import import_run_progressed
from tests.factories import UserFactory
from tests.tickets.test_views_presence import _session_cookie

pytestmark = [pytest.mark.django_db(transaction=True, serialized_rollback=True)]


@pytest.fixture(autouse=True)
def _media(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path


def _run(city) -> ImportRun:
    raw = "寄附者番号,氏名\r\n" + "".join(f"D-{n},山田\r\n" for n in range(10))
    data = raw.encode("cp932")
    return ImportRun.objects.create(
        municipality=city,
        size=len(data),
        style="choice",
        mapping=PRESETS["choice"],
        raw_file=ContentFile(data, name="a.csv"),
        original_name="a.csv",
        status=ImportRun.Status.RUNNING,
        started_at=timezone.now() - timezone.timedelta(seconds=1),
    )


async def socket_for(user: User, run_id: int) -> WebsocketCommunicator:
    cookie = await sync_to_async(_session_cookie)(user, True)
    headers = [(b"origin", b"http://testserver"), (b"host", b"testserver")]
    headers.append((b"cookie", cookie.encode()))
    return WebsocketCommunicator(application, f"/ws/imports/{run_id}/", headers=headers)


def _progress(run_id: int, rows: int, status: str = ImportRun.Status.RUNNING) -> None:
    run = ImportRun.objects.get(pk=run_id)
    ImportRun.objects.filter(pk=run_id).update(
        rows_read=rows,
        bytes_read=run.size * rows // 10,
        imported=rows,
        status=status,
        finished_at=timezone.now() if status == ImportRun.Status.DONE else None,
    )
    import_run_progressed.send(sender=ImportRun, run_id=run_id)


async def test_supervisor_hears_progress_until_done(city_a):
    supervisor = await database_sync_to_async(UserFactory)(
        username="sv_push", role=User.Role.SUPERVISOR, municipalities=[city_a]
    )
    run = await database_sync_to_async(_run)(city_a)
    comm = await socket_for(supervisor, run.id)
    assert (await comm.connect(timeout=5))[0]
    first = await comm.receive_json_from(timeout=5)
    assert first["run_id"] == run.id and first["rows_read"] == 0 and first["finished"] is False

    await database_sync_to_async(_progress)(run.id, 4)
    pushed = await comm.receive_json_from(timeout=5)
    assert pushed["rows_read"] == 4 and pushed["imported"] == 4
    assert pushed["percent"] in (39, 40) and pushed["estimated_rows"] in (10, 11)
    assert pushed["rows_per_second"] and pushed["eta_seconds"] is not None
    assert pushed["finished"] is False

    await database_sync_to_async(_progress)(run.id, 10, ImportRun.Status.DONE)
    done = await comm.receive_json_from(timeout=5)
    assert done["finished"] is True and done["status_label"] == "完了" and done["percent"] == 100
    await comm.disconnect()


@pytest.mark.parametrize("who", ["supervisor_b", "agent_a", "city_official_a"])
async def test_others_get_no_progress_socket(who, city_a, city_b):
    role, city = {
        "supervisor_b": (User.Role.SUPERVISOR, city_b),
        "agent_a": (User.Role.AGENT, city_a),
        "city_official_a": (User.Role.CITY_OFFICIAL, city_a),
    }[who]
    user = await database_sync_to_async(UserFactory)(username=who, role=role, municipalities=[city])
    run = await database_sync_to_async(_run)(city_a)
    comm = await socket_for(user, run.id)
    await comm.connect(timeout=5)
    assert await comm.receive_output(timeout=5) == {"type": "websocket.close", "code": 4403}
