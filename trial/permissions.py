"""Who may do what: roles are per trial (Membership); superusers may do everything."""

from __future__ import annotations

from django.core.exceptions import PermissionDenied
from django.db.models import QuerySet
from django.http import Http404

from .models import Membership, Role, Trial


def roles_of(user, trial: Trial | int) -> set[str]:
    """The roles ``user`` holds in ``trial`` (empty for anonymous users)."""
    if not getattr(user, "is_authenticated", False):
        return set()
    trial_id = trial if isinstance(trial, int) else trial.pk
    return set(
        Membership.objects.filter(user=user, trial_id=trial_id).values_list("role", flat=True)
    )


def memberships_of(user, *, slug: str) -> dict[str, Membership]:
    """``user``'s memberships of the trial ``slug`` by role, with the trial and their site, in
    one query (the API reads it once per request, for its permission check and its view)."""
    if not getattr(user, "is_authenticated", False):
        return {}
    found: dict[str, Membership] = {}
    trial = None
    # order_by(): a dict by role needs no order, and the model's (by trial and user name)
    # would join both tables into every request's first query.
    for member in Membership.objects.filter(user=user, trial__slug=slug).select_related(
            "trial", "site").order_by():
        # One trial object for all (a coordinator who also reads), and the caller's user.
        trial = trial or member.trial
        member.trial, member.user = trial, user
        found[member.role] = member
    return found


def trial_member(user, slug: str, role: str,
                 held: dict[str, Membership] | None = None) -> Membership:
    """The user's membership of ``role`` in the trial ``slug`` with its trial (``held``: the
    memberships already read, else one query); 403 for a member without the role or a
    superuser, 404 for anyone else or no such trial (its existence is not revealed)."""
    held = memberships_of(user, slug=slug) if held is None else held
    if role in held:
        return held[role]
    if held or (is_superuser(user) and Trial.objects.filter(slug=slug).exists()):
        raise PermissionDenied(f"Only a {Role(role).label.lower()} of this trial may do this.")
    raise Http404


def has_role(user, trial: Trial | int, *roles: str) -> bool:
    if getattr(user, "is_superuser", False) and getattr(user, "is_active", False):
        return True
    return bool(roles_of(user, trial) & set(roles))


def trials_where(user, *roles: str) -> QuerySet[Trial]:
    """Trials in which ``user`` holds one of ``roles`` (all trials for a superuser)."""
    if getattr(user, "is_superuser", False) and getattr(user, "is_active", False):
        return Trial.objects.all()
    if not getattr(user, "is_authenticated", False):
        return Trial.objects.none()
    return Trial.objects.filter(memberships__user=user, memberships__role__in=roles).distinct()


def coordinated_trials(user) -> QuerySet[Trial]:
    return trials_where(user, Role.COORDINATOR)


def is_superuser(user) -> bool:
    """An active superuser may do everything (and is the only one who creates trials)."""
    return bool(getattr(user, "is_superuser", False) and getattr(user, "is_active", False))


def member_trials(user) -> QuerySet[Trial]:
    """Trials in which ``user`` holds any role (all trials for a superuser)."""
    return trials_where(user, *Role.values)


def is_coordinator_anywhere(user) -> bool:
    """May ``user`` use the trial admin at all? (The admin shows nothing to anyone else.)"""
    return is_superuser(user) or coordinated_trials(user).exists()


def can_coordinate(user, trial: Trial | int | None) -> bool:
    """Coordinator of ``trial`` (or superuser); ``None`` trial means "of some trial"."""
    if trial is None:
        return is_coordinator_anywhere(user)
    return has_role(user, trial, Role.COORDINATOR)
