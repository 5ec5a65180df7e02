"""Presence by heartbeats: an agent stays 在席 while one of their tabs beats, and only then.

Over the real ASGI app and Redis; the sweep runs as Celery beat runs it (the task).
"""

from __future__ import annotations

import asyncio

import pytest
from asgiref.sync import sync_to_async
from django.test import Client
from django.urls import reverse

import config.settings as project_settings
from telephony import tasks
from telephony.models import AgentPresence
from tests.conftest import login_as
from tests.polling import eventually
from tests.telephony.conftest import make_available
from tests.telephony.test_consumers import connected, presence_state

pytestmark = [pytest.mark.django_db(transaction=True, serialized_rollback=True)]

BEAT = 0.2
LIFETIME = 1.0


@pytest.fixture(autouse=True)
def quick_heartbeats(settings):
    settings.TELEPHONY_HEARTBEAT_SECONDS = BEAT
    settings.TELEPHONY_HEARTBEAT_TTL_SECONDS = LIFETIME
    settings.TELEPHONY_DISCONNECT_GRACE_SECONDS = 0.2


@sync_to_async
def sweep() -> None:
    tasks.presence_sweep.apply().get()


async def vanish(communicator) -> None:
    """The socket's process dies: the consumer stops without running disconnect()."""
    communicator.future.cancel()
    with pytest.raises(asyncio.CancelledError):
        await communicator.future


def test_the_sweep_is_scheduled_every_heartbeat():
    entry = project_settings.CELERY_BEAT_SCHEDULE["telephony-presence-sweep"]
    assert entry["task"] == "telephony.tasks.presence_sweep"
    assert entry["schedule"] <= project_settings.TELEPHONY_HEARTBEAT_TTL_SECONDS / 2


async def test_a_socket_that_vanishes_without_disconnect_ends_offline_after_expiry(agent_a):
    await sync_to_async(make_available)(agent_a)
    tab = await connected(agent_a)
    await vanish(tab)
    await sweep()
    assert await presence_state(agent_a) == "available"  # its heartbeat has not run out yet
    await asyncio.sleep(LIFETIME + 0.3)  # on purpose: the heartbeat's lifetime must run out
    await sweep()
    assert await presence_state(agent_a) == "offline"


async def test_an_open_tab_keeps_beating_past_the_lifetime(agent_a):
    await sync_to_async(make_available)(agent_a)
    tab = await connected(agent_a)
    for _ in range(3):
        await asyncio.sleep(LIFETIME)  # on purpose: a lifetime passes, the open tab beats on
        await sweep()
        assert await presence_state(agent_a) == "available"
    await tab.disconnect()


async def test_two_tabs_one_vanishes_the_agent_stays_until_the_last_is_closed(agent_a):
    await sync_to_async(make_available)(agent_a)
    first_tab, second_tab = await connected(agent_a), await connected(agent_a)
    await vanish(first_tab)
    await asyncio.sleep(LIFETIME + 0.3)  # on purpose: the vanished tab's heartbeat runs out
    await sweep()
    assert await presence_state(agent_a) == "available"
    await second_tab.disconnect()
    # Offline once the reload grace has passed.
    assert await eventually(lambda: presence_state(agent_a), lambda s: s == "offline") == "offline"


async def test_the_sweep_leaves_calls_and_wrap_up_alone(agent_a):
    await sync_to_async(make_available)(agent_a)
    await AgentPresence.objects.filter(user=agent_a).aupdate(state=AgentPresence.State.ON_CALL)
    await asyncio.sleep(LIFETIME + 0.3)  # on purpose: every heartbeat has run out
    await sweep()
    assert await presence_state(agent_a) == "on_call"


def test_logging_out_logs_the_agent_off_the_phone(agent_a):
    make_available(agent_a)
    client = login_as(Client(), agent_a)
    assert client.post(reverse("logout")).status_code in (200, 302)
    assert AgentPresence.objects.get(user=agent_a).state == AgentPresence.State.OFFLINE
