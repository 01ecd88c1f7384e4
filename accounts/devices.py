"""Setting up, checking and resetting a person's second factor; each step that matters is an
audit event on every trial the person belongs to (or on none).

A person has at most one authenticator (a ``TOTPDevice``: 6-digit codes every 30 s) and one
set of single-use recovery codes (a ``StaticDevice``). Wrong codes are throttled by django-otp
(1, 2, 4 ... seconds between tries, per device) and, after ``TWO_FACTOR_FAILURE_LIMIT`` wrong
codes in a row, refused for ``TWO_FACTOR_LOCK_MINUTES`` (counted from the last wrong one).
"""

from __future__ import annotations

import re
from base64 import b32encode
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import transaction
from django.utils import timezone
from django_otp.models import Device
from django_otp.plugins.otp_static.models import StaticDevice, StaticToken
from django_otp.plugins.otp_totp.models import TOTPDevice

from trial import audit
from trial.errors import ServiceError
from trial.models import Trial
from trial.permissions import is_superuser

from . import policy

RECOVERY_CODES = 10
AUTHENTICATOR = "authenticator app"
RECOVERY = "recovery codes"
TOTP_CODE = re.compile(r"^\d{6}$")


class Refused(ServiceError):
    status = 403


@dataclass
class Outcome:
    """What a code did: ``device`` that accepted it, else why not (``locked_until``)."""

    device: Device | None = None
    locked_until: datetime | None = None
    backed_off: bool = False  # django-otp's short back-off, not the lock
    recovery_codes_left: int | None = None

    @property
    def ok(self) -> bool:
        return self.device is not None


def failure_limit() -> int:
    return int(getattr(settings, "TWO_FACTOR_FAILURE_LIMIT", 5))


def lock_time() -> timedelta:
    return timedelta(minutes=float(getattr(settings, "TWO_FACTOR_LOCK_MINUTES", 15)))


def normalise(code: str) -> str:
    """Codes as people type them: spaces and dashes dropped, recovery codes in lower case."""
    return re.sub(r"[\s-]", "", code or "").lower()


def record(action: str, user: Any, *, actor: Any = None, **after: Any) -> None:
    """One audit event per trial ``user`` belongs to (a person without a trial: one, no trial)."""
    trials = list(Trial.objects.filter(memberships__user=user).distinct())
    for trial in trials or [None]:
        audit.record(action=action, obj=user, actor=actor, trial=trial,
                     after={"username": user.get_username(), **after})


def _devices(user: Any) -> list[Device]:
    return [*TOTPDevice.objects.filter(user=user), *StaticDevice.objects.filter(user=user)]


def locked_until(user: Any) -> datetime | None:
    """When ``user`` may try a code again after too many wrong ones (None: now)."""
    devices = _devices(user)
    failures = sum(d.throttling_failure_count for d in devices)
    stamps = [d.throttling_failure_timestamp for d in devices if d.throttling_failure_timestamp]
    if failures < failure_limit() or not stamps:
        return None
    until = max(stamps) + lock_time()
    return until if until > timezone.now() else None


def _backed_off(device: Device) -> datetime | None:
    """django-otp's own back-off after a wrong code (seconds): checked before trying a code,
    so a right code typed too soon is not called wrong."""
    allowed, info = device.verify_is_allowed()
    return None if allowed else (info or {}).get("locked_until") or timezone.now()


def _after_failure(user: Any) -> Outcome:
    """A wrong code: if it was one too many, the lock starts and is an audit event."""
    until = locked_until(user)
    if until is not None:
        failures = sum(d.throttling_failure_count for d in _devices(user))
        record("two_factor.locked", user, actor=user, failures=failures,
               until=until.isoformat())
    return Outcome(locked_until=until)


def _reset_throttles(user: Any) -> None:
    for device in _devices(user):
        if device.throttling_failure_count:
            device.throttle_reset()


# --- setting up -------------------------------------------------------------------------------

def pending_device(user: Any) -> TOTPDevice:
    """The authenticator being set up: made once, so reloading the page keeps its secret.
    Refused once ``user`` has a confirmed one (a new one replaces it only after a reset)."""
    if policy.has_device(user):
        raise Refused("Two-factor sign-in is set up already: ask a superuser to reset it.")
    device = TOTPDevice.objects.filter(user=user, confirmed=False).order_by("pk").first()
    return device or TOTPDevice.objects.create(user=user, name=AUTHENTICATOR, confirmed=False)


