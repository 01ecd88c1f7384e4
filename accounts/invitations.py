"""Inviting a person into a trial: an account (new, or the one that has that e-mail already),
a membership (``trial.people.add_membership``) and an e-mail, audited; all or nothing.

A new account gets a user name made from the e-mail (``anna.berg@…`` -> ``anna.berg``, then
``anna.berg2`` …), no usable password, and ``is_staff`` only for a coordinator (coordinators
work in the admin; everyone else on the site). Its e-mail has a one-time link to choose a
password (``accounts.passwords``). An existing account keeps its name and password: it gains
the role (and ``is_staff`` for a coordinator role); its e-mail says so, with a link to choose
a password only if it has none yet (an invitation not taken up). A deactivated account is not
reused: it must be reactivated first (``trial.people.reactivate``).

The e-mail is plain text: the role, the trial (not for an expert rater, who is kept blind to
it), the user name, the link and how long it works. Never a case, an arm or a site.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.base_user import BaseUserManager
from django.core.exceptions import ValidationError
from django.core.mail import send_mail
from django.core.validators import validate_email
from django.db import transaction
from django.template.loader import render_to_string

from trial import audit, lifecycle, people
from trial.errors import Conflict, Invalid, ServiceError
from trial.models import Membership, Role, Site, Trial
from trial.permissions import can_coordinate

from . import passwords, policy

USERNAME_MAX = 150
ACCEPT_URL = "invitation_accept"


class NotSent(ServiceError):
    """The e-mail could not be sent: nothing was changed (503)."""

    status = 503


@dataclass
class Invitation:
    user: Any
    membership: Membership
    new_account: bool
    link_sent: bool  # a link to choose a password (else a notice of the new role)


def normalise_email(email: str) -> str:
    email = BaseUserManager.normalize_email((email or "").strip())
    try:
        validate_email(email)
    except ValidationError as exc:
        raise Invalid("Give a valid e-mail address.") from exc
    return email


def username_for(email: str) -> str:
    """A free user name made from the e-mail's local part (case-insensitively unique)."""
    users = get_user_model()._default_manager
    base = re.sub(r"[^\w.+-]", "", email.split("@")[0].lower())[: USERNAME_MAX - 6] or "person"
    candidate, n = base, 1
    while users.filter(username__iexact=candidate).exists():
        n += 1
        candidate = f"{base}{n}"
    return candidate


def _account(email: str) -> Any | None:
    """The one active account with this e-mail, or None; refused when ambiguous or off."""
    found = list(get_user_model()._default_manager.filter(email__iexact=email)[:2])
    if len(found) > 1:
        raise Conflict("Several accounts have this e-mail address: ask a superuser to sort "
                       "them out first.")
    if found and not found[0].is_active:
        raise Conflict("An account with this e-mail address exists but is deactivated: it "
                       "must be reactivated first (People page, by a coordinator of all its "
                       "trials, or a superuser).")
    return found[0] if found else None


def invite(*, trial: Trial, email: str, role: str, by: Any, first_name: str = "",
           last_name: str = "", site: Site | None = None,
           years_experience: int | None = None) -> Invitation:
    """Invite ``email`` into ``trial`` as ``role`` (``by``: a coordinator of ``trial`` or a
    superuser). Refused (nothing changed) if ``by`` may not, the trial is locked, the role
    needs a site, the person has the role already, or the e-mail cannot be sent."""
    if not can_coordinate(by, trial):
        raise people.NotYours("You can invite people only into a trial you coordinate.")
    lifecycle.check_writable(trial, "The trial's people")
    email = normalise_email(email)
    people.check_site(trial, role, site)
    with transaction.atomic():
        user = _account(email)
        new_account = user is None
        staff_granted = False
        if user is None:
            user = get_user_model()._default_manager.create_user(
                username=username_for(email), email=email,
                first_name=first_name.strip()[:150], last_name=last_name.strip()[:150],
                is_staff=role == Role.COORDINATOR)
            user.set_unusable_password()
            user.save(update_fields=["password"])
        elif role == Role.COORDINATOR and not user.is_staff:
            user.is_staff = staff_granted = True
            user.save(update_fields=["is_staff"])
        member = people.add_membership(trial, user, role, by=by, site=site,
                                       years_experience=years_experience)
        link_sent = not user.has_usable_password()
        audit.record(action="account.invited", obj=user, actor=by, trial=trial, after={
            "username": user.get_username(), "email": email, "role": role,
            "site": site.code if site else None, "new_account": new_account,
            "staff_granted": staff_granted, "link_sent": link_sent,
            "invited_by": getattr(by, "username", None)})
        _send(user, member, by=by, link_sent=link_sent, new_account=new_account)
    return Invitation(user=user, membership=member, new_account=new_account,
                      link_sent=link_sent)


def _send(user: Any, member: Membership, *, by: Any, link_sent: bool,
          new_account: bool) -> None:
    """The invitation e-mail; an error aborts the invitation (the transaction rolls back)."""
    blind = member.role == Role.RATER  # raters never learn which trial they rate
    context = {
        "user": user, "role": member.get_role_display().lower(),
        "trial_name": "" if blind else member.trial.name,
        "inviter": (by.get_full_name() or by.get_username()) if by else "A coordinator",
        "link": passwords.link(user, ACCEPT_URL) if link_sent else "",
        "valid_for": passwords.valid_for(), "sign_in_url": passwords.sign_in_url(user),
        "site_url": passwords.site_url(), "new_account": new_account,
        "two_factor": member.role in policy.REQUIRED_ROLES or member.trial.require_two_factor,
        "site_name": "CXR reader trials",
    }
    subject = " ".join(render_to_string("accounts/invitation_subject.txt", context).split())
    body = render_to_string("accounts/invitation_email.txt", context)
    try:
        send_mail(subject, body, settings.DEFAULT_FROM_EMAIL, [user.email])
    except Exception as exc:  # SMTP down, refused address ...: nothing is kept
        raise NotSent(f"The e-mail to {user.email} could not be sent ({exc.__class__.__name__}"
                      "): nobody was invited. Try again later.") from exc
