"""Pushes to browsers leave after commit, never for a rolled-back write, and a channel layer
that is down never fails the request that caused them."""

from __future__ import annotations

import asyncio

import pytest
from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.db import transaction
from django.urls import reverse

from crm.models import AuditLog
from crm.push import push_after_commit
from tickets.models import Channel, Inquiry, RequesterType, Severity

pytestmark = [pytest.mark.django_db(transaction=True, serialized_rollback=True)]


def _listen(group: str) -> str:
    layer = get_channel_layer()
    channel = async_to_sync(layer.new_channel)()
    async_to_sync(layer.group_add)(group, channel)
    return channel


def _received(channel: str, timeout: float = 2.0) -> dict | None:
    async def receive() -> dict | None:
        try:
            return await asyncio.wait_for(get_channel_layer().receive(channel), timeout)
        except TimeoutError:
            return None

    return async_to_sync(receive)()


def test_push_leaves_after_commit_and_not_after_rollback():
    channel = _listen("push.test")
    with pytest.raises(RuntimeError), transaction.atomic():
        push_after_commit("push.test", {"type": "never.sent"})
        raise RuntimeError("the write fails")
    with transaction.atomic():
        push_after_commit("push.test", {"type": "sent"})
    assert _received(channel) == {"type": "sent"}
    # The rolled-back push never arrives after the committed one.
    assert _received(channel, timeout=0.3) is None  # waits out the timeout on purpose


@pytest.fixture
def channel_layer_down(settings):
    # Nothing listens on port 1: every send is refused.
    settings.CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "channels_redis.core.RedisChannelLayer",
            "CONFIG": {"hosts": ["redis://127.0.0.1:1/0"]},
        }
    }
    yield


def test_requests_that_push_succeed_while_the_channel_layer_is_down(
    channel_layer_down, login, city_a, agent_a
):
    client = login(agent_a)
    # A new ticket announces itself to the consoles of its municipality.
    response = client.post(
        reverse("ticket_create"),
        {
            "municipality": city_a.pk,
            "channel": Channel.PHONE,
            "requester_type": RequesterType.DONOR,
            "severity": Severity.NORMAL,
            "title": "破損の件",
        },
    )
    assert response.status_code == 302, response.context["form"].errors
    assert Inquiry.objects.filter(municipality=city_a).count() == 1
    # Log-out tells the session's sockets.
    assert client.post(reverse("logout")).status_code == 302
    assert AuditLog.objects.filter(user=agent_a).exists()
