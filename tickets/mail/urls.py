from django.urls import path

from tickets.mail import views

urlpatterns = [
    path("quarantine/", views.quarantine_list, name="mail_quarantine"),
    path("inbound/<int:message_id>/", views.inbound_detail, name="mail_inbound_detail"),
    path(
        "inbound/<int:message_id>/reprocess/",
        views.inbound_reprocess,
        name="mail_inbound_reprocess",
    ),
    path("outbound/<int:outbound_id>/retry/", views.outbound_retry, name="mail_outbound_retry"),
    path("rules/<int:municipality_id>/", views.rule_list, name="mail_rules"),
    path("rules/<int:municipality_id>/defaults/", views.rule_defaults, name="mail_rules_defaults"),
    path("settings/<int:municipality_id>/", views.mail_settings, name="mail_settings"),
    path("rules/edit/<int:rule_id>/", views.rule_edit, name="mail_rule_edit"),
    path("attachments/<int:attachment_id>/", views.attachment, name="mail_attachment"),
]
