"""REST API: tickets (read and write through tickets.services), donors, donations, shipments
(read-only) and the personal-data access log.

Same policy as the pages: every queryset is narrowed by ``ScopedQuerysetMixin`` (other
municipalities' rows do not exist: 404), city officials only read, and every retrieval of
personal data is written to the access log.
"""

from __future__ import annotations

import csv
import datetime
import json
from collections.abc import Callable
from typing import Any

from django.http import HttpResponse
from django.utils import timezone
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema, extend_schema_view
from rest_framework import mixins, permissions, viewsets
from rest_framework import status as http_status
from rest_framework.decorators import action
from rest_framework.exceptions import ValidationError
from rest_framework.request import Request
from rest_framework.response import Response

from crm.access import ScopedQuerysetMixin, is_operator_admin
from crm.models import Donor, PersonalDataAccess
from crm.services import personal_data_access_record
from donations_sync.models import Donation, Shipment
from tickets import serializers as s
from tickets import services
from tickets.models import OPEN_STATUSES, Category, Inquiry
from tickets.search import search_inquiries


class OperatorWritesOnly(permissions.BasePermission):
    """City officials read; writing is for operator staff (services check the municipality)."""

    message = "閲覧のみ可能です。"

    def has_permission(self, request, view) -> bool:
        return request.method in permissions.SAFE_METHODS or request.user.is_operator_staff


class OperatorAdminOnly(permissions.BasePermission):
    message = "運営管理者のみ利用できます。"

    def has_permission(self, request, view) -> bool:
        return is_operator_admin(request.user)


def _log_access(
    request: Request,
    *,
    record_type: str,
    record_id: Any = "",
    municipality_id: int | None = None,
    action: str = PersonalDataAccess.Action.API,
    **detail: Any,
) -> None:
    personal_data_access_record(
        user=request.user,
        action=action,
        record_type=record_type,
        record_id=record_id,
        municipality_id=municipality_id,
        request=request._request,
        **detail,
    )


