"""The import pages (supervisors: upload, runs and their results, column mappings) and the
要確認 call-back list (agents and supervisors work it; city officials read their city's)."""

from __future__ import annotations

from functools import wraps
from pathlib import PurePath

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import HttpRequest, HttpResponse, JsonResponse, StreamingHttpResponse
from django.shortcuts import redirect, render
from django.utils import timezone
from django.utils.http import content_disposition_header
from django.views.decorators.http import require_POST

from crm.access import chosen_municipality_id, is_supervisor, scoped_or_404
from crm.models import Municipality, PersonalDataAccess
from crm.pagination import keyset_page
from crm.services import personal_data_access_record
from crm.streaming import aiter_in_thread
from donations_sync import import_selectors as selectors
from donations_sync.callback_services import can_work_callbacks, donor_callback_resolve
from donations_sync.exports import encoding_label, rejections_csv, rejections_encoding
from donations_sync.forms import (
    CallbackResolveForm,
    MappingCreateForm,
    MappingEditForm,
    RerunForm,
    UploadForm,
)
from donations_sync.imports import PRESETS, ImportFileError
from donations_sync.mapping_services import (
    can_manage_imports,
    import_mapping_create,
    import_mapping_update,
)
from donations_sync.models import DonorCallback, ImportRun
from donations_sync.presenters import present_donation
from donations_sync.services import import_run_create, import_run_rerun

RUNS_PAGE_SIZE = 50
CALLBACKS_PAGE_SIZE = 50


def import_staff_required(view):
    """Supervisors and operator admins: agents and city officials do not import."""

    @login_required
    @wraps(view)
    def wrapper(request: HttpRequest, *args, **kwargs):
        if not is_supervisor(request.user):
            raise PermissionDenied("CSV取込は監督者のみが利用できます。")
        return view(request, *args, **kwargs)

    return wrapper


def _importable_municipalities(user):
    return Municipality.objects.visible_to(user).order_by("code")


def _selected_municipality(request: HttpRequest) -> int | None:
    return chosen_municipality_id(request.user, request.GET.get("m"))


# --- Runs ----------------------------------------------------------------------------------


@import_staff_required
def import_index(request: HttpRequest) -> HttpResponse:
    municipalities = list(_importable_municipalities(request.user))
    if len(municipalities) == 1:
        return redirect("import_history", municipality_id=municipalities[0].id)
    return render(request, "donations_sync/import_index.html", {"municipalities": municipalities})


@import_staff_required
def import_history(request: HttpRequest, municipality_id: int) -> HttpResponse:
    municipality = scoped_or_404(Municipality.objects.all(), request.user, id=municipality_id)
    runs = selectors.import_runs_visible_to(request.user).filter(municipality=municipality)
    page = keyset_page(
        runs,
        key="created_at",
        size=RUNS_PAGE_SIZE,
        after=request.GET.get("after"),
        before=request.GET.get("before"),
    )
    return render(
        request,
        "donations_sync/import_history.html",
        {"municipality": municipality, "page": page},
    )


@import_staff_required
def import_upload(request: HttpRequest) -> HttpResponse:
    user = request.user
    municipalities = _importable_municipalities(user)
    initial = {}
    if (selected := _selected_municipality(request)) is not None:
        initial["municipality"] = selected
    form = UploadForm(
        request.POST or None,
        request.FILES or None,
        municipalities=municipalities,
        user=user,
        initial=initial,
    )
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        municipality = data["municipality"]
        if not can_manage_imports(user, municipality.id):
            raise PermissionDenied("この自治体には取り込めません。")
        saved = data["saved_mapping"]
        upload = data["file"]
        try:
            run = import_run_create(
                municipality=municipality,
                style=data["style"],
                file=upload,
                original_name=PurePath(upload.name).name,
                created_by=user,
                mapping=None if saved else PRESETS[data["style"]],
                saved_mapping=saved,
                encoding=data["encoding"] or "",
            )
        except ImportFileError as error:
            form.add_error(None, error.message)
        else:
            messages.success(request, f"「{run.original_name}」の取込を受け付けました。")
            return redirect("import_run", run_id=run.id)
    return render(request, "donations_sync/import_upload.html", {"form": form})


