"""Log-in, two-factor, and the municipality overview."""

from __future__ import annotations

import base64
from io import BytesIO

import qrcode
import qrcode.image.svg
from django import forms
from django.conf import settings
from django.contrib.auth import views as auth_views
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_http_methods
from django_otp import login as otp_login
from django_otp.plugins.otp_totp.models import TOTPDevice

from crm.access import passed_two_factor
from crm.audit import audit_record
from crm.models import AuditLog, Municipality


class LoginView(auth_views.LoginView):
    template_name = "crm/login.html"
    redirect_authenticated_user = True


class TokenForm(forms.Form):
    token = forms.CharField(
        label="確認コード（6桁）",
        max_length=6,
        min_length=6,
        widget=forms.TextInput(
            attrs={"autocomplete": "one-time-code", "inputmode": "numeric", "autofocus": True}
        ),
    )


def _qr_svg(uri: str) -> str:
    image = qrcode.make(uri, image_factory=qrcode.image.svg.SvgPathImage, box_size=8)
    buffer = BytesIO()
    image.save(buffer)
    return "data:image/svg+xml;base64," + base64.b64encode(buffer.getvalue()).decode()


@login_required
@require_http_methods(["GET", "POST"])
def two_factor(request: HttpRequest) -> HttpResponse:
    """Verify a TOTP code; enrol a device first if the user has none confirmed."""
    user = request.user
    if passed_two_factor(user, request.session):
        return redirect("home")
    device = TOTPDevice.objects.filter(user=user, confirmed=True).first()
    enrolling = device is None
    if enrolling:
        device = TOTPDevice.objects.filter(
            user=user, confirmed=False
        ).first() or TOTPDevice.objects.create(user=user, name="既定", confirmed=False)
    form = TokenForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        # django-otp throttles a device after failures (1 s, 2 s, 4 s …) against guessing.
        allowed, _ = device.verify_is_allowed()
        if not allowed:
            form.add_error(
                "token", "確認コードの誤りが続いたため、少し待ってから入力してください。"
            )
        elif device.verify_token(form.cleaned_data["token"]):
            if enrolling:
                device.confirmed = True
                device.save(update_fields=["confirmed"])
                audit_record(action=AuditLog.Action.OTP_ENROLLED, request=request, user=user)
            otp_login(request, device)
            next_url = request.GET.get("next", "")
            if url_has_allowed_host_and_scheme(next_url, allowed_hosts={request.get_host()}):
                return redirect(next_url)
            return redirect("home")
        else:
            audit_record(action=AuditLog.Action.OTP_FAILED, request=request, user=user)
            form.add_error("token", "確認コードが正しくありません。")
    context = {"form": form, "enrolling": enrolling}
    if enrolling:
        context["qr"] = _qr_svg(device.config_url)
        context["secret"] = base64.b32encode(device.bin_key).decode()
        context["issuer"] = settings.OTP_TOTP_ISSUER
    return render(request, "crm/two_factor.html", context)


@login_required
def home(request: HttpRequest) -> HttpResponse:
    """Each role starts where its work is: agents at the console, city staff at their city's list."""
    return redirect("console" if request.user.is_operator_staff else "ticket_list")


@login_required
def municipality_list(request: HttpRequest) -> HttpResponse:
    municipalities = Municipality.objects.visible_to(request.user).prefetch_related("phone_numbers")
    return render(request, "crm/home.html", {"municipalities": municipalities})


def healthz(request: HttpRequest) -> HttpResponse:
    return HttpResponse("ok", content_type="text/plain")
