"""Agent consoles hear at once when a municipality they see gets a new ticket or a requester's
message, over the real ASGI app and channel layer; other municipalities' changes never reach them."""

from __future__ import annotations

import pytest
from asgiref.sync import sync_to_async
from channels.db import database_sync_to_async
from channels.testing import WebsocketCommunicator

from config.asgi import application
from tests.tickets.mail.conftest import ADDRESS_B, deliver, make_mail
from tests.tickets.test_views_presence import _session_cookie

pytestmark = [pytest.mark.django_db(transaction=True, serialized_rollback=True)]


@pytest.fixture(autouse=True)
def _fresh_content_type_cache():
    from django.contrib.contenttypes.models import ContentType

    ContentType.objects.clear_cache()


async def console(user, *, verified: bool = True) -> WebsocketCommunicator:
    cookie = await sync_to_async(_session_cookie)(user, verified)
    headers = [
        (b"origin", b"http://testserver"),
        (b"host", b"testserver"),
        (b"cookie", cookie.encode()),
    ]
    return WebsocketCommunicator(application, "/ws/console/", headers=headers)


async def test_new_mail_and_replies_reach_the_consoles_of_that_municipality_only(
    agent_a, city_a, city_b, mailbox_a, mailbox_b
):
    comm = await console(agent_a)
    assert (await comm.connect(timeout=5))[0]

    await database_sync_to_async(deliver)(make_mail(to=ADDRESS_B, sender="b@example.jp"))
    assert await comm.receive_nothing(timeout=0.5)

    opened = await database_sync_to_async(deliver)(make_mail(message_id="<first@example.jp>"))
    assert await comm.receive_json_from(timeout=5) == {
        "type": "tickets_changed",
        "municipality_id": city_a.pk,
    }
    await database_sync_to_async(deliver)(
        make_mail(subject="Re", headers={"In-Reply-To": "<first@example.jp>"})
    )
    assert (await comm.receive_json_from(timeout=5))["municipality_id"] == city_a.pk
    assert opened.created_inquiry
    await comm.disconnect()


@pytest.mark.parametrize("who", ["city_official_a", "agent_without_totp"])
async def test_city_officials_and_unverified_sessions_get_no_console(who, city_official_a, agent_a):
    user, verified = (city_official_a, True) if who == "city_official_a" else (agent_a, False)
    comm = await console(user, verified=verified)
    await comm.connect(timeout=5)
    assert await comm.receive_output(timeout=5) == {"type": "websocket.close", "code": 4403}
