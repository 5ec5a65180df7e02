"""REST API: tickets (read and write through tickets.services), donors, donations, shipments
(read-only) and the personal-data access log.

Same policy as the pages: every queryset is narrowed by ``ScopedQuerysetMixin`` (other
municipalities' rows do not exist: 404), city officials only read, and every retrieval of
personal data is written to the access log.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.http import StreamingHttpResponse
from django_filters.rest_framework import DjangoFilterBackend
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
from tickets import exports, selectors, services
from tickets import serializers as s
from tickets.api_pagination import (
    AccessLogCursor,
    IdCursor,
    NewestDonationCursor,
    NewestFirstCursor,
    NewestIdCursor,
)
from tickets.filters import AccessLogFilter, ApiInquiryFilter
from tickets.models import Category, Inquiry


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
    queryset = selectors.inquiry_rows().prefetch_related("donations", "shipments")
    # The ticket page's filters (one definition); without ``status`` only open tickets.
    filter_backends = [DjangoFilterBackend]
    filterset_class = ApiInquiryFilter
    pagination_class = NewestFirstCursor

    def get_serializer_class(self):
        if self.action == "list":
            return s.InquirySerializer
        return s.InquiryDetailSerializer

    def get_queryset(self):
        if self.action == "list":
            # ApiInquiryFilter applies the scope (once: a second one misleads the planner).
            return self.queryset.all()
        return super().get_queryset()

    def _detail(self, inquiry: Inquiry, code: int = http_status.HTTP_200_OK) -> Response:
        fresh = super().get_queryset().get(pk=inquiry.pk)
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
    pagination_class = IdCursor
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
    pagination_class = NewestDonationCursor
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
    pagination_class = NewestIdCursor
    queryset = Shipment.objects.select_related("gift_item", "carrier")

    def get_queryset(self):
        queryset = _municipality_filter(super().get_queryset(), self.request)
        donation = self.request.query_params.get("donation")
        return (
            queryset.filter(donation_id=donation) if donation and donation.isdigit() else queryset
        )


# --- personal-data access log -------------------------------------------------------------


class PersonalDataAccessViewSet(viewsets.ReadOnlyModelViewSet):
    """個人情報アクセス記録: operator admins only; exporting it is itself recorded."""

    permission_classes = [permissions.IsAuthenticated, OperatorAdminOnly]
    serializer_class = s.PersonalDataAccessSerializer
    # The page's filters (one definition), which also apply the scope.
    queryset = selectors.access_log_rows()
    filter_backends = [DjangoFilterBackend]
    filterset_class = AccessLogFilter
    pagination_class = AccessLogCursor

    @extend_schema(filters=True, responses={(200, "text/csv"): OpenApiTypes.STR})
    @action(detail=False, methods=["get"])
    def export(self, request: Request) -> StreamingHttpResponse:
        """The page's CSV (UTF-8 with BOM, so Excel opens it in Japanese)."""
        return exports.access_log_csv(request._request, self.filter_queryset(self.get_queryset()))
