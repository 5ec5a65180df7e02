"""Webhooks and pages through the ASGI application itself, as the production server runs them."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from urllib.parse import urlencode

import pytest
from channels.db import database_sync_to_async
from channels.testing import HttpCommunicator
from django.conf import settings
from django.test import Client
from django.urls import reverse

from config.asgi import application
from telephony.models import Call
from tests.conftest import login_as
from tests.telephony.conftest import PUBLIC_BASE, TwilioStandIn

pytestmark = [pytest.mark.django_db(transaction=True, serialized_rollback=True)]


async def post(path: str, params: dict[str, str], headers: list[tuple[bytes, bytes]]):
    body = urlencode(params).encode()
    communicator = HttpCommunicator(
        application,
        "POST",
        path,
        body=body,
        headers=[
            (b"host", b"testserver"),
            (b"content-type", b"application/x-www-form-urlencoded"),
            *headers,
        ],
    )
    return await finished(communicator)


async def finished(communicator: HttpCommunicator) -> dict:
    response = await communicator.get_response(timeout=10)
    # Let the request finish (request_finished returns its database connection).
    await communicator.wait(timeout=10)
    return response


async def test_signed_inbound_webhook_is_answered_through_the_asgi_app(line_a, open_hours):
    path = reverse("telephony:voice_inbound")
    params = {"CallSid": "CA" + "7" * 32, "From": "+819012345678", "To": line_a.e164}
    signature = TwilioStandIn().validator.compute_signature(PUBLIC_BASE + path, params)
    response = await post(path, params, [(b"x-twilio-signature", signature.encode())])
    assert response["status"] == 200
    assert ET.fromstring(response["body"]).find("Gather") is not None
    assert await database_sync_to_async(Call.objects.filter(call_sid=params["CallSid"]).exists)()

    forged = await post(path, params, [(b"x-twilio-signature", b"bm90IGEgc2lnbmF0dXJl")])
    assert forged["status"] == 403


async def test_pages_keep_sessions_and_csrf_through_the_asgi_app(agent_a):
    client = await database_sync_to_async(lambda: login_as(Client(), agent_a))()
    cookie = f"{settings.SESSION_COOKIE_NAME}={client.cookies[settings.SESSION_COOKIE_NAME].value}"
    communicator = HttpCommunicator(
        application,
        "GET",
        reverse("telephony:agent"),
        headers=[(b"host", b"testserver"), (b"cookie", cookie.encode())],
    )
    page = await finished(communicator)
    assert page["status"] == 200
    assert "電話" in page["body"].decode()
    # A POST without a CSRF token is still refused.
    refused = await post(
        reverse("telephony:presence_update"),
        {"state": "available"},
        [(b"cookie", cookie.encode())],
    )
    assert refused["status"] == 403
