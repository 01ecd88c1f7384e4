"""Shared pieces of the views nested under ``/api/trials/{trial_slug}/``.

A person with no role in the trial gets 404 (the trial's existence is not revealed); a member
whose role does not allow the request gets 403. Service exceptions become 400/409 responses
with ``{"detail": message}``, never a 500.
"""

from __future__ import annotations

from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import transaction
from django.db.models import ProtectedError
from django.http import Http404
from django.shortcuts import get_object_or_404
from rest_framework import status
from rest_framework.exceptions import APIException
from rest_framework.permissions import IsAuthenticated

from trial import randomization as rnd
from trial.assignment import AssignmentError
from trial.enrolment import EnrolmentError
from trial.models import Role, Trial
from trial.permissions import is_superuser, roles_of

from .changes import record_edit, stored_snapshot
from .permissions import HasTrialRole

# Conflicts with the trial's current state are 409; malformed or inapplicable requests are 400.
CONFLICTS = (
    rnd.ListAlreadyExists, rnd.NoList, rnd.ListExhausted, rnd.AlreadyAllocated,
    EnrolmentError, AssignmentError, ProtectedError,
)
BAD_REQUESTS = (rnd.RandomizationError, DjangoValidationError)


class ServiceError(APIException):
    status_code = status.HTTP_400_BAD_REQUEST
    default_code = "service_error"

    def __init__(self, detail: str | dict, status_code: int) -> None:
        super().__init__(detail=detail)
        self.status_code = status_code


def as_api_error(exc: Exception) -> Exception:
    """The HTTP form of a service exception (other exceptions are returned unchanged)."""
    if isinstance(exc, ProtectedError):
        return ServiceError("It is still referred to by other records, so it cannot be deleted.",
                            status.HTTP_409_CONFLICT)
    if isinstance(exc, rnd.InvalidList):
        return ServiceError({"detail": str(exc), "problems": exc.problems},
                            status.HTTP_400_BAD_REQUEST)
    if isinstance(exc, DjangoValidationError):
        return ServiceError("; ".join(exc.messages), status.HTTP_400_BAD_REQUEST)
    if isinstance(exc, CONFLICTS):
        return ServiceError(str(exc), status.HTTP_409_CONFLICT)
    if isinstance(exc, BAD_REQUESTS):
        return ServiceError(str(exc), status.HTTP_400_BAD_REQUEST)
    return exc


class ServiceErrorsMixin:
    def handle_exception(self, exc: Exception):
        return super().handle_exception(as_api_error(exc))


class TrialScopedMixin(ServiceErrorsMixin):
    """Resolve the trial of the URL once; roles allowed are ``roles`` (+ ``read_roles`` for GET)."""

    roles: tuple[str, ...] = (Role.COORDINATOR,)
    read_roles: tuple[str, ...] = ()

    def get_trial(self) -> Trial:
        if not hasattr(self, "_trial"):
            trial = get_object_or_404(Trial, slug=self.kwargs["trial_slug"])
            user = self.request.user
            if not (is_superuser(user) or roles_of(user, trial)):
                raise Http404
            self._trial = trial
        return self._trial

    def get_permissions(self) -> list:
        return [IsAuthenticated(), HasTrialRole(*self.roles, read_roles=self.read_roles)]

    def get_serializer_context(self) -> dict:
        context = super().get_serializer_context()
        if "trial_slug" in getattr(self, "kwargs", {}) and not getattr(
            self, "swagger_fake_view", False
        ):
            context["trial"] = self.get_trial()
        return context


class AuditedWritesMixin:
    """Create/update/delete of set-up records, each with its audit event, atomically."""

    def perform_create(self, serializer) -> None:
        with transaction.atomic():
            obj = serializer.save(trial=self.get_trial())
            record_edit(obj, actor=self.request.user, before=None)

    def perform_update(self, serializer) -> None:
        with transaction.atomic():
            before = stored_snapshot(serializer.instance)
            obj = serializer.save()
            record_edit(obj, actor=self.request.user, before=before)

    def perform_destroy(self, instance) -> None:
        with transaction.atomic():
            record_edit(instance, actor=self.request.user, before=stored_snapshot(instance),
                        deleted=True)
            instance.delete()
