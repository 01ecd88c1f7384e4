"""The pages' one translation of service refusals: a page that calls a service which refuses
(``trial.errors.ServiceError``) answers with the refusal's status and message, never a 500.
The API translates its own (``trial.api.errors``); the admin shows them as messages."""

from __future__ import annotations

from collections.abc import Callable

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from .errors import ServiceError


class ServiceErrorMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        return self.get_response(request)

    def process_exception(self, request: HttpRequest, exc: Exception) -> HttpResponse | None:
        if not isinstance(exc, ServiceError):
            return None
        return render(request, "refused.html", {"message": exc.message, "problems": exc.problems},
                      status=exc.status)
