"""Agent console, donor page, ticket pages, the city's view of its tickets, and the access log.

Views parse, fetch through ``crm.access`` (other municipalities' rows do not exist: 404), call one
service and render. Every view of a donor or ticket page is written to the personal-data access
log.
"""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse, JsonResponse, StreamingHttpResponse
from django.shortcuts import redirect, render
from django.template.loader import render_to_string
from django.views.decorators.http import require_GET, require_POST

from crm.access import can_write, is_operator_admin, scoped_or_404
from crm.models import Donor, Municipality, PersonalDataAccess, User
from crm.pagination import bounded_count, keyset_page
from crm.services import personal_data_access_record
from donations_sync.models import Donation, Shipment
from knowledge.models import Article, CannedReply
from knowledge.render import UNFILLED_MESSAGE, VARIABLES, render_text
from tickets import exports, selectors, services, workspace, workspace_selectors
from tickets.forms import (
    ClassifyForm,
    ComposerForm,
    ReplyForm,
    StatusForm,
    TicketCreateForm,
)
from tickets.mail.models import OutboundMessage
from tickets.mail.selectors import (
    attachments_for_inquiry,
    bounced_addresses,
    reply_deliveries,
    reply_recipient,
)
from tickets.mail.services import sending as mail_sending
from tickets.models import Inquiry, Status
from tickets.workspace_views import composer_form, macro_payload


def _require_operator_staff(user: User) -> None:
    if not user.is_operator_staff:
        raise PermissionDenied("この画面は運営スタッフ専用です。")


def _municipality_param(request: HttpRequest) -> int | None:
    raw = request.GET.get("m", "")
    return int(raw) if raw.isdigit() else None


# --- Console ------------------------------------------------------------------------------


@login_required
def console(request: HttpRequest) -> HttpResponse:
    if not request.user.is_operator_staff:
        return redirect("ticket_list")
    query = request.GET.get("q", "").strip()
    municipality_id = _municipality_param(request)
    results = selectors.universal_search(request.user, query, municipality_id=municipality_id)
    if query and "open" in request.GET and results.top:
        # Enter without JavaScript: go straight to the top hit.
        return redirect(results.top.url)
    context = {
        "query": query,
        "results": results,
        "municipalities": Municipality.objects.visible_to(request.user).order_by("code"),
        "selected_municipality": municipality_id,
        "my_tickets": selectors.my_open_tickets(request.user),
        "mentions": workspace.recent_mentions(request.user),
        "queues": selectors.queue_counts(request.user),
    }
    return render(request, "tickets/console.html", context)


@login_required
@require_GET
def console_search(request: HttpRequest) -> HttpResponse:
    """The result list alone, fetched as the agent types."""
    _require_operator_staff(request.user)
    query = request.GET.get("q", "").strip()
    results = selectors.universal_search(
        request.user, query, municipality_id=_municipality_param(request)
    )
    return render(request, "tickets/_search_results.html", {"results": results, "query": query})


# --- Donor --------------------------------------------------------------------------------


@login_required
def donor_list(request: HttpRequest, municipality_id: int) -> HttpResponse:
    municipality = scoped_or_404(Municipality.objects.all(), request.user, id=municipality_id)
    donors = (
        Donor.objects.visible_to(request.user)
        .for_municipality(municipality.id)
        .prefetch_related("phones")
        .order_by("-id")[:50]
    )
    personal_data_access_record(
        user=request.user,
        action=PersonalDataAccess.Action.VIEW,
        record_type="donor_list",
        municipality_id=municipality.id,
        request=request,
    )
    return render(
        request, "tickets/donor_list.html", {"municipality": municipality, "donors": donors}
    )


