"""Root URLs: the admin (coordinators), the REST API and its OpenAPI schema."""

from django.contrib import admin
from django.urls import include, path, re_path
from django.views.generic import RedirectView
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

# Admin pages of models that moved app (drafts to ``drafting``, campaigns to ``rating``): old
# bookmarks land on the same page at its new address.
MOVED_ADMIN = [
    re_path(r"^admin/trial/(?P<page>(?:draft|modelendpoint)/.*)$",
            RedirectView.as_view(url="/admin/drafting/%(page)s", query_string=True)),
    re_path(r"^admin/reader/(?P<page>(?:campaign|rateritem)/.*)$",
            RedirectView.as_view(url="/admin/rating/%(page)s", query_string=True)),
]

urlpatterns = [
    *MOVED_ADMIN,
    path("admin/", admin.site.urls),
    path("api/images/", include("reader.api.urls_images")),
    path("api/", include("reader.api.urls")),
    path("api/", include("rating.api.urls")),
    path("api/", include("drafting.api.urls")),
    path("api/", include("trial.api.urls")),
    path("api/schema/", SpectacularAPIView.as_view(), name="api-schema"),
    path("api/docs/", SpectacularSwaggerView.as_view(url_name="api-schema"), name="api-docs"),
    path("analysis/", include("analysis.urls")),
    path("", include("reader.urls")),
    path("", include("rating.urls")),
]
