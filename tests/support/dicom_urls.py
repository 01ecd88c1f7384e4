"""A URLconf mounting the DICOM import pages the way the admin does, for their tests."""

from django.contrib import admin
from django.urls import include, path

from trial.admin.imports import import_urls

urlpatterns = [
    path("admin/", admin.site.urls),
    path("dicom/", include(import_urls(wrap=admin.site.admin_view))),
]
