"""Idle session cut-off (Nakano 別紙3 4(2)) and the TOTP requirement for operator staff."""

from __future__ import annotations

import time

from django.conf import settings
from django.contrib import messages
from django.contrib.auth import logout
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
    """Operator staff who have not passed TOTP in this session may only reach the 2FA pages."""

    ALLOWED_URL_NAMES = ("two_factor", "logout", "login")

    def __init__(self, get_response):
        self.get_response = get_response
        self._allowed_paths: tuple[str, ...] | None = None

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
            self._allowed_paths = tuple(reverse(name) for name in self.ALLOWED_URL_NAMES)
        return path in self._allowed_paths or path.startswith(
            settings.STATIC_URL
            if settings.STATIC_URL.startswith("/")
            else "/" + settings.STATIC_URL
        )
