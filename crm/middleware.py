"""Idle session cut-off (Nakano 別紙3 4(2)), the TOTP requirement for operator staff, and the
pages' Content-Security-Policy."""

from __future__ import annotations

import time
from urllib.parse import urlsplit

from django.conf import settings
from django.contrib import messages
from django.contrib.auth import logout
from django.core.exceptions import DisallowedHost
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect
from django.urls import reverse

from crm.access import passed_two_factor
from crm.audit import audit_record
from crm.models import AuditLog
from crm.sessions import LAST_SEEN_KEY, idle_deadline, is_background


def _wants_json(request: HttpRequest) -> bool:
    return request.path.startswith("/api/")


class IdleTimeoutMiddleware:
    """Ends a session idle past SESSION_IDLE_TIMEOUT_MINUTES. Background refreshes are refused
    like any request once it has ended, but do not count as activity (crm/sessions.py)."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if request.user.is_authenticated:
            now = time.time()
            if now > idle_deadline(request.session, since=now):
                user = request.user
                audit_record(action=AuditLog.Action.IDLE_TIMEOUT, request=request, user=user)
                # Log-out also closes this session's websockets (crm.sessions).
                logout(request)
                if _wants_json(request):
                    return JsonResponse(
                        {"detail": "セッションの有効期限が切れました。"}, status=401
                    )
                messages.info(request, "一定時間操作がなかったため、ログアウトしました。")
                return redirect(f"{reverse('login')}?next={request.path}")
            if not is_background(request) or LAST_SEEN_KEY not in request.session:
                request.session[LAST_SEEN_KEY] = now
        return self.get_response(request)


class RequireTwoFactorMiddleware:
    """Operator staff who have not passed TOTP in this session may only reach the 2FA pages
    (verification, and enrolment with a link under the same prefix)."""

    ALLOWED_URL_NAMES = ("logout", "login")
    ALLOWED_PREFIX_URL_NAMES = ("two_factor",)

    def __init__(self, get_response):
        self.get_response = get_response
        self._allowed_paths: tuple[str, ...] | None = None
        self._allowed_prefixes: tuple[str, ...] = ()

    def __call__(self, request: HttpRequest) -> HttpResponse:
        user = request.user
        if (
            user.is_authenticated
            and not passed_two_factor(user, request.session)
            and not self._is_allowed(request.path)
        ):
            if _wants_json(request):
                return JsonResponse({"detail": "二要素認証が必要です。"}, status=403)
            return redirect(reverse("two_factor"))
        return self.get_response(request)

    def _is_allowed(self, path: str) -> bool:
        if self._allowed_paths is None:
            static = settings.STATIC_URL
            self._allowed_prefixes = (
                *(reverse(name) for name in self.ALLOWED_PREFIX_URL_NAMES),
                static if static.startswith("/") else "/" + static,
            )
            self._allowed_paths = tuple(reverse(name) for name in self.ALLOWED_URL_NAMES)
        return path in self._allowed_paths or path.startswith(self._allowed_prefixes)


def content_security_policy(request: HttpRequest) -> str:
    """The pages' policy: our own scripts, styles and connections only; no inline code.

    The QR code of the TOTP enrolment is a ``data:`` image. Websockets are named for the host
    the page was served from, since older browsers do not count ws:/wss: as 'self'. The Twilio
    Voice SDK, where configured, is loaded from its own origin and signals over Twilio's hosts.
    """
    scripts = ["'self'"]
    connect = ["'self'"]
    try:
        host = request.get_host()
    except DisallowedHost:
        host = ""
    if host:
        connect += [f"ws://{host}", f"wss://{host}"]
    sdk = urlsplit(settings.TELEPHONY_VOICE_SDK_URL or "")
    if sdk.scheme and sdk.netloc:
        scripts.append(f"{sdk.scheme}://{sdk.netloc}")
        connect += ["https://*.twilio.com", "wss://*.twilio.com"]
    directives = {
        "default-src": ["'self'"],
        "script-src": scripts,
        "style-src": ["'self'"],
        "img-src": ["'self'", "data:"],
        "connect-src": connect,
        "frame-ancestors": ["'none'"],
        "form-action": ["'self'"],
        "base-uri": ["'none'"],
        "object-src": ["'none'"],
    }
    return "; ".join(f"{name} {' '.join(values)}" for name, values in directives.items())


class ContentSecurityPolicyMiddleware:
    """Content-Security-Policy on every response (pages, and files a browser might render)."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        if settings.DEBUG and response.status_code >= 400:
            return response  # Django's debug pages (development only) are built on inline code
        if "Content-Security-Policy" not in response:
            response["Content-Security-Policy"] = content_security_policy(request)
        return response
