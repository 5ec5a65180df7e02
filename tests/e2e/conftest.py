"""Browser tests against the real ASGI app.

``live_server_url``: a daphne process serving ``tests.e2e.asgi`` (HTTP + websockets) on the test
database. Tests that use it must commit their data so the server process sees it:
``@pytest.mark.django_db(transaction=True, serialized_rollback=True)`` (serialized rollback puts
back the migrations' seed data — categories, starter 定型文 — after the flush).

``page``: a Playwright Chromium page in a fresh context (cookies not shared between tests).
``browser_login(page, user)``: logs in through the real log-in form, computing the TOTP code
from the user's device key for operator staff.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from django.conf import settings

from tests.conftest import PASSWORD
from tests.processes import database_url, free_port

ROOT = Path(__file__).resolve().parents[2]
SERVER_LOG = Path(tempfile.gettempdir()) / f"fz-e2e-server-{os.getpid()}.log"
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


class LiveServer:
    """A daphne process serving ``tests.e2e.asgi`` on the test database, on a fixed port, so a
    test can kill it (as a crash would) and start it again under an open page."""

    def __init__(self, database_url: str, port: int | None = None) -> None:
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.env = {
            **os.environ,
            "DATABASE_URL": database_url,
            "ALLOWED_HOSTS": "127.0.0.1,localhost",
            "EMAIL_BACKEND": "django.core.mail.backends.locmem.EmailBackend",
            "DJANGO_SETTINGS_MODULE": "config.settings",
            "PYTHONPATH": str(ROOT),
        }
        self.process: subprocess.Popen | None = None
        self.log = None

    def start(self) -> None:
        self.log = open(SERVER_LOG, "ab")  # noqa: SIM115 - kept open for the process
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "daphne",
                "-b",
                "127.0.0.1",
                "-p",
                str(self.port),
                "tests.e2e.asgi:application",
            ],
            cwd=ROOT,
            env=self.env,
            stdout=self.log,
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + 60
        while True:
            try:
                with urllib.request.urlopen(f"{self.url}/healthz", timeout=2) as response:
                    if response.status == 200:
                        return
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                pass
            if self.process.poll() is not None or time.monotonic() > deadline:
                self.kill()
                raise RuntimeError("live server did not start:\n" + SERVER_LOG.read_text()[-3000:])
            time.sleep(0.2)

    def kill(self) -> None:
        """Gone at once, without closing anything properly (as a crashed process)."""
        if self.process is not None:
            self.process.kill()
            self.process.wait(timeout=10)
            self.process = None
        if self.log is not None:
            self.log.close()
            self.log = None

    def stop(self) -> None:
        if self.process is not None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                pass
        self.kill()


def _test_database_url() -> str:
    from django.db import connection

    if connection.vendor != "postgresql":
        pytest.skip("browser tests need PostgreSQL: the server process shares the test database")
    return database_url(connection.settings_dict)


@pytest.fixture(scope="session")
def live_server_url(django_db_setup, django_db_blocker) -> Iterator[str]:
    server = LiveServer(_test_database_url())
    server.start()
    try:
        yield server.url
    finally:
        server.stop()


@pytest.fixture
def restartable_live_server(django_db_setup, django_db_blocker) -> Iterator[LiveServer]:
    """A server of this test's own (not the session's shared one), which it may kill and start."""
    server = LiveServer(_test_database_url())
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(autouse=True)
def reference_data(transactional_db):
    """The rows migrations put in (site, content types, ticket categories, starter 定型文).

    Serialized rollback restores them after an earlier transactional test's flush, but not in
    every sequence of async and browser tests; browser tests must not depend on the order in
    which they run, so they put back what they need themselves (all idempotent).
    """
    import importlib

    from django.apps import apps
    from django.contrib.contenttypes.models import ContentType
    from django.contrib.sites.models import Site

    from knowledge.services import seed_starter_content

    ContentType.objects.clear_cache()
    Site.objects.get_or_create(
        id=settings.SITE_ID, defaults={"domain": "example.com", "name": "example.com"}
    )
    importlib.import_module("tickets.migrations.0002_categories_and_queues").seed(apps, None)
    seed_starter_content()


@pytest.fixture(scope="module")
def browser():
    # Playwright's sync API runs an event loop in this thread; Django would then refuse the
    # test's own (synchronous) ORM calls, which are safe here. Only while the browser lives.
    previous = os.environ.get("DJANGO_ALLOW_ASYNC_UNSAFE")
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    from playwright.sync_api import sync_playwright

    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
            yield browser
            browser.close()
    finally:
        if previous is None:
            os.environ.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)
        else:
            os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = previous


@pytest.fixture
def csp_violations(page) -> list[str]:
    """What Chromium reported on the page's console as refused by the Content-Security-Policy."""
    refused: list[str] = []

    def on_console(message) -> None:
        if "Content Security Policy" in message.text:
            refused.append(f"{message.location.get('url', '')}: {message.text}")

    page.on("console", on_console)
    return refused


@pytest.fixture
def page(browser, live_server_url):
    context = browser.new_context(
        base_url=live_server_url, locale="ja-JP", timezone_id="Asia/Tokyo"
    )
    context.set_default_timeout(15_000)
    page = context.new_page()
    yield page
    context.close()


def totp_code(user) -> str:
    """The current code of the user's confirmed device, as the authenticator app shows it."""
    from django_otp.oath import TOTP
    from django_otp.plugins.otp_totp.models import TOTPDevice

    device = TOTPDevice.objects.get(user=user, confirmed=True)
    totp = TOTP(device.bin_key, device.step, device.t0, device.digits, device.drift)
    return f"{totp.token():0{device.digits}d}"


@pytest.fixture
def browser_login():
    def _login(page, user, password: str = PASSWORD) -> None:
        from django_otp.plugins.otp_totp.models import TOTPDevice

        if user.is_operator_staff:
            TOTPDevice.objects.get_or_create(user=user, defaults={"name": "e2e", "confirmed": True})
        page.goto("/login/")
        page.fill("input[name=username]", user.username)
        page.fill("input[name=password]", password)
        with page.expect_navigation():
            page.click("main button[type=submit]")
        if user.is_operator_staff:
            page.wait_for_url("**/2fa/**")
            page.fill("input[name=token]", totp_code(user))
            with page.expect_navigation():
                page.click("main button[type=submit]")
        assert "/login/" not in page.url and "/2fa/" not in page.url, (
            f"{user}: {page.url}\n{page.inner_text('main')}"
        )

    return _login
