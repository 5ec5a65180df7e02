from django.contrib.auth.views import LogoutView
from django.urls import path

from crm import views

urlpatterns = [
    path("", views.home, name="home"),
    path("municipalities/", views.municipality_list, name="municipality_list"),
    path("login/", views.LoginView.as_view(), name="login"),
    path("logout/", LogoutView.as_view(), name="logout"),
    path("2fa/", views.two_factor, name="two_factor"),
    path("healthz", views.healthz, name="healthz"),
]
