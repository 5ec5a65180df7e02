"""The core's pushes (POST /core/feed/, signed, no session) and the supervisors' list of 保留
changes with a retry button."""

from __future__ import annotations

import json
from functools import wraps

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from crm.access import is_supervisor
from donations_sync import feed, selectors


@csrf_exempt
@require_POST
def core_feed_push(request: HttpRequest) -> HttpResponse:
    body = request.body
    if not feed.push_signature_valid(
        body=body,
        timestamp=request.headers.get(feed.TIMESTAMP_HEADER, ""),
        signature=request.headers.get(feed.SIGNATURE_HEADER, ""),
    ):
        return JsonResponse({"error": "invalid signature"}, status=401)
    status, answer = feed.push_receive(body=body)
    return JsonResponse(answer, status=status)


@csrf_exempt
@require_POST
def core_outbox_callback(request: HttpRequest) -> HttpResponse:
    """The core's answers to the decisions we sent (changes of type "decision", README)."""
    body = request.body
    if not feed.callback_signature_valid(
        body=body,
        timestamp=request.headers.get(feed.TIMESTAMP_HEADER, ""),
        signature=request.headers.get(feed.SIGNATURE_HEADER, ""),
    ):
        return JsonResponse({"error": "invalid signature"}, status=401)
    status, answer = feed.push_receive(body=body, only_kind="decision")
    return JsonResponse(answer, status=status)


def supervisor_required(view):
    @login_required
    @wraps(view)
    def wrapper(request: HttpRequest, *args, **kwargs):
        if not is_supervisor(request.user):
            raise PermissionDenied("監督者のみが利用できます。")
        return view(request, *args, **kwargs)

    return wrapper


@supervisor_required
def core_feed_quarantine(request: HttpRequest) -> HttpResponse:
    rows = [
        (
            change,
            json.dumps(change.payload, ensure_ascii=False, indent=2)
            if change.payload is not None
            else change.raw[:2000],
        )
        for change in selectors.core_changes_quarantined(request.user)[:200]
    ]
    return render(request, "donations_sync/core_feed_quarantine.html", {"rows": rows})


@supervisor_required
@require_POST
def core_feed_retry(request: HttpRequest, change_id: int) -> HttpResponse:
    change = get_object_or_404(selectors.core_changes_quarantined(request.user), pk=change_id)
    change = feed.core_change_retry(actor=request.user, change=change, request=request)
    if change.outcome == change.Outcome.QUARANTINED:
        messages.error(request, f"再処理しましたが保留のままです: {change.reason}")
    else:
        messages.success(request, f"再処理しました（{change.get_outcome_display()}）。")
    return redirect("core_feed_quarantine")
