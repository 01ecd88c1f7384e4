"""Sign-in lockouts (django-axes) on the trial's record: who was locked out, who unlocked whom.

After too many wrong passwords an account and an address are locked for a while
(``AXES_*`` settings); a coordinator of a trial the person is a member of, or a superuser,
unlocks them at once. Both are audit events.
"""

from __future__ import annotations

from typing import Any

from axes.utils import reset
from django.contrib.auth import get_user_model

from . import audit
from .models import Membership, Trial


def record_lockout(sender: Any, request: Any = None, username: str | None = None,
                   ip_address: str | None = None, **kwargs: Any) -> None:
    """``axes.signals.user_locked_out``: one audit event per trial the account belongs to."""
    user = get_user_model().objects.filter(username=username).first() if username else None
    if user is None:
        return  # an unknown name: nothing of a trial's to record it against
    trials = Trial.objects.filter(memberships__user=user).distinct()
    for trial in trials or [None]:
        audit.record(action="account.locked_out", obj=user, trial=trial,
                     after={"username": username, "ip_address": ip_address})


def unlock(member: Membership, *, by: Any) -> int:
    """Lift the lockout of ``member``'s account (its failed attempts are forgotten); audited.
    Returns how many failed attempts were removed."""
    username = member.user.get_username()
    removed = reset(username=username)
    audit.record(action="account.unlocked", obj=member.user, actor=by, trial=member.trial,
                 after={"username": username, "attempts_removed": removed})
    return removed
