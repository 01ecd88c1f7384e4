"""The trial dashboard (mounted at ``monitor/`` by the root URLconf)."""

from django.urls import path

from . import views

app_name = "monitor"
urlpatterns = [
    path("<slug:trial_slug>/", views.dashboard_page, name="dashboard"),
    path("<slug:trial_slug>/data.json", views.dashboard_json, name="data"),
    path("<slug:trial_slug>/retry-drafts/", views.retry_drafts, name="retry-drafts"),
    path("<slug:trial_slug>/retry-deliveries/", views.retry_deliveries,
         name="retry-deliveries"),
]
