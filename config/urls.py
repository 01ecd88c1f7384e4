"""Root URLs: the admin (coordinators), the REST API and its OpenAPI schema."""

from django.contrib import admin
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

urlpatterns = [
    path("admin/", admin.site.urls),
    path("api/images/", include("reader.urls_images")),
    path("api/", include("reader.api_urls")),
    path("api/", include("trial.api.urls")),
    path("api/schema/", SpectacularAPIView.as_view(), name="api-schema"),
    path("api/docs/", SpectacularSwaggerView.as_view(url_name="api-schema"), name="api-docs"),
    path("analysis/", include("analysis.urls")),
    path("", include("reader.urls")),
]
