"""Log-in, two-factor, the staff page (operator admins) and the municipality overview."""

from __future__ import annotations

import base64
import ipaddress
from collections.abc import Callable
from functools import wraps
from io import BytesIO

import qrcode
import qrcode.image.svg
from django import forms
from django.conf import settings
from django.contrib import messages
from django.contrib.auth import views as auth_views
from django.contrib.auth.decorators import login_required
from django.contrib.auth.forms import AuthenticationForm
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_http_methods, require_POST
from django_otp import login as otp_login
from django_otp.plugins.otp_totp.models import TOTPDevice

from crm import enrolment, lockout, services
from crm.access import needs_two_factor, passed_two_factor
from crm.audit import audit_record
from crm.models import AuditLog, EnrolmentLink, Municipality, User

LOCKED_OUT_MESSAGE = (
    "ログインの失敗が続いたため、このアカウントまたは接続元からのログインを一時的に停止しています。"
    "{minutes}分ほどしてからもう一度お試しいただくか、運営管理者にロック解除を依頼してください。"
)
NEEDS_LINK_MESSAGE = "二要素認証の登録用リンクを管理者に発行してもらってください。"


class LoginView(auth_views.LoginView):
    template_name = "crm/login.html"
    redirect_authenticated_user = True


def login_locked_out(
    request: HttpRequest, original_response: HttpResponse | None, credentials: dict | None
) -> HttpResponse:
    """AXES_LOCKOUT_CALLABLE: the log-in page again, saying why the log-in was refused."""
    # The posted name, not ``credentials``: axes' ASGI path passes its arguments shifted.
    form = AuthenticationForm(request, initial={"username": request.POST.get("username", "")})
    context = {
        "form": form,
        "next": request.POST.get("next", ""),
        "locked_message": LOCKED_OUT_MESSAGE.format(minutes=settings.LOGIN_LOCKOUT_MINUTES),
    }
    return render(request, "crm/login.html", context, status=429)


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


def _check_code(request: HttpRequest, form: TokenForm, device: TOTPDevice) -> bool:
    """Verify the posted code against the device, adding the error to the form if it fails."""
    # django-otp throttles a device after failures (1 s, 2 s, 4 s …) against guessing.
    allowed, _ = device.verify_is_allowed()
    if not allowed:
        form.add_error("token", "確認コードの誤りが続いたため、少し待ってから入力してください。")
        return False
    if device.verify_token(form.cleaned_data["token"]):
        return True
    audit_record(action=AuditLog.Action.OTP_FAILED, request=request, user=request.user)
    form.add_error("token", "確認コードが正しくありません。")
    return False


def _after_verification(request: HttpRequest) -> HttpResponse:
    next_url = request.GET.get("next", "")
    if url_has_allowed_host_and_scheme(next_url, allowed_hosts={request.get_host()}):
        return redirect(next_url)
    return redirect("home")


@login_required
@require_http_methods(["GET", "POST"])
def two_factor(request: HttpRequest) -> HttpResponse:
    """Verify a TOTP code. Enrolling needs a link from an operator admin (two_factor_enrol):
    the password alone must not let anyone attach their own authenticator to an account."""
    user = request.user
    if passed_two_factor(user, request.session):
        return redirect("home")
    device = TOTPDevice.objects.filter(user=user, confirmed=True).first()
    if device is None:
        return render(request, "crm/two_factor.html", {"needs_link": NEEDS_LINK_MESSAGE})
    form = TokenForm(request.POST or None)
    if request.method == "POST" and form.is_valid() and _check_code(request, form, device):
        otp_login(request, device)
        return _after_verification(request)
    return render(request, "crm/two_factor.html", {"form": form})


