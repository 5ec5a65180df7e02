"""Live "someone else is viewing/editing this ticket" over the real ASGI app and channel layer."""

from __future__ import annotations

import pytest
from asgiref.sync import sync_to_async
from channels.testing import WebsocketCommunicator
from django.conf import settings
from django.test import Client

from config.asgi import application
from crm.models import User
from tests.conftest import login_as
from tests.factories import UserFactory
from tickets import services
from tickets.models import Channel

pytestmark = [pytest.mark.django_db(transaction=True, serialized_rollback=True)]


def _session_cookie(user: User, verified: bool) -> str:
    client = Client()
    if verified:
        login_as(client, user)
    else:
        client.force_login(user)
    return f"{settings.SESSION_COOKIE_NAME}={client.cookies[settings.SESSION_COOKIE_NAME].value}"


async def communicator(user: User | None, ticket_id: int, *, verified: bool = True):
    headers = [(b"origin", b"http://testserver"), (b"host", b"testserver")]
    if user is not None:
        cookie = await sync_to_async(_session_cookie)(user, verified)
        headers.append((b"cookie", cookie.encode()))
    return WebsocketCommunicator(application, f"/ws/tickets/{ticket_id}/presence/", headers=headers)


async def refused(user: User | None, ticket_id: int, *, verified: bool = True) -> bool:
    comm = await communicator(user, ticket_id, verified=verified)
    await comm.connect(timeout=5)
    output = await comm.receive_output(timeout=5)
    await comm.wait()
    return output == {"type": "websocket.close", "code": 4403}


@pytest.fixture
def ticket(city_a, agent_a):
    return services.inquiry_open(
        actor=agent_a,
        municipality=city_a,
        channel=Channel.PHONE,
        title="配送の確認",
        description="",
    )


async def test_two_agents_see_each_other_viewing_then_editing(ticket, agent_a, city_a):
    other = await sync_to_async(UserFactory)(
        username="agent_a2", display_name="佐藤", role="agent", municipalities=[city_a]
    )
    first = await communicator(agent_a, ticket.pk)
    assert (await first.connect(timeout=5))[0]
    second = await communicator(other, ticket.pk)
    assert (await second.connect(timeout=5))[0]

    # The first hears the newcomer; the newcomer hears the first (who answers the hello).
    joined = await first.receive_json_from(timeout=5)
    assert (
        joined["type"] == "presence" and joined["name"] == "佐藤" and joined["state"] == "viewing"
    )
    answered = await second.receive_json_from(timeout=5)
    assert answered["name"] == "agent_a" and answered["state"] == "viewing"

    await second.send_json_to({"state": "editing"})
    editing = await first.receive_json_from(timeout=5)
    assert editing["state"] == "editing" and editing["conn"] == joined["conn"]

    await second.disconnect()
    left = await first.receive_json_from(timeout=5)
    assert left["state"] == "left" and left["conn"] == joined["conn"]
    assert await first.receive_nothing(timeout=0.2)
    await first.disconnect()


async def test_outsiders_are_refused(ticket, city_b, city_official_b, agent_a):
    agent_b = await sync_to_async(UserFactory)(role="agent", municipalities=[city_b])
    assert await refused(None, ticket.pk)
    assert await refused(city_official_b, ticket.pk)
    assert await refused(agent_b, ticket.pk)
    # Operator staff who have not passed TOTP in this session are refused as the pages refuse them.
    assert await refused(agent_a, ticket.pk, verified=False)
    assert await refused(agent_a, ticket.pk + 1000)


async def test_city_official_of_the_city_may_join(ticket, city_official_a):
    comm = await communicator(city_official_a, ticket.pk)
    assert (await comm.connect(timeout=5))[0]
    assert await comm.receive_nothing(timeout=0.2)
    await comm.disconnect()
