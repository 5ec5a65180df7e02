from django.urls import path

from analysis import views

app_name = "analysis"

urlpatterns = [
    path("", views.index, name="index"),
    path("all/", views.overview, name="overview"),
    path("municipalities/<int:municipality_id>/", views.month_view, name="month"),
    path(
        "municipalities/<int:municipality_id>/generate/",
        views.report_generate,
        name="generate",
    ),
    path("municipalities/<int:municipality_id>/tickets/", views.drilldown_list, name="drilldown"),
    path(
        "municipalities/<int:municipality_id>/tickets.csv",
        views.drilldown_csv,
        name="drilldown_csv",
    ),
    path("reports/<int:report_id>/", views.report_detail, name="report"),
    path("reports/<int:report_id>/review/", views.report_review, name="review"),
    path("reports/<int:report_id>/regenerate/", views.report_regenerate, name="regenerate"),
    path("reports/<int:report_id>/report.pdf", views.report_pdf, name="pdf"),
    path("reports/<int:report_id>/report.xlsx", views.report_xlsx, name="xlsx"),
    path("reports/<int:report_id>/report.csv", views.report_csv, name="csv"),
]
