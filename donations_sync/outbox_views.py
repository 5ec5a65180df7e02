"""The supervisors' outbox page: decisions sent to the core, dead letters with their reason,
and the retry and cancel buttons (audited)."""

from __future__ import annotations

import json

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_POST

from crm.access import chosen_municipality_id, scoped_or_404
from crm.models import Municipality
from crm.pagination import keyset_page
from donations_sync import outbox, selectors
from donations_sync.feed_views import supervisor_required
from donations_sync.models import OutboxMessage

PAGE_SIZE = 50


@supervisor_required
def outbox_list(request: HttpRequest) -> HttpResponse:
    status = request.GET.get("status", "")
    status = status if status in OutboxMessage.Status.values else ""
    kind = request.GET.get("kind", "")
    kind = kind if kind in OutboxMessage.Kind.values else ""
    municipality_id = chosen_municipality_id(request.user, request.GET.get("municipality"))
    rows = selectors.outbox_messages_visible(
        request.user, status=status, kind=kind, municipality_id=municipality_id
    )
    page = keyset_page(
        rows,
        key="created_at",
        size=PAGE_SIZE,
        after=request.GET.get("after"),
        before=request.GET.get("before"),
    )
    items = [
        {
            "message": m,
            "payload": json.dumps(m.payload, ensure_ascii=False, indent=2),
            "may_retry": m.status in (OutboxMessage.Status.DEAD, OutboxMessage.Status.PENDING),
            "may_cancel": m.status in outbox.OPEN or m.status == OutboxMessage.Status.DEAD,
        }
        for m in page
    ]
    counts = selectors.outbox_counts_by_status(request.user)
    query = "&".join(
        f"{name}={value}"
        for name, value in (
            ("status", status),
            ("kind", kind),
            ("municipality", municipality_id or ""),
        )
        if value
    )
    return render(
        request,
        "donations_sync/outbox_list.html",
        {
            "items": items,
            "page": page,
            "querystring": query,
            "status": status,
            "kind": kind,
            "municipality_id": municipality_id,
            "statuses": OutboxMessage.Status.choices,
            "kinds": OutboxMessage.Kind.choices,
            "municipalities": Municipality.objects.visible_to(request.user).order_by("code"),
            "counts": [
                (value, label, counts.get(value, 0))
                for value, label in OutboxMessage.Status.choices
            ],
        },
    )


def _back(request: HttpRequest) -> HttpResponse:
    target = request.POST.get("next", "")
    if not target.startswith(reverse("outbox_list")):
        target = reverse("outbox_list")
    return redirect(target)


@supervisor_required
@require_POST
def outbox_retry(request: HttpRequest, outbox_id: int) -> HttpResponse:
    message = scoped_or_404(OutboxMessage.objects.all(), request.user, pk=outbox_id)
    try:
        outbox.outbox_retry(actor=request.user, message=message, request=request)
    except ValidationError as error:
        messages.error(request, " ".join(error.messages))
    else:
        messages.success(request, f"送信 {message.pk} を再送します。")
    return _back(request)


@supervisor_required
@require_POST
def outbox_cancel(request: HttpRequest, outbox_id: int) -> HttpResponse:
    message = scoped_or_404(OutboxMessage.objects.all(), request.user, pk=outbox_id)
    try:
        outbox.outbox_cancel(
            actor=request.user,
            message=message,
            reason=request.POST.get("reason", ""),
            request=request,
        )
    except ValidationError as error:
        messages.error(request, " ".join(error.messages))
    else:
        messages.success(request, f"送信 {message.pk} を取り消しました。")
    return _back(request)
