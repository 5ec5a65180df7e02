"""The ticket list as a triage tool: built-in and saved views, sortable columns, due times,
bulk changes; the service-level targets; the provider page.

As everywhere, rows come from the user's scope (``crm.access``); a saved view or a bulk
selection only names parameters and ids, which are applied within that scope.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any
from urllib.parse import urlencode

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest, HttpResponse, QueryDict
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_POST

from crm.access import (
    call_taking_roles,
    can_write,
    is_supervisor,
    scoped_or_404,
    visible_municipality_ids,
)
from crm.models import Municipality, PersonalDataAccess, Provider, User
from crm.pagination import bounded_count, keyset_page
from crm.services import personal_data_access_record
from tickets import selectors, services
from tickets.filters import DEFAULT_SORT, SORTS, VIEW_CHOICES
from tickets.forms import SavedViewForm, SlaTargetForm
from tickets.models import Category, Inquiry, SavedView, SlaTarget, Status

TICKET_PAGE_SIZE = 50

# Statuses a bulk change may set (reopening and duplicates have their own paths).
BULK_STATUSES = [(Status.RESOLVED, Status.RESOLVED.label), (Status.CLOSED, Status.CLOSED.label)]


def _require_operator_staff(user: User) -> None:
    if not user.is_operator_staff:
        raise PermissionDenied("この画面は運営スタッフ専用です。")


def _filters_query(request: HttpRequest) -> QueryDict:
    """The filters and sort, without the page position."""
    query = request.GET.copy()
    for name in ("after", "before", "page"):
        query.pop(name, None)
    return query


def _sort_links(query: QueryDict, current: str) -> dict[str, dict[str, str]]:
    """For each sortable column: the link that sorts by it (toggling when it is the sort
    already) and its aria-sort state."""
    links = {}
    for column, default in (("created_at", "-"), ("last_activity_at", "-"), ("due", "")):
        asc, desc = column, f"-{column}"
        if current == asc:
            target, state = desc, "ascending"
        elif current == desc:
            target, state = asc, "descending"
        else:
            target, state = f"{default}{column}" if default else column, "none"
        linked = query.copy()
        linked["sort"] = target
        links[column] = {"url": "?" + linked.urlencode(), "aria": state}
    return links


def _assignees(user: User) -> list[User]:
    """Operator staff who serve any of the user's municipalities (the service checks each
    ticket's municipality again)."""
    return list(
        User.objects.filter(
            municipalities__in=visible_municipality_ids(user),
            role__in=call_taking_roles(),
            is_active=True,
        )
        .distinct()
        .order_by("username")
    )


@login_required
def ticket_list(request: HttpRequest) -> HttpResponse:
    user = request.user
    filterset = selectors.inquiry_list(request)
    sort = request.GET.get("sort", "")
    if sort not in SORTS:
        sort = DEFAULT_SORT
    column, descending = SORTS[sort]
    rows = filterset.qs
    if column == "resolution_due":
        rows = rows.filter(resolution_due__isnull=False)
    query = _filters_query(request)
    page = keyset_page(
        rows,
        key=column,
        size=TICKET_PAGE_SIZE,
        after=request.GET.get("after"),
        before=request.GET.get("before"),
        descending=descending,
    )
    selected_view = filterset.form.cleaned_data.get("view") or ""
    staff = user.is_operator_staff
    context: dict[str, Any] = {
        "form": filterset.form,
        "page": page,
        "count": bounded_count(rows),
        "querystring": query.urlencode(),
        "sort": sort,
        "sort_links": _sort_links(query, sort),
        "by_due": column == "resolution_due",
        "municipalities": Municipality.objects.visible_to(user).order_by("code"),
        "selected_municipality": filterset.form.cleaned_data.get("municipality"),
        "builtin_views": VIEW_CHOICES,
        "selected_view": selected_view,
        "categories": Category.objects.filter(active=True),
        "saved_views": SavedView.objects.filter(user=user) if staff else [],
        "save_form": SavedViewForm(initial={"query": query.urlencode()}) if staff else None,
        "bulk": staff and any(can_write(user, i.municipality_id) for i in page.rows),
    }
    if context["bulk"]:
        context["assignees"] = _assignees(user)
        context["bulk_statuses"] = BULK_STATUSES
    return render(request, "tickets/ticket_list.html", context)


