"""The REST API, mounted under /api/ (see config/urls.py); OpenAPI schema at /api/schema/."""

from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView
from rest_framework import permissions
from rest_framework.routers import DefaultRouter

from tickets import api

router = DefaultRouter()
router.register("tickets", api.InquiryViewSet, basename="api-ticket")
router.register("categories", api.CategoryViewSet, basename="api-category")
router.register("donors", api.DonorViewSet, basename="api-donor")
router.register("donations", api.DonationViewSet, basename="api-donation")
router.register("shipments", api.ShipmentViewSet, basename="api-shipment")
router.register(
    "personal-data-access", api.PersonalDataAccessViewSet, basename="api-personal-data-access"
)


class OperatorStaffOnly(permissions.BasePermission):
    """The schema maps every endpoint and field: operator staff only, who have passed TOTP
    (crm.middleware.RequireTwoFactorMiddleware) before any /api/ request reaches a view."""

    message = "運営側の利用者のみ利用できます。"

    def has_permission(self, request, view) -> bool:
        return bool(request.user.is_authenticated and request.user.is_operator_staff)


urlpatterns = [
    path(
        "schema/",
        SpectacularAPIView.as_view(permission_classes=[OperatorStaffOnly]),
        name="api-schema",
    ),
    path("", include(router.urls)),
]
