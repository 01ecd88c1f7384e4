"""DRF permissions from per-trial roles (``trial.permissions``); superusers pass everything."""

from __future__ import annotations

from collections.abc import Iterable

from rest_framework.permissions import SAFE_METHODS, BasePermission

from trial.models import Role, Trial
from trial.permissions import has_role, is_superuser, roles_of


class HasTrialRole(BasePermission):
    """Holders of one of ``roles`` in the view's trial; ``read_roles`` may only read.

    The view provides ``get_trial()`` (which answers 404 to people with no role in the trial).
    An instance can sit directly in ``permission_classes``: ``[HasTrialRole(Role.COORDINATOR)]``.
    """

    message = "Your role in this trial does not allow this."

    def __init__(self, *roles: str, read_roles: Iterable[str] = ()) -> None:
        self.roles = tuple(roles)
        self.read_roles = tuple(read_roles)

    def __call__(self) -> HasTrialRole:
        return self

    def has_permission(self, request, view) -> bool:
        trial = view.get_trial()
        if is_superuser(request.user):
            return True
        # The roles a TrialScopedMixin view read with its trial: no second query.
        held = (view.trial_roles() if hasattr(view, "trial_roles")
                else roles_of(request.user, trial))
        return bool(held & set(self.roles)) or (
            request.method in SAFE_METHODS and bool(held & set(self.read_roles)))


class TrialAccess(BasePermission):
    """``/api/trials/``: members read, the trial's coordinators change, superusers create."""

    def has_permission(self, request, view) -> bool:
        if getattr(view, "action", None) == "create":
            return is_superuser(request.user)
        return True

    def has_object_permission(self, request, view, obj: Trial) -> bool:
        if request.method in SAFE_METHODS:
            return True  # the queryset holds only the user's trials
        return has_role(request.user, obj, Role.COORDINATOR)
