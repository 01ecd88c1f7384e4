"""Changing who holds which role, in ways that keep the trial's record consistent.

A membership is a person's role in a trial, and the readings, reviews, ratings and allocation
made in that role point at it. So a membership never changes person or role once it exists (a
new role is a new membership), is never removed while anything points at it, and the last
coordinator of a trial is never removed or demoted (nobody could run the trial any more).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from .errors import Conflict
from .models import Membership, Role


def _records(member: Membership) -> list[str]:
    """What points at ``member`` (any app's rows, found through the model's relations)."""
    found = []
    for relation in member._meta.related_objects:
        if relation.one_to_one:
            if relation.related_model._default_manager.filter(
                    **{relation.field.name: member}).exists():
                found.append(str(relation.related_model._meta.verbose_name))
        elif relation.related_model._default_manager.filter(
                **{relation.field.name: member}).exists():
            found.append(str(relation.related_model._meta.verbose_name_plural))
    return sorted(set(found))


def _last_coordinator(member: Membership) -> bool:
    return member.role == Role.COORDINATOR and not Membership.objects.filter(
        trial_id=member.trial_id, role=Role.COORDINATOR).exclude(pk=member.pk).exists()


def check_change(member: Membership, changes: Mapping[str, Any]) -> None:
    """Refuse (409) a change of person, role or trial of an existing membership."""
    if member.pk is None:
        return
    stored = Membership.objects.get(pk=member.pk)
    moved = [name for name, attr in (("user", "user_id"), ("role", "role"), ("trial", "trial_id"))
             if name in changes and getattr(changes[name], "pk", changes[name])
             != getattr(stored, attr)]
    if moved:
        raise Conflict(f"{', '.join(moved)} of a membership never change (the trial's records "
                       "in that role point at it): add a new membership for a new role.")


def check_delete(member: Membership) -> None:
    """Refuse (409) removing the last coordinator, or a membership anything points at."""
    if _last_coordinator(member):
        raise Conflict("This is the trial's last coordinator: add another coordinator first, "
                       "or nobody could run the trial.")
    records = _records(member)
    if records:
        raise Conflict(f"{member} has records in this role ({', '.join(records)}): the "
                       "membership stays, so the record stays whole.")
