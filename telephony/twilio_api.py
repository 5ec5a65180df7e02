"""The Twilio boundary: request signatures, webhook URLs, and the REST client."""

from __future__ import annotations

import logging
import re
from functools import wraps
from urllib.parse import urlencode

import requests
from django.conf import settings
from django.http import HttpRequest, HttpResponse, HttpResponseForbidden
from django.urls import reverse
from django.utils.module_loading import import_string
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST
from twilio.request_validator import RequestValidator
from twilio.rest import Client

logger = logging.getLogger("telephony.webhooks")


def public_url(name: str, **query: object) -> str:
    """Absolute URL of one of our webhooks as Twilio reaches it (behind the TLS proxy)."""
    url = settings.TWILIO_PUBLIC_BASE_URL.rstrip("/") + reverse(f"telephony:{name}")
    if query:
        url += "?" + urlencode({k: v for k, v in query.items() if v is not None})
    return url


def signed_url_for(request: HttpRequest) -> str:
    # Twilio signs the URL it called: the public one, not what the proxy forwarded to us.
    return settings.TWILIO_PUBLIC_BASE_URL.rstrip("/") + request.get_full_path()


def twilio_webhook(view):
    """POST only, CSRF-exempt (Twilio cannot hold a CSRF token), X-Twilio-Signature required."""

    @wraps(view)
    def wrapper(request: HttpRequest, *args, **kwargs) -> HttpResponse:
        token = settings.TWILIO_AUTH_TOKEN
        signature = request.headers.get("X-Twilio-Signature", "")
        url = signed_url_for(request)
        if (
            not token
            or not signature
            or not RequestValidator(token).validate(url, request.POST, signature)
        ):
            logger.warning(
                "Rejected Twilio webhook with %s signature: %s from %s",
                "a wrong" if signature else "no",
                url,
                request.META.get("REMOTE_ADDR"),
            )
            return HttpResponseForbidden("invalid signature")
        return view(request, *args, **kwargs)

    return csrf_exempt(require_POST(wrapper))


def rest_client() -> Client:
    """Twilio REST client; TWILIO_HTTP_CLIENT swaps the HTTP transport (proxies, tests)."""
    http_client = None
    if settings.TWILIO_HTTP_CLIENT:
        http_client = import_string(settings.TWILIO_HTTP_CLIENT)()
    return Client(settings.TWILIO_ACCOUNT_SID, settings.TWILIO_AUTH_TOKEN, http_client=http_client)


def rest_configured() -> bool:
    """Whether real REST credentials are set (not the development placeholders)."""
    return bool(
        settings.TWILIO_AUTH_TOKEN
        and settings.TWILIO_ACCOUNT_SID != "AC" + "0" * 32
        and settings.TWILIO_AUTH_TOKEN != "dev-only-twilio-auth-token"  # noqa: S105
    )


RECORDING_SID = re.compile(r"RE[0-9a-f]{32}")


def recording_media(recording_sid: str, *, byte_range: str = "") -> requests.Response:
    """A recording's audio (MP3), streamed from Twilio's REST API with our account's credentials.

    The URL is built from the SID, never taken from a webhook's RecordingUrl, so a request can
    only ever reach our own account's recordings. ``byte_range`` passes an HTTP Range through,
    so the browser's player can seek.
    """
    if not RECORDING_SID.fullmatch(recording_sid):
        raise ValueError(f"not a recording SID: {recording_sid!r}")
    base = getattr(settings, "TWILIO_API_BASE_URL", "https://api.twilio.com").rstrip("/")
    url = f"{base}/2010-04-01/Accounts/{settings.TWILIO_ACCOUNT_SID}/Recordings/{recording_sid}.mp3"
    return requests.get(
        url,
        auth=(settings.TWILIO_ACCOUNT_SID, settings.TWILIO_AUTH_TOKEN),
        headers={"Range": byte_range} if byte_range else {},
        stream=True,
        timeout=(5, 30),
    )


def voice_access_token(identity: str) -> str | None:
    """A token for the browser softphone (Twilio Voice JS SDK), if an API key is configured."""
    if not (
        settings.TWILIO_API_KEY_SID
        and settings.TWILIO_API_KEY_SECRET
        and settings.TWILIO_TWIML_APP_SID
    ):
        return None
    from twilio.jwt.access_token import AccessToken
    from twilio.jwt.access_token.grants import VoiceGrant

    token = AccessToken(
        settings.TWILIO_ACCOUNT_SID,
        settings.TWILIO_API_KEY_SID,
        settings.TWILIO_API_KEY_SECRET,
        identity=identity,
        ttl=3600,
    )
    token.add_grant(
        VoiceGrant(outgoing_application_sid=settings.TWILIO_TWIML_APP_SID, incoming_allow=True)
    )
    return token.to_jwt()
