"""Only the project's own pages and API. django-helpdesk's staff screens and API are not mounted,
and Django's admin is not exposed either: both would show data across municipalities."""

from django.urls import include, path

urlpatterns = [
    path("", include("crm.urls")),
    path("api/", include("tickets.api_urls")),
    path("", include("donations_sync.urls")),
    path("", include("tickets.urls")),
    path("", include("knowledge.urls")),
    path("telephony/", include("telephony.urls")),
    path("mail/", include("tickets.mail.urls")),
    path("escalation/", include("escalation.urls")),
    path("reshipments/", include("reshipments.urls")),
    path("analysis/", include("analysis.urls")),
    path("administration/", include("administration.urls")),
    # The donation & fulfillment core: its signed pushes and the 保留 changes.
    path("core/", include("donations_sync.feed_urls")),
]
