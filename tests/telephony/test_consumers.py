"""Screen pops and the wallboard over real websockets (the configured channel layer: Redis in CI)."""

from __future__ import annotations

import pytest
from asgiref.sync import sync_to_async
from channels.db import database_sync_to_async
from channels.layers import get_channel_layer
from channels.testing import WebsocketCommunicator
from django.conf import settings
from django.test import Client

from config.asgi import application
from crm.models import User
from telephony.events import agent_group
from telephony.models import Call
from tests.conftest import login_as
from tests.factories import DonorPhoneFactory, ShipmentFactory, UserFactory
from tests.polling import eventually
from tests.telephony.conftest import PhoneCall, TwilioStandIn, make_available

# serialized_rollback: the flush after each test must not wipe data migrations' rows
# (wrap-up codes, ticket categories) that later tests rely on.
pytestmark = [pytest.mark.django_db(transaction=True, serialized_rollback=True)]

CALLER = "+819012345678"


async def connect(user: User | None, path: str, *, verified: bool = True) -> WebsocketCommunicator:
    headers = [(b"origin", b"http://testserver"), (b"host", b"testserver")]
    if user is not None:
        client = await sync_to_async(_logged_in_client)(user, verified)
        cookie = (
            f"{settings.SESSION_COOKIE_NAME}={client.cookies[settings.SESSION_COOKIE_NAME].value}"
        )
        headers.append((b"cookie", cookie.encode()))
    return WebsocketCommunicator(application, path, headers=headers)


def _logged_in_client(user: User, verified: bool) -> Client:
    client = Client()
    if verified:
        return login_as(client, user)
    client.force_login(user)
    return client


async def connected(user: User, path: str = "/ws/telephony/agent/") -> WebsocketCommunicator:
    communicator = await connect(user, path)
    ok, _ = await communicator.connect(timeout=5)
    assert ok
    first = await communicator.receive_json_from(timeout=5)
    assert first["type"] in ("state", "wallboard")
    return communicator


async def refused(communicator: WebsocketCommunicator) -> None:
    """Closed with 4403, which the browser reads as "log in again" (and stops retrying)."""
    await communicator.connect(timeout=5)
    assert await communicator.receive_output(timeout=5) == {"type": "websocket.close", "code": 4403}


async def next_of_type(communicator: WebsocketCommunicator, kind: str, timeout: float = 5):
    while True:
        message = await communicator.receive_json_from(timeout=timeout)
        if message["type"] == kind:
            return message


@pytest.fixture
def agents(city_a, city_b, agent_a, agent_a2, agent_b, line_a, line_b):
    for agent in (agent_a, agent_a2, agent_b):
        make_available(agent)
    return agent_a, agent_a2, agent_b


async def test_pop_reaches_the_agents_of_the_dialled_city_and_clears_when_one_answers(
    agents, city_a, line_a, open_hours
):
    agent_a, agent_a2, agent_b = agents
    shipment = await sync_to_async(ShipmentFactory)(
        donation__donor__municipality=city_a, gift_item__municipality=city_a
    )
    await sync_to_async(DonorPhoneFactory)(donor=shipment.donation.donor, e164=CALLER)
    ws_a, ws_a2, ws_b = [await connected(a) for a in agents]

    twilio = TwilioStandIn()
    call = PhoneCall(twilio, from_=CALLER, to=line_a.e164)
    await sync_to_async(call.dial_in)()
    await sync_to_async(call.press)("1")

    pop = await next_of_type(ws_a, "pop")
    assert pop["municipality"]["name"] == city_a.name
    assert pop["greeting"] == city_a.greeting
    [match] = pop["matches"]
    assert match["id"] == shipment.donation.donor_id
    assert match["donations"][0]["shipments"][0]["tracking_url"]
    pop2 = await next_of_type(ws_a2, "pop")
    assert pop2["call"]["id"] == pop["call"]["id"]
    assert await ws_b.receive_nothing(timeout=0.5)

    target = next(t for t in call.dial_targets() if t.text == f"agent-{agent_a.pk}")
    await sync_to_async(call.agent_answers)(target)
    cleared = await next_of_type(ws_a2, "clear")
    assert cleared == {"type": "clear", "call_id": pop["call"]["id"], "answered": True}
    presence = await next_of_type(ws_a, "presence")
    assert presence["presence"] == "on_call"
    for ws in (ws_a, ws_a2, ws_b):
        await ws.disconnect()


