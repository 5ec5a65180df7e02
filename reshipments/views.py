"""Re-shipment and returned-mail pages: parse, fetch with a scoped accessor, call one service."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.db import transaction
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from crm.access import (
    can_write,
    is_city_official,
    is_operator_staff,
    is_supervisor,
    scoped_or_404,
    visible_municipality_ids,
)
from crm.models import Municipality
from donations_sync.models import Donation, GiftItem, Shipment
from reshipments import selectors, services
from reshipments.forms import (
    AttemptForm,
    DecisionForm,
    ReshipmentForm,
    ReturnedImportForm,
    ReturnedItemForm,
    SettingsForm,
)
from reshipments.models import Reshipment, ReshipmentSettings, ReturnedImport, ReturnedItem
from reshipments.returned_import import ReturnedFileError, returned_items_import
from reshipments.rules import BILLABLE, Fault, Reason
from tickets import services as ticket_services
from tickets.mail.models import InboundAttachment
from tickets.models import OPEN_STATUSES, Inquiry


def _require_staff(request: HttpRequest) -> None:
    if not is_operator_staff(request.user):
        raise PermissionDenied("この画面は運営事業者の職員のみ利用できます。")


def _writable_municipalities(user) -> list[Municipality]:
    return [m for m in Municipality.objects.visible_to(user) if can_write(user, m.pk)]


# --- the request form -------------------------------------------------------------------------


@login_required
@require_http_methods(["GET", "POST"])
def reshipment_new_for_ticket(request: HttpRequest, ticket_id: int) -> HttpResponse:
    inquiry = scoped_or_404(
        Inquiry.objects.select_related("ticket", "municipality", "donor"),
        request.user,
        pk=ticket_id,
    )
    if not can_write(request.user, inquiry.municipality_id):
        raise PermissionDenied("この問合せから再送を依頼する権限がありません。")
    shipments = inquiry.shipments.visible_to(request.user)
    return _request_page(request, inquiry=inquiry, shipments=shipments, shipment=None)


@login_required
@require_http_methods(["GET", "POST"])
def reshipment_new_for_shipment(request: HttpRequest, shipment_id: int) -> HttpResponse:
    """From the donor page's shipment row: the shipment's open ticket takes the request, or a
    new ticket is opened for it (every re-shipment has its timeline)."""
    shipment = scoped_or_404(
        Shipment.objects.select_related("donation__donor", "gift_item"),
        request.user,
        pk=shipment_id,
    )
    if not can_write(request.user, shipment.municipality_id):
        raise PermissionDenied("この配送の再送を依頼する権限がありません。")
    inquiry = (
        Inquiry.objects.visible_to(request.user)
        .filter(shipments=shipment, status__in=OPEN_STATUSES)
        .order_by("-created_at")
        .first()
    )
    if inquiry is not None:
        return redirect(f"{_url('reshipments:new_for_ticket', inquiry.pk)}?shipment={shipment.pk}")
    shipments = Shipment.objects.visible_to(request.user).filter(pk=shipment.pk)
    return _request_page(request, inquiry=None, shipments=shipments, shipment=shipment)


def _url(name: str, *args) -> str:
    from django.urls import reverse

    return reverse(name, args=args)


def _request_page(request, *, inquiry: Inquiry | None, shipments, shipment: Shipment | None):
    user = request.user
    shipments = shipments.select_related("gift_item", "donation__donor", "carrier")
    municipality_id = inquiry.municipality_id if inquiry else shipment.municipality_id
    attachments = InboundAttachment.objects.none()
    if inquiry is not None:
        attachments = (
            InboundAttachment.objects.visible_to(user)
            .filter(inquiry_id=inquiry.pk, status=InboundAttachment.Status.KEPT)
            .defer("data")
            .order_by("id")
        )
        if not is_supervisor(user):
            # What may hold a My Number document is for supervisors' eyes only.
            attachments = attachments.exclude(restricted=True)
    gift_items = GiftItem.objects.visible_to(user).filter(municipality_id=municipality_id)
    form_args = {"shipments": shipments, "gift_items": gift_items, "attachments": attachments}
    preselected = shipment or shipments.filter(pk=_int(request.GET.get("shipment"))).first()
    if request.method == "POST":
        form = ReshipmentForm(request.POST, **form_args)
        if form.is_valid():
            try:
                r = _submit(request, form.cleaned_data, inquiry)
            except services.ReshipmentError as exc:
                form.add_error(None, str(exc))
            else:
                messages.success(
                    request, f"再送 #{r.pk} を依頼しました（スーパーバイザーの承認待ち）。"
                )
                return redirect("reshipments:detail", r.pk)
    else:
        form = ReshipmentForm(
            initial={"original": preselected.pk if preselected else None}, **form_args
        )
    return render(
        request,
        "reshipments/request.html",
        {
            "form": form,
            "inquiry": inquiry,
            "shipment": shipment,
            "shipments": list(shipments),
            "billable_table": _billable_table(),
            "city_approval_required": services.city_approval_required(municipality_id),
        },
    )


def _int(value) -> int | None:
    try:
        return int(value) if value else None
    except (TypeError, ValueError):
        return None


@transaction.atomic
def _submit(request, data: dict, inquiry: Inquiry | None) -> Reshipment:
    original: Shipment = data["original"]
    if inquiry is None:
        # Opened for this request from the donor page.
        inquiry = ticket_services.inquiry_open(
            actor=request.user,
            municipality=original.municipality,
            channel="phone",
            title=f"再送依頼：{original.gift_item.name}",
            description=data.get("note") or "寄附者ページから再送を依頼",
            category="damaged" if data["reason"] in ("damaged", "quality") else None,
            donor=original.donation.donor,
            donations=[original.donation],
            shipments=[original],
        )
    if data["address_mode"] == "corrected":
        ship_to = services.ShipTo(
            name=data["ship_to_name"].strip(),
            postal_code=data["ship_to_postal_code"],
            address=data["ship_to_address"].strip(),
            phone=data.get("ship_to_phone") or "",
        )
    else:
        ship_to = services.ShipTo(
            name=original.ship_to_name,
            postal_code=original.ship_to_postal_code,
            address=original.ship_to_address,
            phone=original.ship_to_phone,
        )
    return services.reshipment_request(
        actor=request.user,
        inquiry=inquiry,
        original=original,
        reason=data["reason"],
        fault=data["fault"],
        gift_item=data.get("gift_item") or original.gift_item,
        ship_to=ship_to,
        address_corrected=data["address_mode"] == "corrected",
        desired_date=data.get("desired_date"),
        desired_time_slot=data.get("desired_time_slot") or "",
        gift_cost=data["gift_cost"],
        shipping_cost=data["shipping_cost"],
        photos=list(data.get("photos") or ()),
        note=data.get("note") or "",
        request=request,
    )


def _billable_table() -> list[tuple[str, list[bool]]]:
    return [
        (label, [BILLABLE[(reason, fault)] for fault in Fault.values])
        for reason, label in Reason.choices
    ]


# --- list, detail, decisions -------------------------------------------------------------------


@login_required
@require_GET
def reshipment_list(request: HttpRequest) -> HttpResponse:
    user = request.user
    state = request.GET.get("state") or ("mine" if selectors.awaiting_statuses(user) else "")
    rows = selectors.reshipment_list(user, state=state)[:200]
    return render(
        request,
        "reshipments/list.html",
        {
            "rows": rows,
            "state": state,
            "states": [
                ("mine", "承認待ち（自分）"),
                ("pending", "承認待ち（すべて）"),
                ("done", "判断済"),
                ("all", "すべて"),
            ],
        },
    )


def _reshipment_or_404(request: HttpRequest, reshipment_id: int) -> Reshipment:
    return scoped_or_404(
        Reshipment.objects.select_related(
            "municipality",
            "inquiry__ticket",
            "original__gift_item",
            "original__carrier",
            "original__donation__donor",
            "replacement__carrier",
            "gift_item",
            "requested_by",
            "supervisor_approved_by",
            "city_decided_by",
            "refused_by",
        ),
        request.user,
        pk=reshipment_id,
    )


def _may_decide(user, r: Reshipment) -> bool:
    if r.status == Reshipment.Status.SUPERVISOR_PENDING:
        return is_supervisor(user) and can_write(user, r.municipality_id)
    if r.status == Reshipment.Status.CITY_PENDING:
        return is_city_official(user)
    return False


@login_required
@require_GET
def reshipment_detail(request: HttpRequest, reshipment_id: int) -> HttpResponse:
    r = _reshipment_or_404(request, reshipment_id)
    photos = r.photos.visible_to(request.user).defer("data")
    return render(
        request,
        "reshipments/detail.html",
        {
            "r": r,
            "photos": photos,
            "may_decide": _may_decide(request.user, r),
            "decision_form": DecisionForm(),
        },
    )


def _decide(request: HttpRequest, reshipment_id: int, action) -> HttpResponse:
    r = _reshipment_or_404(request, reshipment_id)
    form = DecisionForm(request.POST)
    comment = form.cleaned_data["comment"] if form.is_valid() else ""
    try:
        action(actor=request.user, reshipment=r, comment=comment, request=request)
    except services.ReshipmentError as exc:
        messages.error(request, str(exc))
    return redirect("reshipments:detail", r.pk)


@login_required
@require_POST
def reshipment_approve(request: HttpRequest, reshipment_id: int) -> HttpResponse:
    return _decide(request, reshipment_id, services.reshipment_approve)


@login_required
@require_POST
def reshipment_refuse(request: HttpRequest, reshipment_id: int) -> HttpResponse:
    return _decide(request, reshipment_id, services.reshipment_refuse)


# --- per-municipality settings ----------------------------------------------------------------


@login_required
@require_GET
def settings_list(request: HttpRequest) -> HttpResponse:
    if not is_supervisor(request.user):
        raise PermissionDenied("再送の設定はスーパーバイザー・運営管理者のみ変更できます。")
    municipalities = _writable_municipalities(request.user)
    current = dict(
        ReshipmentSettings.objects.filter(municipality__in=municipalities).values_list(
            "municipality_id", "city_approval_required"
        )
    )
    return render(
        request,
        "reshipments/settings.html",
        {"rows": [(m, current.get(m.pk, False)) for m in municipalities]},
    )


@login_required
@require_POST
def settings_save(request: HttpRequest, municipality_id: int) -> HttpResponse:
    municipality = scoped_or_404(Municipality.objects, request.user, pk=municipality_id)
    form = SettingsForm(request.POST)
    form.is_valid()
    services.reshipment_settings_save(
        actor=request.user,
        municipality=municipality,
        city_approval_required=form.cleaned_data.get("city_approval_required", False),
        request=request,
    )
    messages.success(request, f"{municipality.name}の再送の設定を保存しました。")
    return redirect("reshipments:settings")


# --- returned mail ----------------------------------------------------------------------------


@login_required
@require_GET
def returned_list(request: HttpRequest) -> HttpResponse:
    _require_staff(request)
    state = request.GET.get("state", "open")
    return render(
        request,
        "reshipments/returned_list.html",
        {
            "items": selectors.returned_worklist(request.user, state=state)[:300],
            "state": state,
            "states": [("open", "折り返し待ち"), ("done", "対応済"), ("all", "すべて")],
        },
    )


@login_required
@require_http_methods(["GET", "POST"])
def returned_new(request: HttpRequest) -> HttpResponse:
    _require_staff(request)
    municipalities = _writable_municipalities(request.user)
    form = ReturnedItemForm(request.POST or None)
    chosen = _int(request.POST.get("municipality") or request.GET.get("municipality"))
    if request.method == "POST" and form.is_valid():
        municipality = next((m for m in municipalities if m.pk == chosen), None)
        if municipality is None:
            form.add_error(None, "自治体を選んでください。")
        else:
            try:
                item = _add_returned(request, municipality, form.cleaned_data)
            except services.ReshipmentError as exc:
                form.add_error(None, str(exc))
            else:
                messages.success(request, "住所不明返送を登録しました（折り返し待ち）。")
                return redirect("reshipments:returned_detail", item.pk)
    return render(
        request,
        "reshipments/returned_new.html",
        {"form": form, "municipalities": municipalities, "chosen": chosen},
    )


def _add_returned(request, municipality: Municipality, data: dict) -> ReturnedItem:
    from django.db.models import Q

    from crm import normalize

    number = normalize.nfkc(data["number"]).strip()
    donation = (
        Donation.objects.filter(municipality=municipality)
        .filter(Q(portal_order_number=number) | Q(external_id=number))
        .select_related("donor")
        .first()
    )
    if donation is None:
        raise services.ReshipmentError(f"{municipality.name}の寄附が見つかりません: {number}")
    shipment = None
    if data["kind"] == ReturnedItem.Kind.GIFT:
        shipments = Shipment.objects.filter(donation=donation)
        tracking_number = normalize.clean_tracking_number(data.get("tracking_number") or "")
        if tracking_number:
            shipments = shipments.filter(tracking_number=tracking_number)
        candidates = list(shipments[:2])
        if len(candidates) != 1:
            raise services.ReshipmentError(
                "返送された配送を特定できません。伝票番号を入力してください。"
            )
        shipment = candidates[0]
    return services.returned_item_add(
        actor=request.user,
        donor=donation.donor,
        kind=data["kind"],
        returned_on=data["returned_on"],
        donation=donation,
        shipment=shipment,
        note=data.get("note") or "",
        request=request,
    )


@login_required
@require_http_methods(["GET", "POST"])
def returned_import(request: HttpRequest) -> HttpResponse:
    _require_staff(request)
    municipalities = _writable_municipalities(request.user)
    form = ReturnedImportForm(request.POST or None, request.FILES or None)
    chosen = _int(request.POST.get("municipality"))
    result = None
    if request.method == "POST" and form.is_valid():
        municipality = next((m for m in municipalities if m.pk == chosen), None)
        if municipality is None:
            form.add_error(None, "自治体を選んでください。")
        else:
            upload = form.cleaned_data["file"]
            try:
                result = returned_items_import(
                    actor=request.user,
                    municipality=municipality,
                    file=upload.file,
                    original_name=upload.name,
                    request=request,
                )
            except ReturnedFileError as exc:
                form.add_error("file", str(exc))
    ids = visible_municipality_ids(request.user)
    history = ReturnedImport.objects.filter(municipality_id__in=ids).select_related(
        "municipality", "created_by"
    )[:20]
    return render(
        request,
        "reshipments/returned_import.html",
        {
            "form": form,
            "municipalities": municipalities,
            "chosen": chosen,
            "result": result,
            "history": history,
        },
    )


def _returned_or_404(request: HttpRequest, returned_id: int) -> ReturnedItem:
    _require_staff(request)
    return scoped_or_404(
        selectors.returned_worklist(request.user, state="all"), request.user, pk=returned_id
    )


@login_required
@require_GET
def returned_detail(request: HttpRequest, returned_id: int) -> HttpResponse:
    item = _returned_or_404(request, returned_id)
    return render(
        request,
        "reshipments/returned_detail.html",
        {
            "item": item,
            "form": AttemptForm(),
            "can_write": can_write(request.user, item.municipality_id),
        },
    )


@login_required
@require_POST
def returned_attempt(request: HttpRequest, returned_id: int) -> HttpResponse:
    item = _returned_or_404(request, returned_id)
    form = AttemptForm(request.POST)
    if form.is_valid():
        try:
            services.returned_item_attempt(
                actor=request.user,
                item=item,
                outcome=form.cleaned_data["outcome"],
                note=form.cleaned_data.get("note") or "",
                postal_code=form.cleaned_data.get("postal_code") or "",
                address=(form.cleaned_data.get("address") or "").strip(),
                request=request,
            )
        except services.ReshipmentError as exc:
            form.add_error(None, str(exc))
        else:
            messages.success(request, "折り返しの結果を記録しました。")
            return redirect("reshipments:returned_detail", item.pk)
    return render(
        request,
        "reshipments/returned_detail.html",
        {"item": item, "form": form, "can_write": can_write(request.user, item.municipality_id)},
        status=400,
    )
