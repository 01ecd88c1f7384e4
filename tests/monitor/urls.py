"""The site's URLs with the dashboard mounted at ``monitor/`` (as the root URLconf mounts it;
this keeps the tests independent of that line)."""

from django.urls import include, path

from config.urls import urlpatterns as site

mounted = any(getattr(p, "app_name", None) == "monitor" for p in site)
urlpatterns = [*site] if mounted else [*site, path("monitor/", include("monitor.urls"))]
