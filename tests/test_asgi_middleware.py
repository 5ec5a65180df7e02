"""The middleware stack under ASGI, as the production server runs it: Django's own handler, every
middleware async-capable, and the checks still applied to signed-in pages."""

from __future__ import annotations

import time

import pytest
from asgiref.sync import iscoroutinefunction
from channels.db import database_sync_to_async
from channels.testing import HttpCommunicator
from django.conf import settings
from django.http import HttpResponse
from django.test import Client, override_settings
from django.urls import reverse
from django.utils.module_loading import import_string

from config.asgi import application
from crm.models import AuditLog
from tests.asgi_stream import asgi_get, body_messages


@pytest.mark.parametrize("path", settings.MIDDLEWARE)
def test_every_middleware_runs_on_the_event_loop_under_asgi(path):
    # A sync-only middleware makes Django's async stack cross into a thread and back around it
    # on every request, webhooks included.
    middleware = import_string(path)
    assert getattr(middleware, "async_capable", False)

    async def view(request):
        return HttpResponse()

    assert iscoroutinefunction(middleware(view))


async def get(path: str, cookie: str = "") -> dict:
    headers = [(b"host", b"testserver")]
    if cookie:
        headers.append((b"cookie", cookie.encode()))
    communicator = HttpCommunicator(application, "GET", path, headers=headers)
    response = await communicator.get_response(timeout=10)
    await communicator.wait(timeout=10)
    response["headers"] = {k.decode().lower(): v.decode() for k, v in response["headers"]}
    return response


def session_cookie(client: Client) -> str:
    return f"{settings.SESSION_COOKIE_NAME}={client.cookies[settings.SESSION_COOKIE_NAME].value}"


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
async def test_static_files_are_served_with_the_policy_through_the_asgi_app():
    static = f"/{settings.STATIC_URL.strip('/')}/js/"
    messages = await asgi_get(static + "console.js", cookie="")
    start = messages[0]
    assert start["status"] == 200
    headers = {k.decode().lower(): v.decode() for k, v in start["headers"]}
    assert "default-src 'self'" in headers["content-security-policy"]
    assert b"".join(m.get("body", b"") for m in body_messages(messages))
    missing = await asgi_get(static + "no-such-file.js", cookie="")
    assert missing[0]["status"] == 404


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
async def test_operator_staff_without_totp_are_sent_to_it_through_the_asgi_app(agent_a):
    client = Client()
    await database_sync_to_async(client.force_login)(agent_a)
    page = await get(reverse("console"), session_cookie(client))
    assert page["status"] == 302
    assert page["headers"]["location"] == reverse("two_factor")


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
@override_settings(SESSION_IDLE_TIMEOUT_MINUTES=30)
async def test_idle_session_is_cut_through_the_asgi_app(city_official_b, monkeypatch):
    client = Client()
    await database_sync_to_async(client.force_login)(city_official_b)
    cookie = session_cookie(client)
    assert (await get(reverse("municipality_list"), cookie))["status"] == 200
    real_time = time.time
    monkeypatch.setattr(time, "time", lambda: real_time() + 31 * 60)
    cut = await get(reverse("municipality_list"), cookie)
    assert cut["status"] == 302
    assert cut["headers"]["location"].startswith(reverse("login"))
    assert await database_sync_to_async(
        AuditLog.objects.filter(action=AuditLog.Action.IDLE_TIMEOUT, user=city_official_b).exists
    )()
