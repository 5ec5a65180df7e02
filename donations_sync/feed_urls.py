from django.urls import path

from donations_sync import feed_views

urlpatterns = [
    path("feed/", feed_views.core_feed_push, name="core_feed_push"),
    path("outbox/answers/", feed_views.core_outbox_callback, name="core_outbox_callback"),
    path("feed/quarantine/", feed_views.core_feed_quarantine, name="core_feed_quarantine"),
    path(
        "feed/quarantine/<int:change_id>/retry/",
        feed_views.core_feed_retry,
        name="core_feed_retry",
    ),
]
