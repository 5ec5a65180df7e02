from django.urls import path

from donations_sync import outbox_views, views

urlpatterns = [
    path("imports/", views.import_index, name="import_index"),
    path("imports/upload/", views.import_upload, name="import_upload"),
    path("imports/<int:municipality_id>/", views.import_history, name="import_history"),
    path("imports/runs/<int:run_id>/", views.import_run, name="import_run"),
    path(
        "imports/runs/<int:run_id>/progress/",
        views.import_run_progress,
        name="import_run_progress",
    ),
    path(
        "imports/runs/<int:run_id>/rejections.csv",
        views.import_run_rejections_csv,
        name="import_run_rejections_csv",
    ),
    path("imports/runs/<int:run_id>/rerun/", views.import_run_rerun_page, name="import_run_rerun"),
    path("imports/mappings/<int:municipality_id>/", views.import_mappings, name="import_mappings"),
    path(
        "imports/mappings/edit/<int:mapping_id>/",
        views.import_mapping_edit,
        name="import_mapping_edit",
    ),
    path("outbox/", outbox_views.outbox_list, name="outbox_list"),
    path("outbox/<int:outbox_id>/retry/", outbox_views.outbox_retry, name="outbox_retry"),
    path("outbox/<int:outbox_id>/cancel/", outbox_views.outbox_cancel, name="outbox_cancel"),
    path("callbacks/", views.callback_list, name="callback_list"),
    path("callbacks/<int:callback_id>/resolve/", views.callback_resolve, name="callback_resolve"),
]
