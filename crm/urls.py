from django.contrib.auth.views import LogoutView
from django.urls import path

from crm import views

urlpatterns = [
    path("", views.home, name="home"),
    path("municipalities/", views.municipality_list, name="municipality_list"),
    path("login/", views.LoginView.as_view(), name="login"),
    path("logout/", LogoutView.as_view(), name="logout"),
    path("2fa/", views.two_factor, name="two_factor"),
    path("2fa/enrol/<str:token>/", views.two_factor_enrol, name="two_factor_enrol"),
    path("staff/", views.staff_list, name="staff_list"),
    path(
        "staff/<int:user_id>/enrolment-link/",
        views.staff_enrolment_link,
        name="staff_enrolment_link",
    ),
    path(
        "staff/<int:user_id>/reset-two-factor/",
        views.staff_two_factor_reset,
        name="staff_two_factor_reset",
    ),
    path("staff/<int:user_id>/unlock/", views.staff_unlock, name="staff_unlock"),
    path("staff/addresses/unlock/", views.staff_unlock_address, name="staff_unlock_address"),
    path("healthz", views.healthz, name="healthz"),
]
