from django.urls import path

from knowledge import views

urlpatterns = [
    path("knowledge/", views.index, name="knowledge_index"),
    path("knowledge/<str:kind>/new/", views.edit, name="knowledge_new"),
    path("knowledge/<str:kind>/<int:pk>/", views.edit, name="knowledge_edit"),
]