@login_required
def donor_detail(request: HttpRequest, donor_id: int) -> HttpResponse:
    donor = scoped_or_404(
        Donor.objects.select_related("municipality").prefetch_related("phones", "emails"),
        request.user,
        id=donor_id,
    )
    personal_data_access_record(
        user=request.user,
        action=PersonalDataAccess.Action.VIEW,
        record_type="donor",
        record_id=donor.id,
        municipality_id=donor.municipality_id,
        request=request,
    )
    emails = list(donor.emails.all())
    bounced = bounced_addresses(request.user, donor.municipality_id, [e.address for e in emails])
    for email in emails:
        email.bounce = bounced.get(email.address.lower())
    context = {
        "donor": donor,
        "emails": emails,
        "can_write": can_write(request.user, donor.municipality_id),
        **selectors.donor_page(request.user, donor),
    }
    return render(request, "tickets/donor_detail.html", context)


# --- Ticket: create -----------------------------------------------------------------------


@login_required
def ticket_create(request: HttpRequest) -> HttpResponse:
    """New ticket from a donor, donation or shipment (links prefilled) or for a municipality."""
    user = request.user
    _require_operator_staff(user)
    params = request.POST if request.method == "POST" else request.GET
    donor = donation = shipment = None
    if params.get("shipment", "").isdigit():
        shipment = scoped_or_404(
            Shipment.objects.select_related("donation__donor"), user, id=params["shipment"]
        )
        donation = shipment.donation
    if params.get("donation", "").isdigit() and donation is None:
        donation = scoped_or_404(
            Donation.objects.select_related("donor"), user, id=params["donation"]
        )
    if donation is not None:
        donor = donation.donor
    elif params.get("donor", "").isdigit():
        donor = scoped_or_404(Donor.objects.all(), user, id=params["donor"])
    if donor is not None:
        municipality = donor.municipality
    elif params.get("municipality", "").isdigit():
        municipality = scoped_or_404(Municipality.objects.all(), user, id=params["municipality"])
    else:
        municipalities = Municipality.objects.visible_to(user).order_by("code")
        return render(
            request, "tickets/ticket_pick_municipality.html", {"municipalities": municipalities}
        )
    if not can_write(user, municipality.id):
        raise PermissionDenied

    donations_qs = shipments_qs = None
    if donor is not None:
        donations_qs = Donation.objects.visible_to(user).filter(donor=donor).order_by("-donated_at")
        shipments_qs = (
            Shipment.objects.visible_to(user)
            .filter(donation__donor=donor)
            .select_related("gift_item")
            .order_by("-donation__donated_at", "delivery_number")
        )
    initial: dict[str, Any] = {}
    if donation is not None:
        initial["donations"] = [donation.id]
    if shipment is not None:
        initial["shipments"] = [shipment.id]
    form = TicketCreateForm(
        request.POST if request.method == "POST" else None,
        initial=initial,
        donations=donations_qs,
        shipments=shipments_qs,
    )
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        inquiry = services.inquiry_open(
            actor=user,
            municipality=municipality,
            channel=data["channel"],
            title=data["title"],
            description=data["description"],
            requester_type=data["requester_type"],
            category=data["category"].code if data["category"] else None,
            severity=data["severity"],
            donor=donor,
            donations=data["donations"] or [],
            shipments=data["shipments"] or [],
            assigned_to=user,
        )
        messages.success(request, f"問合せ #{inquiry.pk} を登録しました。")
        return redirect("ticket_detail", ticket_id=inquiry.pk)
    context = {
        "form": form,
        "municipality": municipality,
        "donor": donor,
        "donation": donation,
        "shipment": shipment,
    }
    return render(request, "tickets/ticket_create.html", context)


# --- Ticket: detail and actions -----------------------------------------------------------


def _inquiry_or_404(request: HttpRequest, ticket_id: int) -> Inquiry:
    return scoped_or_404(
        Inquiry.objects.select_related(
            "ticket", "ticket__assigned_to", "municipality", "category", "donor", "provider"
        ),
        request.user,
        pk=ticket_id,
    )


@login_required
def ticket_detail(request: HttpRequest, ticket_id: int) -> HttpResponse:
    inquiry = _inquiry_or_404(request, ticket_id)
    return _ticket_page(request, inquiry, reply_form=None)


