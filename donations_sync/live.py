"""Telling an open run page how its import progresses (rows read, rows/s, ETA, the end).

The engine sends ``import_run_progressed`` about once a second while a run progresses and once
at its end; the receiver here reads the run as committed and pushes its progress to the run's
group. A lost push costs nothing: the page polls while its socket is down and reloads at the end.
"""

from __future__ import annotations

from typing import Any

from crm.push import push_after_commit
from donations_sync.import_selectors import import_run_progress
from donations_sync.models import ImportRun


def import_run_group(run_id: int) -> str:
    return f"import_run.{run_id}"


def progress_message(run: ImportRun) -> dict[str, Any]:
    return {"type": "import.progress", "run_id": run.pk, **import_run_progress(run).as_json()}


def announce_import_progress(sender: Any = None, *, run_id: int, **kwargs: Any) -> None:
    run = ImportRun.objects.filter(pk=run_id).first()
    if run is not None:
        push_after_commit(import_run_group(run_id), progress_message(run))
