"""City escalation's pages: the list and detail for supervisors and the city, the ticket panel,
「市へ報告」, the rules, and the automated call's key press (a Twilio webhook)."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils import timezone
from django.views.decorators.http import require_GET, require_POST

from crm import services as crm_services
from crm.access import (
    can_write,
    is_city_official,
    is_operator_admin,
    is_supervisor,
    scoped_or_404,
    visible_municipality_ids,
)
from crm.models import Municipality
from crm.pagination import bounded_count, keyset_page
from escalation import selectors, services
from escalation.forms import CloseForm, InstructionForm, ReportForm, RuleForm
from escalation.models import Escalation, EscalationRule
from telephony.outbound import acknowledged_twiml
from telephony.twilio_api import twilio_webhook
from tickets.models import Inquiry

PAGE_SIZE = 50


def _int(value: str | None) -> int | None:
    try:
        return int(value) if value else None
    except ValueError:
        return None


@login_required
@require_GET
def escalation_list(request: HttpRequest) -> HttpResponse:
    user = request.user
    state = request.GET.get("state", "active")
    rows = selectors.escalation_list(
        user,
        state=state,
        municipality_id=_int(request.GET.get("municipality")),
        rule_id=_int(request.GET.get("rule")),
        month=request.GET.get("month", ""),
    )
    page = keyset_page(
        rows,
        key="opened_at",
        size=PAGE_SIZE,
        after=request.GET.get("after"),
        before=request.GET.get("before"),
    )
    query = request.GET.copy()
    for name in ("after", "before"):
        query.pop(name, None)
    now = timezone.now()
    # A month of one municipality: its figures (what the monthly report reads).
    month = request.GET.get("month", "")
    visible = sorted(visible_municipality_ids(user))
    municipality_id = _int(request.GET.get("municipality")) or (
        visible[0] if len(visible) == 1 else None
    )
    figures = (
        selectors.escalation_figures(municipality_id=municipality_id, month=month)
        if month and municipality_id in visible and selectors.month_bounds(month)
        else None
    )
    return render(
        request,
        "escalation/list.html",
        {
            "figures": figures,
            "page": page,
            "count": bounded_count(rows),
            "querystring": query.urlencode(),
            "now": now,
            "state": state,
            "states": [
                ("active", "未完了"),
                ("waiting", "確認待ち"),
                ("acknowledged", "確認済"),
                ("closed", "完了"),
                ("all", "すべて"),
            ],
            "municipalities": Municipality.objects.visible_to(user),
            "rules": selectors.rules_visible(user),
            "filters": request.GET,
        },
    )


def _escalation_or_404(request: HttpRequest, escalation_id: int) -> Escalation:
    return scoped_or_404(
        Escalation.objects.select_related("municipality", "rule", "inquiry__ticket"),
        request.user,
        pk=escalation_id,
    )


@login_required
@require_GET
def escalation_detail(request: HttpRequest, escalation_id: int) -> HttpResponse:
    escalation = _escalation_or_404(request, escalation_id)
    user = request.user
    city = is_city_official(user)
    return render(
        request,
        "escalation/detail.html",
        {
            "e": escalation,
            "notifications": selectors.notifications_of(user, escalation).select_related("contact"),
            "instructions": escalation.instructions.select_related("author"),
            "related": escalation.related_inquiries.select_related("ticket"),
            "may_acknowledge": city and escalation.status == Escalation.Status.OPEN,
            "may_instruct": city and escalation.status != Escalation.Status.CLOSED,
            "may_close": escalation.status != Escalation.Status.CLOSED
            and (city or can_write(user, escalation.municipality_id)),
            "instruction_form": InstructionForm(),
            "close_form": CloseForm(),
            "now": timezone.now(),
        },
    )


def _city_action(request: HttpRequest, escalation_id: int, action) -> HttpResponse:
    escalation = _escalation_or_404(request, escalation_id)
    try:
        action(escalation)
    except ValidationError as exc:
        messages.error(request, " ".join(exc.messages))
    return redirect("escalation:detail", escalation.pk)


@login_required
@require_POST
def escalation_acknowledge(request: HttpRequest, escalation_id: int) -> HttpResponse:
    def act(escalation: Escalation) -> None:
        services.escalation_acknowledge(actor=request.user, escalation=escalation)
        messages.success(request, "確認済みにしました。")

    return _city_action(request, escalation_id, act)


@login_required
@require_POST
def escalation_instruct(request: HttpRequest, escalation_id: int) -> HttpResponse:
    def act(escalation: Escalation) -> None:
        form = InstructionForm(request.POST)
        if not form.is_valid():
            raise ValidationError("指示内容を入力してください。")
        services.escalation_instruct(
            actor=request.user, escalation=escalation, body=form.cleaned_data["body"]
        )
        messages.success(request, "市の指示を登録しました。")

    return _city_action(request, escalation_id, act)


@login_required
@require_POST
def escalation_close(request: HttpRequest, escalation_id: int) -> HttpResponse:
    def act(escalation: Escalation) -> None:
        form = CloseForm(request.POST)
        form.is_valid()
        services.escalation_close(
            actor=request.user,
            escalation=escalation,
            outcome=form.cleaned_data.get("outcome", ""),
        )
        messages.success(request, "完了にしました。")

    return _city_action(request, escalation_id, act)


def _inquiry_or_404(request: HttpRequest, ticket_id: int) -> Inquiry:
    return scoped_or_404(
        Inquiry.objects.select_related("ticket", "municipality"), request.user, pk=ticket_id
    )


@login_required
@require_GET
def ticket_panel(request: HttpRequest, ticket_id: int) -> HttpResponse:
    """The ticket page's escalation panel alone, fetched again when the page hears a change."""
    inquiry = _inquiry_or_404(request, ticket_id)
    return render(
        request,
        "escalation/_panel_body.html",
        {
            "inquiry": inquiry,
            "escalations": selectors.escalations_for_inquiry(request.user, inquiry.pk),
            "now": timezone.now(),
        },
    )


