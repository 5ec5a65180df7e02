"""Open websockets follow their session: log-out, idle expiry, deactivation, a new password, a
2FA reset and a narrower municipality assignment reach every socket within seconds (the real
ASGI app and channel layer: Redis in CI)."""

from __future__ import annotations

import asyncio
import time

import pytest
from asgiref.sync import sync_to_async
from channels.layers import get_channel_layer
from channels.testing import WebsocketCommunicator
from django.conf import settings
from django.contrib.sessions.models import Session
from django.test import Client
from django.urls import reverse
from django.utils import timezone
from django_otp import DEVICE_ID_SESSION_KEY
from django_otp.plugins.otp_totp.models import TOTPDevice

from config.asgi import application
from crm.models import AuditLog, User
from telephony.events import agent_group
from telephony.models import Call
from tests.conftest import login_as
from tests.factories import UserFactory
from tickets import services as ticket_services
from tickets.live import console_group
from tickets.models import Channel

pytestmark = [pytest.mark.django_db(transaction=True, serialized_rollback=True)]

CLOSED = {"type": "websocket.close", "code": 4403}


def _cookie(client: Client) -> str:
    return f"{settings.SESSION_COOKIE_NAME}={client.cookies[settings.SESSION_COOKIE_NAME].value}"


def _signed_in_client(user: User) -> Client:
    client = login_as(Client(), user)
    # A page load, as after a real log-in: starts the idle clock.
    assert client.get(reverse("municipality_list")).status_code == 200
    return client


async def signed_in(user: User) -> Client:
    return await sync_to_async(_signed_in_client)(user)


async def open_socket(client: Client, path: str) -> WebsocketCommunicator:
    headers = [
        (b"origin", b"http://testserver"),
        (b"host", b"testserver"),
        (b"cookie", _cookie(client).encode()),
        (b"user-agent", b"TestBrowser/1.0"),
    ]
    comm = WebsocketCommunicator(application, path, headers=headers)
    # What daphne or uvicorn put in the scope (the app has not started reading it yet).
    comm.scope["client"] = ["192.0.2.10", 50000]
    ok, _ = await comm.connect(timeout=5)
    assert ok, path
    return comm


async def closed_for_session(comm: WebsocketCommunicator, timeout: float = 5) -> bool:
    """Reads what the socket still sends (state, presence …) until it closes; True on 4403."""
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        remaining = deadline - asyncio.get_running_loop().time()
        if remaining <= 0:
            return False
        try:
            output = await comm.receive_output(timeout=remaining)
        except TimeoutError:
            return False
        if output["type"] == "websocket.close":
            return output == CLOSED


async def still_open(comm: WebsocketCommunicator, timeout: float = 0.5) -> bool:
    """Nothing closed it for ``timeout``: anything sent meanwhile is drained. (receive_nothing,
    because a receive that times out cancels the application.)"""
    while not await comm.receive_nothing(timeout=timeout):
        if (await comm.receive_output())["type"] == "websocket.close":
            return False
    return True


async def hears_console_push(
    comm: WebsocketCommunicator, municipality_id: int, timeout: float = 1
) -> bool:
    await get_channel_layer().group_send(
        console_group(municipality_id),
        {"type": "tickets.changed", "municipality_id": municipality_id},
    )
    if await comm.receive_nothing(timeout=timeout):
        return False
    return (await comm.receive_json_from())["municipality_id"] == municipality_id


@pytest.fixture
def ticket_a(city_a, agent_a):
    return ticket_services.inquiry_open(
        actor=agent_a,
        municipality=city_a,
        channel=Channel.PHONE,
        title="配送の確認",
        description="",
    )


@pytest.fixture
def agent_ab(city_a, city_b):
    return UserFactory(username="agent_ab", role=User.Role.AGENT, municipalities=[city_a, city_b])


# --- Log-out -----------------------------------------------------------------------------------


async def test_log_out_closes_every_socket_of_that_session_and_no_pop_follows(
    agent_a, ticket_a, city_a
):
    client = await signed_in(agent_a)
    other_browser = await signed_in(agent_a)
    sockets = [
        await open_socket(client, "/ws/telephony/agent/"),
        await open_socket(client, "/ws/console/"),
        await open_socket(client, f"/ws/tickets/{ticket_a.pk}/presence/"),
    ]
    elsewhere = await open_socket(other_browser, "/ws/console/")
    call = await Call.objects.acreate(
        municipality=city_a, from_e164="+819012345678", offered_at=timezone.now()
    )

    response = await sync_to_async(client.post)(reverse("logout"))
    assert response.status_code == 302

    for comm in sockets:
        assert await closed_for_session(comm)
    # A pop queued after log-out is not forwarded to the closed socket.
    await get_channel_layer().group_send(
        agent_group(agent_a.pk), {"type": "call.ring", "call_id": call.pk}
    )
    assert await sockets[0].receive_nothing(timeout=0.5)
    # The same agent's session in another browser was not logged out.
    assert await still_open(elsewhere)
    assert await hears_console_push(elsewhere, city_a.pk)
    for comm in [*sockets, elsewhere]:
        await comm.disconnect()


