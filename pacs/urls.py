"""DICOMweb, mounted at ``/dicomweb/``: STOW-RS only (no QIDO-RS or WADO-RS is offered)."""

from __future__ import annotations

from django.urls import path, re_path

from . import views

app_name = "pacs"

urlpatterns = [
    path("studies", views.store_instances, name="stow"),
    re_path(r"^studies/(?P<study_uid>[0-9.]{1,64})$", views.store_instances, name="stow_study"),
]
