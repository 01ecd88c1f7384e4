"""The probes and /metrics, mounted at the site's root by the root URLconf."""

from django.urls import path

from . import views

app_name = "ops"
urlpatterns = [
    path("health/live/", views.live, name="live"),
    path("health/ready/", views.ready, name="ready"),
    path("metrics", views.metrics, name="metrics"),
]
# The paths ops.middleware.ProbeMiddleware answers before the rest of the middleware.
PATHS = frozenset(f"/{pattern.pattern}" for pattern in urlpatterns)