# --- Changes to the user ----------------------------------------------------------------------


@pytest.mark.parametrize("change", ["deactivated", "new_password", "totp_reset", "city_official"])
async def test_changes_to_the_user_close_their_sockets(change, agent_a, ticket_a):
    client = await signed_in(agent_a)
    sockets = [
        await open_socket(client, "/ws/telephony/agent/"),
        await open_socket(client, "/ws/console/"),
        await open_socket(client, f"/ws/tickets/{ticket_a.pk}/presence/"),
    ]

    def apply() -> None:
        user = User.objects.get(pk=agent_a.pk)
        if change == "deactivated":
            user.is_active = False
            user.save()
        elif change == "new_password":
            user.set_password("Another#Pass1")
            user.save()
        elif change == "totp_reset":
            TOTPDevice.objects.filter(user=user).delete()
        else:
            user.role = User.Role.CITY_OFFICIAL
            user.save()

    await sync_to_async(apply)()
    if change == "city_official":
        # A city official of city A still may see the ticket; console and phone are gone.
        assert [await closed_for_session(comm) for comm in sockets[:2]] == [True, True]
        assert await still_open(sockets[2])
    else:
        assert [await closed_for_session(comm) for comm in sockets] == [True, True, True]
    for comm in sockets:
        await comm.disconnect()


async def test_removing_a_municipality_rescopes_console_pops_and_ticket_presence(
    agent_ab, city_a, city_b
):
    ticket_b = await sync_to_async(ticket_services.inquiry_open)(
        actor=agent_ab, municipality=city_b, channel=Channel.PHONE, title="B", description=""
    )
    client = await signed_in(agent_ab)
    console = await open_socket(client, "/ws/console/")
    phone = await open_socket(client, "/ws/telephony/agent/")
    assert (await phone.receive_json_from(timeout=5))["type"] == "state"
    presence_b = await open_socket(client, f"/ws/tickets/{ticket_b.pk}/presence/")
    assert await hears_console_push(console, city_b.pk)

    await sync_to_async(agent_ab.municipalities.remove)(city_b)

    assert await closed_for_session(presence_b)
    # The change reaches each socket in order with later pushes: none of city B follows.
    assert not await hears_console_push(console, city_b.pk)
    assert await hears_console_push(console, city_a.pk)
    call_b = await Call.objects.acreate(
        municipality=city_b, from_e164="+819012345678", offered_at=timezone.now()
    )
    await get_channel_layer().group_send(
        agent_group(agent_ab.pk), {"type": "call.ring", "call_id": call_b.pk}
    )
    assert await phone.receive_nothing(timeout=0.5)

    # Given back from the municipality's side, the console hears city B again.
    await sync_to_async(city_b.staff.add)(agent_ab)
    for _ in range(25):  # joining happens as the socket handles the change: poll for it
        if await hears_console_push(console, city_b.pk, timeout=0.2):
            break
    else:
        pytest.fail("the console did not rejoin city B")
    await still_open(console)  # pushes sent while polling
    # Cleared from the municipality's side: the console is left with nothing of B.
    await sync_to_async(city_b.staff.clear)()
    assert not await hears_console_push(console, city_b.pk)
    for comm in (console, phone, presence_b):
        await comm.disconnect()


async def test_wallboard_follows_the_supervisors_municipalities_and_role(
    supervisor, city_a, city_b
):
    client = await signed_in(supervisor)
    board = await open_socket(client, "/ws/telephony/wallboard/")
    first = await board.receive_json_from(timeout=5)
    assert first["municipality_ids"] == sorted([city_a.pk, city_b.pk])

    await sync_to_async(supervisor.municipalities.remove)(city_b)
    rescoped = await board.receive_json_from(timeout=5)
    assert rescoped["municipality_ids"] == [city_a.pk]

    def demote() -> None:
        user = User.objects.get(pk=supervisor.pk)
        user.role = User.Role.AGENT
        user.save()

    await sync_to_async(demote)()
    assert await closed_for_session(board)
    await board.disconnect()


# --- Idle timeout --------------------------------------------------------------------------------