def _ticket_page(
    request: HttpRequest, inquiry: Inquiry, *, reply_form: ComposerForm | ReplyForm | None
) -> HttpResponse:
    """The ticket page; ``reply_form`` is the refused composer, shown again with its text and
    choices kept. Otherwise the composer starts from the agent's saved draft, if any."""
    user = request.user
    personal_data_access_record(
        user=user,
        action=PersonalDataAccess.Action.VIEW,
        record_type="ticket",
        record_id=inquiry.pk,
        municipality_id=inquiry.municipality_id,
        request=request,
    )
    writable = can_write(user, inquiry.municipality_id)
    timeline = selectors.ticket_timeline(user, inquiry)
    deliveries = reply_deliveries(user, inquiry.pk)
    for followup in timeline:
        followup.delivery = deliveries.get(followup.pk)
    draft = None
    if writable and not isinstance(reply_form, ComposerForm):
        if reply_form is not None:  # the reply box's refusal: keep its text and error
            data = reply_form.data.copy()
            data.update(
                {
                    "status": inquiry.status,
                    "category": inquiry.category.code if inquiry.category_id else "",
                    "severity": inquiry.severity,
                    "assignee": inquiry.ticket.assigned_to_id or "",
                }
            )
            reply_form = composer_form(inquiry, data)
            reply_form.is_valid()
        else:
            draft = workspace.draft_for(user, inquiry)
            reply_form = composer_form(inquiry, draft=draft)
    if user.is_operator_staff:
        workspace.mentions_mark_read(user=user, inquiry=inquiry)
    context = {
        "inquiry": inquiry,
        "ticket": inquiry.ticket,
        "timeline": timeline,
        **selectors.linked_records(user, inquiry),
        **(workspace_selectors.customer_panel(user, inquiry) if user.is_operator_staff else {}),
        "can_write": writable,
        "reply_form": reply_form if writable else None,
        "draft": draft,
        "reply_to": reply_recipient(inquiry),
        "variables": VARIABLES,
        "composer": {"variables": list(VARIABLES), "unfilled_message": UNFILLED_MESSAGE},
        "ws_path": f"/ws/tickets/{inquiry.pk}/presence/",
        "attachments": list(attachments_for_inquiry(user, inquiry.pk)),
        "requester_bounce": bounced_addresses(
            user, inquiry.municipality_id, [inquiry.ticket.submitter_email or ""]
        ).get((inquiry.ticket.submitter_email or "").lower()),
    }
    template = (
        "tickets/ticket_detail.html"
        if user.is_operator_staff
        else "tickets/city_ticket_detail.html"
    )
    return render(request, template, context)


@login_required
@require_POST
def ticket_followup(request: HttpRequest, ticket_id: int) -> HttpResponse:
    inquiry = _inquiry_or_404(request, ticket_id)
    if not can_write(request.user, inquiry.municipality_id):
        raise PermissionDenied
    form = ReplyForm(request.POST)
    if not form.is_valid():
        # Shown again with the agent's text: a refused reply must not cost them what they typed.
        return _ticket_page(request, inquiry, reply_form=form)
    body = form.cleaned_data["body"]
    if form.cleaned_data["kind"] == ReplyForm.KIND_REPLY:
        to = reply_recipient(inquiry)
        followup = services.inquiry_reply(actor=request.user, inquiry=inquiry, body=body)
        if not to:
            messages.success(request, "対応記録を登録しました（メールは送信していません）。")
        else:
            _report_delivery(
                request, reply_deliveries(request.user, inquiry.pk).get(followup.pk), to
            )
    else:
        services.inquiry_add_note(
            actor=request.user,
            inquiry=inquiry,
            body=body,
            operator_only=not form.cleaned_data["share_with_city"],
        )
        messages.success(request, "内部メモを登録しました。")
    return redirect("ticket_detail", ticket_id=inquiry.pk)


def _report_delivery(request: HttpRequest, out: OutboundMessage | None, to: str) -> None:
    """Say what became of the mail so far: usually it is still waiting for the mail worker."""
    if out is not None and out.status == OutboundMessage.Status.FAILED:
        messages.error(
            request, f"返信を登録しましたが、メールを送信できませんでした: {out.last_error}"
        )
    elif out is not None and out.status == OutboundMessage.Status.SENT:
        messages.success(request, f"返信を {to} へ送信しました。")
    else:
        messages.success(
            request,
            f"返信を登録しました。{to} へのメールは送信待ちです（結果は対応履歴に表示されます）。",
        )


