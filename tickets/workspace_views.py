"""The agent's ticket page actions: the composer, title, links, drafts, merge and @mentions.

Thin like tickets.views: fetch the ticket through ``crm.access`` (404 for other
municipalities'), check the user may write there, call one service, answer.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.db.models import Q
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_POST

from crm.access import can_write, scoped_or_404
from crm.models import Donor, User
from donations_sync.models import Donation, Shipment
from knowledge.models import CannedReply
from knowledge.render import render_text
from tickets import services, workspace, workspace_selectors
from tickets.forms import ComposerForm, RetitleForm
from tickets.mail.selectors import reply_deliveries, reply_recipient
from tickets.models import Inquiry, Severity, Status
from tickets.services import InquiryError


def _writable_inquiry(request: HttpRequest, ticket_id: int) -> Inquiry:
    inquiry = scoped_or_404(
        Inquiry.objects.select_related(
            "ticket", "ticket__assigned_to", "municipality", "category", "donor"
        ),
        request.user,
        pk=ticket_id,
    )
    if not can_write(request.user, inquiry.municipality_id):
        raise PermissionDenied
    return inquiry


def assignee_choices(inquiry: Inquiry):
    """Agents and supervisors of the ticket's municipality, and whoever holds it now."""
    who = Q(pk__in=workspace.assignable_users(inquiry).values("pk"))
    if inquiry.ticket.assigned_to_id:
        who |= Q(pk=inquiry.ticket.assigned_to_id)
    return User.objects.filter(who).order_by("display_name", "username")


def composer_form(inquiry: Inquiry, data: Any = None, *, draft: Any = None) -> ComposerForm:
    """The composer with the ticket's current values, and the agent's draft text if any."""
    initial: dict[str, Any] = {
        "status": inquiry.status,
        "category": inquiry.category.code if inquiry.category_id else None,
        "severity": inquiry.severity,
        "assignee": inquiry.ticket.assigned_to_id,
    }
    if draft is not None:
        initial.update(body=draft.body, kind=draft.kind, share_with_city=draft.share_with_city)
    return ComposerForm(
        data, current=inquiry.status, assignees=assignee_choices(inquiry), initial=initial
    )


def _macro(request: HttpRequest, inquiry: Inquiry, macro_id: int | None) -> CannedReply | None:
    if not macro_id:
        return None
    return scoped_or_404(
        CannedReply.objects.for_municipality(inquiry.municipality_id).active(),
        request.user,
        pk=macro_id,
    )


@login_required
@require_POST
def ticket_compose(request: HttpRequest, ticket_id: int) -> HttpResponse:
    """The composer's submit (送信, 送信して解決, 変更のみ保存)."""
    from tickets.views import _report_delivery, _ticket_page

    inquiry = _writable_inquiry(request, ticket_id)
    form = composer_form(inquiry, request.POST)
    if not form.is_valid():
        # Shown again with everything the agent typed and chose.
        return _ticket_page(request, inquiry, reply_form=form)
    data = form.cleaned_data
    macro = _macro(request, inquiry, data.get("macro"))
    status = Status.RESOLVED if form.resolve else data["status"]
    if form.resolve and status not in (inquiry.status, *dict(form.fields["status"].choices)):
        form.add_error(None, f"「{inquiry.get_status_display()}」からは解決にできません。")
        return _ticket_page(request, inquiry, reply_form=form)
    category = data["category"].code if data["category"] else None
    current_category = inquiry.category.code if inquiry.category_id else None
    assignee = data["assignee"]
    composed = workspace.Composed(
        kind=data["kind"],
        body="" if form.changes_only else data["body"],
        share_with_city=data["share_with_city"],
        status=status if status != inquiry.status else workspace.KEEP,
        category=category if category != current_category else workspace.KEEP,
        severity=data["severity"] if data["severity"] != inquiry.severity else workspace.KEEP,
        assignee=(
            assignee
            if (assignee.pk if assignee else None) != inquiry.ticket.assigned_to_id
            else workspace.KEEP
        ),
        keep_draft=form.changes_only,
        macro=macro,
        macro_note=(
            render_text(
                macro.action_note, workspace_selectors.ticket_variables(request.user, inquiry)
            ).text
            if macro and macro.action_note and not form.changes_only
            else ""
        ),
    )
    try:
        result = workspace.inquiry_compose(actor=request.user, inquiry=inquiry, composed=composed)
    except InquiryError as exc:
        form.add_error(None, str(exc))
        return _ticket_page(request, inquiry, reply_form=form)
    if result.reply is not None:
        to = reply_recipient(inquiry)
        if to:
            _report_delivery(
                request, reply_deliveries(request.user, inquiry.pk).get(result.reply.pk), to
            )
        else:
            messages.success(request, "対応記録を登録しました（メールは送信していません）。")
    others = [f.title for f in result.followups if f is not result.reply]
    if result.mentions:
        others.append("通知: " + "・".join(f"@{m.mentioned.username}" for m in result.mentions))
    if others or result.reply is None:
        messages.success(request, "、".join(others or ["変更はありません"]) + "。")
    return redirect("ticket_detail", ticket_id=inquiry.pk)


