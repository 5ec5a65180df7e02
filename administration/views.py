"""運営管理: the operator admin's pages (municipalities, onboarding, staff) and every user's own
account page. Views parse, call one service and render."""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps

from django.conf import settings
from django.contrib import messages
from django.contrib.auth import logout
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied, ValidationError
from django.forms import Form
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_http_methods, require_POST

from administration import forms, selectors, services
from crm.access import is_operator_admin, passed_two_factor
from crm.models import (
    Carrier,
    CityContact,
    Municipality,
    MunicipalityEmailAddress,
    Provider,
    User,
)
from crm.models import MunicipalityPhoneNumber as PhoneNumber
from telephony.models import CalendarException


def operator_admin_only(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
    """Operator admins who passed two-factor in this session; everyone else gets 403."""

    @wraps(view)
    @login_required
    def wrapped(request: HttpRequest, *args, **kwargs) -> HttpResponse:
        if not is_operator_admin(request.user):
            raise PermissionDenied("この画面は運営管理者専用です。")
        if not passed_two_factor(request.user, request.session):
            return redirect(f"{reverse('two_factor')}?next={request.path}")
        return view(request, *args, **kwargs)

    return wrapped


def _add_errors(form: Form, exc: ValidationError) -> None:
    if hasattr(exc, "error_dict"):
        for name, errors in exc.message_dict.items():
            form.add_error(name if name in form.fields else None, errors)
    else:
        form.add_error(None, exc.messages)


def _municipality(municipality_id: int) -> Municipality:
    return get_object_or_404(Municipality, pk=municipality_id)


def _to_detail(municipality: Municipality, anchor: str = "") -> HttpResponse:
    url = reverse("administration:municipality_detail", args=[municipality.pk])
    return redirect(f"{url}#{anchor}" if anchor else url)


# --- Landing and municipalities -----------------------------------------------------------------


@operator_admin_only
def index(request: HttpRequest) -> HttpResponse:
    return render(
        request,
        "administration/index.html",
        {
            "municipalities": selectors.municipality_rows(),
            "changes": selectors.config_changes(limit=20),
        },
    )


@operator_admin_only
@require_http_methods(["GET", "POST"])
def municipality_create(request: HttpRequest) -> HttpResponse:
    form = forms.MunicipalityForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            municipality = services.municipality_save(
                actor=request.user, request=request, **form.cleaned_data
            )
        except ValidationError as exc:
            _add_errors(form, exc)
        else:
            messages.success(request, f"{municipality.name}を登録しました。")
            return _to_detail(municipality)
    return render(request, "administration/municipality_form.html", {"form": form})


@operator_admin_only
@require_http_methods(["GET", "POST"])
def municipality_edit(request: HttpRequest, municipality_id: int) -> HttpResponse:
    municipality = _municipality(municipality_id)
    form = forms.MunicipalityForm(request.POST or None, instance=municipality)
    if request.method == "POST" and form.is_valid():
        try:
            services.municipality_save(
                actor=request.user,
                request=request,
                municipality=_municipality(municipality_id),
                **form.cleaned_data,
            )
        except ValidationError as exc:
            _add_errors(form, exc)
        else:
            messages.success(request, "自治体の情報を保存しました。")
            return _to_detail(municipality)
    return render(
        request,
        "administration/municipality_form.html",
        {"form": form, "municipality": municipality},
    )


@operator_admin_only
def municipality_detail(request: HttpRequest, municipality_id: int) -> HttpResponse:
    municipality = _municipality(municipality_id)
    detail = selectors.municipality_detail(municipality)
    phone = detail.phone_settings
    prefs = detail.mail_settings
    context = {
        "m": municipality,
        "detail": detail,
        "webhooks": selectors.webhook_urls(),
        "numbers": municipality.phone_numbers.order_by("e164"),
        "addresses": [
            (a, detail.mailboxes.get(a.pk))
            for a in municipality.email_addresses.order_by("address")
        ],
        "contacts": CityContact.objects.filter(municipality=municipality),
        "providers": municipality.providers.order_by("code"),
        "number_form": forms.PhoneNumberForm(),
        "address_form": forms.InboundAddressForm(),
        "mail_form": forms.MailSettingsForm(
            initial={
                "acknowledgement_enabled": prefs.acknowledgement_enabled if prefs else False,
                "acknowledgement_subject": prefs.acknowledgement_subject
                if prefs
                else "【受付】{subject}",
                "acknowledgement_body": prefs.acknowledgement_body
                if prefs
                else "{municipality}ふるさと納税コールセンターです。\nお問合せを受け付けました（受付番号 {ticket_id}）。",
            }
        ),
        "phone_form": forms.PhoneSettingsForm(
            initial={
                "greeting": phone.greeting,
                "hold_message": phone.hold_message,
                "max_queue_wait_seconds": phone.max_queue_wait_seconds,
                "ring_timeout_seconds": phone.ring_timeout_seconds,
                "record_calls": phone.record_calls,
            }
        ),
        "ivr_form": forms.IvrOptionsForm(options=phone.ivr_options),
        "preset_form": forms.PresetForm(),
        "weekly_form": forms.WeeklyHoursForm(
            weekly=detail.weekly, initial={"open_on_holidays": phone.open_on_holidays}
        ),
        "exception_form": forms.CalendarExceptionForm(),
        "contact_form": forms.CityContactForm(
            initial={
                "escalation_order": CityContact.objects.filter(municipality=municipality).count()
                + 1
            }
        ),
        "provider_form": forms.ProviderForm(),
        "suspend_form": forms.SuspendForm(),
        "changes": selectors.config_changes(municipality=municipality, limit=20),
        "staff": municipality.staff.order_by("role", "username"),
        "staff_form": forms.MunicipalityStaffForm(
            initial={"staff": list(municipality.staff.values_list("pk", flat=True))}
        ),
    }
    return render(request, "administration/municipality_detail.html", context)


def _section_post(
    request: HttpRequest,
    municipality_id: int,
    form_class,
    anchor: str,
    call: Callable[[Municipality, Form], object],
    done: str,
    form_kwargs: dict | None = None,
) -> HttpResponse:
    """A section of the municipality page posted: validate, call the service, back to the page
    (errors as messages, since the page holds many forms)."""
    municipality = _municipality(municipality_id)
    form = form_class(request.POST, **(form_kwargs or {}))
    if form.is_valid():
        try:
            call(municipality, form)
        except ValidationError as exc:
            for text in exc.messages:
                messages.error(request, text)
        else:
            messages.success(request, done)
    else:
        for field, errors in form.errors.items():
            label = form.fields[field].label if field in form.fields else ""
            for text in errors:
                messages.error(request, f"{label}: {text}" if label else text)
    return _to_detail(municipality, anchor)


@operator_admin_only
@require_POST
def phone_number_add(request: HttpRequest, municipality_id: int) -> HttpResponse:
    return _section_post(
        request,
        municipality_id,
        forms.PhoneNumberForm,
        "numbers",
        lambda m, f: services.phone_number_add(
            actor=request.user, municipality=m, request=request, **f.cleaned_data
        ),
        "着信番号を登録しました。",
    )


@operator_admin_only
@require_POST
def phone_number_remove(request: HttpRequest, municipality_id: int, pk: int) -> HttpResponse:
    number = get_object_or_404(PhoneNumber, pk=pk, municipality_id=municipality_id)
    services.phone_number_remove(actor=request.user, number=number, request=request)
    messages.success(request, f"{number.e164} を削除しました。")
    return _to_detail(number.municipality, "numbers")


@operator_admin_only
@require_POST
def phone_settings_save(request: HttpRequest, municipality_id: int) -> HttpResponse:
    return _section_post(
        request,
        municipality_id,
        forms.PhoneSettingsForm,
        "phone",
        lambda m, f: services.phone_settings_save(
            actor=request.user, municipality=m, request=request, **f.cleaned_data
        ),
        "電話の設定を保存しました。",
    )


@operator_admin_only
@require_POST
def ivr_options_save(request: HttpRequest, municipality_id: int) -> HttpResponse:
    return _section_post(
        request,
        municipality_id,
        forms.IvrOptionsForm,
        "phone",
        lambda m, f: services.phone_settings_save(
            actor=request.user, municipality=m, request=request, ivr_options=f.options()
        ),
        "音声メニューを保存しました。",
    )


@operator_admin_only
@require_POST
def inbound_address_add(request: HttpRequest, municipality_id: int) -> HttpResponse:
    return _section_post(
        request,
        municipality_id,
        forms.InboundAddressForm,
        "mail",
        lambda m, f: services.inbound_address_add(
            actor=request.user, municipality=m, request=request, **f.cleaned_data
        ),
        "受信アドレスを登録しました。",
    )


@operator_admin_only
@require_POST
def inbound_address_remove(request: HttpRequest, municipality_id: int, pk: int) -> HttpResponse:
    address = get_object_or_404(MunicipalityEmailAddress, pk=pk, municipality_id=municipality_id)
    services.inbound_address_remove(actor=request.user, address=address, request=request)
    messages.success(request, f"{address.address} を削除しました。")
    return _to_detail(address.municipality, "mail")


@operator_admin_only
@require_http_methods(["GET", "POST"])
def mailbox_edit(request: HttpRequest, municipality_id: int, pk: int) -> HttpResponse:
    address = get_object_or_404(MunicipalityEmailAddress, pk=pk, municipality_id=municipality_id)
    box = getattr(address, "mailbox", None)
    form = forms.MailboxForm(request.POST or None, instance=box)
    if request.method == "POST" and form.is_valid():
        fields = {name: form.cleaned_data[name] for name in forms.MailboxForm.Meta.fields}
        if form.cleaned_data.get("password"):
            fields["password"] = form.cleaned_data["password"]
        try:
            services.mailbox_save(actor=request.user, address=address, request=request, **fields)
        except ValidationError as exc:
            _add_errors(form, exc)
        else:
            messages.success(request, "メールボックスの設定を保存しました。")
            return _to_detail(address.municipality, "mail")
    return render(
        request,
        "administration/mailbox_form.html",
        {"form": form, "address": address, "m": address.municipality},
    )


@operator_admin_only
@require_POST
def mail_settings_save(request: HttpRequest, municipality_id: int) -> HttpResponse:
    return _section_post(
        request,
        municipality_id,
        forms.MailSettingsForm,
        "mail",
        lambda m, f: services.mail_settings_save(
            actor=request.user, municipality=m, request=request, **f.cleaned_data
        ),
        "受付自動返信の設定を保存しました。",
    )


@operator_admin_only
@require_POST
def calendar_preset(request: HttpRequest, municipality_id: int) -> HttpResponse:
    return _section_post(
        request,
        municipality_id,
        forms.PresetForm,
        "calendar",
        lambda m, f: services.calendar_preset_apply(
            actor=request.user, municipality=m, request=request, **f.cleaned_data
        ),
        "受付時間の型を適用しました。",
    )


@operator_admin_only
@require_POST
def calendar_weekly(request: HttpRequest, municipality_id: int) -> HttpResponse:
    return _section_post(
        request,
        municipality_id,
        forms.WeeklyHoursForm,
        "calendar",
        lambda m, f: services.calendar_weekly_hours_set(
            actor=request.user,
            municipality=m,
            request=request,
            hours=f.hours(),
            open_on_holidays=f.cleaned_data["open_on_holidays"],
        ),
        "曜日ごとの受付時間を保存しました。",
    )


@operator_admin_only
@require_POST
def calendar_exception_add(request: HttpRequest, municipality_id: int) -> HttpResponse:
    return _section_post(
        request,
        municipality_id,
        forms.CalendarExceptionForm,
        "calendar",
        lambda m, f: services.calendar_exception_add(
            actor=request.user, municipality=m, request=request, **f.cleaned_data
        ),
        "休業日・特別受付日を追加しました。",
    )


@operator_admin_only
@require_POST
def calendar_exception_delete(request: HttpRequest, municipality_id: int, pk: int) -> HttpResponse:
    exception = get_object_or_404(CalendarException, pk=pk, municipality_id=municipality_id)
    services.calendar_exception_delete(actor=request.user, exception=exception, request=request)
    messages.success(request, f"「{exception.label}」を削除しました。")
    return _to_detail(exception.municipality, "calendar")


@operator_admin_only
@require_POST
def city_contact_add(request: HttpRequest, municipality_id: int) -> HttpResponse:
    return _section_post(
        request,
        municipality_id,
        forms.CityContactForm,
        "contacts",
        lambda m, f: services.city_contact_save(
            actor=request.user, municipality=m, request=request, **f.cleaned_data
        ),
        "自治体担当者を登録しました。",
    )


@operator_admin_only
@require_POST
def city_contact_delete(request: HttpRequest, municipality_id: int, pk: int) -> HttpResponse:
    contact = get_object_or_404(CityContact, pk=pk, municipality_id=municipality_id)
    try:
        services.city_contact_delete(actor=request.user, contact=contact, request=request)
    except ValidationError as exc:
        messages.error(request, exc.messages[0])
    else:
        messages.success(request, f"{contact.name} を削除しました。")
    return _to_detail(contact.municipality, "contacts")


@operator_admin_only
@require_POST
def provider_add(request: HttpRequest, municipality_id: int) -> HttpResponse:
    return _section_post(
        request,
        municipality_id,
        forms.ProviderForm,
        "providers",
        lambda m, f: services.provider_save(
            actor=request.user, municipality=m, request=request, **f.cleaned_data
        ),
        "返礼品提供事業者を登録しました。",
    )


@operator_admin_only
@require_POST
def municipality_staff(request: HttpRequest, municipality_id: int) -> HttpResponse:
    return _section_post(
        request,
        municipality_id,
        forms.MunicipalityStaffForm,
        "staff",
        lambda m, f: services.municipality_staff_set(
            actor=request.user, municipality=m, users=list(f.cleaned_data["staff"]), request=request
        ),
        "担当スタッフを保存しました。",
    )


@operator_admin_only
@require_POST
def municipality_suspend(request: HttpRequest, municipality_id: int) -> HttpResponse:
    return _section_post(
        request,
        municipality_id,
        forms.SuspendForm,
        "lifecycle",
        lambda m, f: services.municipality_suspend(
            actor=request.user, municipality=m, request=request, **f.cleaned_data
        ),
        "受付を停止しました。電話は停止のご案内のみ、メールは保留されます。",
    )


@operator_admin_only
@require_POST
def municipality_resume(request: HttpRequest, municipality_id: int) -> HttpResponse:
    municipality = _municipality(municipality_id)
    services.municipality_resume(actor=request.user, municipality=municipality, request=request)
    messages.success(request, "受付を再開しました。")
    return _to_detail(municipality, "lifecycle")


@operator_admin_only
@require_http_methods(["GET", "POST"])
def carriers(request: HttpRequest) -> HttpResponse:
    form = forms.CarrierForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            services.carrier_save(actor=request.user, request=request, **form.cleaned_data)
        except ValidationError as exc:
            _add_errors(form, exc)
        else:
            messages.success(request, "配送業者を登録しました。")
            return redirect("administration:carriers")
    return render(
        request,
        "administration/carriers.html",
        {"form": form, "carriers": Carrier.objects.order_by("code")},
    )


# --- Onboarding -----------------------------------------------------------------------------


@operator_admin_only
@require_http_methods(["GET", "POST"])
def onboard(request: HttpRequest) -> HttpResponse:
    form = forms.OnboardingForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        onboarding = services.Onboarding(
            municipality={name: data[name] for name in forms.MunicipalityForm.Meta.fields},
            phone_number=data["phone_number"],
            phone_label=data["phone_label"],
            inbound_address=data["inbound_address"],
            calendar_preset=data["calendar_preset"],
            opens=data["opens"],
            closes=data["closes"],
            contacts=form.contacts(),
            staff=list(data["staff"]),
        )
        try:
            municipality = services.municipality_onboard(
                actor=request.user, onboarding=onboarding, request=request
            )
        except ValidationError as exc:
            if hasattr(exc, "error_dict") and "number" in exc.error_dict:
                form.add_error("phone_number", exc.error_dict.pop("number"))
            if hasattr(exc, "error_dict") and "address" in exc.error_dict:
                form.add_error("inbound_address", exc.error_dict.pop("address"))
            if not hasattr(exc, "error_dict") or exc.error_dict:
                _add_errors(form, exc)
        else:
            messages.success(request, f"{municipality.name}の受付を開始できる状態になりました。")
            return _to_detail(municipality)
    return render(request, "administration/onboard.html", {"form": form})


# --- Staff ------------------------------------------------------------------------------------


@operator_admin_only
def staff_list(request: HttpRequest) -> HttpResponse:
    return render(
        request,
        "administration/staff_list.html",
        {"rows": selectors.staff_rows(), "link_hours": settings.TWO_FACTOR_ENROLMENT_LINK_HOURS},
    )


def _created_page(request: HttpRequest, created: list[services.CreatedStaff]) -> HttpResponse:
    rows = [
        (
            c.user,
            c.password,
            request.build_absolute_uri(reverse("two_factor_enrol", args=[c.enrolment_token]))
            if c.enrolment_token
            else "",
        )
        for c in created
    ]
    response = render(
        request,
        "administration/staff_created.html",
        {"rows": rows, "link_hours": settings.TWO_FACTOR_ENROLMENT_LINK_HOURS},
    )
    return response


@never_cache
@operator_admin_only
@require_http_methods(["GET", "POST"])
def staff_create(request: HttpRequest) -> HttpResponse:
    form = forms.StaffForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        new = services.NewStaff(
            username=data["username"],
            display_name=data["display_name"],
            role=data["role"],
            municipalities=list(data["municipalities"]),
            email=data["email"],
        )
        try:
            created = services.staff_create(actor=request.user, new=new, request=request)
        except ValidationError as exc:
            _add_errors(form, exc)
        else:
            return _created_page(request, [created])
    return render(request, "administration/staff_form.html", {"form": form})


@operator_admin_only
@require_http_methods(["GET", "POST"])
def staff_edit(request: HttpRequest, user_id: int) -> HttpResponse:
    target = get_object_or_404(User, pk=user_id)
    form = forms.StaffEditForm(
        request.POST or None,
        initial={
            "username": target.username,
            "display_name": target.display_name,
            "email": target.email,
            "role": target.role,
            "municipalities": list(target.municipalities.all()),
        },
    )
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            services.staff_update(
                actor=request.user,
                user=target,
                role=data["role"],
                display_name=data["display_name"],
                email=data["email"],
                municipalities=list(data["municipalities"]),
                request=request,
            )
        except ValidationError as exc:
            _add_errors(form, exc)
        else:
            messages.success(request, f"{target.username} を保存しました。")
            return redirect("administration:staff_list")
    return render(request, "administration/staff_form.html", {"form": form, "target": target})


@operator_admin_only
@require_POST
def staff_deactivate(request: HttpRequest, user_id: int) -> HttpResponse:
    target = get_object_or_404(User, pk=user_id)
    try:
        ended = services.staff_deactivate(actor=request.user, user=target, request=request)
    except ValidationError as exc:
        messages.error(request, exc.messages[0])
    else:
        messages.success(
            request,
            f"{target.username} を無効にしました（ログイン中のセッション {ended} 件を終了）。",
        )
    return redirect("administration:staff_list")


@operator_admin_only
@require_POST
def staff_reactivate(request: HttpRequest, user_id: int) -> HttpResponse:
    target = get_object_or_404(User, pk=user_id)
    services.staff_reactivate(actor=request.user, user=target, request=request)
    messages.success(request, f"{target.username} を有効にしました。")
    return redirect("administration:staff_list")


@never_cache
@operator_admin_only
@require_POST
def staff_password_reset(request: HttpRequest, user_id: int) -> HttpResponse:
    target = get_object_or_404(User, pk=user_id)
    password = services.staff_password_reset(actor=request.user, user=target, request=request)
    return render(
        request,
        "administration/staff_password.html",
        {"target": target, "password": password},
    )


@never_cache
@operator_admin_only
@require_http_methods(["GET", "POST"])
def staff_import(request: HttpRequest) -> HttpResponse:
    form = forms.StaffCsvForm(request.POST or None, request.FILES or None)
    errors: list[services.RowError] = []
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data["file"].read()
        try:
            created = services.staff_bulk_create(actor=request.user, data=data, request=request)
        except services.BulkRefused as exc:
            errors = exc.errors
        else:
            return _created_page(request, created)
    return render(
        request,
        "administration/staff_import.html",
        {"form": form, "errors": errors, "columns": services.CSV_COLUMNS},
        status=400 if errors else 200,
    )


@operator_admin_only
def staff_import_sample(request: HttpRequest) -> HttpResponse:
    """A sample to fill in (UTF-8 with BOM, so Excel opens it with the Japanese intact)."""
    rows = [
        ",".join(services.CSV_COLUMNS),
        "yamada_t,山田 太郎,オペレーター,012033 342076,",
        "suzuki_h,鈴木 花子,スーパーバイザー,012033,suzuki@example.jp",
        "city_tanaka,田中 一郎,自治体職員,012033,tanaka@city.example.jp",
    ]
    response = HttpResponse(
        ("\ufeff" + "\r\n".join(rows) + "\r\n").encode("utf-8"),
        content_type="text/csv; charset=utf-8",
    )
    response["Content-Disposition"] = 'attachment; filename="staff-sample.csv"'
    return response


@operator_admin_only
def access_matrix(request: HttpRequest) -> HttpResponse:
    municipalities, rows = selectors.access_matrix()
    return render(
        request,
        "administration/access_matrix.html",
        {"municipalities": municipalities, "rows": rows},
    )


# --- Every user's own account ----------------------------------------------------------------


@login_required
@require_http_methods(["GET", "POST"])
def account(request: HttpRequest) -> HttpResponse:
    form = forms.PasswordChangeForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            services.own_password_change(
                user=request.user,
                old_password=form.cleaned_data["old_password"],
                new_password=form.cleaned_data["new_password"],
                request=request,
            )
        except ValidationError as exc:
            if hasattr(exc, "error_dict"):
                _add_errors(form, exc)
            else:
                form.add_error("new_password", exc.messages)
        else:
            messages.success(
                request, "パスワードを変更しました。ほかの端末のログインは終了しました。"
            )
            return redirect("administration:account")
    return render(
        request,
        "administration/account.html",
        {"form": form, "logins": selectors.own_recent_logins(request.user)},
    )


@login_required
@require_POST
def account_logout_everywhere(request: HttpRequest) -> HttpResponse:
    # The checkbox confirms it: a stray post must not sign someone out of every device.
    if request.POST.get("everywhere") != "1":
        messages.error(request, "確認のチェックを入れてください。")
        return redirect("administration:account")
    services.own_logout_everywhere(user=request.user, request=request)
    logout(request)
    messages.info(request, "すべての端末からログアウトしました。")
    return redirect("login")


def _record_edit(
    request: HttpRequest,
    *,
    record,
    form_class,
    save: Callable[[Form], object],
    title: str,
    back: str,
    done: str,
) -> HttpResponse:
    form = form_class(request.POST or None, instance=record)
    if request.method == "POST" and form.is_valid():
        try:
            save(form)
        except ValidationError as exc:
            _add_errors(form, exc)
        else:
            messages.success(request, done)
            return redirect(back)
    return render(
        request, "administration/record_form.html", {"form": form, "title": title, "back": back}
    )


@operator_admin_only
@require_http_methods(["GET", "POST"])
def city_contact_edit(request: HttpRequest, municipality_id: int, pk: int) -> HttpResponse:
    contact = get_object_or_404(CityContact, pk=pk, municipality_id=municipality_id)
    return _record_edit(
        request,
        record=contact,
        form_class=forms.CityContactForm,
        save=lambda f: services.city_contact_save(
            actor=request.user,
            municipality=contact.municipality,
            contact=CityContact.objects.get(pk=contact.pk),
            request=request,
            **f.cleaned_data,
        ),
        title=f"自治体担当者 {contact.name}（{contact.municipality.name}）",
        back=reverse("administration:municipality_detail", args=[municipality_id]) + "#contacts",
        done="自治体担当者を保存しました。",
    )


@operator_admin_only
@require_http_methods(["GET", "POST"])
def provider_edit(request: HttpRequest, municipality_id: int, pk: int) -> HttpResponse:
    provider = get_object_or_404(Provider, pk=pk, municipality_id=municipality_id)
    return _record_edit(
        request,
        record=provider,
        form_class=forms.ProviderForm,
        save=lambda f: services.provider_save(
            actor=request.user,
            municipality=provider.municipality,
            provider=Provider.objects.get(pk=provider.pk),
            request=request,
            **f.cleaned_data,
        ),
        title=f"返礼品提供事業者 {provider.name}（{provider.municipality.name}）",
        back=reverse("administration:municipality_detail", args=[municipality_id]) + "#providers",
        done="返礼品提供事業者を保存しました。",
    )


@operator_admin_only
@require_http_methods(["GET", "POST"])
def carrier_edit(request: HttpRequest, pk: int) -> HttpResponse:
    carrier = get_object_or_404(Carrier, pk=pk)
    return _record_edit(
        request,
        record=carrier,
        form_class=forms.CarrierForm,
        save=lambda f: services.carrier_save(
            actor=request.user,
            carrier=Carrier.objects.get(pk=carrier.pk),
            request=request,
            **f.cleaned_data,
        ),
        title=f"配送業者 {carrier.name}",
        back=reverse("administration:carriers"),
        done="配送業者を保存しました。",
    )