async def test_an_agent_not_assigned_to_the_city_never_sees_its_pop(
    agents, city_a, line_a, open_hours
):
    _, _, agent_b = agents
    ws_b = await connected(agent_b)
    twilio = TwilioStandIn()
    call = PhoneCall(twilio, from_=CALLER, to=line_a.e164)
    await sync_to_async(call.dial_in)()
    await sync_to_async(call.press)("1")
    record = await Call.objects.aget(call_sid=call.sid)
    # Even a ring pushed to the wrong agent's group shows nothing of city A.
    await get_channel_layer().group_send(
        agent_group(agent_b.pk), {"type": "call.ring", "call_id": record.pk}
    )
    assert await ws_b.receive_nothing(timeout=0.5)
    await ws_b.disconnect()


async def test_unauthenticated_unverified_and_city_users_cannot_listen(
    city_official_a, agent_a, db
):
    for user, verified in ((None, True), (agent_a, False), (city_official_a, True)):
        communicator = await connect(user, "/ws/telephony/agent/", verified=verified)
        await refused(communicator)


async def test_wallboard_shows_and_updates_only_own_municipalities(
    city_a, city_b, line_a, line_b, agent_a, open_hours
):
    supervisor_b = await sync_to_async(UserFactory)(
        username="sv_b", role=User.Role.SUPERVISOR, municipalities=[city_b]
    )
    ws = await connect(supervisor_b, "/ws/telephony/wallboard/")
    ok, _ = await ws.connect(timeout=5)
    assert ok
    initial = await ws.receive_json_from(timeout=5)
    assert initial["municipality_ids"] == [city_b.pk]
    assert initial["waiting"] == 0

    twilio = TwilioStandIn()
    in_a = PhoneCall(twilio, from_=CALLER, to=line_a.e164)
    await sync_to_async(in_a.dial_in)()
    await sync_to_async(in_a.press)("1")
    assert await ws.receive_nothing(timeout=0.5)

    in_b = PhoneCall(twilio, from_=CALLER, to=line_b.e164)
    await sync_to_async(in_b.dial_in)()
    await sync_to_async(in_b.press)("1")
    latest = initial
    # Several pushes may come (offered, queued): the last one holds the current figures.
    while not await ws.receive_nothing(timeout=1):
        latest = await ws.receive_json_from(timeout=1)
    assert latest["waiting"] == 1  # city B's caller only
    assert latest["offered"] == 1
    await ws.disconnect()


async def test_agents_and_city_officials_cannot_open_the_wallboard(agent_a, city_official_a):
    for user in (agent_a, city_official_a):
        communicator = await connect(user, "/ws/telephony/wallboard/")
        await refused(communicator)


@database_sync_to_async  # closes its connection, so the test database can be dropped after
def presence_state(user: User) -> str:
    from telephony.models import AgentPresence

    presence = AgentPresence.objects.filter(user=user).first()
    return presence.state if presence else "offline"


async def state_after(user: User, seconds: float) -> str:
    """The state once ``seconds`` have passed: waits them out on purpose, to show that the
    state did not change when a timer (the reload grace) could have changed it."""
    import asyncio

    await asyncio.sleep(seconds)
    return await presence_state(user)


async def state_becomes(user: User, expected: str, timeout: float = 5) -> str:
    return await eventually(lambda: presence_state(user), lambda s: s == expected, timeout=timeout)


async def test_agent_goes_offline_only_when_the_last_tab_closes(agent_a, settings):
    settings.TELEPHONY_DISCONNECT_GRACE_SECONDS = 0.2
    await sync_to_async(make_available)(agent_a)
    first_tab, second_tab = await connected(agent_a), await connected(agent_a)
    await first_tab.disconnect()
    assert await state_after(agent_a, 0.5) == "available"
    await second_tab.disconnect()
    assert await state_becomes(agent_a, "offline") == "offline"


async def test_reloading_the_page_keeps_the_agent_available(agent_a, settings):
    settings.TELEPHONY_DISCONNECT_GRACE_SECONDS = 0.5
    await sync_to_async(make_available)(agent_a)
    old_page = await connected(agent_a)
    await old_page.disconnect()
    new_page = await connected(agent_a)  # the reloaded page, within the grace period
    assert await state_after(agent_a, 0.8) == "available"
    await new_page.disconnect()


async def test_closing_the_tab_during_a_call_leaves_the_call_alone(
    agent_a, line_a, open_hours, settings
):
    settings.TELEPHONY_DISCONNECT_GRACE_SECONDS = 0.1
    await sync_to_async(make_available)(agent_a)
    tab = await connected(agent_a)
    call = PhoneCall(TwilioStandIn(), from_=CALLER, to=line_a.e164)
    await sync_to_async(call.dial_in)()
    await sync_to_async(call.press)("1")
    await sync_to_async(call.agent_answers)(call.dial_targets()[0])
    await tab.disconnect()
    assert await state_after(agent_a, 0.4) == "on_call"
