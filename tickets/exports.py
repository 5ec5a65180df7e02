"""CSV files: one writer per list, shared by the page's download and the API's."""

from __future__ import annotations

import csv
import json

from django.db.models import QuerySet
from django.http import HttpRequest, StreamingHttpResponse
from django.utils import timezone

from crm.models import PersonalDataAccess
from crm.services import personal_data_access_record
from crm.streaming import aiter_in_thread

ACCESS_LOG_HEADER = [
    "日時",
    "利用者",
    "操作",
    "対象",
    "対象ID",
    "自治体",
    "パス",
    "IPアドレス",
    "利用者ID",
    "自治体ID",
    "詳細",
]


class _Echo:
    def write(self, value: str) -> str:
        return value


def access_log_csv(
    request: HttpRequest, rows: QuerySet[PersonalDataAccess]
) -> StreamingHttpResponse:
    """The filtered access log as CSV; the export itself is logged before the first row is sent,
    so it appears in its own file."""
    personal_data_access_record(
        user=request.user,
        action=PersonalDataAccess.Action.EXPORT,
        record_type="access_log.csv",
        request=request,
        filters={k: v for k, v in request.GET.items()},
    )
    writer = csv.writer(_Echo())

    def lines():
        # A BOM so that Excel opens the UTF-8 file with the Japanese intact.
        yield "\ufeff" + writer.writerow(ACCESS_LOG_HEADER)
        for row in rows.order_by("-at", "-id").iterator(chunk_size=2000):
            yield writer.writerow(
                [
                    timezone.localtime(row.at).strftime("%Y-%m-%d %H:%M:%S"),
                    row.user.username,
                    row.get_action_display(),
                    row.record_type,
                    row.record_id,
                    row.municipality.name if row.municipality else "",
                    row.path,
                    row.ip_address or "",
                    row.user_id,
                    row.municipality_id or "",
                    json.dumps(row.detail, ensure_ascii=False),
                ]
            )

    stamp = timezone.localtime().strftime("%Y%m%d-%H%M")
    # An async iterator, so that under ASGI the first rows leave while later ones are read.
    response = StreamingHttpResponse(
        aiter_in_thread(lines(), batch=500), content_type="text/csv; charset=utf-8"
    )
    response["Content-Disposition"] = f'attachment; filename="access-log-{stamp}.csv"'
    return response