def _run_for(request: HttpRequest, run_id: int) -> ImportRun:
    run = scoped_or_404(selectors.import_runs_visible_to(request.user), request.user, id=run_id)
    if not can_manage_imports(request.user, run.municipality_id):
        raise PermissionDenied
    return run


@import_staff_required
def import_run(request: HttpRequest, run_id: int) -> HttpResponse:
    run = _run_for(request, run_id)
    page = selectors.rejection_page(run, after=request.GET.get("after"))
    if page.rows:
        personal_data_access_record(
            user=request.user,
            action=PersonalDataAccess.Action.VIEW,
            record_type="import_rejections",
            record_id=run.id,
            municipality_id=run.municipality_id,
            request=request,
        )
    context = {
        "run": run,
        "progress": selectors.import_run_progress(run),
        "rejections": page,
        "reruns": run.reruns.order_by("-created_at")[:20],
        "encoding_label": encoding_label(run),
    }
    return render(request, "donations_sync/import_run.html", context)


@import_staff_required
def import_run_progress(request: HttpRequest, run_id: int) -> JsonResponse:
    """What the run page polls while its socket is down."""
    run = _run_for(request, run_id)
    return JsonResponse(selectors.import_run_progress(run).as_json())


@import_staff_required
def import_run_rejections_csv(request: HttpRequest, run_id: int) -> StreamingHttpResponse:
    run = _run_for(request, run_id)
    personal_data_access_record(
        user=request.user,
        action=PersonalDataAccess.Action.EXPORT,
        record_type="import_rejections.csv",
        record_id=run.id,
        municipality_id=run.municipality_id,
        request=request,
    )
    encoding = rejections_encoding(run)
    charset = "shift_jis" if encoding.lower() in ("cp932", "shift_jis", "sjis") else "utf-8"
    response = StreamingHttpResponse(
        aiter_in_thread(rejections_csv(run)), content_type=f"text/csv; charset={charset}"
    )
    stem = PurePath(run.original_name).stem or "import"
    response["Content-Disposition"] = content_disposition_header(
        as_attachment=True, filename=f"{stem}_取込不可行.csv"
    )
    return response


@import_staff_required
def import_run_rerun_page(request: HttpRequest, run_id: int) -> HttpResponse:
    run = _run_for(request, run_id)
    initial = {"saved_mapping": run.saved_mapping_id, "encoding": run.encoding}
    form = RerunForm(request.POST or None, run=run, user=request.user, initial=initial)
    if request.method == "POST" and form.is_valid():
        saved = form.cleaned_data["saved_mapping"]
        try:
            new_run = import_run_rerun(
                run=run,
                created_by=request.user,
                mapping=None if saved else PRESETS[run.style],
                saved_mapping=saved,
                encoding=form.cleaned_data["encoding"] or "",
            )
        except ImportFileError as error:
            form.add_error(None, error.message)
        else:
            messages.success(request, f"「{run.original_name}」をもう一度取り込みます。")
            return redirect("import_run", run_id=new_run.id)
    return render(request, "donations_sync/import_rerun.html", {"run": run, "form": form})


# --- Column mappings -----------------------------------------------------------------------


