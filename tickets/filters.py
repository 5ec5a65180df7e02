"""The filters of each list, defined once: the page, the API (and its OpenAPI schema) and the CSV
read the same parameters with the same meaning.

Each FilterSet also applies the user's municipality scope, exactly once (see
``tickets.search.matching_text`` for why once matters), narrowed to ``municipality`` when given.
"""

from __future__ import annotations

import datetime
from typing import Any

import django_filters
from django.db.models import Q, QuerySet
from django.http import QueryDict
from django.utils import timezone

from crm.access import visible_municipality_ids
from crm.models import PersonalDataAccess
from tickets.models import OPEN_STATUSES, Category, Channel, Inquiry, Severity, Status
from tickets.search import matching_text

STATUS_CHOICES = [
    ("open", "未完了"),
    ("done", "解決・完了"),
    ("all", "すべて"),
    *[(str(value), label) for value, label in Status.choices],
]

# Built-in saved views of the ticket list (each also means: still open).
VIEW_CHOICES = [
    ("mine", "自分の担当"),
    ("unassigned", "未割当"),
    ("waiting", "返答待ち"),
    ("overdue", "期限超過"),
]

# The list's sortable columns: parameter → (column, newest/largest first). Each column is
# non-null and indexed, so every page is a keyset range read however deep.
SORTS: dict[str, tuple[str, bool]] = {
    "-created_at": ("created_at", True),
    "created_at": ("created_at", False),
    "-last_activity_at": ("last_activity_at", True),
    "last_activity_at": ("last_activity_at", False),
    # 期限 (resolution due, earliest first): only tickets that have a due time.
    "due": ("resolution_due", False),
    "-due": ("resolution_due", True),
}
DEFAULT_SORT = "-created_at"

_DATE_WIDGET = django_filters.widgets.forms.DateInput(attrs={"type": "date"})


def _day_start(day: datetime.date) -> datetime.datetime:
    """Midnight in Japan: a range on the column itself, which its index serves."""
    return timezone.make_aware(datetime.datetime.combine(day, datetime.time.min))


class _ScopedFilterSet(django_filters.FilterSet):
    """Old parameter names (``m``, ``state``) keep working; the scope is applied first."""

    aliases: dict[str, str] = {"m": "municipality"}
    defaults: dict[str, str] = {}

    def __init__(self, data: Any = None, *args: Any, **kwargs: Any) -> None:
        # Always bound, even without parameters: an unbound FilterSet would skip
        # filter_queryset and with it the scope.
        data = QueryDict(mutable=True) if data is None else data.copy()
        for old, new in self.aliases.items():
            if data.get(old) and not data.get(new):
                data[new] = data[old]
        for name, value in self.defaults.items():
            if not data.get(name):
                data[name] = value
        super().__init__(data, *args, **kwargs)

    def scope_ids(self) -> frozenset[int]:
        ids = visible_municipality_ids(self.request.user)
        wanted = self.form.cleaned_data.get("municipality")
        return ids & {int(wanted)} if wanted is not None else ids

    def scoped(self, queryset: QuerySet) -> QuerySet:
        raise NotImplementedError

    def filter_queryset(self, queryset: QuerySet) -> QuerySet:
        return super().filter_queryset(self.scoped(queryset))

    def skip(self, queryset: QuerySet, name: str, value: Any) -> QuerySet:
        """Parameters the scope has already applied."""
        return queryset


