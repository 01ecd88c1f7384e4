"""Setting a password through a one-time link sent by e-mail: an invitation's first password,
and "Forgot your password?" for everyone.

Both are Django's password-reset machinery: ``default_token_generator`` makes the link's token,
which works once (it is made from the password, so setting one ends it) and for
``PASSWORD_RESET_TIMEOUT`` seconds (Django's default: 3 days); ``PasswordResetConfirmView``
asks for the new password twice and checks it with the project's validators. Links start with
``SITE_URL``, the site's public origin, never with the host a request happened to name.

A password set through a link is an audit event (``account.password_set``, on every trial of
the person). It also lifts the sign-in lockout of that account (django-axes: the link proved
the person reads the account's e-mail), but not the lockout of an address. It does not sign
the person in: they sign in as usual, and give their two-factor code if they have a device.
"""

from __future__ import annotations

from typing import Any

from axes.utils import reset as reset_lockout
from django.conf import settings
from django.contrib.auth.tokens import default_token_generator
from django.urls import reverse
from django.utils.encoding import force_bytes
from django.utils.http import urlsafe_base64_encode

from trial import people

INVITATION = "invitation"
RESET = "reset"


def site_url() -> str:
    """The public origin, without a trailing slash."""
    return str(getattr(settings, "SITE_URL", "")).rstrip("/")


def valid_for() -> str:
    """How long a link works, in words ("3 days", "12 hours", "30 minutes")."""
    seconds = int(settings.PASSWORD_RESET_TIMEOUT)
    for unit, size in (("day", 86_400), ("hour", 3_600), ("minute", 60)):
        if seconds >= size and seconds % size == 0:
            count = seconds // size
            return f"{count} {unit}{'' if count == 1 else 's'}"
    return f"{seconds} seconds"


def link(user: Any, url_name: str) -> str:
    """A one-time link for ``user`` to set their password (``url_name``: the page's route)."""
    path = reverse(url_name, kwargs={
        "uidb64": urlsafe_base64_encode(force_bytes(user.pk)),
        "token": default_token_generator.make_token(user)})
    return f"{site_url()}{path}"


def sign_in_url(user: Any) -> str:
    """Where the person signs in: the admin for staff (coordinators), else the site."""
    return f"{site_url()}{reverse('admin:index') if user.is_staff else settings.LOGIN_URL}"


def password_set(user: Any, *, through: str) -> None:
    """``user`` has just set a password through a link (``INVITATION`` or ``RESET``): lift the
    account's sign-in lockout, and record it. Call in the transaction that saved it."""
    removed = reset_lockout(username=user.get_username())
    people.record_account("account.password_set", user, by=user, through=through,
                          lockout_attempts_removed=removed)