class LoggedReadMixin:
    """Writes an access-log row for every list page and every single record served."""

    record_type: str

    def list(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        response = super().list(request, *args, **kwargs)  # type: ignore[misc]
        rows = response.data["results"] if isinstance(response.data, dict) else response.data
        municipalities = {row["municipality"] for row in rows}
        _log_access(
            request,
            record_type=self.record_type,
            municipality_id=municipalities.pop() if len(municipalities) == 1 else None,
            ids=[row["id"] for row in rows],
        )
        return response

    def retrieve(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        instance = self.get_object()  # type: ignore[attr-defined]
        _log_access(
            request,
            record_type=self.record_type,
            record_id=instance.pk,
            municipality_id=instance.municipality_id,
        )
        serializer = self.get_serializer(instance)  # type: ignore[attr-defined]
        return Response(serializer.data)


def _municipality_filter(queryset, request: Request):
    municipality = request.query_params.get("municipality")
    if municipality:
        if not municipality.isdigit():
            raise ValidationError({"municipality": "自治体IDは数値で指定してください。"})
        queryset = queryset.filter(municipality_id=int(municipality))
    return queryset


# --- tickets ------------------------------------------------------------------------------


@extend_schema_view(
    list=extend_schema(
        parameters=[
            OpenApiParameter("q", str, description="本文・履歴の部分一致検索（空白区切りでAND）"),
            OpenApiParameter("status", str, description="open（未解決・再開）/ all / 状態番号"),
            OpenApiParameter("municipality", int),
            OpenApiParameter("category", str, description="分類コード"),
            OpenApiParameter("severity", str),
            OpenApiParameter("assigned_to", str, description="me または利用者ID"),
        ]
    ),
)
class InquiryViewSet(
    LoggedReadMixin,
    ScopedQuerysetMixin,
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    viewsets.GenericViewSet,
):
    """問合せ (tickets)."""

    record_type = "ticket"
    permission_classes = [permissions.IsAuthenticated, OperatorWritesOnly]
    # The normalized search columns are for the database only; never fetch them.
    queryset = (
        Inquiry.objects.select_related("ticket__assigned_to", "municipality", "category")
        .defer("search_text", "search_text_internal")
        .prefetch_related("donations", "shipments")
    )

    def get_serializer_class(self):
        if self.action == "list":
            return s.InquirySerializer
        return s.InquiryDetailSerializer

    def get_queryset(self):
        queryset = super().get_queryset()
        if self.action != "list":
            return queryset
        params = self.request.query_params
        queryset = _municipality_filter(queryset, self.request)
        wanted_status = params.get("status", "open")
        if wanted_status == "open":
            queryset = queryset.filter(status__in=OPEN_STATUSES)
        elif wanted_status.isdigit():
            queryset = queryset.filter(status=int(wanted_status))
        elif wanted_status != "all":
            raise ValidationError({"status": "open / all / 状態番号 のいずれかです。"})
        if params.get("category"):
            queryset = queryset.filter(category__code=params["category"])
        if params.get("severity"):
            queryset = queryset.filter(severity=params["severity"])
        assigned = params.get("assigned_to")
        if assigned == "me":
            queryset = queryset.filter(assigned_to=self.request.user)
        elif assigned and assigned.isdigit():
            queryset = queryset.filter(assigned_to_id=int(assigned))
        if params.get("q"):
            queryset = search_inquiries(queryset, self.request.user, params["q"])
        return queryset

    def _detail(self, inquiry: Inquiry, code: int = http_status.HTTP_200_OK) -> Response:
        fresh = self.get_queryset().get(pk=inquiry.pk)
        return Response(
            s.InquiryDetailSerializer(fresh, context={"request": self.request}).data, code
        )

    def _run(self, serializer_class: type, write: Callable[..., Any]) -> Response:
        """Parse the body, call one service, answer with the ticket as it now is."""
        inquiry = self.get_object()
        serializer = serializer_class(data=self.request.data, context={"request": self.request})
        serializer.is_valid(raise_exception=True)
        try:
            write(inquiry, **serializer.validated_data)
        except services.InquiryError as exc:
            raise ValidationError({"detail": str(exc)}) from exc
        return self._detail(inquiry)

    @extend_schema(request=s.InquiryCreateSerializer, responses={201: s.InquiryDetailSerializer})
    def create(self, request: Request) -> Response:
        serializer = s.InquiryCreateSerializer(data=request.data, context={"request": request})
        serializer.is_valid(raise_exception=True)
        data = dict(serializer.validated_data)
        category = data.pop("category", None)
        try:
            inquiry = services.inquiry_open(
                actor=request.user, category=category.code if category else None, **data
            )
        except services.InquiryError as exc:
            raise ValidationError({"detail": str(exc)}) from exc
        return self._detail(inquiry, http_status.HTTP_201_CREATED)

    @extend_schema(request=s.BodySerializer, responses=s.InquiryDetailSerializer)
    @action(detail=True, methods=["post"])
    def reply(self, request: Request, pk: str) -> Response:
        return self._run(
            s.BodySerializer,
            lambda inquiry, body: services.inquiry_reply(
                actor=request.user, inquiry=inquiry, body=body
            ),
        )

    @extend_schema(request=s.NoteSerializer, responses=s.InquiryDetailSerializer)
    @action(detail=True, methods=["post"])
    def notes(self, request: Request, pk: str) -> Response:
        return self._run(
            s.NoteSerializer,
            lambda inquiry, **data: services.inquiry_add_note(
                actor=request.user, inquiry=inquiry, **data
            ),
        )

    @extend_schema(request=s.StatusSerializer, responses=s.InquiryDetailSerializer)
    @action(detail=True, methods=["post"])
    def status(self, request: Request, pk: str) -> Response:
        return self._run(
            s.StatusSerializer,
            lambda inquiry, **data: services.inquiry_change_status(
                actor=request.user, inquiry=inquiry, **data
            ),
        )

    @extend_schema(request=s.CategorySerializer, responses=s.InquiryDetailSerializer)
    @action(detail=True, methods=["post"])
    def category(self, request: Request, pk: str) -> Response:
        return self._run(
            s.CategorySerializer,
            lambda inquiry, category: services.inquiry_change_category(
                actor=request.user, inquiry=inquiry, category=category.code if category else None
            ),
        )

    @extend_schema(request=s.SeveritySerializer, responses=s.InquiryDetailSerializer)
    @action(detail=True, methods=["post"])
    def severity(self, request: Request, pk: str) -> Response:
        return self._run(
            s.SeveritySerializer,
            lambda inquiry, severity: services.inquiry_change_severity(
                actor=request.user, inquiry=inquiry, severity=severity
            ),
        )

    @extend_schema(request=s.AssignSerializer, responses=s.InquiryDetailSerializer)
    @action(detail=True, methods=["post"])
    def assign(self, request: Request, pk: str) -> Response:
        return self._run(
            s.AssignSerializer,
            lambda inquiry, assignee: services.inquiry_assign(
                actor=request.user, inquiry=inquiry, assignee=assignee
            ),
        )

    @extend_schema(request=s.LinkSerializer, responses=s.InquiryDetailSerializer)
    @action(detail=True, methods=["post"])
    def link(self, request: Request, pk: str) -> Response:
        return self._run(
            s.LinkSerializer,
            lambda inquiry, **data: services.inquiry_link_records(
                actor=request.user, inquiry=inquiry, **data
            ),
        )

    @extend_schema(request=s.LinkSerializer, responses=s.InquiryDetailSerializer)
    @action(detail=True, methods=["post"])
    def unlink(self, request: Request, pk: str) -> Response:
        return self._run(
            s.LinkSerializer,
            lambda inquiry, **data: services.inquiry_unlink_records(
                actor=request.user, inquiry=inquiry, **data
            ),
        )

    @extend_schema(request=s.MergeSerializer, responses=s.InquiryDetailSerializer)
    @action(detail=True, methods=["post"])
    def merge(self, request: Request, pk: str) -> Response:
        """Close this ticket as a duplicate of ``into``; answers with this (closed) ticket."""
        return self._run(
            s.MergeSerializer,
            lambda inquiry, into: services.inquiry_merge(
                actor=request.user, duplicate=inquiry, into=into
            ),
        )


class CategoryViewSet(mixins.ListModelMixin, viewsets.GenericViewSet):
    """問合せ分類 (the taxonomy is operator-wide, not personal data)."""

    queryset = Category.objects.filter(active=True)
    serializer_class = s.CategoryListSerializer
    pagination_class = None


# --- donors, donations, shipments ---------------------------------------------------------


@extend_schema_view(list=extend_schema(parameters=[OpenApiParameter("municipality", int)]))
class DonorViewSet(LoggedReadMixin, ScopedQuerysetMixin, viewsets.ReadOnlyModelViewSet):
    """寄附者 (read-only)."""

    record_type = "donor"
    serializer_class = s.DonorSerializer
    queryset = (
        Donor.objects.select_related("municipality")
        .prefetch_related("phones", "emails")
        .order_by("id")
    )

    def get_queryset(self):
        return _municipality_filter(super().get_queryset(), self.request)


@extend_schema_view(
    list=extend_schema(
        parameters=[OpenApiParameter("municipality", int), OpenApiParameter("donor", int)]
    )
)
class DonationViewSet(LoggedReadMixin, ScopedQuerysetMixin, viewsets.ReadOnlyModelViewSet):
    """寄附 (read-only)."""

    record_type = "donation"
    serializer_class = s.DonationSerializer
    queryset = Donation.objects.order_by("-donated_at", "-id")

    def get_queryset(self):
        queryset = _municipality_filter(super().get_queryset(), self.request)
        donor = self.request.query_params.get("donor")
        return queryset.filter(donor_id=donor) if donor and donor.isdigit() else queryset


@extend_schema_view(
    list=extend_schema(
        parameters=[OpenApiParameter("municipality", int), OpenApiParameter("donation", int)]
    )
)
class ShipmentViewSet(LoggedReadMixin, ScopedQuerysetMixin, viewsets.ReadOnlyModelViewSet):
    """配送 (read-only)."""

    record_type = "shipment"
    serializer_class = s.ShipmentSerializer
    queryset = Shipment.objects.select_related("gift_item", "carrier")

    def get_queryset(self):
        queryset = _municipality_filter(super().get_queryset(), self.request)
        donation = self.request.query_params.get("donation")
        return (
            queryset.filter(donation_id=donation) if donation and donation.isdigit() else queryset
        )


# --- personal-data access log -------------------------------------------------------------

_LOG_PARAMETERS = [
    OpenApiParameter("since", OpenApiTypes.DATE, description="この日以降（日本時間）"),
    OpenApiParameter("until", OpenApiTypes.DATE, description="この日まで（日本時間）"),
    OpenApiParameter("user", int),
]

CSV_HEADER = [
    "日時",
    "利用者ID",
    "利用者",
    "自治体ID",
    "操作",
    "対象",
    "対象ID",
    "パス",
    "IPアドレス",
    "詳細",
]


@extend_schema_view(list=extend_schema(parameters=_LOG_PARAMETERS))
class PersonalDataAccessViewSet(viewsets.ReadOnlyModelViewSet):
    """個人情報アクセス記録: operator admins only; exporting it is itself recorded."""

    permission_classes = [permissions.IsAuthenticated, OperatorAdminOnly]
    serializer_class = s.PersonalDataAccessSerializer

    def get_queryset(self):
        user = self.request.user
        # Rows about one municipality follow the policy; rows spanning several (a list page
        # across cities, an export) carry no municipality and are for operator admins.
        queryset = PersonalDataAccess.objects.visible_to(user) | PersonalDataAccess.objects.filter(
            municipality__isnull=True
        )
        queryset = queryset.select_related("user").order_by("-at", "-id")
        params = self.request.query_params
        for name, lookup in (("since", "at__gte"), ("until", "at__lt")):
            if params.get(name):
                try:
                    day = datetime.date.fromisoformat(params[name])
                except ValueError as exc:
                    raise ValidationError({name: "YYYY-MM-DD 形式で指定してください。"}) from exc
                if name == "until":
                    day += datetime.timedelta(days=1)
                start = datetime.datetime.combine(day, datetime.time.min)
                queryset = queryset.filter(**{lookup: timezone.make_aware(start)})
        if params.get("user", "").isdigit():
            queryset = queryset.filter(user_id=int(params["user"]))
        return queryset

    @extend_schema(parameters=_LOG_PARAMETERS, responses={(200, "text/csv"): OpenApiTypes.STR})
    @action(detail=False, methods=["get"])
    def export(self, request: Request) -> HttpResponse:
        """CSV (UTF-8 with BOM, so Excel opens it in Japanese)."""
        queryset = self.get_queryset()
        # Record the export first, so it appears in its own file.
        _log_access(
            request,
            record_type="personal_data_access.csv",
            action=PersonalDataAccess.Action.EXPORT,
            filters={k: v for k, v in request.query_params.items()},
        )
        response = HttpResponse(content_type="text/csv; charset=utf-8")
        stamp = timezone.localtime().strftime("%Y%m%d%H%M")
        response["Content-Disposition"] = f'attachment; filename="personal_data_access_{stamp}.csv"'
        response.write("\ufeff")
        writer = csv.writer(response)
        writer.writerow(CSV_HEADER)
        for row in queryset.iterator(chunk_size=2000):
            writer.writerow(
                [
                    timezone.localtime(row.at).strftime("%Y-%m-%d %H:%M:%S"),
                    row.user_id,
                    row.user.username,
                    row.municipality_id or "",
                    row.get_action_display(),
                    row.record_type,
                    row.record_id,
                    row.path,
                    row.ip_address or "",
                    json.dumps(row.detail, ensure_ascii=False),
                ]
            )
        return response
