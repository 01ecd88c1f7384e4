"""Nothing but the code page until the second factor is given.

A signed-in person who must use a second factor (``policy``), or who has set one up, and has
not given a code in this session is sent to the code page, or to set-up when they have no
device yet, from every page: the admin, the site, the analysis pages. A session call of the
API gets a 403 in JSON instead. Token calls of the API are not sessions (``request.user`` is
anonymous here): a token is a separate credential, issued to a script by a superuser.
"""

from __future__ import annotations

from collections.abc import Callable
from urllib.parse import urlencode

from django.conf import settings
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect, JsonResponse
from django.urls import NoReverseMatch, reverse

from . import policy

API_PREFIX = "/api/"
CODE_NEEDED = ("Two-factor sign-in needed: give the code from your authenticator app at "
               "{url} (or sign in with a token).")


def _url(name: str) -> str | None:
    try:
        return reverse(name)
    except NoReverseMatch:
        return None


class TwoFactorMiddleware:
    """After ``OTPMiddleware`` (which gives ``request.user.is_verified()``)."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        return self.gate(request) or self.get_response(request)

    def open_paths(self) -> list[str]:
        """Reachable before the code: the code and set-up pages, signing in and out, files."""
        names = ("two_factor:verify", "two_factor:setup", "reader:logout", "admin:login",
                 "admin:logout")
        return [p for p in (*map(_url, names), settings.LOGIN_URL, settings.STATIC_URL) if p]

    def gate(self, request: HttpRequest) -> HttpResponse | None:
        user = getattr(request, "user", None)
        if not policy.enforced() or user is None or not user.is_authenticated:
            return None
        if user.is_verified() or any(request.path.startswith(p) for p in self.open_paths()):
            return None
        enrolled = policy.has_device(user)
        if not enrolled and not policy.requires_two_factor(user):
            return None
        target = _url("two_factor:verify" if enrolled else "two_factor:setup")
        accept = request.headers.get("Accept", "")
        if "application/json" in accept or (
                request.path.startswith(API_PREFIX) and "text/html" not in accept):
            return JsonResponse({"detail": CODE_NEEDED.format(url=target or "sign-in"),
                                 "two_factor_required": True}, status=403)
        if target is None:  # a URL conf without the two-factor pages: refuse, never let in
            return HttpResponse("Two-factor sign-in needed.", status=403,
                                content_type="text/plain")
        return HttpResponseRedirect(f"{target}?{urlencode({'next': request.get_full_path()})}")
