from django.urls import path

from tickets import list_views, views, workspace_views

urlpatterns = [
    path("console/", views.console, name="console"),
    path("console/search/", views.console_search, name="console_search"),
    path("municipalities/<int:municipality_id>/donors/", views.donor_list, name="donor_list"),
    path("donors/<int:donor_id>/", views.donor_detail, name="donor_detail"),
    path("tickets/", list_views.ticket_list, name="ticket_list"),
    path("tickets/bulk/", list_views.ticket_bulk, name="ticket_bulk"),
    path("tickets/views/save/", list_views.saved_view_save, name="saved_view_save"),
    path(
        "tickets/views/<int:view_id>/delete/",
        list_views.saved_view_delete,
        name="saved_view_delete",
    ),
    path("tickets/sla-targets/", list_views.sla_targets, name="sla_targets"),
    path(
        "tickets/sla-targets/<int:target_id>/delete/",
        list_views.sla_target_delete,
        name="sla_target_delete",
    ),
    path("providers/<int:provider_id>/", list_views.provider_detail, name="provider_detail"),
    path("tickets/<int:ticket_id>/provider/", list_views.ticket_provider, name="ticket_provider"),
    path("tickets/new/", views.ticket_create, name="ticket_create"),
    path("tickets/<int:ticket_id>/", views.ticket_detail, name="ticket_detail"),
    path("tickets/<int:ticket_id>/followup/", views.ticket_followup, name="ticket_followup"),
    path("tickets/<int:ticket_id>/deliveries/", views.ticket_deliveries, name="ticket_deliveries"),
    path(
        "tickets/<int:ticket_id>/timeline/", views.ticket_timeline_part, name="ticket_timeline_part"
    ),
    path(
        "tickets/<int:ticket_id>/replies/<int:outbound_id>/retry/",
        views.ticket_reply_retry,
        name="ticket_reply_retry",
    ),
    path("tickets/<int:ticket_id>/status/", views.ticket_status, name="ticket_status"),
    path("tickets/<int:ticket_id>/classify/", views.ticket_classify, name="ticket_classify"),
    path("tickets/<int:ticket_id>/assign-me/", views.ticket_assign_me, name="ticket_assign_me"),
    path("tickets/<int:ticket_id>/canned/", views.ticket_canned_replies, name="ticket_canned"),
    # The agent's ticket page (tickets/workspace_views.py).
    path("tickets/<int:ticket_id>/compose/", workspace_views.ticket_compose, name="ticket_compose"),
    path("tickets/<int:ticket_id>/title/", workspace_views.ticket_retitle, name="ticket_retitle"),
    path("tickets/<int:ticket_id>/draft/", workspace_views.ticket_draft, name="ticket_draft"),
    path("tickets/<int:ticket_id>/links/", workspace_views.ticket_links, name="ticket_links"),
    path("tickets/<int:ticket_id>/merge/", workspace_views.ticket_merge, name="ticket_merge"),
    path(
        "tickets/<int:ticket_id>/mentionable/",
        workspace_views.ticket_mentionable,
        name="ticket_mentionable",
    ),
    path("access-log/", views.access_log, name="access_log"),
    path("access-log/export.csv", views.access_log_export, name="access_log_export"),
]
