"""Idle session cut-off (Nakano 別紙3 4(2)), the TOTP requirement for operator staff, and the
pages' Content-Security-Policy."""

from __future__ import annotations

import time
from urllib.parse import urlsplit

from asgiref.sync import iscoroutinefunction, markcoroutinefunction, sync_to_async
from django.conf import settings
from django.contrib import messages
from django.contrib.auth import logout
from django.core.exceptions import DisallowedHost
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect
from django.urls import reverse
from whitenoise.middleware import WhiteNoiseMiddleware

from crm.access import passed_two_factor
from crm.audit import audit_record
from crm.models import AuditLog
from crm.sessions import LAST_SEEN_KEY, idle_deadline, is_background


def _wants_json(request: HttpRequest) -> bool:
    return request.path.startswith("/api/")


class _AsyncCapable:
    """Middleware that runs in whichever mode Django builds the stack (sync under WSGI and the
    test client, async under ASGI): under ASGI a sync-only middleware would make Django cross
    between the event loop and the request's thread around it, on every request."""

    sync_capable = True
    async_capable = True

    def __init__(self, get_response) -> None:
        self.get_response = get_response
        self.async_mode = iscoroutinefunction(get_response)
        if self.async_mode:
            markcoroutinefunction(self)

    def __call__(self, request: HttpRequest):
        if self.async_mode:
            return self.__acall__(request)
        return self.call(request)

    def call(self, request: HttpRequest) -> HttpResponse:
        raise NotImplementedError

    async def __acall__(self, request: HttpRequest) -> HttpResponse:
        raise NotImplementedError


class _SignedInCheck(_AsyncCapable):
    """A check on the signed-in user before the view. Requests without a session (Twilio's
    webhooks, static files) cannot be signed in, so under ASGI they pass without leaving the
    event loop; the others are checked in the request's thread (sessions and users are read
    from the database synchronously)."""

    def check(self, request: HttpRequest) -> HttpResponse | None:
        """A response that refuses the request, or None to let it through."""
        raise NotImplementedError

    def call(self, request: HttpRequest) -> HttpResponse:
        return self.check(request) or self.get_response(request)

    async def __acall__(self, request: HttpRequest) -> HttpResponse:
        if request.session.session_key is not None:
            refused = await sync_to_async(self.check, thread_sensitive=True)(request)
            if refused is not None:
                return refused
        return await self.get_response(request)


class IdleTimeoutMiddleware(_SignedInCheck):
    """Ends a session idle past SESSION_IDLE_TIMEOUT_MINUTES. Background refreshes are refused
    like any request once it has ended, but do not count as activity (crm/sessions.py)."""

    def check(self, request: HttpRequest) -> HttpResponse | None:
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
        return None


class RequireTwoFactorMiddleware(_SignedInCheck):
    """Operator staff who have not passed TOTP in this session may only reach the 2FA pages
    (verification, and enrolment with a link under the same prefix)."""

    ALLOWED_URL_NAMES = ("logout", "login")
    ALLOWED_PREFIX_URL_NAMES = ("two_factor",)

    def __init__(self, get_response) -> None:
        super().__init__(get_response)
        self._allowed_paths: tuple[str, ...] | None = None
        self._allowed_prefixes: tuple[str, ...] = ()

    def check(self, request: HttpRequest) -> HttpResponse | None:
        user = request.user
        if (
            user.is_authenticated
            and not passed_two_factor(user, request.session)
            and not self._is_allowed(request.path)
        ):
            if _wants_json(request):
                return JsonResponse({"detail": "二要素認証が必要です。"}, status=403)
            return redirect(reverse("two_factor"))
        return None

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


class ContentSecurityPolicyMiddleware(_AsyncCapable):
    """Content-Security-Policy on every response (pages, and files a browser might render)."""

    def call(self, request: HttpRequest) -> HttpResponse:
        return self._add_policy(request, self.get_response(request))

    async def __acall__(self, request: HttpRequest) -> HttpResponse:
        return self._add_policy(request, await self.get_response(request))

    @staticmethod
    def _add_policy(request: HttpRequest, response: HttpResponse) -> HttpResponse:
        if settings.DEBUG and response.status_code >= 400:
            return response  # Django's debug pages (development only) are built on inline code
        if "Content-Security-Policy" not in response:
            response["Content-Security-Policy"] = content_security_policy(request)
        return response


class StaticFilesMiddleware(WhiteNoiseMiddleware):
    """WhiteNoise (static files from the ASGI process), async-capable: WhiteNoise's own
    middleware is sync-only, so under ASGI every request, webhooks included, would cross into a
    thread and back around it. Here only requests under STATIC_URL leave the event loop, to look
    the file up and open it as WhiteNoise does."""

    sync_capable = True
    async_capable = True

    def __init__(self, get_response=None, settings=settings) -> None:
        super().__init__(get_response, settings=settings)
        self.async_mode = iscoroutinefunction(get_response)
        if self.async_mode:
            markcoroutinefunction(self)

    def __call__(self, request: HttpRequest):
        if self.async_mode:
            return self.__acall__(request)
        return super().__call__(request)

    async def __acall__(self, request: HttpRequest) -> HttpResponse:
        if request.path_info.startswith(self.static_prefix):
            response = await sync_to_async(self._serve_file, thread_sensitive=True)(request)
            if response is not None:
                return response
        return await self.get_response(request)

    def _serve_file(self, request: HttpRequest) -> HttpResponse | None:
        path = request.path_info
        static_file = self.find_file(path) if self.autorefresh else self.files.get(path)
        return None if static_file is None else self.serve(static_file, request)