def _back_to_list(request: HttpRequest) -> HttpResponse:
    """To the list as it was: ``back`` is the list's query string, never a URL."""
    back = QueryDict(request.POST.get("back", ""))
    return redirect(reverse("ticket_list") + ("?" + urlencode(back, doseq=True) if back else ""))


@login_required
@require_POST
def ticket_bulk(request: HttpRequest) -> HttpResponse:
    """One change to the tickets ticked in the list."""
    user = request.user
    _require_operator_staff(user)
    ids = [int(x) for x in request.POST.getlist("ticket") if x.isdigit()]
    inquiries = list(
        Inquiry.objects.visible_to(user).filter(pk__in=ids).select_related("ticket", "category")
    )
    if not inquiries:
        messages.error(request, "問合せを選んでください。")
        return _back_to_list(request)
    operation = request.POST.get("operation", "")
    fields: dict[str, Any] = {}
    if operation == "assign":
        raw = request.POST.get("assignee", "")
        if raw == "me":
            fields["assignee"] = user
        elif raw == "none":
            fields["assignee"] = None
        elif raw.isdigit():
            assignee = next((a for a in _assignees(user) if a.pk == int(raw)), None)
            if assignee is None:
                messages.error(request, "担当者が見つかりません。")
                return _back_to_list(request)
            fields["assignee"] = assignee
        else:
            messages.error(request, "担当者を選んでください。")
            return _back_to_list(request)
    elif operation == "category":
        code = request.POST.get("category", "")
        if code and not Category.objects.filter(code=code, active=True).exists():
            messages.error(request, "分類が見つかりません。")
            return _back_to_list(request)
        fields["category"] = code or None
    elif operation == "status":
        raw = request.POST.get("status", "")
        if not raw.isdigit() or int(raw) not in dict(BULK_STATUSES):
            messages.error(request, "状態を選んでください。")
            return _back_to_list(request)
        fields["status"] = int(raw)
    elif operation == "merge":
        if len(inquiries) < 2:
            messages.error(request, "統合するには2件以上選んでください。")
            return _back_to_list(request)
        if len({i.municipality_id for i in inquiries}) > 1:
            messages.error(request, "異なる自治体の問合せは統合できません。")
            return _back_to_list(request)
        # Into the oldest: the one the requester's thread started with.
        fields["merge_into"] = min(inquiries, key=lambda i: (i.created_at, i.pk))
    else:
        messages.error(request, "操作を選んでください。")
        return _back_to_list(request)
    result = services.inquiries_bulk_change(
        actor=user, inquiries=inquiries, action=operation, **fields
    )
    if result.changed:
        done = "、".join(f"#{pk}" for pk in result.changed)
        messages.success(request, f"{len(result.changed)}件を変更しました（{done}）。")
    elif not result.refused:
        messages.info(request, "変更はありませんでした。")
    for pk, reason in result.refused.items():
        messages.error(request, f"#{pk} は変更できませんでした：{reason}")
    return _back_to_list(request)


# --- Saved views ----------------------------------------------------------------------------


@login_required
@require_POST
def saved_view_save(request: HttpRequest) -> HttpResponse:
    _require_operator_staff(request.user)
    form = SavedViewForm(request.POST)
    if not form.is_valid():
        messages.error(request, "保存する名前を入力してください。")
        return redirect(reverse("ticket_list") + "?" + request.POST.get("query", ""))
    query = QueryDict(form.cleaned_data["query"]).copy()
    for name in ("after", "before", "page"):
        query.pop(name, None)
    view = services.saved_view_save(
        actor=request.user, name=form.cleaned_data["name"], query=query.urlencode()
    )
    messages.success(request, f"「{view.name}」を保存しました。")
    return redirect(reverse("ticket_list") + ("?" + view.query if view.query else ""))


