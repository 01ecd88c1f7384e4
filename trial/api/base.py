"""Shared pieces of the views nested under ``/api/trials/{trial_slug}/``.

A person with no role in the trial gets 404 (the trial's existence is not revealed); a member
whose role does not allow the request gets 403. Service refusals become their HTTP status in
``trial.api.errors``, never a 500.
"""

from __future__ import annotations

from django.db import transaction
from django.http import Http404
from django.shortcuts import get_object_or_404
from rest_framework.exceptions import ValidationError
from rest_framework.permissions import IsAuthenticated

from trial import lifecycle
from trial.changes import record_edit, stored_snapshot
from trial.models import Membership, Role, Trial
from trial.permissions import is_superuser, memberships_of, trial_member

from .permissions import HasTrialRole

NUL = "Null characters are not allowed."


class TrialScopedMixin:
    """Resolve the trial of the URL once; roles allowed are ``roles`` (+ ``read_roles`` for GET)."""

    roles: tuple[str, ...] = (Role.COORDINATOR,)
    read_roles: tuple[str, ...] = ()

    def get_trial(self) -> Trial:
        if not hasattr(self, "_trial"):
            user = self.request.user
            held = memberships_of(user, slug=self.kwargs["trial_slug"])
            if held:  # a member: the trial came with the memberships, one query in all
                trial = next(iter(held.values())).trial
            elif is_superuser(user):
                trial = get_object_or_404(Trial, slug=self.kwargs["trial_slug"])
            else:
                raise Http404
            self._trial, self._memberships = trial, held
        return self._trial

    def trial_roles(self) -> set[str]:
        """The user's roles in the URL's trial, read once per request (with the trial)."""
        self.get_trial()
        return set(self._memberships)

    def member(self, role: str) -> Membership:
        """The user's membership of ``role`` in the URL's trial, from the same one query as
        the roles; 403 for a member without it (a superuser acting), 404 for anyone else."""
        self.get_trial()
        return trial_member(self.request.user, self.kwargs["trial_slug"], role,
                            held=self._memberships)

    def get_permissions(self) -> list:
        return [IsAuthenticated(), HasTrialRole(*self.roles, read_roles=self.read_roles)]

    def initial(self, request, *args, **kwargs) -> None:
        """After the access checks: no NUL character reaches a query (PostgreSQL refuses one,
        a 500). Nothing is named so (404); a query parameter with one is invalid (400)."""
        super().initial(request, *args, **kwargs)
        if any("\x00" in str(value) for value in kwargs.values()):
            raise Http404
        bad = sorted({name for name, values in request.query_params.lists()
                      if "\x00" in name or any("\x00" in v for v in values)})
        if bad:
            raise ValidationError({name.replace("\x00", "") or "query": [NUL] for name in bad})

    def get_serializer_context(self) -> dict:
        context = super().get_serializer_context()
        if "trial_slug" in getattr(self, "kwargs", {}) and not getattr(
            self, "swagger_fake_view", False
        ):
            context["trial"] = self.get_trial()
        return context


class AuditedWritesMixin:
    """Create/update/delete of set-up records, each with its audit event, atomically; never in
    a locked trial (``check_write``)."""

    def check_write(self) -> None:
        lifecycle.check_writable(self.get_trial(), "The trial's records")

    def perform_create(self, serializer) -> None:
        self.check_write()
        with transaction.atomic():
            obj = serializer.save(trial=self.get_trial())
            record_edit(obj, actor=self.request.user, before=None)

    def perform_update(self, serializer) -> None:
        self.check_write()
        with transaction.atomic():
            before = stored_snapshot(serializer.instance)
            obj = serializer.save()
            record_edit(obj, actor=self.request.user, before=before)

    def perform_destroy(self, instance) -> None:
        self.check_write()
        with transaction.atomic():
            record_edit(instance, actor=self.request.user, before=stored_snapshot(instance),
                        deleted=True)
            instance.delete()
