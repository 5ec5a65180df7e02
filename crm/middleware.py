"""Idle session cut-off (Nakano 別紙3 4(2)) and the TOTP requirement for operator staff."""

from __future__ import annotations

import time

from django.conf import settings
from django.contrib import messages
from django.contrib.auth import logout
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect
from django.urls import reverse

from crm.audit import audit_record
from crm.models import AuditLog

_LAST_SEEN_KEY = "last_seen_at"


def _wants_json(request: HttpRequest) -> bool:
    return request.path.startswith("/api/")


class IdleTimeoutMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if request.user.is_authenticated:
            now = time.time()
            last_seen = request.session.get(_LAST_SEEN_KEY)
            idle_limit = settings.SESSION_IDLE_TIMEOUT_MINUTES * 60
            if last_seen is not None and now - float(last_seen) > idle_limit:
                user = request.user
                audit_record(action=AuditLog.Action.IDLE_TIMEOUT, request=request, user=user)
                logout(request)
                if _wants_json(request):
                    return JsonResponse(
                        {"detail": "セッションの有効期限が切れました。"}, status=401
                    )
                messages.info(request, "一定時間操作がなかったため、ログアウトしました。")
                return redirect(f"{reverse('login')}?next={request.path}")
            request.session[_LAST_SEEN_KEY] = now
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
            settings.TWO_FACTOR_REQUIRED
            and user.is_authenticated
            and user.is_operator_staff
            and not user.is_verified()
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
