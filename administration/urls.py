from django.urls import include, path

app_name = "administration"

urlpatterns: list = [
    path("", include("administration.handover.urls")),
]
