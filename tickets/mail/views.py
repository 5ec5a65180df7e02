"""Supervisor pages: quarantined mail with reasons and re-processing, failed outbound mail,
triage rules per municipality, and attachment download for agents."""

from __future__ import annotations

from functools import wraps
from urllib.parse import quote

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_http_methods, require_POST

from crm.access import is_supervisor, scoped_or_404
from crm.models import Municipality, PersonalDataAccess
from crm.services import personal_data_access_record
from tickets.mail import decoding, selectors
from tickets.mail.forms import MailSettingsForm, TriageRuleForm
from tickets.mail.models import (
    InboundAttachment,
    MunicipalityMailSettings,
    OutboundMessage,
    TriageRule,
)
from tickets.mail.services import configuration, inbound, sending


def supervisor_required(view):
    @login_required
    @wraps(view)
    def wrapper(request: HttpRequest, *args, **kwargs):
        if not is_supervisor(request.user):
            raise PermissionDenied("監督者のみが利用できます。")
        return view(request, *args, **kwargs)

    return wrapper


@supervisor_required
def quarantine_list(request: HttpRequest) -> HttpResponse:
    user = request.user
    context = {
        "inbound": selectors.quarantined(user)[:200],
        "outbound": selectors.outbound_problems(user)[:200],
        "municipalities": Municipality.objects.visible_to(user),
    }
    return render(request, "mail/quarantine_list.html", context)


@supervisor_required
def inbound_detail(request: HttpRequest, message_id: int) -> HttpResponse:
    message = get_object_or_404(selectors.inbound_visible_to(request.user), pk=message_id)
    try:
        parsed = decoding.parse(bytes(message.raw))
        error = ""
    except Exception as exc:  # shown to the supervisor: this is why it is here
        parsed, error = None, str(exc)
    if message.municipality_id:
        personal_data_access_record(
            user=request.user,
            action=PersonalDataAccess.Action.VIEW,
            record_type="inbound_mail",
            record_id=message.pk,
            municipality_id=message.municipality_id,
            request=request,
        )
    return render(
        request,
        "mail/inbound_detail.html",
        {"message": message, "parsed": parsed, "parse_error": error},
    )


@supervisor_required
@require_POST
def inbound_reprocess(request: HttpRequest, message_id: int) -> HttpResponse:
    message = get_object_or_404(selectors.inbound_visible_to(request.user), pk=message_id)
    message = inbound.inbound_reprocess(actor=request.user, message=message)
    if message.status == message.Status.QUARANTINED:
        messages.error(request, f"再処理しましたが隔離のままです: {message.reason}")
    else:
        messages.success(request, f"再処理しました（{message.get_status_display()}）。")
    return redirect("mail_inbound_detail", message_id=message.pk)


@supervisor_required
@require_POST
def outbound_retry(request: HttpRequest, outbound_id: int) -> HttpResponse:
    out = scoped_or_404(OutboundMessage.objects.all(), request.user, pk=outbound_id)
    sending.outbound_retry(actor=request.user, out=out)
    messages.success(request, "再送信を予約しました。")
    return redirect("mail_quarantine")


@supervisor_required
@require_http_methods(["GET", "POST"])
def rule_list(request: HttpRequest, municipality_id: int) -> HttpResponse:
    municipality = scoped_or_404(Municipality.objects.all(), request.user, pk=municipality_id)
    form = TriageRuleForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        configuration.triage_rule_save(
            actor=request.user, municipality=municipality, **form.cleaned_data
        )
        messages.success(request, "ルールを追加しました。")
        return redirect("mail_rules", municipality_id=municipality.pk)
    rules = TriageRule.objects.visible_to(request.user).filter(municipality=municipality)
    return render(
        request,
        "mail/rule_list.html",
        {"municipality": municipality, "rules": rules.select_related("category"), "form": form},
    )


@supervisor_required
@require_http_methods(["GET", "POST"])
def rule_edit(request: HttpRequest, rule_id: int) -> HttpResponse:
    rule = scoped_or_404(
        TriageRule.objects.select_related("municipality"), request.user, pk=rule_id
    )
    form = TriageRuleForm(request.POST or None, instance=rule)
    if request.method == "POST":
        if "delete" in request.POST:
            configuration.triage_rule_delete(actor=request.user, rule=rule)
            messages.success(request, "ルールを削除しました。")
            return redirect("mail_rules", municipality_id=rule.municipality_id)
        if form.is_valid():
            rule = TriageRule.objects.get(pk=rule.pk)  # the form mutated the instance
            configuration.triage_rule_save(
                actor=request.user, municipality=rule.municipality, rule=rule, **form.cleaned_data
            )
            messages.success(request, "ルールを保存しました。")
            return redirect("mail_rules", municipality_id=rule.municipality_id)
    return render(request, "mail/rule_edit.html", {"rule": rule, "form": form})


@supervisor_required
@require_http_methods(["GET", "POST"])
def mail_settings(request: HttpRequest, municipality_id: int) -> HttpResponse:
    municipality = scoped_or_404(Municipality.objects.all(), request.user, pk=municipality_id)
    current = MunicipalityMailSettings.objects.filter(municipality=municipality).first()
    form = MailSettingsForm(
        request.POST or None,
        instance=current or MunicipalityMailSettings(municipality=municipality),
    )
    if request.method == "POST" and form.is_valid():
        configuration.mail_settings_save(
            actor=request.user, municipality=municipality, **form.cleaned_data
        )
        messages.success(request, "メール設定を保存しました。")
        return redirect("mail_settings", municipality_id=municipality.pk)
    return render(request, "mail/settings.html", {"municipality": municipality, "form": form})


@supervisor_required
@require_POST
def rule_defaults(request: HttpRequest, municipality_id: int) -> HttpResponse:
    municipality = scoped_or_404(Municipality.objects.all(), request.user, pk=municipality_id)
    added = configuration.triage_rules_add_defaults(actor=request.user, municipality=municipality)
    messages.success(request, f"標準ルールを{added}件追加しました。")
    return redirect("mail_rules", municipality_id=municipality.pk)


@login_required
def attachment(request: HttpRequest, attachment_id: int) -> HttpResponse:
    """Photos inline for agents; My Number documents only for supervisors, each view logged."""
    if not request.user.is_operator_staff:
        raise PermissionDenied
    att = scoped_or_404(
        InboundAttachment.objects.all(), request.user, pk=attachment_id, status="kept"
    )
    if att.restricted:
        if not is_supervisor(request.user):
            raise PermissionDenied("個人番号を含む可能性があるため閲覧が制限されています。")
        personal_data_access_record(
            user=request.user,
            action=PersonalDataAccess.Action.VIEW,
            record_type="mail_attachment",
            record_id=att.pk,
            municipality_id=att.municipality_id,
            request=request,
            restricted=True,
        )
    inline = att.sniffed_type in ("image/jpeg", "image/png", "image/gif", "image/webp")
    response = HttpResponse(
        bytes(att.data), content_type=att.sniffed_type if inline else "application/octet-stream"
    )
    disposition = "inline" if inline else "attachment"
    response["Content-Disposition"] = f"{disposition}; filename*=UTF-8''{quote(att.filename)}"
    response["X-Content-Type-Options"] = "nosniff"
    response["Content-Security-Policy"] = "default-src 'none'; sandbox"
    response["Cache-Control"] = "private, no-store"
    return response
