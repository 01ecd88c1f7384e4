"""Who must sign in with a second factor, and who is exempt.

Required for superusers, for anyone who is a coordinator or a statistician of any trial (they
see unblinded or whole-trial data), and for everyone with a role in a trial that asks for it
(``Trial.require_two_factor``); optional for everyone else. A person who has set up a device is
asked for a code whatever their roles. The demo's accounts (group ``DEMO_GROUP``) are exempt
only while ``settings.DEMO_MODE`` is on, so a flag left in a real database changes nothing.
"""

from __future__ import annotations

import time
from typing import Any

from django.conf import settings
from django.contrib.auth.models import Group
from django.db.models import Q
from django_otp.plugins.otp_totp.models import TOTPDevice

from trial.models import Membership, Role

DEMO_GROUP = "demo accounts"
REQUIRED_ROLES = (Role.COORDINATOR, Role.STATISTICIAN)
# Setting up a device needs the password given this recently (a stolen or left-open session
# alone cannot enrol its own device).
ENROL_WINDOW_S = 15 * 60
PASSWORD_AT_KEY = "two_factor_password_at"


def enforced() -> bool:
    """Always on in the product (``TWO_FACTOR_ENFORCED``; the test suite switches it off)."""
    return bool(getattr(settings, "TWO_FACTOR_ENFORCED", True))


def flag_demo_account(user: Any) -> None:
    """Mark one of the demo's accounts (exempt from two-factor sign-in in demo mode only)."""
    group, _ = Group.objects.get_or_create(name=DEMO_GROUP)
    user.groups.add(group)


def is_demo_exempt(user: Any) -> bool:
    return bool(getattr(settings, "DEMO_MODE", False)) and user.groups.filter(
        name=DEMO_GROUP).exists()


def requires_two_factor(user: Any) -> bool:
    """Must ``user`` sign in with a second factor (whether or not they have set one up)?"""
    if not getattr(user, "is_authenticated", False) or is_demo_exempt(user):
        return False
    if user.is_superuser:
        return True
    return Membership.objects.filter(user=user).filter(
        Q(role__in=REQUIRED_ROLES) | Q(trial__require_two_factor=True)).exists()


def reasons(user: Any) -> list[str]:
    """Why it is required, in words for the person's own page (empty: optional)."""
    if not requires_two_factor(user):
        return []
    found = ["you are a superuser"] if user.is_superuser else []
    members = Membership.objects.filter(user=user).filter(
        Q(role__in=REQUIRED_ROLES) | Q(trial__require_two_factor=True)).select_related("trial")
    for member in members.order_by("trial__name", "role"):
        if member.role in REQUIRED_ROLES:
            found.append(f"you are {member.get_role_display().lower()} of {member.trial.name}")
        else:
            found.append(f"{member.trial.name} requires it of everyone")
    return list(dict.fromkeys(found))


def has_device(user: Any) -> bool:
    """Has ``user`` a confirmed authenticator (TOTP) device?"""
    return TOTPDevice.objects.filter(user=user, confirmed=True).exists()


def note_password_sign_in(sender: Any, request: Any = None, user: Any = None,
                          **kwargs: Any) -> None:
    """``user_logged_in``: remember when the password was given (see ``ENROL_WINDOW_S``)."""
    session = getattr(request, "session", None)
    if session is not None:
        session[PASSWORD_AT_KEY] = time.time()


def password_is_recent(request: Any) -> bool:
    given = request.session.get(PASSWORD_AT_KEY)
    return isinstance(given, int | float) and 0 <= time.time() - given <= ENROL_WINDOW_S
