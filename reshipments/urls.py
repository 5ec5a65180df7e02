from django.urls import path

from reshipments import views

app_name = "reshipments"

urlpatterns = [
    path("", views.reshipment_list, name="list"),
    path("tickets/<int:ticket_id>/new/", views.reshipment_new_for_ticket, name="new_for_ticket"),
    path(
        "shipments/<int:shipment_id>/new/",
        views.reshipment_new_for_shipment,
        name="new_for_shipment",
    ),
    path("<int:reshipment_id>/", views.reshipment_detail, name="detail"),
    path("<int:reshipment_id>/approve/", views.reshipment_approve, name="approve"),
    path("<int:reshipment_id>/refuse/", views.reshipment_refuse, name="refuse"),
    path("settings/", views.settings_list, name="settings"),
    path(
        "settings/municipalities/<int:municipality_id>/",
        views.settings_save,
        name="settings_save",
    ),
    path("returned/", views.returned_list, name="returned_list"),
    path("returned/new/", views.returned_new, name="returned_new"),
    path("returned/import/", views.returned_import, name="returned_import"),
    path("returned/<int:returned_id>/", views.returned_detail, name="returned_detail"),
    path("returned/<int:returned_id>/attempt/", views.returned_attempt, name="returned_attempt"),
]
