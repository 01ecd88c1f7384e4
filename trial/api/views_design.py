"""Trials and their set-up: sites, members (roles), eligibility criteria."""

from __future__ import annotations

from django.db import transaction
from drf_spectacular.utils import extend_schema, extend_schema_view
from rest_framework import mixins, viewsets
from rest_framework.permissions import IsAuthenticated

from trial import lifecycle, people, signatures
from trial.changes import record_edit, stored_snapshot
from trial.errors import Conflict
from trial.models import EligibilityCriterion, Membership, Role, Site, Trial
from trial.permissions import member_trials

from .base import AuditedWritesMixin, TrialScopedMixin
from .permissions import TrialAccess
from .serializers import (
    CriterionSerializer,
    MemberSerializer,
    SiteSerializer,
    TrialReadSerializer,
    TrialSerializer,
)

# Sites and criteria are set-up, not what blinded raters' pages show (hole 9 of the audit).
ALL_BUT_RATERS = tuple(r for r in Role.values if r != Role.RATER)


@extend_schema_view(list=extend_schema(responses=TrialReadSerializer),
                    retrieve=extend_schema(responses=TrialReadSerializer))
class TrialViewSet(
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    mixins.CreateModelMixin,
    mixins.UpdateModelMixin,
    viewsets.GenericViewSet,
):
    """Trials the user has a role in; superusers create, the trial's coordinators update."""

    serializer_class = TrialSerializer
    permission_classes = [IsAuthenticated, TrialAccess]
    lookup_field = "slug"
    lookup_value_converter = "slug"

    def get_queryset(self):
        return member_trials(self.request.user).order_by("name")

    def perform_create(self, serializer) -> None:
        serializer.validated_data.pop("password", None)
        if serializer.validated_data.get("status", Trial.Status.SETUP) != Trial.Status.SETUP:
            raise Conflict("A trial starts in set-up; its status then moves forward one way.")
        with transaction.atomic():
            trial = serializer.save()
            record_edit(trial, actor=self.request.user, before=None)

    def perform_update(self, serializer) -> None:
        """Status changes go through the trial's state machine; the rest is a set-up edit."""
        trial = serializer.instance
        lifecycle.check_writable(trial, "The trial")
        password = serializer.validated_data.pop("password", None)
        data = dict(serializer.validated_data)
        wanted = data.pop("status", None)
        if wanted is not None and wanted != trial.status:
            lifecycle.check_transition(trial.status, wanted)
            if wanted == Trial.Status.LOCKED:  # an electronic signature: checked, recorded
                signatures.verify(self.request.user, password, meaning="trial_locked",
                                  obj=trial, trial=trial)
        lifecycle.check_design_change(trial, data)
        with transaction.atomic():
            before = stored_snapshot(trial)
            saved = serializer.save(status=Trial.objects.get(pk=trial.pk).status)
            if data:
                record_edit(saved, actor=self.request.user, before=before)
            if wanted is not None:
                lifecycle.set_status(saved, wanted, by=self.request.user, password=password)


class SetUpViewSet(AuditedWritesMixin, TrialScopedMixin, viewsets.ModelViewSet):
    """Set-up records of one trial: the coordinators change them."""

    lookup_value_converter = "int"
    model = None

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):
            return self.model.objects.none()
        return self.model.objects.filter(trial=self.get_trial())


class SiteViewSet(SetUpViewSet):
    """Sites: members but raters read, coordinators manage."""

    model = Site
    serializer_class = SiteSerializer
    read_roles = ALL_BUT_RATERS


class CriterionViewSet(SetUpViewSet):
    """Eligibility criteria: members but raters read, coordinators manage."""

    model = EligibilityCriterion
    serializer_class = CriterionSerializer
    read_roles = ALL_BUT_RATERS

    def check_write(self) -> None:
        super().check_write()
        lifecycle.check_criteria_editable(self.get_trial())


class MemberViewSet(SetUpViewSet):
    """People and their roles: coordinators only. ``arm`` shows allocated readers only."""

    model = Membership
    serializer_class = MemberSerializer

    def get_queryset(self):
        return super().get_queryset().select_related("user", "site", "allocation_slot")

    def perform_update(self, serializer) -> None:
        people.check_change(serializer.instance, serializer.validated_data)
        super().perform_update(serializer)

    def perform_destroy(self, instance: Membership) -> None:
        people.check_delete(instance)
        super().perform_destroy(instance)