async def test_a_session_idle_past_the_limit_cannot_open_a_socket(agent_a, settings):
    settings.SESSION_IDLE_TIMEOUT_MINUTES = 1 / 60  # one second
    client = await signed_in(agent_a)
    session_key = client.session.session_key
    await asyncio.sleep(1.3)  # on purpose: the session must go idle
    headers = [
        (b"origin", b"http://testserver"),
        (b"host", b"testserver"),
        (b"cookie", _cookie(client).encode()),
    ]
    comm = WebsocketCommunicator(application, "/ws/telephony/agent/", headers=headers)
    ok, _ = await comm.connect(timeout=5)
    # Refused, or accepted only to close with 4403 (the code a browser tells from a network fault).
    assert not ok or await closed_for_session(comm)
    # Ended as HTTP ends it: audited, and the session is gone for the pages too.
    assert await AuditLog.objects.filter(
        action=AuditLog.Action.IDLE_TIMEOUT, user=agent_a
    ).aexists()
    assert not await Session.objects.filter(session_key=session_key).aexists()
    response = await sync_to_async(client.get)(reverse("municipality_list"))
    assert response.status_code == 302 and response.url.startswith(reverse("login"))


async def test_open_sockets_close_at_the_idle_deadline_unless_a_page_load_moved_it(
    agent_a, settings
):
    settings.SESSION_IDLE_TIMEOUT_MINUTES = 6 / 60  # six seconds
    client = await signed_in(agent_a)
    started = time.monotonic()
    phone = await open_socket(client, "/ws/telephony/agent/")
    console = await open_socket(client, "/ws/console/")

    await asyncio.sleep(2)  # on purpose: part of the idle limit passes before the page load
    # A page load is user activity: the deadline moves to about eight seconds from the start.
    assert (await sync_to_async(client.get)(reverse("municipality_list"))).status_code == 200
    # The console's own refreshes are not: they would keep an idle tab alive for ever.
    background = await sync_to_async(client.get)(reverse("console"), HTTP_X_BACKGROUND_REFRESH="1")
    assert background.status_code == 200
    # Past the first deadline (six seconds after the log-in's page load).
    assert await still_open(console, timeout=max(0.1, 6.8 - (time.monotonic() - started)))

    assert await closed_for_session(phone, timeout=5)
    assert await closed_for_session(console, timeout=2)
    assert time.monotonic() - started > 7.5
    # One audit row for the session, however many of its sockets reached the deadline.
    rows = [
        row
        async for row in AuditLog.objects.filter(
            action=AuditLog.Action.IDLE_TIMEOUT, user=agent_a
        ).values("ip_address", "user_agent", "detail")
    ]
    assert rows == [
        {
            "ip_address": "192.0.2.10",
            "user_agent": "TestBrowser/1.0",
            "detail": {"via": "websocket"},
        }
    ]
    response = await sync_to_async(client.get)(reverse("municipality_list"))
    assert response.status_code == 302
    for comm in (phone, console):
        await comm.disconnect()


def test_background_refreshes_do_not_count_as_activity(login, agent_a):
    client = login(agent_a)
    client.get(reverse("console"))
    seen = client.session["last_seen_at"]
    time.sleep(0.01)  # on purpose: the clock moves, so a new last-seen time would differ
    client.get(reverse("console"), HTTP_X_BACKGROUND_REFRESH="1")
    assert client.session["last_seen_at"] == seen
    client.get(reverse("console"), HTTP_X_REQUESTED_WITH="fetch")  # typing a search is activity
    assert client.session["last_seen_at"] > seen


# --- The one two-factor rule ------------------------------------------------------------------


def _session_with_unconfirmed_device(user: User) -> Client:
    client = Client()
    client.force_login(user)
    device = TOTPDevice.objects.create(user=user, name="未確認", confirmed=False)
    session = client.session
    session[DEVICE_ID_SESSION_KEY] = device.persistent_id
    session.save()
    return client


@pytest.mark.parametrize("path", ["ticket", "/ws/console/", "/ws/telephony/agent/"])
async def test_an_unconfirmed_device_has_not_passed_two_factor(path, agent_a, ticket_a):
    client = await sync_to_async(_session_with_unconfirmed_device)(agent_a)
    if path == "ticket":
        path = f"/ws/tickets/{ticket_a.pk}/presence/"
    headers = [
        (b"origin", b"http://testserver"),
        (b"host", b"testserver"),
        (b"cookie", _cookie(client).encode()),
    ]
    comm = WebsocketCommunicator(application, path, headers=headers)
    accepted, code = await comm.connect(timeout=5)
    # The ticket consumers accept, then close with the code; the phone refuses outright.
    assert (await closed_for_session(comm)) if accepted else code == 4403
    response = await sync_to_async(client.get)(reverse("console"))
    assert response.status_code == 302 and response.url == reverse("two_factor")
