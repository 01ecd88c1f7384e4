"""Request metrics, and the probes answered before the rest of the middleware."""

from __future__ import annotations

import time
from collections.abc import Callable

from django.http import HttpRequest, HttpResponse
from django.urls import resolve

from .metrics import observe_request
from .urls import PATHS


class RequestMetricsMiddleware:
    """Counts and times every request by its view's name (first in MIDDLEWARE: the time is
    the whole answer's)."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        start = time.perf_counter()
        response = self.get_response(request)
        match = getattr(request, "resolver_match", None)
        observe_request(request.method or "", match.view_name if match else "unresolved",
                        response.status_code, time.perf_counter() - start)
        return response


class ProbeMiddleware:
    """Answers /health/live/, /health/ready/ and /metrics itself, after the security headers'
    middleware and before the host check, sessions, CSRF and the sign-in gates.

    A container's health check calls http://127.0.0.1:8000, which the operator's
    ALLOWED_HOSTS need not list (Django would answer 400), and Prometheus calls web:8000; the
    answers use no host, no session and no user, so nothing those checks protect is at stake.
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if request.path_info not in PATHS:
            return self.get_response(request)
        match = resolve(request.path_info)
        request.resolver_match = match
        return match.func(request, *match.args, **match.kwargs)
