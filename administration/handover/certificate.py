"""The deletion certificate (削除証明書): a PDF written with WeasyPrint (Noto CJK fonts)."""

from __future__ import annotations

import datetime
from pathlib import Path

from django.apps import apps
from django.conf import settings
from django.template.loader import render_to_string
from django.utils import timezone

from administration.handover import registry
from administration.handover.models import HandoverDeletion

CSS_PATH = Path(__file__).with_name("certificate.css")


def _checked_at(run: HandoverDeletion) -> datetime.datetime | None:
    value = run.verification.get("checked_at")
    return datetime.datetime.fromisoformat(value) if value else None


def certificate_html(*, run: HandoverDeletion) -> str:
    rows = []
    for label, count in sorted(run.deleted_counts.items()):
        try:
            description = registry.table_description(apps.get_model(label))
        except LookupError:
            description = ""
        rows.append({"label": label, "description": description, "count": count})
    return render_to_string(
        "administration/handover/certificate.html",
        {
            "run": run,
            "export": run.export,
            "rows": rows,
            "total": sum(r["count"] for r in rows),
            "finished_at": run.finished_at or timezone.now(),
            "checked_at": _checked_at(run),
            "table_count": len(registry.owned_tables()),
            "column_count": run.verification.get("column_tables", 0),
        },
    )


def write_certificate(*, run: HandoverDeletion) -> str:
    from weasyprint import CSS, HTML

    name = f"certificates/{run.municipality_code}-{run.pk}.pdf"
    path = Path(settings.HANDOVER_ROOT) / name
    path.parent.mkdir(parents=True, exist_ok=True)
    html = certificate_html(run=run)
    HTML(string=html).write_pdf(path, stylesheets=[CSS(filename=str(CSS_PATH))])
    return name
