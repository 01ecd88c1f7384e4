"""The final reports as FHIR, mounted under ``/api/`` (``pacs.api.views``)."""

from django.urls import path

from . import views

urlpatterns = [
    path("trials/<slug:trial_slug>/cases/<int:pk>/diagnostic-report/",
         views.DiagnosticReportView.as_view(), name="case-diagnostic-report"),
    path("trials/<slug:trial_slug>/diagnostic-reports/",
         views.DiagnosticReportSearchView.as_view(), name="diagnostic-report-search"),
]
