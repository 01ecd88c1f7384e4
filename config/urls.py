"""Root URLs: the admin (coordinators), the REST API and its OpenAPI schema, the probes."""

from csp.decorators import csp_update
from django.contrib import admin
from django.http import HttpRequest, HttpResponseRedirect
from django.urls import include, path, re_path
from django.views.generic import RedirectView
from drf_spectacular.views import (
    SpectacularAPIView,
    SpectacularRedocView,
    SpectacularSwaggerSplitView,
)


# Admin pages of models that moved app (drafts to ``drafting``, campaigns to ``rating``): old
# bookmarks land on the same page at its new address.
def moved(app: str):
    """307: the browser repeats the request as it was (a POST of a tool stays a POST)."""

    def view(request: HttpRequest, page: str) -> HttpResponseRedirect:
        query = request.META.get("QUERY_STRING", "")
        response = HttpResponseRedirect(f"/admin/{app}/{page}" + (f"?{query}" if query else ""))
        response.status_code = 307
        return response

    return view


MOVED_ADMIN = [
    re_path(r"^admin/trial/(?P<page>(?:draft|modelendpoint)/.*)$", moved("drafting")),
    re_path(r"^admin/reader/(?P<page>(?:campaign|rateritem)/.*)$", moved("rating")),
]

urlpatterns = [
    # /health/live/, /health/ready/ and /metrics (answered by ops.middleware.ProbeMiddleware).
    path("", include("ops.urls")),
    *MOVED_ADMIN,
    # The admin's sign-in page shows "Forgotten your password?" when this route exists: the
    # site's own reset pages (accounts/password_urls.py). Before the admin's catch-all.
    path("admin/password_reset/", RedirectView.as_view(pattern_name="password_reset"),
         name="admin_password_reset"),
    path("admin/", admin.site.urls),
    path("api/images/", include("reader.api.urls_images")),
    path("api/", include("reader.api.urls")),
    path("api/", include("rating.api.urls")),
    path("api/", include("drafting.api.urls")),
    path("api/", include("trial.api.urls")),
    path("api/", include("pacs.api.urls")),  # FHIR DiagnosticReport of a final report
    path("api/schema/", SpectacularAPIView.as_view(), name="api-schema"),
    # Swagger UI with its start-up script at ?script (no inline script, see the CSP), and ReDoc,
    # whose search runs in a worker it makes from a blob: (allowed on that page only).
    path("api/docs/", SpectacularSwaggerSplitView.as_view(url_name="api-schema"),
         name="api-docs"),
    path("api/redoc/", csp_update({"worker-src": ["'self'", "blob:"]})(
        SpectacularRedocView.as_view(url_name="api-schema")), name="api-redoc"),
    path("analysis/", include("analysis.urls")),
    path("dicomweb/", include("pacs.urls")),  # STOW-RS for sites' systems (token)
    # Two-factor sign-in: the code after the password, set-up, recovery codes (accounts/).
    path("accounts/two-factor/", include("accounts.urls")),
    # Password reset ("Forgot your password?") and invitations' links: a one-time link by
    # e-mail sets a password (accounts/passwords.py).
    path("accounts/", include("accounts.password_urls")),
    path("notifications/", include("notify.urls")),
    path("monitor/", include("monitor.urls")),
    path("", include("reader.urls")),
    path("", include("rating.urls")),
]
