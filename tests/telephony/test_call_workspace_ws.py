"""Over real websockets: the pop shows a provider who calls, the ticket started from the pop
reaches the agent's panel, and the wallboard pushes the waiting calls with their municipality."""

from __future__ import annotations

import pytest
from asgiref.sync import sync_to_async
from django.urls import reverse

from tests.conftest import login_as
from tests.factories import ProviderFactory, UserFactory
from tests.telephony.conftest import PhoneCall, TwilioStandIn, make_available
from tests.telephony.test_consumers import connect, connected, next_of_type

pytestmark = [pytest.mark.django_db(transaction=True, serialized_rollback=True)]

PROVIDER_PHONE = "+81134229999"


async def test_provider_pop_and_the_ticket_started_from_it(
    city_a, city_b, line_a, agent_a, open_hours
):
    from django.test import Client

    provider = await sync_to_async(ProviderFactory)(
        municipality=city_a, name="小樽海産株式会社", phone=PROVIDER_PHONE
    )
    await sync_to_async(ProviderFactory)(municipality=city_b, phone=PROVIDER_PHONE)
    await sync_to_async(make_available)(agent_a)
    ws = await connected(agent_a)
    call = PhoneCall(TwilioStandIn(), from_=PROVIDER_PHONE, to=line_a.e164)
    await sync_to_async(call.dial_in)()
    await sync_to_async(call.press)("2")
    pop = await next_of_type(ws, "pop")
    assert pop["matches"] == []
    assert [(p["id"], p["name"]) for p in pop["providers"]] == [(provider.pk, "小樽海産株式会社")]
    assert pop["call"]["requester_type"] == "provider"
    target = next(t for t in call.dial_targets() if t.text == f"agent-{agent_a.pk}")
    await sync_to_async(call.agent_answers)(target)

    def start() -> int:
        client = login_as(Client(), agent_a)
        response = client.post(
            reverse("telephony:call_ticket_start", args=[pop["call"]["id"]]),
            {"requester": f"p{provider.pk}"},
            HTTP_ACCEPT="application/json",
        )
        assert response.status_code == 200
        return response.json()["inquiry_id"]

    inquiry_id = await sync_to_async(start)()
    while True:
        update = await next_of_type(ws, "call")
        if update["call"]["inquiry_id"] == inquiry_id:
            break
    assert update["providers"][0]["open_inquiries"][0]["id"] == inquiry_id
    await ws.disconnect()


async def test_wallboard_pushes_waiting_calls_of_its_cities_only(
    city_a, city_b, line_a, line_b, open_hours
):
    from crm.models import User

    supervisor_b = await sync_to_async(UserFactory)(
        username="sup_b", role=User.Role.SUPERVISOR, municipalities=[city_b]
    )
    supervisor_a = await sync_to_async(UserFactory)(
        username="sup_a", role=User.Role.SUPERVISOR, municipalities=[city_a]
    )
    ws_a = await connect(supervisor_a, "/ws/telephony/wallboard/")
    ws_b = await connect(supervisor_b, "/ws/telephony/wallboard/")
    for ws in (ws_a, ws_b):
        ok, _ = await ws.connect(timeout=5)
        assert ok
        assert (await ws.receive_json_from(timeout=5))["waiting_calls"] == []
    call = PhoneCall(TwilioStandIn(), from_="+819033334444", to=line_a.e164)
    await sync_to_async(call.dial_in)()
    await sync_to_async(call.press)("1")  # nobody free: it waits
    while True:
        stats = await next_of_type(ws_a, "wallboard")
        if stats["waiting_calls"]:
            break
    [waiting] = stats["waiting_calls"]
    assert waiting["municipality"] == city_a.name and waiting["from"] == "090-3333-4444"
    assert waiting["wait_seconds"] >= 0 and "wrap_up_alert_seconds" in stats
    assert await ws_b.receive_nothing(timeout=0.5)
    for ws in (ws_a, ws_b):
        await ws.disconnect()
