"""Who may do what: roles are per trial (Membership); superusers may do everything."""

from __future__ import annotations

from django.db.models import QuerySet

from .models import Membership, Role, Trial


def roles_of(user, trial: Trial | int) -> set[str]:
    """The roles ``user`` holds in ``trial`` (empty for anonymous users)."""
    if not getattr(user, "is_authenticated", False):
        return set()
    trial_id = trial if isinstance(trial, int) else trial.pk
    return set(
        Membership.objects.filter(user=user, trial_id=trial_id).values_list("role", flat=True)
    )


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
