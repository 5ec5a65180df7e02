"""Reads behind the import pages: runs and their progress, rejected rows, saved mappings and the
要確認 call-back list. Every list starts from the caller's scoped queryset."""

from __future__ import annotations

import datetime
from dataclasses import asdict, dataclass

from django.db.models import Q, QuerySet
from django.utils import timezone

from crm.access import visible_municipality_ids
from donations_sync.models import DonorCallback, ImportMapping, ImportRejection, ImportRun

REJECTIONS_PAGE_SIZE = 100


def import_runs_visible_to(user) -> QuerySet[ImportRun]:
    return ImportRun.objects.visible_to(user).select_related(
        "municipality", "created_by", "saved_mapping"
    )


def import_mappings_visible_to(user) -> QuerySet[ImportMapping]:
    return ImportMapping.objects.visible_to(user).select_related("municipality", "updated_by")


def last_unknown_columns(mapping: ImportMapping) -> tuple[ImportRun | None, list[str]]:
    """The latest finished run of the mapping's municipality and style that reported columns the
    mapping does not use (a run with this mapping first): hints for editing it."""
    runs = ImportRun.objects.filter(
        municipality_id=mapping.municipality_id,
        style=mapping.style,
        status__in=[ImportRun.Status.DONE, ImportRun.Status.FAILED],
    ).order_by("-created_at", "-id")
    run = runs.filter(saved_mapping=mapping).first() or runs.first()
    return run, list(run.unknown_columns or []) if run else []


# --- Progress ------------------------------------------------------------------------------


@dataclass
class RunProgress:
    status: str
    status_label: str
    finished: bool
    rows_read: int
    estimated_rows: int | None  # rows read so far, scaled by the share of the file's bytes read
    percent: int | None
    rows_per_second: float | None
    eta_seconds: int | None
    imported: int
    updated: int
    unchanged: int
    rejected: int
    needs_callback: int

    def as_json(self) -> dict:
        return asdict(self)


def import_run_progress(run: ImportRun, *, now: datetime.datetime | None = None) -> RunProgress:
    """Where a run stands. The share done is the share of the file's bytes read (the engine
    records both with every batch), which holds for any row length; rows/s over the time since
    the run started."""
    now = now or timezone.now()
    finished = run.status in (ImportRun.Status.DONE, ImportRun.Status.FAILED)
    rate = eta = percent = estimated = None
    elapsed = 0.0
    if run.started_at is not None:
        end = run.finished_at if finished and run.finished_at else now
        elapsed = (end - run.started_at).total_seconds()
        if elapsed > 0 and run.rows_read:
            rate = run.rows_read / elapsed
    if run.status == ImportRun.Status.DONE:
        percent = 100
    elif run.status == ImportRun.Status.RUNNING and run.size and run.bytes_read:
        share = min(1.0, run.bytes_read / run.size)
        percent = int(share * 100)
        estimated = max(run.rows_read, round(run.rows_read / share)) if run.rows_read else None
        if elapsed > 0:
            eta = int(elapsed * (1 - share) / share)
    return RunProgress(
        status=run.status,
        status_label=run.get_status_display(),
        finished=finished,
        rows_read=run.rows_read,
        estimated_rows=estimated,
        percent=percent,
        rows_per_second=(round(rate) if rate >= 10 else round(rate, 1)) if rate else None,
        eta_seconds=eta,
        imported=run.imported,
        updated=run.updated,
        unchanged=run.unchanged,
        rejected=run.rejected,
        needs_callback=run.needs_callback,
    )


# --- Rejected rows -------------------------------------------------------------------------


@dataclass
class RejectionPage:
    rows: list[ImportRejection]
    next_cursor: str | None
    first: bool


def _decode_line_cursor(cursor: str | None) -> tuple[int, int] | None:
    try:
        line, pk = (int(part) for part in (cursor or "").split("-", 1))
    except ValueError:
        return None
    return line, pk


def rejection_page(
    run: ImportRun, *, after: str | None = None, size: int = REJECTIONS_PAGE_SIZE
) -> RejectionPage:
    """One page of a run's rejected rows in file order, by (line, id) from the row before: an
    index range, never OFFSET, however many thousands the run rejected."""
    rows = ImportRejection.objects.filter(run=run)
    position = _decode_line_cursor(after)
    if position is not None:
        line, pk = position
        rows = rows.filter(Q(line__gte=line), Q(line__gt=line) | Q(pk__gt=pk))
    page = list(rows.order_by("line", "pk")[: size + 1])
    more = len(page) > size
    page = page[:size]
    cursor = f"{page[-1].line}-{page[-1].pk}" if more else None
    return RejectionPage(page, cursor, position is None)


# --- 要確認 ---------------------------------------------------------------------------------


def open_callbacks_visible_to(user, municipality_id: int | None = None) -> QuerySet[DonorCallback]:
    rows = (
        DonorCallback.objects.visible_to(user)
        .filter(resolved_at__isnull=True)
        .select_related("municipality", "donor__municipality", "donation", "run")
        .prefetch_related("donor__phones")
    )
    if municipality_id is not None:
        if municipality_id not in visible_municipality_ids(user):
            return rows.none()
        rows = rows.for_municipality(municipality_id)
    return rows
