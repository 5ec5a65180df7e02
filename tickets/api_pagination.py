"""The API's lists page by cursor: each page is found from the last row's sort key, never by
OFFSET, and no page pays for a full COUNT(*) (crm.pagination does the same for the pages)."""

from __future__ import annotations

from django.core.exceptions import ValidationError as DjangoValidationError
from rest_framework.exceptions import NotFound
from rest_framework.pagination import CursorPagination


class _Cursor(CursorPagination):
    """A cursor whose position does not parse is refused (404) like any other bad cursor; it
    is the client's text, so it must not become a server error."""

    invalid_cursor_message = "カーソルが正しくありません。"

    def paginate_queryset(self, queryset, request, view=None):
        try:
            return super().paginate_queryset(queryset, request, view)
        except DjangoValidationError as exc:
            raise NotFound(self.invalid_cursor_message) from exc


class NewestFirstCursor(_Cursor):
    """Pages found from the last row's (created_at, id), not by OFFSET; no full count."""

    page_size = 50
    ordering = ("-created_at", "-pk")


class AccessLogCursor(_Cursor):
    page_size = 100
    ordering = ("-at", "-id")


class IdCursor(_Cursor):
    page_size = 50
    ordering = ("id",)


class NewestDonationCursor(_Cursor):
    page_size = 50
    ordering = ("-donated_at", "-id")


class NewestIdCursor(_Cursor):
    page_size = 50
    ordering = ("-id",)
