"""Hand-over pages (operator admins, after two-factor): export, download, delete, certificate."""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from pathlib import Path

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import Http404, HttpRequest, HttpResponse, StreamingHttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_POST

from administration.handover import retention, services
from administration.handover.forms import DeletionForm, RetentionForm
from administration.handover.models import (
    HandoverDeletion,
    HandoverExport,
    RetentionPolicy,
    RunStatus,
)
from crm.access import is_operator_admin, passed_two_factor
from crm.audit import audit_record
from crm.models import AuditLog, Municipality
from crm.streaming import aiter_in_thread

BLOCK = 256 * 1024


def handover_admin(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
    """Operator admins who passed two-factor in this session; everyone else gets 403."""

    @wraps(view)
    @login_required
    @never_cache
    def wrapped(request: HttpRequest, *args, **kwargs) -> HttpResponse:
        if not is_operator_admin(request.user) or not passed_two_factor(
            request.user, request.session
        ):
            raise PermissionDenied("この画面は運営管理者専用です。")
        return view(request, *args, **kwargs)

    return wrapped


def _file_blocks(path: Path):
    with path.open("rb") as fh:
        while block := fh.read(BLOCK):
            yield block


def _download(path: Path, filename: str, content_type: str) -> StreamingHttpResponse:
    response = StreamingHttpResponse(aiter_in_thread(_file_blocks(path)), content_type=content_type)
    response["Content-Length"] = str(path.stat().st_size)
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response


@handover_admin
def handover_index(request: HttpRequest) -> HttpResponse:
    municipalities = list(Municipality.objects.order_by("code"))
    latest_exports: dict[int, HandoverExport] = {}
    for export in HandoverExport.objects.filter(municipality__isnull=False).order_by(
        "requested_at"
    ):
        latest_exports[export.municipality_id] = export
    rows = [{"m": m, "export": latest_exports.get(m.pk)} for m in municipalities]
    deletions = HandoverDeletion.objects.select_related("export")[:50]
    return render(
        request,
        "administration/handover/index.html",
        {"rows": rows, "deletions": deletions},
    )


@handover_admin
def handover_municipality(request: HttpRequest, municipality_id: int) -> HttpResponse:
    municipality = get_object_or_404(Municipality, pk=municipality_id)
    policy = RetentionPolicy.objects.filter(municipality=municipality).first()
    context = {
        "m": municipality,
        "exports": HandoverExport.objects.filter(municipality=municipality)[:20],
        "deletions": HandoverDeletion.objects.filter(municipality=municipality)[:20],
        "completed": services.latest_completed_export(municipality),
        "form": DeletionForm(),
        "retention_form": RetentionForm(instance=policy),
        "effective": retention.effective_policy(municipality.pk),
    }
    return render(request, "administration/handover/municipality.html", context)


@handover_admin
@require_POST
def handover_export_start(request: HttpRequest, municipality_id: int) -> HttpResponse:
    municipality = get_object_or_404(Municipality, pk=municipality_id)
    export = services.handover_export_request(
        actor=request.user, municipality=municipality, request=request
    )
    messages.success(request, f"{municipality.name}の引継ぎデータの出力を開始しました。")
    return redirect("administration:handover_export", export_id=export.pk)


@handover_admin
def handover_export(request: HttpRequest, export_id: int) -> HttpResponse:
    export = get_object_or_404(HandoverExport, pk=export_id)
    running = export.status in (RunStatus.QUEUED, RunStatus.RUNNING)
    return render(
        request, "administration/handover/export.html", {"export": export, "running": running}
    )


@handover_admin
def handover_export_download(request: HttpRequest, export_id: int) -> HttpResponse:
    export = get_object_or_404(HandoverExport, pk=export_id, status=RunStatus.DONE)
    path = Path(settings.HANDOVER_ROOT) / export.file_name
    if export.file_removed_at or not export.file_name or not path.exists():
        raise Http404("ファイルは削除済みです。")
    services.handover_export_downloaded(actor=request.user, export=export, request=request)
    return _download(path, Path(export.file_name).name, "application/zip")


@handover_admin
@require_POST
def handover_deletion_start(request: HttpRequest, municipality_id: int) -> HttpResponse:
    municipality = get_object_or_404(Municipality, pk=municipality_id)
    form = DeletionForm(request.POST)
    if form.is_valid():
        try:
            run = services.handover_deletion_request(
                actor=request.user,
                municipality=municipality,
                confirm_code=form.cleaned_data["confirm_code"],
                override_reason=form.cleaned_data["override_reason"],
                request=request,
            )
        except ValidationError as exc:
            messages.error(request, exc.messages[0])
        else:
            messages.success(request, f"{municipality.name}のデータの削除を開始しました。")
            return redirect("administration:handover_deletion", deletion_id=run.pk)
    else:
        messages.error(request, "入力を確認してください。")
    return redirect("administration:handover_municipality", municipality_id=municipality.pk)


@handover_admin
def handover_deletion(request: HttpRequest, deletion_id: int) -> HttpResponse:
    run = get_object_or_404(HandoverDeletion.objects.select_related("export"), pk=deletion_id)
    running = run.status in (RunStatus.QUEUED, RunStatus.RUNNING)
    counts = [
        {"label": label, "planned": planned, "deleted": run.deleted_counts.get(label, 0)}
        for label, planned in sorted(run.plan.get("counts", {}).items())
        if planned or run.deleted_counts.get(label)
    ]
    return render(
        request,
        "administration/handover/deletion.html",
        {"run": run, "running": running, "counts": counts},
    )


@handover_admin
def handover_certificate(request: HttpRequest, deletion_id: int) -> HttpResponse:
    run = get_object_or_404(HandoverDeletion, pk=deletion_id, status=RunStatus.DONE)
    path = Path(settings.HANDOVER_ROOT) / run.certificate_name
    if not run.certificate_name or not path.exists():
        raise Http404("削除証明書がありません。")
    audit_record(
        action=AuditLog.Action.HANDOVER_CERTIFICATE,
        request=request,
        user=request.user,
        handover_municipality=run.municipality_code,
        deletion=run.pk,
    )
    return _download(
        path, f"deletion-certificate-{run.municipality_code}-{run.pk}.pdf", "application/pdf"
    )


@handover_admin
def retention_default(request: HttpRequest) -> HttpResponse:
    policy = RetentionPolicy.objects.filter(municipality__isnull=True).first()
    form = RetentionForm(request.POST or None, instance=policy)
    if request.method == "POST" and form.is_valid():
        services.retention_policy_save(
            actor=request.user, municipality=None, values=form.cleaned_data, request=request
        )
        messages.success(request, "既定の保存期間を保存しました。")
        return redirect("administration:retention_default")
    return render(request, "administration/handover/retention.html", {"form": form})


@handover_admin
@require_POST
def retention_municipality(request: HttpRequest, municipality_id: int) -> HttpResponse:
    municipality = get_object_or_404(Municipality, pk=municipality_id)
    policy = RetentionPolicy.objects.filter(municipality=municipality).first()
    form = RetentionForm(request.POST, instance=policy)
    if form.is_valid():
        services.retention_policy_save(
            actor=request.user, municipality=municipality, values=form.cleaned_data, request=request
        )
        messages.success(request, f"{municipality.name}の保存期間を保存しました。")
    else:
        messages.error(request, "保存期間は0以上の整数で入力してください。")
    return redirect("administration:handover_municipality", municipality_id=municipality.pk)