@login_required
@require_POST
def ticket_retitle(request: HttpRequest, ticket_id: int) -> HttpResponse:
    inquiry = _writable_inquiry(request, ticket_id)
    form = RetitleForm(request.POST)
    if not form.is_valid():
        messages.error(request, "件名を入力してください（200文字まで）。")
    else:
        try:
            workspace.inquiry_retitle(
                actor=request.user, inquiry=inquiry, title=form.cleaned_data["title"]
            )
        except InquiryError as exc:
            messages.error(request, str(exc))
        else:
            messages.success(request, "件名を変更しました。")
    return redirect("ticket_detail", ticket_id=inquiry.pk)


@login_required
@require_POST
def ticket_draft(request: HttpRequest, ticket_id: int) -> JsonResponse:
    """The composer's autosave (also sent as a beacon when the page is left)."""
    inquiry = _writable_inquiry(request, ticket_id)
    draft = workspace.draft_save(
        actor=request.user,
        inquiry=inquiry,
        body=request.POST.get("body", "")[:20000],
        kind=request.POST.get("kind", "note"),
        share_with_city=bool(request.POST.get("share_with_city")),
    )
    return JsonResponse({"saved": True, "empty": draft is None})


@login_required
def ticket_links(request: HttpRequest, ticket_id: int) -> HttpResponse:
    """関連付けの編集: search the ticket's municipality, link or unlink a donor, donations and
    shipments."""
    inquiry = _writable_inquiry(request, ticket_id)
    user = request.user
    if request.method == "POST":
        same = {"municipality_id": inquiry.municipality_id}
        donor = donations = shipments = None
        if request.POST.get("donor", "").isdigit():
            donor = scoped_or_404(Donor.objects.filter(**same), user, id=request.POST["donor"])
        donation_ids = [v for v in request.POST.getlist("donations") if v.isdigit()]
        shipment_ids = [v for v in request.POST.getlist("shipments") if v.isdigit()]
        donations = list(Donation.objects.visible_to(user).filter(id__in=donation_ids, **same))
        shipments = list(Shipment.objects.visible_to(user).filter(id__in=shipment_ids, **same))
        if len(donations) != len(donation_ids) or len(shipments) != len(shipment_ids):
            raise PermissionDenied
        write = (
            services.inquiry_unlink_records
            if request.POST.get("action") == "unlink"
            else services.inquiry_link_records
        )
        try:
            changed = write(
                actor=user, inquiry=inquiry, donor=donor, donations=donations, shipments=shipments
            )
        except InquiryError as exc:
            messages.error(request, str(exc))
        else:
            messages.success(request, changed.title if changed else "変更はありません。")
        return redirect(reverse("ticket_links", args=[inquiry.pk]) + _q(request))
    query = request.GET.get("q", "").strip()
    context = {
        "inquiry": inquiry,
        "ticket": inquiry.ticket,
        "query": query,
        "linked_donations": set(inquiry.donations.values_list("pk", flat=True)),
        "linked_shipments": set(inquiry.shipments.values_list("pk", flat=True)),
        **workspace_selectors.link_candidates(user, inquiry, query),
    }
    return render(request, "tickets/ticket_links.html", context)


