"""The statistician's analysis pages (included at ``analysis/`` by the root URLconf)."""

from django.urls import path

from . import plan_views, views

app_name = "analysis"
urlpatterns = [
    path("<slug:trial_slug>/", views.report_page, name="report"),
    path("<slug:trial_slug>/export.xlsx", views.export_xlsx, name="export-xlsx"),
    path("<slug:trial_slug>/export.csv.zip", views.export_csv_zip, name="export-csv"),
    path("<slug:trial_slug>/report.pdf", views.report_pdf, name="report-pdf"),
    path("<slug:trial_slug>/metrics/compute/", views.compute_metrics, name="compute-metrics"),
    path("<slug:trial_slug>/plan/", plan_views.plan_page, name="plan"),
]
