"""Operator admin fixtures: a signed-in admin (two-factor passed) and Twilio's signing."""

from __future__ import annotations

import pytest
from django.test import Client
from twilio.request_validator import RequestValidator

from tests.conftest import login_as

PUBLIC_BASE = "https://calls.example.jp"
AUTH_TOKEN = "test-twilio-auth-token"


@pytest.fixture
def admin(operator_admin) -> Client:
    return login_as(Client(), operator_admin)


@pytest.fixture
def twilio_signing(settings):
    settings.TWILIO_PUBLIC_BASE_URL = PUBLIC_BASE
    settings.TWILIO_AUTH_TOKEN = AUTH_TOKEN
    settings.TELEPHONY_SAY_VOICE = ""


def signed_post(client: Client, path: str, params: dict[str, str]):
    """POST as Twilio does: the public URL signed with the account's auth token."""
    signature = RequestValidator(AUTH_TOKEN).compute_signature(PUBLIC_BASE + path, params)
    return client.post(path, params, HTTP_X_TWILIO_SIGNATURE=signature)


@pytest.fixture(autouse=True)
def celery_eager():
    from config.celery import app

    previous = app.conf.task_always_eager
    app.conf.task_always_eager = True
    yield
    app.conf.task_always_eager = previous
