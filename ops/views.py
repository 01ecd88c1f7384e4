"""The probes and the metrics endpoint: no sign-in (orchestrators and Prometheus call them), so
they answer with nothing but what they are for: no identifier, no setting, no error message.

They are reached through ``ops.middleware.ProbeMiddleware``, before the host check, sessions
and the sign-in gates (a container's health check calls 127.0.0.1, which need not be an
allowed host), and are exempt from the HTTPS redirect (``SECURE_REDIRECT_EXEMPT``).
"""

from __future__ import annotations

import hmac

from django.conf import settings
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_safe
from prometheus_client import REGISTRY
from prometheus_client.exposition import choose_encoder

from .health import readiness


@never_cache
@require_safe
def live(request: HttpRequest) -> JsonResponse:
    """The process answers: nothing else is checked (a dependency that is down is not a
    reason to restart this process)."""
    return JsonResponse({"status": "ok"})


@never_cache
@require_safe
def ready(request: HttpRequest) -> JsonResponse:
    """200 when every check passes, else 503; ``?workers=0`` leaves the Celery workers out."""
    checks = readiness(workers=request.GET.get("workers", "1") != "0")
    ok = all(check.ok for check in checks)
    return JsonResponse({"status": "ok" if ok else "fail",
                         "checks": [check.as_dict() for check in checks]},
                        status=200 if ok else 503)


def _bearer_token(request: HttpRequest) -> str:
    scheme, _, token = request.META.get("HTTP_AUTHORIZATION", "").partition(" ")
    return token.strip() if scheme.lower() == "bearer" else ""


@never_cache
@require_safe
def metrics(request: HttpRequest) -> HttpResponse:
    """Prometheus' text format, for ``Authorization: Bearer <METRICS_TOKEN>`` only. Without a
    token configured the endpoint does not exist (404); a missing or wrong token gets 403."""
    expected = settings.METRICS_TOKEN
    if not expected:
        return HttpResponse("Not found.\n", status=404, content_type="text/plain")
    if not hmac.compare_digest(_bearer_token(request).encode(), expected.encode()):
        return HttpResponse("Forbidden.\n", status=403, content_type="text/plain")
    encoder, content_type = choose_encoder(request.META.get("HTTP_ACCEPT", ""))
    return HttpResponse(encoder(REGISTRY), content_type=content_type)