@login_required
@require_POST
def saved_view_delete(request: HttpRequest, view_id: int) -> HttpResponse:
    view = SavedView.objects.filter(user=request.user, pk=view_id).first()
    if view is None:
        raise Http404
    services.saved_view_delete(actor=request.user, view=view)
    messages.success(request, f"「{view.name}」を削除しました。")
    return redirect("ticket_list")


# --- Service-level targets (supervisors) ---------------------------------------------------


def _minutes(hours: Decimal) -> int:
    return int((hours * 60).to_integral_value())


@login_required
def sla_targets(request: HttpRequest) -> HttpResponse:
    user = request.user
    if not is_supervisor(user):
        raise PermissionDenied("対応期限の目標はスーパーバイザーが設定します。")
    municipalities = list(Municipality.objects.visible_to(user).order_by("code"))
    form = SlaTargetForm(
        request.POST if request.method == "POST" else None, municipalities=municipalities
    )
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        municipality = scoped_or_404(Municipality.objects.all(), user, id=data["municipality"])
        services.sla_target_save(
            actor=user,
            municipality=municipality,
            category=data["category"],
            first_response_minutes=_minutes(data["first_response_hours"]),
            resolution_minutes=_minutes(data["resolution_hours"]),
            request=request,
        )
        messages.success(
            request,
            f"{municipality.name}の目標（{data['category'] or '既定'}）を保存しました。"
            "これから受け付ける問合せと分類を変えた問合せに適用されます。",
        )
        return redirect("sla_targets")
    return render(
        request,
        "tickets/sla_targets.html",
        {"form": form, "targets": selectors.sla_targets_for(user)},
    )


@login_required
@require_POST
def sla_target_delete(request: HttpRequest, target_id: int) -> HttpResponse:
    if not is_supervisor(request.user):
        raise PermissionDenied
    target = scoped_or_404(SlaTarget.objects.select_related("category"), request.user, pk=target_id)
    services.sla_target_delete(actor=request.user, target=target, request=request)
    messages.success(request, "目標を削除しました。")
    return redirect("sla_targets")


# --- Providers ------------------------------------------------------------------------------


@login_required
def provider_detail(request: HttpRequest, provider_id: int) -> HttpResponse:
    provider = scoped_or_404(
        Provider.objects.select_related("municipality"), request.user, id=provider_id
    )
    personal_data_access_record(
        user=request.user,
        action=PersonalDataAccess.Action.VIEW,
        record_type="provider",
        record_id=provider.id,
        municipality_id=provider.municipality_id,
        request=request,
    )
    return render(
        request,
        "tickets/provider_detail.html",
        {
            "provider": provider,
            "can_write": can_write(request.user, provider.municipality_id),
            **selectors.provider_page(request.user, provider),
        },
    )


@login_required
@require_POST
def ticket_provider(request: HttpRequest, ticket_id: int) -> HttpResponse:
    """Link the ticket to one of its municipality's providers (the requester), or unlink."""
    inquiry = scoped_or_404(Inquiry.objects.select_related("provider"), request.user, pk=ticket_id)
    if not can_write(request.user, inquiry.municipality_id):
        raise PermissionDenied
    raw = request.POST.get("provider", "")
    if raw == "" and inquiry.provider is not None:
        services.inquiry_unlink_records(
            actor=request.user, inquiry=inquiry, provider=inquiry.provider
        )
        messages.success(request, "返礼品提供事業者の関連付けを解除しました。")
    elif raw.isdigit():
        provider = (
            Provider.objects.visible_to(request.user)
            .filter(municipality_id=inquiry.municipality_id, pk=int(raw))
            .first()
        )
        if provider is None:
            messages.error(request, "この自治体の返礼品提供事業者から選んでください。")
        else:
            services.inquiry_link_records(actor=request.user, inquiry=inquiry, provider=provider)
            messages.success(request, f"「{provider.name}」を関連付けました。")
    return redirect("ticket_detail", ticket_id=inquiry.pk)