def _q(request: HttpRequest) -> str:
    query = request.POST.get("q", "")
    return f"?{urlencode({'q': query})}" if query else ""


@login_required
def ticket_merge(request: HttpRequest, ticket_id: int) -> HttpResponse:
    """統合: search a ticket of the same municipality, preview both, confirm."""
    inquiry = _writable_inquiry(request, ticket_id)
    user = request.user
    params = request.POST if request.method == "POST" else request.GET
    other = None
    if params.get("into", "").isdigit():
        other = scoped_or_404(
            Inquiry.objects.filter(municipality_id=inquiry.municipality_id)
            .exclude(pk=inquiry.pk)
            .select_related("ticket", "ticket__assigned_to", "donor", "category"),
            user,
            pk=params["into"],
        )
    if request.method == "POST":
        if other is None:
            messages.error(request, "統合先の問合せを選んでください。")
            return redirect("ticket_merge", ticket_id=inquiry.pk)
        # 「この問合せを統合先へ」 (default) or the other way round, chosen on the preview.
        duplicate, into = (other, inquiry) if params.get("keep") == "this" else (inquiry, other)
        try:
            services.inquiry_merge(actor=user, duplicate=duplicate, into=into)
        except InquiryError as exc:
            messages.error(request, str(exc))
            return redirect(reverse("ticket_merge", args=[inquiry.pk]) + f"?into={other.pk}")
        messages.success(request, f"問合せ #{duplicate.pk} を #{into.pk} に統合しました。")
        return redirect("ticket_detail", ticket_id=into.pk)
    query = request.GET.get("q", "").strip()
    context = {
        "inquiry": inquiry,
        "ticket": inquiry.ticket,
        "query": query,
        "candidates": workspace_selectors.merge_candidates(user, inquiry, query)
        if other is None
        else [],
        "other": other,
    }
    if other is not None:
        from tickets.selectors import linked_records, ticket_timeline

        context["this_links"] = linked_records(user, inquiry)
        context["other_links"] = linked_records(user, other)
        context["this_last"] = ticket_timeline(user, inquiry)[-3:]
        context["other_last"] = ticket_timeline(user, other)[-3:]
    return render(request, "tickets/ticket_merge.html", context)


@login_required
@require_GET
def ticket_mentionable(request: HttpRequest, ticket_id: int) -> JsonResponse:
    """@mention autocomplete: colleagues of the ticket's municipality matching ``q``."""
    inquiry = _writable_inquiry(request, ticket_id)
    query = request.GET.get("q", "").strip().lstrip("@")
    users = workspace.assignable_users(inquiry).exclude(pk=request.user.pk)
    if query:
        users = users.filter(Q(username__istartswith=query) | Q(display_name__icontains=query))
    return JsonResponse(
        {
            "users": [
                {"username": u.username, "name": str(u), "role": u.get_role_display()}
                for u in users[:8]
            ]
        }
    )


def macro_payload(user: Any, reply: CannedReply) -> dict[str, Any]:
    """A 定型文's actions for the composer: which fields it sets and the note it adds."""
    changes = workspace.macro_changes(reply, user)
    labels = []
    if "status" in changes:
        labels.append(f"状態→{Status(changes['status']).label}")
    if "category" in changes:
        labels.append("分類を設定")
    if "severity" in changes:
        labels.append(f"重要度→{Severity(changes['severity']).label}")
    if "assignee" in changes:
        labels.append("担当→自分" if changes["assignee"] else "担当→未割当")
    if reply.action_note:
        labels.append("内部メモ")
    return {"changes": changes, "labels": labels, "note": reply.action_note}