@import_staff_required
def import_mappings(request: HttpRequest, municipality_id: int) -> HttpResponse:
    user = request.user
    municipality = scoped_or_404(Municipality.objects.all(), user, id=municipality_id)
    if not can_manage_imports(user, municipality.id):
        raise PermissionDenied
    form = MappingCreateForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            mapping = import_mapping_create(
                actor=user,
                municipality=municipality,
                style=form.cleaned_data["style"],
                name=form.cleaned_data["name"],
            )
        except ValidationError as error:
            form.add_error(None, error)
        else:
            messages.success(request, f"列の対応表「{mapping.name}」を作りました。")
            return redirect("import_mapping_edit", mapping_id=mapping.id)
    mappings = (
        selectors.import_mappings_visible_to(user)
        .filter(municipality=municipality)
        .order_by("style", "name")
    )
    return render(
        request,
        "donations_sync/mapping_list.html",
        {"municipality": municipality, "mappings": mappings, "form": form},
    )


@import_staff_required
def import_mapping_edit(request: HttpRequest, mapping_id: int) -> HttpResponse:
    user = request.user
    mapping = scoped_or_404(selectors.import_mappings_visible_to(user), user, id=mapping_id)
    if not can_manage_imports(user, mapping.municipality_id):
        raise PermissionDenied
    form = MappingEditForm(request.POST or None, mapping=mapping.mapping, name=mapping.name)
    if request.method == "POST" and form.is_valid():
        try:
            import_mapping_update(
                actor=user,
                mapping=mapping,
                name=form.cleaned_data["name"],
                columns=form.cleaned_data["columns"],
            )
        except ValidationError as error:
            form.add_error(None, error)
        else:
            messages.success(request, f"列の対応表「{form.cleaned_data['name']}」を保存しました。")
            return redirect("import_mapping_edit", mapping_id=mapping.id)
    last_run, unknown = selectors.last_unknown_columns(mapping)
    return render(
        request,
        "donations_sync/mapping_edit.html",
        {"mapping": mapping, "form": form, "last_run": last_run, "unknown_columns": unknown},
    )


# --- 要確認 ---------------------------------------------------------------------------------


@login_required
def callback_list(request: HttpRequest) -> HttpResponse:
    user = request.user
    selected = _selected_municipality(request)
    rows = selectors.open_callbacks_visible_to(user, selected)
    page = keyset_page(
        rows,
        key="created_at",
        size=CALLBACKS_PAGE_SIZE,
        after=request.GET.get("after"),
        before=request.GET.get("before"),
    )
    items = [
        {
            "callback": c,
            "donation": present_donation(c.donation) if c.donation_id else None,
            "may_resolve": can_work_callbacks(user, c.municipality_id),
        }
        for c in page
    ]
    if items:
        personal_data_access_record(
            user=user,
            action=PersonalDataAccess.Action.VIEW,
            record_type="donor_callbacks",
            municipality_id=selected,
            request=request,
            donors=[item["callback"].donor_id for item in items],
        )
    context = {
        "page": page,
        "items": items,
        "municipalities": Municipality.objects.visible_to(user).order_by("code"),
        "selected": selected,
        "querystring": f"m={selected}" if selected else "",
        "form": CallbackResolveForm(),
    }
    return render(request, "donations_sync/callback_list.html", context)


@login_required
@require_POST
def callback_resolve(request: HttpRequest, callback_id: int) -> HttpResponse:
    user = request.user
    callback = scoped_or_404(DonorCallback.objects.all(), user, id=callback_id)
    if not can_work_callbacks(user, callback.municipality_id):
        raise PermissionDenied("要確認を対応済みにする権限がありません。")
    form = CallbackResolveForm(request.POST)
    if not form.is_valid():
        messages.error(request, "結果を選んでください。")
    else:
        try:
            donor_callback_resolve(
                actor=user,
                callback=callback,
                outcome=form.cleaned_data["outcome"],
                note=form.cleaned_data["note"],
            )
        except ValidationError as error:
            messages.error(request, " ".join(error.messages))
        else:
            messages.success(
                request,
                f"{callback.donor.name}様の要確認を対応済みにしました"
                f"（{timezone.localtime():%H:%M}）。",
            )
    target = redirect("callback_list")
    if (selected := _selected_municipality(request)) is not None:
        target["Location"] += f"?m={selected}"
    return target
