from django.urls import include, path

from administration import views

app_name = "administration"

M = "municipalities/<int:municipality_id>/"

urlpatterns = [
    path("", views.index, name="index"),
    path("onboard/", views.onboard, name="onboard"),
    path("municipalities/new/", views.municipality_create, name="municipality_create"),
    path(M, views.municipality_detail, name="municipality_detail"),
    path(M + "edit/", views.municipality_edit, name="municipality_edit"),
    path(M + "numbers/", views.phone_number_add, name="phone_number_add"),
    path(M + "numbers/<int:pk>/delete/", views.phone_number_remove, name="phone_number_remove"),
    path(M + "phone-settings/", views.phone_settings_save, name="phone_settings_save"),
    path(M + "ivr/", views.ivr_options_save, name="ivr_options_save"),
    path(M + "addresses/", views.inbound_address_add, name="inbound_address_add"),
    path(
        M + "addresses/<int:pk>/delete/",
        views.inbound_address_remove,
        name="inbound_address_remove",
    ),
    path(M + "addresses/<int:pk>/mailbox/", views.mailbox_edit, name="mailbox_edit"),
    path(M + "mail-settings/", views.mail_settings_save, name="mail_settings_save"),
    path(M + "calendar/preset/", views.calendar_preset, name="calendar_preset"),
    path(M + "calendar/weekly/", views.calendar_weekly, name="calendar_weekly"),
    path(M + "calendar/exceptions/", views.calendar_exception_add, name="calendar_exception_add"),
    path(
        M + "calendar/exceptions/<int:pk>/delete/",
        views.calendar_exception_delete,
        name="calendar_exception_delete",
    ),
    path(M + "contacts/", views.city_contact_add, name="city_contact_add"),
    path(M + "contacts/<int:pk>/delete/", views.city_contact_delete, name="city_contact_delete"),
    path(M + "contacts/<int:pk>/", views.city_contact_edit, name="city_contact_edit"),
    path(M + "providers/", views.provider_add, name="provider_add"),
    path(M + "providers/<int:pk>/", views.provider_edit, name="provider_edit"),
    path(M + "staff/", views.municipality_staff, name="municipality_staff"),
    path(M + "suspend/", views.municipality_suspend, name="municipality_suspend"),
    path(M + "resume/", views.municipality_resume, name="municipality_resume"),
    path("carriers/", views.carriers, name="carriers"),
    path("carriers/<int:pk>/", views.carrier_edit, name="carrier_edit"),
    path("staff/", views.staff_list, name="staff_list"),
    path("staff/new/", views.staff_create, name="staff_create"),
    path("staff/import/", views.staff_import, name="staff_import"),
    path("staff/import/sample.csv", views.staff_import_sample, name="staff_import_sample"),
    path("staff/access/", views.access_matrix, name="access_matrix"),
    path("staff/<int:user_id>/", views.staff_edit, name="staff_edit"),
    path("staff/<int:user_id>/deactivate/", views.staff_deactivate, name="staff_deactivate"),
    path("staff/<int:user_id>/reactivate/", views.staff_reactivate, name="staff_reactivate"),
    path("staff/<int:user_id>/password/", views.staff_password_reset, name="staff_password_reset"),
    path("account/", views.account, name="account"),
    path(
        "account/logout-everywhere/",
        views.account_logout_everywhere,
        name="account_logout_everywhere",
    ),
    path("", include("administration.handover.urls")),
]