@login_required
@require_POST
def ticket_report(request: HttpRequest, ticket_id: int) -> HttpResponse:
    inquiry = _inquiry_or_404(request, ticket_id)
    if not can_write(request.user, inquiry.municipality_id):
        raise PermissionDenied
    form = ReportForm(request.POST)
    if not form.is_valid():
        errors = [
            f"{form.fields[name].label}: {e}" if name in form.fields else e
            for name, es in form.errors.items()
            for e in es
        ]
        messages.error(request, " ".join(errors))
        return redirect("ticket_detail", inquiry.pk)
    data = form.cleaned_data
    services.escalation_report(
        actor=request.user,
        inquiry=inquiry,
        reason=data["reason"],
        proposed_response=data["proposed_response"],
        kind=data["kind"],
        question=data["mode"] == "question",
        urgent=data["urgent"],
        aware_at=data["aware_at"],
    )
    messages.success(request, "市へ報告しました。")
    return redirect("ticket_detail", inquiry.pk)


def _require_supervisor(request: HttpRequest) -> None:
    if not is_supervisor(request.user):
        raise Http404


@login_required
@require_GET
def rule_list(request: HttpRequest) -> HttpResponse:
    _require_supervisor(request)
    user = request.user
    return render(
        request,
        "escalation/rules.html",
        {
            "rules": selectors.rules_visible(user).prefetch_related("categories"),
            # Operator admins set, per municipality, whether its officials must pass TOTP.
            "totp_municipalities": Municipality.objects.visible_to(user)
            if is_operator_admin(user)
            else [],
        },
    )


@login_required
@require_POST
def municipality_city_totp(request: HttpRequest, municipality_id: int) -> HttpResponse:
    if not is_operator_admin(request.user):
        raise Http404
    municipality = scoped_or_404(Municipality.objects.all(), request.user, pk=municipality_id)
    crm_services.municipality_city_totp_set(
        actor=request.user, municipality=municipality, required=request.POST.get("required") == "1"
    )
    messages.success(request, f"{municipality.name}の職員の二要素認証の設定を変更しました。")
    return redirect("escalation:rules")


def _rule_form_page(request: HttpRequest, rule: EscalationRule | None) -> HttpResponse:
    user = request.user
    municipalities = Municipality.objects.filter(pk__in=visible_municipality_ids(user))
    form = RuleForm(request.POST or None, instance=rule, municipalities=municipalities)
    if request.method == "POST" and form.is_valid():
        saved = form.save(commit=False)
        services.escalation_rule_save(
            actor=user, rule=saved, categories=form.cleaned_data["categories"]
        )
        messages.success(request, "ルールを保存しました。")
        return redirect("escalation:rules")
    return render(request, "escalation/rule_edit.html", {"form": form, "rule": rule})


@login_required
def rule_create(request: HttpRequest) -> HttpResponse:
    _require_supervisor(request)
    return _rule_form_page(request, None)


@login_required
def rule_edit(request: HttpRequest, escalation_rule_id: int) -> HttpResponse:
    _require_supervisor(request)
    rule = scoped_or_404(EscalationRule.objects.all(), request.user, pk=escalation_rule_id)
    return _rule_form_page(request, rule)


@twilio_webhook
def voice_gather(request: HttpRequest, notification_id: int) -> HttpResponse:
    """The automated call's Gather: 1 acknowledges the escalation."""
    acknowledged = request.POST.get("Digits") == "1" and services.escalation_acknowledge_by_phone(
        notification_id=notification_id
    )
    return HttpResponse(
        acknowledged_twiml(bool(acknowledged)), content_type="text/xml; charset=utf-8"
    )


@twilio_webhook
def delivery_status(request: HttpRequest, notification_id: int) -> HttpResponse:
    """Twilio's status callback of an SMS (MessageStatus) or automated call (CallStatus)."""
    post = request.POST
    services.notification_delivery_status(
        notification_id=notification_id,
        sid=post.get("MessageSid") or post.get("CallSid", ""),
        status=post.get("MessageStatus") or post.get("CallStatus", ""),
        error_code=post.get("ErrorCode", ""),
    )
    return HttpResponse(status=204)
