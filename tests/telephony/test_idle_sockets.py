"""Idle websockets stay open on the real Redis channel layer.

redis-py 8 gives every client a 5-second socket timeout, which races channels_redis' 5-second
blocking receive: an idle consumer then dies with a Redis TimeoutError (close 1011) before anything
is pushed to it. Agent, console and wallboard sockets each sit idle well past that, then must still
receive their message.
"""

from __future__ import annotations

import asyncio

import pytest
from asgiref.sync import sync_to_async
from django.conf import settings

from crm.models import User
from tests.factories import UserFactory
from tests.telephony.conftest import PhoneCall, TwilioStandIn, make_available
from tests.telephony.test_consumers import CALLER, connect, connected, next_of_type
from tickets import services as ticket_services
from tickets.models import Channel

pytestmark = [pytest.mark.django_db(transaction=True, serialized_rollback=True)]

IDLE_SECONDS = 15


async def test_idle_agent_console_and_wallboard_sockets_survive_and_still_receive(
    agent_a, city_a, line_a, open_hours
):
    assert settings.CHANNEL_LAYERS["default"]["BACKEND"].startswith("channels_redis"), (
        "this regression needs the Redis channel layer (REDIS_URL)"
    )
    supervisor = await sync_to_async(UserFactory)(
        username="sv_a", role=User.Role.SUPERVISOR, municipalities=[city_a]
    )
    await sync_to_async(make_available)(agent_a)
    agent_ws = await connected(agent_a)
    wallboard_ws = await connected(supervisor, "/ws/telephony/wallboard/")
    console_ws = await connect(agent_a, "/ws/console/")
    assert (await console_ws.connect(timeout=5))[0]

    # All three idle at once: one wait, not three.
    idle = await asyncio.gather(
        *(
            ws.receive_nothing(timeout=IDLE_SECONDS, interval=0.5)
            for ws in (agent_ws, wallboard_ws, console_ws)
        )
    )
    assert idle == [True, True, True]

    call = PhoneCall(TwilioStandIn(), from_=CALLER, to=line_a.e164)
    await sync_to_async(call.dial_in)()
    await sync_to_async(call.press)("1")
    pop = await next_of_type(agent_ws, "pop")
    assert pop["municipality"]["name"] == city_a.name
    board = await next_of_type(wallboard_ws, "wallboard")
    assert board["offered"] == 1

    inquiry = await sync_to_async(ticket_services.inquiry_open)(
        actor=agent_a, municipality=city_a, channel=Channel.PHONE, title="住所変更", description=""
    )
    assert await next_of_type(console_ws, "tickets_changed") == {
        "type": "tickets_changed",
        "municipality_id": inquiry.municipality_id,
    }
    for ws in (agent_ws, wallboard_ws, console_ws):
        await ws.disconnect()