def secret(device: TOTPDevice) -> str:
    """The key in base 32, as authenticator apps take it when typed in."""
    return b32encode(device.bin_key).decode()


def confirm(user: Any, code: str) -> tuple[Outcome, list[str]]:
    """Confirm the pending authenticator with its first code; returns the new recovery codes
    (shown once) on success."""
    with transaction.atomic():
        device = TOTPDevice.objects.select_for_update().filter(
            user=user, confirmed=False).order_by("pk").first()
        if device is None or policy.has_device(user):
            raise Refused("Nothing to set up: start again from the set-up page.")
        until = locked_until(user)  # with the device's row locked: one try at a time
        if until is not None:
            return Outcome(locked_until=until), []
        wait = _backed_off(device)
        if wait is not None:
            return Outcome(locked_until=wait, backed_off=True), []
        if not device.verify_token(normalise(code)):
            return _after_failure(user), []
        device.confirmed = True
        device.save(update_fields=["confirmed"])
        TOTPDevice.objects.filter(user=user).exclude(pk=device.pk).delete()
        codes = _new_recovery_codes(user)
        record("two_factor.enrolled", user, actor=user, device=device.name)
    return Outcome(device=device, recovery_codes_left=len(codes)), codes


def _new_recovery_codes(user: Any) -> list[str]:
    StaticDevice.objects.filter(user=user).delete()
    device = StaticDevice.objects.create(user=user, name=RECOVERY, confirmed=True)
    codes: list[str] = []
    while len(codes) < RECOVERY_CODES:
        token = StaticToken.random_token()
        if token not in codes:
            codes.append(token)
    StaticToken.objects.bulk_create(StaticToken(device=device, token=t) for t in codes)
    return codes


def renew_recovery_codes(user: Any) -> list[str]:
    """A fresh set of recovery codes (the old ones stop working); for a verified session."""
    if not policy.has_device(user):
        raise Refused("Set up two-factor sign-in first.")
    with transaction.atomic():
        codes = _new_recovery_codes(user)
        record("two_factor.recovery_codes_renewed", user, actor=user)
    return codes


def recovery_codes_left(user: Any) -> int:
    return StaticToken.objects.filter(device__user=user).count()


# --- signing in -------------------------------------------------------------------------------

def verify(user: Any, code: str) -> Outcome:
    """Check a 6-digit authenticator code or a recovery code (used up when it works)."""
    code = normalise(code)
    model = TOTPDevice if TOTP_CODE.match(code) else StaticDevice
    with transaction.atomic():
        found = list(model.objects.select_for_update().filter(user=user, confirmed=True))
        if not found and model is StaticDevice:  # no recovery codes: count it all the same
            found = list(TOTPDevice.objects.select_for_update().filter(
                user=user, confirmed=True))
        until = locked_until(user)  # with the device's row locked: one try at a time
        if until is not None:
            return Outcome(locked_until=until)
        if not found:
            return Outcome()
        device = found[0]
        wait = _backed_off(device)
        if wait is not None:
            return Outcome(locked_until=wait, backed_off=True)
        if not device.verify_token(code):
            return _after_failure(user)
        _reset_throttles(user)
        if model is StaticDevice:
            left = recovery_codes_left(user)
            record("two_factor.recovery_code_used", user, actor=user, codes_left=left)
            return Outcome(device=device, recovery_codes_left=left)
    return Outcome(device=device)


# --- removing ---------------------------------------------------------------------------------

def reset(user: Any, *, by: Any) -> int:
    """A superuser removes ``user``'s devices (a lost phone): they set up a new one at their
    next sign-in. Returns how many devices were removed."""
    if not is_superuser(by):
        raise Refused("Only a superuser resets someone's two-factor sign-in.")
    with transaction.atomic():
        removed = TOTPDevice.objects.filter(user=user, confirmed=True).count()
        removed += StaticDevice.objects.filter(user=user).count()
        TOTPDevice.objects.filter(user=user).delete()
        StaticDevice.objects.filter(user=user).delete()
        record("two_factor.reset", user, actor=by, devices_removed=removed)
    return removed


def turn_off(user: Any) -> None:
    """Someone for whom it is optional stops using it (from a verified session)."""
    if policy.requires_two_factor(user):
        raise Refused("Two-factor sign-in is required for you: it cannot be turned off.")
    with transaction.atomic():
        TOTPDevice.objects.filter(user=user).delete()
        StaticDevice.objects.filter(user=user).delete()
        record("two_factor.turned_off", user, actor=user)
