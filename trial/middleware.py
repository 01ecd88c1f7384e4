"""The pages' one translation of service refusals: a page that calls a service which refuses
(``trial.errors.ServiceError``) answers with the refusal's status and message, never a 500.
The API translates its own (``trial.api.errors``); the admin shows them as messages."""

from __future__ import annotations

import time
from collections.abc import Callable
from urllib.parse import urlencode

from django.conf import settings
from django.contrib.auth import logout
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect, JsonResponse
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


IDLE_KEY = "last_activity"
# Requests a page makes by itself (the editor's heartbeat, progress polling) say so in this
# header: they neither count as activity nor keep an idle session alive.
BACKGROUND_HEADER = "HTTP_X_BACKGROUND"
REFRESH_S = 60  # the idle clock's resolution


class IdleTimeoutMiddleware:
    """Sign a person out after ``SESSION_IDLE_MINUTES`` without activity (default 30).

    A page's own background requests do not count, so a reading page left open on an
    unattended workstation still times out. What the reader typed is not lost: the editor
    keeps a copy in the browser and restores it after signing in again. Pages are sent to the
    sign-in page (back here afterwards); API and background calls get 401 JSON.
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        user = getattr(request, "user", None)
        if user is not None and user.is_authenticated:
            now = time.time()
            idle = settings.SESSION_IDLE_MINUTES * 60
            last = request.session.get(IDLE_KEY)
            if idle and last is not None and now - last > idle:
                logout(request)
                return self._expired(request)
            # At most one session write a minute: every request writing it would put a
            # database write on the viewer's and the editor's hot paths.
            active = not request.META.get(BACKGROUND_HEADER)
            if last is None or (active and now - last > REFRESH_S):
                request.session[IDLE_KEY] = now
        return self.get_response(request)

    @staticmethod
    def _expired(request: HttpRequest) -> HttpResponse:
        message = (f"You were signed out after {settings.SESSION_IDLE_MINUTES:g} minutes "
                   "without activity; sign in again.")
        wants_json = (request.path.startswith("/api/") or request.META.get(BACKGROUND_HEADER)
                      or "application/json" in request.META.get("HTTP_ACCEPT", ""))
        if wants_json:
            return JsonResponse({"detail": message, "signed_out": True}, status=401)
        login = "/admin/login/" if request.path.startswith("/admin/") else settings.LOGIN_URL
        return HttpResponseRedirect(f"{login}?{urlencode({'next': request.get_full_path()})}")