class InquiryFilter(_ScopedFilterSet):
    """問合せ一覧 (page and API). Without ``status`` the page shows all, the API open ones."""

    aliases = {"m": "municipality", "state": "status"}
    defaults = {"status": "all"}

    q = django_filters.CharFilter(
        label="検索",
        method="filter_q",
        help_text=(
            "問合せ番号（#98）、寄附者の氏名・フリガナ、電話番号、受付番号、伝票番号、"
            "または本文・履歴の部分一致（空白区切りでAND）"
        ),
    )
    view = django_filters.ChoiceFilter(
        label="ビュー", choices=VIEW_CHOICES, empty_label="すべて", method="filter_view"
    )
    municipality = django_filters.NumberFilter(label="自治体", method="skip")
    status = django_filters.ChoiceFilter(
        label="状態",
        choices=STATUS_CHOICES,
        empty_label=None,
        method="filter_status",
        help_text="open（未解決・再開）/ done（解決・完了）/ all / 状態番号",
    )
    category = django_filters.ModelChoiceFilter(
        label="分類",
        queryset=Category.objects.all(),
        to_field_name="code",
        empty_label="すべて",
        help_text="分類コード",
    )
    severity = django_filters.ChoiceFilter(
        label="重要度", choices=Severity.choices, empty_label="すべて"
    )
    channel = django_filters.ChoiceFilter(
        label="受付経路", choices=Channel.choices, empty_label="すべて"
    )
    assigned_to = django_filters.CharFilter(
        label="担当", method="filter_assigned_to", help_text="me、none（未割当）または利用者ID"
    )
    date_from = django_filters.DateFilter(
        label="受付日（から）", method="filter_date_from", widget=_DATE_WIDGET
    )
    date_to = django_filters.DateFilter(
        label="受付日（まで）", method="filter_date_to", widget=_DATE_WIDGET
    )

    class Meta:
        model = Inquiry
        fields: list[str] = []

    def scoped(self, queryset: QuerySet) -> QuerySet:
        return queryset.filter(municipality_id__in=self.scope_ids())

    def filter_q(self, queryset: QuerySet, name: str, value: str) -> QuerySet:
        """What the console's search understands (ticket number, donor name or reading,
        phone, e-mail, order and tracking numbers), else the text of the tickets."""
        from tickets.selectors import inquiry_ids_for_query

        identified = inquiry_ids_for_query(self.request.user, self.scope_ids(), value)
        if identified is None:
            return matching_text(queryset, self.request.user, value)
        return queryset.filter(identified)

    def filter_view(self, queryset: QuerySet, name: str, value: str) -> QuerySet:
        queryset = queryset.filter(status__in=OPEN_STATUSES)
        if value == "mine":
            return queryset.filter(assigned_to=self.request.user)
        if value == "unassigned":
            return queryset.filter(assigned_to__isnull=True)
        if value == "waiting":
            return queryset.filter(awaiting_requester=True)
        if value == "overdue":
            now = timezone.now()
            return queryset.filter(
                Q(first_response_at__isnull=True, first_response_due__lt=now)
                | Q(resolution_due__lt=now)
            )
        return queryset

    def filter_status(self, queryset: QuerySet, name: str, value: str) -> QuerySet:
        if value == "open":
            return queryset.filter(status__in=OPEN_STATUSES)
        if value == "done":
            return queryset.filter(status__in=[Status.RESOLVED, Status.CLOSED])
        if value == "all":
            return queryset
        return queryset.filter(status=int(value))

    def filter_assigned_to(self, queryset: QuerySet, name: str, value: str) -> QuerySet:
        if value == "me":
            return queryset.filter(assigned_to=self.request.user)
        if value == "none":
            return queryset.filter(assigned_to__isnull=True)
        if value.isdigit():
            return queryset.filter(assigned_to_id=int(value))
        return queryset

    def filter_date_from(self, queryset: QuerySet, name: str, value: datetime.date) -> QuerySet:
        return queryset.filter(created_at__gte=_day_start(value))

    def filter_date_to(self, queryset: QuerySet, name: str, value: datetime.date) -> QuerySet:
        return queryset.filter(created_at__lt=_day_start(value + datetime.timedelta(days=1)))


class ApiInquiryFilter(InquiryFilter):
    defaults = {"status": "open"}


class AccessLogFilter(_ScopedFilterSet):
    """個人情報アクセス記録 (page, API and CSV)."""

    user = django_filters.CharFilter(
        label="利用者", method="filter_user", help_text="利用者ID、またはユーザー名の一部"
    )
    type = django_filters.CharFilter(
        label="対象", field_name="record_type", help_text="donor, ticket …"
    )
    action = django_filters.ChoiceFilter(
        label="操作", choices=PersonalDataAccess.Action.choices, empty_label="すべて"
    )
    municipality = django_filters.NumberFilter(label="自治体", method="skip")
    since = django_filters.DateFilter(
        label="この日以降（日本時間）", method="filter_since", widget=_DATE_WIDGET
    )
    until = django_filters.DateFilter(
        label="この日まで（日本時間）", method="filter_until", widget=_DATE_WIDGET
    )

    class Meta:
        model = PersonalDataAccess
        fields: list[str] = []

    def scoped(self, queryset: QuerySet) -> QuerySet:
        # Rows about one municipality follow the policy; rows spanning several (a list page
        # across cities, an export) carry no municipality and are for operator admins.
        if self.form.cleaned_data.get("municipality") is not None:
            return queryset.filter(municipality_id__in=self.scope_ids())
        return queryset.filter(
            Q(municipality_id__in=self.scope_ids()) | Q(municipality__isnull=True)
        )

    def filter_user(self, queryset: QuerySet, name: str, value: str) -> QuerySet:
        value = value.strip()
        if value.isdigit():
            return queryset.filter(user_id=int(value))
        return queryset.filter(user__username__icontains=value)

    def filter_since(self, queryset: QuerySet, name: str, value: datetime.date) -> QuerySet:
        return queryset.filter(at__gte=_day_start(value))

    def filter_until(self, queryset: QuerySet, name: str, value: datetime.date) -> QuerySet:
        return queryset.filter(at__lt=_day_start(value + datetime.timedelta(days=1)))
