"""Writes to the donation mirror: CSV import runs; the outbox's two entry points for upper apps
(``outbox_enqueue``, ``shipment_create_replacement``, defined in donations_sync.outbox).

An import is recorded (raw file stored, mapping snapshotted) in one transaction, then run by a
worker. The run row itself is the durable promise: ``import_run_queued`` is sent after the
commit (donations_sync.apps connects the Celery task to it), and a beat sweep
(``import_runs_due``) hands a worker every run still queued a minute later or running with a
heartbeat that stopped (its worker died). ``import_run_execute`` claims the run with one
conditional UPDATE, so a second delivery of the same message (Redis redelivers an
acknowledged-late task after its visibility timeout, which a long import outlives) finds it
running and returns at once. The jobs app is not used here on purpose: its runner holds the
job row's lock in one transaction around the work, while an import must commit every batch to
show progress and to resume after a crash.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import io
import logging
import uuid
from collections.abc import Callable
from typing import IO, Any

from django.core.exceptions import PermissionDenied
from django.core.files import File
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from crm.access import can_write, is_supervisor
from crm.models import Municipality, User
from donations_sync.import_apply import Importer
from donations_sync.imports import PRESETS, ImportFileError
from donations_sync.imports.reader import check_mapping
from donations_sync.models import ImportMapping, ImportRun
from donations_sync.outbox import outbox_enqueue as outbox_enqueue
from donations_sync.outbox import shipment_create_replacement as shipment_create_replacement
from donations_sync.signals import import_run_progressed, import_run_queued

logger = logging.getLogger("donations_sync.imports")

# A running import writes its heartbeat with every batch (about once a second); one silent for
# this long lost its worker.
HEARTBEAT_STALE = dt.timedelta(minutes=2)
# A queued run no worker took this long after its commit (broker down, message lost).
QUEUED_STALE = dt.timedelta(minutes=1)

_CHUNK = 1024 * 1024


def _mapping_for(
    style: str, mapping: dict[str, Any] | None, saved_mapping: ImportMapping | None
) -> dict[str, Any]:
    if saved_mapping is not None:
        return saved_mapping.mapping
    if mapping is not None:
        return mapping
    return PRESETS[style]


class _Hashing(File):
    """Storage reads the upload through this in chunks; size and SHA-256 come on the way."""

    def __init__(self, file: IO[bytes]):
        super().__init__(file)
        self.sha = hashlib.sha256()
        self.count = 0

    def chunks(self, chunk_size: int | None = None):
        if hasattr(self.file, "seek"):
            try:
                self.file.seek(0)
            except (OSError, ValueError):
                pass
        while True:
            data = self.file.read(chunk_size or _CHUNK)
            if not data:
                return
            self.sha.update(data)
            self.count += len(data)
            yield data

    def __iter__(self):
        yield from self.chunks()

    def multiple_chunks(self, chunk_size: int | None = None) -> bool:
        return True

    @property
    def size(self) -> int:  # storages ask; unknown until read
        return self.count


@transaction.atomic
def import_run_create(
    *,
    municipality: Municipality,
    style: str,
    file: bytes | IO[bytes],
    original_name: str,
    created_by: User | None = None,
    mapping: dict[str, Any] | None = None,
    saved_mapping: ImportMapping | None = None,
    encoding: str = "",
    rerun_of: ImportRun | None = None,
    queue: bool = True,
) -> ImportRun:
    """Store the file (streamed, never read whole into memory) and record a queued run.

    ``mapping``: a saved one's, else the one given, else the style's preset, snapshotted on the
    run. A mapping naming fields that do not exist raises ImportFileError here. ``queue=False``
    (the management command in the foreground) leaves starting it to the caller; the sweep
    still picks it up if nobody does. A person (``created_by``) must supervise the municipality
    (PermissionDenied otherwise); the command runs as nobody.
    """
    if created_by is not None and not (
        is_supervisor(created_by) and can_write(created_by, municipality.pk)
    ):
        raise PermissionDenied("この自治体に取り込む権限がありません。")
    used = _mapping_for(style, mapping, saved_mapping)
    check_mapping(used)
    run = ImportRun(
        municipality=municipality,
        style=style,
        saved_mapping=saved_mapping,
        mapping=used,
        encoding=encoding,
        original_name=original_name[:255],
        created_by=created_by,
        rerun_of=rerun_of,
    )
    if rerun_of is not None:
        run.raw_file.name = rerun_of.raw_file.name
        run.size, run.sha256 = rerun_of.size, rerun_of.sha256
    else:
        binary = io.BytesIO(file) if isinstance(file, bytes | bytearray) else file
        content = _Hashing(binary)
        run.raw_file.save(f"{uuid.uuid4().hex}.csv", content, save=False)
        run.size, run.sha256 = content.count, content.sha.hexdigest()
    run.save()
    if queue:
        run_id = run.pk
        transaction.on_commit(
            lambda: import_run_queued.send(sender=ImportRun, run_id=run_id), robust=True
        )
    return run


def import_run_rerun(
    *,
    run: ImportRun,
    created_by: User | None,
    mapping: dict[str, Any] | None = None,
    saved_mapping: ImportMapping | None = None,
    encoding: str = "",
) -> ImportRun:
    """The same stored file again as a new run (e.g. after fixing the mapping)."""
    return import_run_create(
        municipality=run.municipality,
        style=run.style,
        file=b"",
        original_name=run.original_name,
        created_by=created_by,
        mapping=mapping if mapping is not None or saved_mapping is not None else run.mapping,
        saved_mapping=saved_mapping,
        encoding=encoding,
        rerun_of=run,
    )


def _claim(run_id: int) -> bool:
    now = timezone.now()
    return bool(
        ImportRun.objects.filter(pk=run_id)
        .filter(
            Q(status=ImportRun.Status.QUEUED)
            | Q(status=ImportRun.Status.RUNNING, heartbeat_at__lt=now - HEARTBEAT_STALE)
            | Q(status=ImportRun.Status.RUNNING, heartbeat_at__isnull=True)
        )
        .update(status=ImportRun.Status.RUNNING, heartbeat_at=now)
    )


def import_run_execute(
    *, run_id: int, progress: Callable[[ImportRun], None] | None = None
) -> ImportRun:
    """Run a queued import (or resume one whose worker died) to its end.

    Not one transaction: every batch (BATCH_ROWS rows) commits with the run's counts, so pages
    show progress and a crash loses at most the batch in hand. ``import_run_progressed`` is
    sent after each batch and at the end. A second call while it runs returns at once.
    """
    if not _claim(run_id):
        return ImportRun.objects.get(pk=run_id)
    run = ImportRun.objects.select_related("municipality").get(pk=run_id)
    if run.started_at is None:
        run.started_at = timezone.now()
        ImportRun.objects.filter(pk=run_id).update(started_at=run.started_at)

    def progressed(current: ImportRun) -> None:
        import_run_progressed.send(sender=ImportRun, run_id=run_id)
        if progress:
            progress(current)

    try:
        Importer(run, progressed).execute()
    except ImportFileError as error:
        _finish(run_id, ImportRun.Status.FAILED, error.message)
    except Exception as error:  # recorded on the run; the file can be re-run
        logger.exception("Import run %s failed", run_id)
        _finish(
            run_id,
            ImportRun.Status.FAILED,
            f"取込中にエラーが発生しました（{type(error).__name__}）",
        )
    else:
        _finish(run_id, ImportRun.Status.DONE, "")
    run = ImportRun.objects.get(pk=run_id)
    progressed(run)
    return run


def _finish(run_id: int, status: str, error: str) -> None:
    ImportRun.objects.filter(pk=run_id).update(
        status=status, error=error, finished_at=timezone.now(), heartbeat_at=timezone.now()
    )


def import_runs_due(*, now: dt.datetime | None = None) -> list[int]:
    """Runs a worker should take: queued and not taken, or running with a stopped heartbeat."""
    now = now or timezone.now()
    return list(
        ImportRun.objects.filter(
            Q(status=ImportRun.Status.QUEUED, created_at__lt=now - QUEUED_STALE)
            | Q(status=ImportRun.Status.RUNNING, heartbeat_at__lt=now - HEARTBEAT_STALE)
        )
        .order_by("pk")
        .values_list("pk", flat=True)[:100]
    )