@login_required
@require_GET
def ticket_timeline_part(request: HttpRequest, ticket_id: int) -> HttpResponse:
    """The timeline alone, for the open page to refresh when the ticket changed (the city gave
    an instruction, say). The page's own view recorded the personal-data access."""
    inquiry = _inquiry_or_404(request, ticket_id)
    timeline = selectors.ticket_timeline(request.user, inquiry)
    deliveries = reply_deliveries(request.user, inquiry.pk)
    for followup in timeline:
        followup.delivery = deliveries.get(followup.pk)
    return render(
        request,
        "tickets/_timeline.html",
        {
            "inquiry": inquiry,
            "ticket": inquiry.ticket,
            "timeline": timeline,
            "can_write": can_write(request.user, inquiry.municipality_id),
        },
    )


@login_required
@require_GET
def ticket_deliveries(request: HttpRequest, ticket_id: int) -> JsonResponse:
    """The delivery state of each reply, for the open page to follow a mail still waiting."""
    inquiry = _inquiry_or_404(request, ticket_id)
    _require_operator_staff(request.user)
    can_retry = can_write(request.user, inquiry.municipality_id)
    deliveries = reply_deliveries(request.user, inquiry.pk)
    return JsonResponse(
        {
            "deliveries": {
                str(followup_id): {
                    "status": out.status,
                    "html": render_to_string(
                        "tickets/_delivery.html",
                        {"inquiry": inquiry, "delivery": out, "can_write": can_retry},
                        request=request,
                    ),
                }
                for followup_id, out in deliveries.items()
            }
        }
    )


@login_required
@require_POST
def ticket_reply_retry(request: HttpRequest, ticket_id: int, outbound_id: int) -> HttpResponse:
    """再送 of a reply whose mail failed, from the ticket it belongs to."""
    inquiry = _inquiry_or_404(request, ticket_id)
    if not can_write(request.user, inquiry.municipality_id):
        raise PermissionDenied
    out = scoped_or_404(
        OutboundMessage.objects.filter(inquiry=inquiry, kind=OutboundMessage.Kind.REPLY),
        request.user,
        pk=outbound_id,
    )
    if out.status not in OutboundMessage.RESENDABLE or not out.to_address:
        messages.error(request, "このメールは再送できません。")
    else:
        mail_sending.outbound_retry(actor=request.user, out=out)
        messages.success(request, f"返信を {out.to_address} へ再送します（送信待ち）。")
    return redirect("ticket_detail", ticket_id=inquiry.pk)


@login_required
@require_POST
def ticket_status(request: HttpRequest, ticket_id: int) -> HttpResponse:
    inquiry = _inquiry_or_404(request, ticket_id)
    if not can_write(request.user, inquiry.municipality_id):
        raise PermissionDenied
    form = StatusForm(request.POST, current=inquiry.status)
    if not form.is_valid():
        messages.error(
            request, f"「{inquiry.get_status_display()}」からその状態には変更できません。"
        )
    else:
        services.inquiry_change_status(
            actor=request.user,
            inquiry=inquiry,
            status=form.cleaned_data["status"],
            comment=form.cleaned_data["comment"],
        )
        messages.success(
            request, f"状態を「{Status(form.cleaned_data['status']).label}」にしました。"
        )
    return redirect("ticket_detail", ticket_id=inquiry.pk)


@login_required
@require_POST
def ticket_classify(request: HttpRequest, ticket_id: int) -> HttpResponse:
    inquiry = _inquiry_or_404(request, ticket_id)
    if not can_write(request.user, inquiry.municipality_id):
        raise PermissionDenied
    form = ClassifyForm(request.POST)
    if form.is_valid():
        category = form.cleaned_data["category"]
        services.inquiry_change_category(
            actor=request.user, inquiry=inquiry, category=category.code if category else None
        )
        services.inquiry_change_severity(
            actor=request.user, inquiry=inquiry, severity=form.cleaned_data["severity"]
        )
    return redirect("ticket_detail", ticket_id=inquiry.pk)


