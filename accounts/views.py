"""The two-factor pages: the code after the password, set-up with a QR code, recovery codes,
and each person's own page (new recovery codes, turning it off where it is optional).

Every page is ``never_cache``: codes and secrets must not be kept by the browser or a proxy.
"""

from __future__ import annotations

from urllib.parse import urlencode

from django.conf import settings
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_POST
from django_otp import login as otp_login
from django_otp.models import Device

from trial.errors import ServiceError

from . import devices, policy, qr
from .forms import CodeForm, SetupCodeForm


def _next(request: HttpRequest) -> str:
    """Where to go once done: the page asked for, if it is on this site."""
    wanted = request.POST.get("next") or request.GET.get("next") or ""
    if wanted and url_has_allowed_host_and_scheme(
            wanted, allowed_hosts={request.get_host()}, require_https=request.is_secure()):
        return wanted
    return settings.LOGIN_REDIRECT_URL


def _to(name: str, then: str) -> HttpResponseRedirect:
    """Another two-factor page, passing on where to go afterwards."""
    return HttpResponseRedirect(f"{reverse(name)}?{urlencode({'next': then})}")


def _signed_in_with(request: HttpRequest, device: Device) -> None:
    """The session is now verified; a new session key, as at any change of privilege."""
    otp_login(request, device)
    request.session.cycle_key()


def _locked_message(outcome: devices.Outcome) -> str:
    until = outcome.locked_until
    if until is None:
        return "That code is not right. Try again."
    if outcome.backed_off:
        return "Wait a moment after a wrong code, then type the code the app shows now."
    return (f"Too many wrong codes: try again after {timezone.localtime(until):%H:%M:%S %Z}. "
            "Lost your phone and your recovery codes? Ask a superuser to reset your "
            "two-factor sign-in.")


@never_cache
@login_required
def verify(request: HttpRequest) -> HttpResponse:
    """The code after the password (an authenticator code or a recovery code)."""
    user = request.user
    if user.is_verified():
        return HttpResponseRedirect(_next(request))
    if not policy.has_device(user):
        if policy.requires_two_factor(user):
            return _to("two_factor:setup", _next(request))
        return HttpResponseRedirect(_next(request))
    form = CodeForm(request.POST or None)
    error = ""
    if request.method == "POST" and form.is_valid():
        outcome = devices.verify(user, form.cleaned_data["code"])
        if outcome.ok:
            _signed_in_with(request, outcome.device)
            if outcome.recovery_codes_left is not None:
                return render(request, "accounts/recovery_used.html", {
                    "left": outcome.recovery_codes_left, "next": _next(request)})
            return HttpResponseRedirect(_next(request))
        error = _locked_message(outcome)
    return render(request, "accounts/verify.html", {
        "form": form, "error": error, "next": _next(request)})


@never_cache
@login_required
def setup(request: HttpRequest) -> HttpResponse:
    """Set up an authenticator: QR code and secret, a first code, then the recovery codes."""
    user = request.user
    if policy.has_device(user):
        return _to("two_factor:verify", _next(request))
    if not policy.password_is_recent(request):
        return render(request, "accounts/sign_in_again.html", {"next": _next(request)})
    device = devices.pending_device(user)
    form = SetupCodeForm(request.POST or None)
    error = ""
    if request.method == "POST" and form.is_valid():
        try:
            outcome, codes = devices.confirm(user, form.cleaned_data["code"])
        except ServiceError as exc:
            return render(request, "refused.html", {"message": exc.message}, status=exc.status)
        if outcome.ok:
            _signed_in_with(request, outcome.device)
            return render(request, "accounts/recovery_codes.html", {
                "codes": codes, "next": _next(request), "first_time": True})
        error = _locked_message(outcome)
    return render(request, "accounts/setup.html", {
        "form": form, "error": error, "next": _next(request),
        "qr": qr.svg(device.config_url), "secret": devices.secret(device),
        "required": policy.requires_two_factor(user)})


@never_cache
@login_required
def manage(request: HttpRequest) -> HttpResponse:
    """A person's own page: is it on, is it required and why, recovery codes left."""
    user = request.user
    enrolled = policy.has_device(user)
    if enrolled and not user.is_verified():
        return _to("two_factor:verify", request.path)
    return render(request, "accounts/manage.html", {
        "enrolled": enrolled, "reasons": policy.reasons(user),
        "codes_left": devices.recovery_codes_left(user) if enrolled else 0,
        "demo_exempt": policy.is_demo_exempt(user)})


def _verified_or_refused(request: HttpRequest) -> HttpResponse | None:
    if request.user.is_verified():
        return None
    return render(request, "refused.html", {
        "message": "Give your two-factor code first (sign out and in again)."}, status=403)


@never_cache
@login_required
@require_POST
def renew_codes(request: HttpRequest) -> HttpResponse:
    refused = _verified_or_refused(request)
    if refused:
        return refused
    codes = devices.renew_recovery_codes(request.user)
    return render(request, "accounts/recovery_codes.html", {
        "codes": codes, "next": reverse("two_factor:manage"), "first_time": False})


@never_cache
@login_required
@require_POST
def turn_off(request: HttpRequest) -> HttpResponse:
    refused = _verified_or_refused(request)
    if refused:
        return refused
    devices.turn_off(request.user)
    return redirect("two_factor:manage")
