"""Shared fixtures: two cities, and users who may or may not see each."""

from __future__ import annotations

import pytest
from asgiref.sync import async_to_sync
from django.test import Client
from django_otp import DEVICE_ID_SESSION_KEY
from django_otp.plugins.otp_totp.models import TOTPDevice

from crm.models import User
from tests.factories import MunicipalityFactory, UserFactory
from tests.service_skips import pytest_runtest_makereport  # noqa: F401  (skips that must fail)

PASSWORD = "Passw0rd!x"


@pytest.fixture
def city_a(db):
    return MunicipalityFactory(
        code="012033", name="小樽市", name_kana="オタルシ", prefecture="北海道"
    )


@pytest.fixture
def city_b(db):
    return MunicipalityFactory(
        code="342076", name="福山市", name_kana="フクヤマシ", prefecture="広島県"
    )


@pytest.fixture
def agent_a(city_a):
    return UserFactory(username="agent_a", role=User.Role.AGENT, municipalities=[city_a])


@pytest.fixture
def supervisor(city_a, city_b):
    return UserFactory(
        username="supervisor", role=User.Role.SUPERVISOR, municipalities=[city_a, city_b]
    )


@pytest.fixture
def operator_admin(db):
    return UserFactory(username="opadmin", role=User.Role.OPERATOR_ADMIN)


@pytest.fixture
def city_official_b(city_b):
    return UserFactory(username="city_b", role=User.Role.CITY_OFFICIAL, municipalities=[city_b])


@pytest.fixture
def city_official_a(city_a):
    return UserFactory(username="city_a", role=User.Role.CITY_OFFICIAL, municipalities=[city_a])


def login_as(client: Client, user: User) -> Client:
    """Log in as a person would have: operator staff also pass TOTP for this session."""
    client.force_login(user)
    if user.is_operator_staff:
        device, _ = TOTPDevice.objects.get_or_create(
            user=user, defaults={"name": "test", "confirmed": True}
        )
        session = client.session
        session[DEVICE_ID_SESSION_KEY] = device.persistent_id
        session.save()
    return client


def response_bytes(response) -> bytes:
    """A test client response's whole body, also of a streaming response with an async iterator."""
    if not getattr(response, "streaming", False):
        return response.content
    if response.is_async:

        async def collect() -> bytes:
            return b"".join([part async for part in response.streaming_content])

        return async_to_sync(collect)()
    return b"".join(response.streaming_content)


@pytest.fixture
def login():
    def _login(user: User, client: Client | None = None) -> Client:
        return login_as(client or Client(), user)

    return _login


def pytest_collection_modifyitems(config, items):
    """Browser tests run last: Playwright's sync API keeps an event loop running in the main
    thread for the session's browser, which async tests (Channels) cannot share."""
    items.sort(key=lambda item: item.get_closest_marker("e2e") is not None)


def _django_db_options(
    transaction=False,
    reset_sequences=False,
    databases=None,
    serialized_rollback=False,
    available_apps=None,
):
    return transaction or reset_sequences, serialized_rollback


def pytest_runtest_setup(item):
    """A transactional test must also ask for serialized_rollback, or it breaks the next one.

    After a transactional test Django flushes every table; without serialized_rollback the flush
    emits post_migrate, which recreates the content types and permissions at once. A following
    test with serialized_rollback then loads its snapshot of the migrated database on top of
    them and fails with a duplicate key on django_content_type (admin, logentry), and migrations'
    data rows (wrap-up codes, ticket categories) would be gone for every later test. Refused
    here, before the test touches the database, so only the offending test fails."""
    marker = item.get_closest_marker("django_db")
    transactional, serialized = (
        _django_db_options(*marker.args, **marker.kwargs) if marker else (False, False)
    )
    fixtures = getattr(item, "fixturenames", ())
    transactional = transactional or "transactional_db" in fixtures or "live_server" in fixtures
    serialized = serialized or "django_db_serialized_rollback" in fixtures
    if transactional and not serialized:
        pytest.fail(
            "transactional test without serialized_rollback: use "
            "@pytest.mark.django_db(transaction=True, serialized_rollback=True)",
            pytrace=False,
        )


@pytest.fixture(autouse=True)
def _fresh_content_type_cache():
    """Transactional tests flush the database, and the post-flush signal recreates content
    types under new ids; helpdesk's Queue.save looks one up for its per-queue permission, so a
    cached id from before the flush would point at nothing."""
    from django.contrib.contenttypes.models import ContentType

    ContentType.objects.clear_cache()
    yield


@pytest.fixture(autouse=True)
def _empty_cache():
    """Each test starts from an empty cache: with Redis (CI) ``clear`` empties the whole cache
    database, so lockout counters, idle markers, heartbeats and version stamps of one test cannot
    decide another's outcome."""
    from django.core.cache import cache

    cache.clear()
    yield


@pytest.fixture(autouse=True)
def _fast_password_hashing(request, settings):
    """The production hasher's cost is not what tests measure. Browser tests keep it: their
    server process only knows the project's hashers."""
    if request.node.get_closest_marker("e2e") is None:
        settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
