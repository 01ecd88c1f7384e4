"""What the management commands share: finding the trial and the acting user, and the one
translation of service refusals (``trial.errors.ServiceError``) into a ``CommandError``."""

from __future__ import annotations

from typing import Any

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError

from trial.errors import ServiceError
from trial.models import Membership, Role, Trial


class ServiceCommand(BaseCommand):
    """A command whose services' refusals end it with their message and a non-zero exit."""

    def execute(self, *args: Any, **options: Any) -> Any:
        try:
            return super().execute(*args, **options)
        except ServiceError as exc:
            raise CommandError(exc.message) from exc


def find_trial(slug: str) -> Trial:
    trial = Trial.objects.filter(slug=slug).first()
    if trial is None:
        known = ", ".join(Trial.objects.order_by("slug").values_list("slug", flat=True)[:20])
        raise CommandError(f"unknown trial {slug!r}; known trials: {known or '(none)'}")
    return trial


def find_user(username: str | None, option: str = "--by") -> Any:
    """The user named by ``option`` (None if not given)."""
    if not username:
        return None
    user = get_user_model().objects.filter(username=username).first()
    if user is None:
        raise CommandError(f"unknown user {username!r} ({option})")
    return user


def acting_user(trial: Trial, username: str | None) -> Any:
    """The --by user, else the trial's only coordinator (the list records who made it)."""
    if username:
        return find_user(username)
    coordinators = Membership.objects.filter(trial=trial, role=Role.COORDINATOR)
    if coordinators.count() != 1:
        raise CommandError(f"trial {trial.slug!r} has {coordinators.count()} coordinators; "
                           "say who runs this with --by USERNAME")
    return coordinators.get().user