@never_cache
@login_required
@require_http_methods(["GET", "POST"])
def two_factor_enrol(request: HttpRequest, token: str) -> HttpResponse:
    """Enrol an authenticator app with a one-time link issued by an operator admin."""
    user = request.user
    if not needs_two_factor(user):
        return redirect("home")
    link = enrolment.usable_link(user, token)
    if link is None:
        context = {"invalid_link": True, "needs_link": NEEDS_LINK_MESSAGE}
        return render(request, "crm/two_factor.html", context, status=404)
    device = services.enrolment_device(link=link)
    form = TokenForm(request.POST or None)
    if request.method == "POST" and form.is_valid() and _check_code(request, form, device):
        try:
            device = services.enrolment_complete(link=link, request=request)
        except EnrolmentLink.DoesNotExist:  # used, replaced or expired meanwhile
            context = {"invalid_link": True, "needs_link": NEEDS_LINK_MESSAGE}
            return render(request, "crm/two_factor.html", context, status=404)
        otp_login(request, device)
        messages.success(request, "二要素認証を登録しました。")
        return redirect("home")
    context = {
        "form": form,
        "enrolling": True,
        "qr": _qr_svg(device.config_url),
        "secret": base64.b32encode(device.bin_key).decode(),
        "issuer": settings.OTP_TOTP_ISSUER,
    }
    return render(request, "crm/two_factor.html", context)


# --- スタッフ: operator admins manage log-in locks and second factors ---


def operator_admin_required(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
    @wraps(view)
    @login_required
    def wrapped(request: HttpRequest, *args, **kwargs) -> HttpResponse:
        if not request.user.is_operator_admin:
            raise PermissionDenied("この画面は運営管理者専用です。")
        return view(request, *args, **kwargs)

    return wrapped


def _back_to_staff(request: HttpRequest) -> HttpResponse:
    """Back to the page the action was taken on (the operator admin's staff pages post here
    with ``?next=``), or to this staff page."""
    next_url = request.GET.get("next", "")
    if next_url and url_has_allowed_host_and_scheme(
        next_url, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        return redirect(next_url)
    return redirect("staff_list")


@operator_admin_required
def staff_list(request: HttpRequest) -> HttpResponse:
    users = User.objects.prefetch_related("municipalities").order_by("role", "username")
    enrolled = set(
        TOTPDevice.objects.filter(confirmed=True).values_list("user_id", flat=True).distinct()
    )
    locked = lockout.locked_usernames()
    rows = [
        {
            "user": u,
            "enrolled": u.pk in enrolled,
            "locked": lockout.username_key(u.get_username()) in locked,
        }
        for u in users
    ]
    context = {
        "rows": rows,
        "locked_addresses": lockout.locked_addresses(),
        "link_hours": settings.TWO_FACTOR_ENROLMENT_LINK_HOURS,
    }
    return render(request, "crm/staff.html", context)


@never_cache
@operator_admin_required
@require_POST
def staff_enrolment_link(request: HttpRequest, user_id: int) -> HttpResponse:
    target = get_object_or_404(User, pk=user_id)
    try:
        token = services.enrolment_link_issue(actor=request.user, user=target, request=request)
    except ValidationError as exc:
        messages.error(request, exc.messages[0])
        return redirect("staff_list")
    link = request.build_absolute_uri(reverse("two_factor_enrol", args=[token]))
    context = {
        "target": target,
        "link": link,
        "link_hours": settings.TWO_FACTOR_ENROLMENT_LINK_HOURS,
    }
    return render(request, "crm/staff_link.html", context)


@operator_admin_required
@require_POST
def staff_two_factor_reset(request: HttpRequest, user_id: int) -> HttpResponse:
    target = get_object_or_404(User, pk=user_id)
    services.two_factor_reset(actor=request.user, user=target, request=request)
    messages.success(
        request,
        f"{target}の二要素認証をリセットしました。登録用リンクを発行して再登録してもらってください。",
    )
    return _back_to_staff(request)


@operator_admin_required
@require_POST
def staff_unlock(request: HttpRequest, user_id: int) -> HttpResponse:
    target = get_object_or_404(User, pk=user_id)
    services.login_lock_clear(actor=request.user, user=target, request=request)
    messages.success(request, f"{target}のログインロックを解除しました。")
    return _back_to_staff(request)


@operator_admin_required
@require_POST
def staff_unlock_address(request: HttpRequest) -> HttpResponse:
    try:
        address = str(ipaddress.ip_address(request.POST.get("ip_address", "").strip()))
    except ValueError:
        messages.error(request, "接続元のIPアドレスが正しくありません。")
        return redirect("staff_list")
    services.login_lock_clear(actor=request.user, ip_address=address, request=request)
    messages.success(request, f"接続元 {address} のログインロックを解除しました。")
    return redirect("staff_list")


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