@login_required
@require_POST
def ticket_assign_me(request: HttpRequest, ticket_id: int) -> HttpResponse:
    inquiry = _inquiry_or_404(request, ticket_id)
    if not can_write(request.user, inquiry.municipality_id):
        raise PermissionDenied
    services.inquiry_assign(actor=request.user, inquiry=inquiry, assignee=request.user)
    return redirect("ticket_detail", ticket_id=inquiry.pk)


@login_required
@require_GET
def ticket_canned_replies(request: HttpRequest, ticket_id: int) -> JsonResponse:
    """定型文 matching ``q`` for this ticket, with its variables filled from the ticket's records.

    The text is plain; the page puts it into the textarea and the preview as text, never HTML.
    """
    inquiry = _inquiry_or_404(request, ticket_id)
    _require_operator_staff(request.user)
    values = workspace_selectors.ticket_variables(request.user, inquiry)
    replies = (
        CannedReply.objects.visible_to(request.user)
        .for_municipality(inquiry.municipality_id)
        .active()
        .search(request.GET.get("q", ""))
        .select_related("municipality")
    )
    # The ticket's own category first: that is usually the answer the agent is after.
    code = inquiry.category.code if inquiry.category else ""
    rows = sorted(replies[:50], key=lambda r: (r.category_code != code, r.sort_order, r.title))
    payload = []
    for reply in rows[:15]:
        rendered = render_text(reply.body, values)
        payload.append(
            {
                "id": reply.id,
                "title": reply.title,
                "scope": reply.scope_label,
                "text": rendered.text,
                "missing": rendered.missing,
                # What else applying it does to the ticket (a macro), and its note filled in.
                **macro_payload(request.user, reply),
                "note": render_text(reply.action_note, values).text if reply.action_note else "",
            }
        )
    articles = (
        Article.objects.visible_to(request.user)
        .for_municipality(inquiry.municipality_id)
        .active()
        .search(request.GET.get("q", ""))
    )
    faq = [{"id": a.id, "title": a.title, "body": a.body} for a in articles[:5]]
    return JsonResponse({"replies": payload, "articles": faq})


# --- Ticket list (the city's screen, and the operator's queue) -----------------------------


TICKET_PAGE_SIZE = 50
ACCESS_LOG_PAGE_SIZE = 100


def _pager_query(request: HttpRequest) -> str:
    """The filters, without the position, for the next/previous links."""
    query = request.GET.copy()
    for name in ("after", "before", "page"):
        query.pop(name, None)
    return query.urlencode()


def _list_context(request: HttpRequest, filterset: Any, *, key: str, size: int) -> dict[str, Any]:
    """One cursor page of a filtered list, its bounded count, and the filters for the links."""
    rows = filterset.qs
    after, before = request.GET.get("after"), request.GET.get("before")
    return {
        "form": filterset.form,
        "page": keyset_page(rows, key=key, size=size, after=after, before=before),
        "count": bounded_count(rows),
        "querystring": _pager_query(request),
    }


# --- Personal-data access log (operator admins) ---------------------------------------------


def _require_operator_admin(user: User) -> None:
    if not is_operator_admin(user):
        raise PermissionDenied("この画面は運営管理者専用です。")


@login_required
def access_log(request: HttpRequest) -> HttpResponse:
    _require_operator_admin(request.user)
    filterset = selectors.access_log_list(request)
    context = {
        **_list_context(request, filterset, key="at", size=ACCESS_LOG_PAGE_SIZE),
        "actions": PersonalDataAccess.Action.choices,
        "municipalities": Municipality.objects.visible_to(request.user).order_by("code"),
    }
    return render(request, "tickets/access_log.html", context)


@login_required
def access_log_export(request: HttpRequest) -> StreamingHttpResponse:
    """CSV of the filtered log; the export itself is logged before the first row is sent."""
    _require_operator_admin(request.user)
    return exports.access_log_csv(request, selectors.access_log_list(request).qs)
