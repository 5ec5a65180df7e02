"""Every page carries the Content-Security-Policy, and no template needs inline code under it."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from django.urls import get_resolver

from tests.test_access_every_url import _url, _walk, city_a_records  # noqa: F401 (a fixture)

pytestmark = pytest.mark.django_db

TEMPLATES = Path(__file__).resolve().parents[1] / "templates"
# Responses a walk should not trigger: ending the session, or the API (JSON, not pages).
SKIP = {"logout"}


def policy(response) -> dict[str, list[str]]:
    header = response.get("Content-Security-Policy", "")
    directives = (part.split() for part in header.split(";") if part.strip())
    return {parts[0]: parts[1:] for parts in directives}


def assert_strict(response, url: str) -> None:
    csp = policy(response)
    assert csp, f"{url} has no Content-Security-Policy"
    assert csp["default-src"] == ["'self'"]
    assert csp["script-src"] == ["'self'"], url
    assert csp["style-src"] == ["'self'"], url
    assert csp["img-src"] == ["'self'", "data:"]
    assert csp["connect-src"][0] == "'self'"
    assert csp["frame-ancestors"] == ["'none'"]
    assert csp["form-action"] == ["'self'"]
    assert csp["base-uri"] == ["'none'"]
    assert csp["object-src"] == ["'none'"]
    # The headers that were there before stay.
    assert response["X-Frame-Options"] == "DENY"
    assert response["X-Content-Type-Options"] == "nosniff"
    assert response["Referrer-Policy"] == "same-origin"


@pytest.mark.parametrize(
    "who", ["anonymous", "agent_a", "supervisor", "operator_admin", "city_official_a"]
)
def test_every_page_carries_the_policy(client, login, request, who):
    records = request.getfixturevalue("city_a_records")
    if who != "anonymous":
        client = login(request.getfixturevalue(who))
    pages = 0
    for route, name in _walk(get_resolver().url_patterns):
        try:
            url = _url(route, records)
        except AssertionError:  # a parameter no record names (format suffixes): the plain route
            continue
        if url is None or name in SKIP:
            continue
        response = client.get(url)
        if response.get("Content-Type", "").startswith("text/html"):
            assert_strict(response, url)
            pages += response.status_code == 200
    assert pages >= (1 if who == "anonymous" else 5), f"{who} saw only {pages} pages"


def test_websockets_of_the_pages_own_host_may_connect(login, agent_a):
    response = login(agent_a).get("/console/", HTTP_HOST="localhost:8000")
    assert policy(response)["connect-src"] == [
        "'self'",
        "ws://localhost:8000",
        "wss://localhost:8000",
    ]


def test_the_voice_sdk_origin_is_allowed_only_where_configured(login, agent_a, settings):
    settings.TELEPHONY_VOICE_SDK_URL = "https://sdk.example.com/voice/2.12/twilio.min.js"
    csp = policy(login(agent_a).get("/console/"))
    assert csp["script-src"] == ["'self'", "https://sdk.example.com"]
    assert "wss://*.twilio.com" in csp["connect-src"]


def test_the_enrolment_qr_code_is_an_allowed_image(client, login, operator_admin, agent_a):
    from tests.conftest import PASSWORD
    from tests.crm.test_enrolment import _issue

    # Enrolment is only by a link an operator admin issues.
    link = _issue(login(operator_admin), agent_a)
    client.post("/login/", {"username": agent_a.username, "password": PASSWORD})
    page = client.get(link)
    assert page.status_code == 200
    qr = re.search(r'<img src="([^"]+)" alt="二要素認証', page.content.decode())
    assert qr and qr.group(1).startswith("data:image/")
    assert "data:" in policy(page)["img-src"]


def test_django_debug_pages_stay_readable_in_development_only(client, settings):
    assert policy(client.get("/no-such-page/"))
    settings.DEBUG = True
    assert not policy(client.get("/no-such-page/"))


INLINE_SCRIPT = re.compile(r"<script(?![^>]*\bsrc=)[^>]*>", re.IGNORECASE)
INLINE_HANDLER = re.compile(r"<[^>]*\son[a-z]+\s*=", re.IGNORECASE)
INLINE_STYLE = re.compile(r"<style\b|<[^>]*\sstyle\s*=", re.IGNORECASE)


def test_templates_have_no_inline_script_handler_or_style():
    offenders = []
    for path in sorted(TEMPLATES.rglob("*.html")):
        text = path.read_text(encoding="utf-8")
        for pattern in (INLINE_SCRIPT, INLINE_HANDLER, INLINE_STYLE):
            offenders += [
                f"{path.relative_to(TEMPLATES)}: {m.group(0)}" for m in pattern.finditer(text)
            ]
    assert offenders == []
