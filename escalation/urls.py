from django.urls import path

from escalation import views

app_name = "escalation"

urlpatterns = [
    path("", views.escalation_list, name="list"),
    path("<int:escalation_id>/", views.escalation_detail, name="detail"),
    path("<int:escalation_id>/acknowledge/", views.escalation_acknowledge, name="acknowledge"),
    path("<int:escalation_id>/instruct/", views.escalation_instruct, name="instruct"),
    path("<int:escalation_id>/close/", views.escalation_close, name="close"),
    path("tickets/<int:ticket_id>/panel/", views.ticket_panel, name="ticket_panel"),
    path("tickets/<int:ticket_id>/report/", views.ticket_report, name="ticket_report"),
    path("rules/", views.rule_list, name="rules"),
    path("rules/new/", views.rule_create, name="rule_create"),
    path("rules/<int:escalation_rule_id>/", views.rule_edit, name="rule_edit"),
    path(
        "municipalities/<int:municipality_id>/city-totp/",
        views.municipality_city_totp,
        name="municipality_city_totp",
    ),
    path("status/<int:notification_id>/", views.delivery_status, name="delivery_status"),
    path("voice/<int:notification_id>/", views.voice_gather, name="voice_gather"),
]
