"""``/api/trials/{trial_slug}/cases/{pk}/diagnostic-report/`` (mounted under ``/api/``)."""

from django.urls import path

from . import views

urlpatterns = [
    path("trials/<slug:trial_slug>/cases/<int:pk>/diagnostic-report/",
         views.DiagnosticReportView.as_view(), name="case-diagnostic-report"),
]
