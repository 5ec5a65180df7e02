from django.urls import path

from administration.handover import views

urlpatterns = [
    path("handover/", views.handover_index, name="handover_index"),
    path(
        "handover/municipalities/<int:municipality_id>/",
        views.handover_municipality,
        name="handover_municipality",
    ),
    path(
        "handover/municipalities/<int:municipality_id>/export/",
        views.handover_export_start,
        name="handover_export_start",
    ),
    path(
        "handover/municipalities/<int:municipality_id>/delete/",
        views.handover_deletion_start,
        name="handover_deletion_start",
    ),
    path(
        "handover/municipalities/<int:municipality_id>/retention/",
        views.retention_municipality,
        name="retention_municipality",
    ),
    path("handover/exports/<int:export_id>/", views.handover_export, name="handover_export"),
    path(
        "handover/exports/<int:export_id>/download/",
        views.handover_export_download,
        name="handover_export_download",
    ),
    path(
        "handover/deletions/<int:deletion_id>/",
        views.handover_deletion,
        name="handover_deletion",
    ),
    path(
        "handover/deletions/<int:deletion_id>/certificate/",
        views.handover_certificate,
        name="handover_certificate",
    ),
    path("handover/retention/", views.retention_default, name="retention_default"),
]
