"""Trials and their set-up: sites, members (roles), eligibility criteria."""

from __future__ import annotations

from django.db import transaction
from rest_framework import mixins, viewsets
from rest_framework.permissions import IsAuthenticated

from trial.changes import record_edit, stored_snapshot
from trial.models import EligibilityCriterion, Membership, Role, Site
from trial.permissions import member_trials

from .base import AuditedWritesMixin, TrialScopedMixin
from .permissions import TrialAccess
from .serializers import CriterionSerializer, MemberSerializer, SiteSerializer, TrialSerializer

ALL_ROLES = tuple(Role.values)


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
        with transaction.atomic():
            trial = serializer.save()
            record_edit(trial, actor=self.request.user, before=None)

    def perform_update(self, serializer) -> None:
        with transaction.atomic():
            before = stored_snapshot(serializer.instance)
            trial = serializer.save()
            record_edit(trial, actor=self.request.user, before=before)


class SetUpViewSet(AuditedWritesMixin, TrialScopedMixin, viewsets.ModelViewSet):
    """Set-up records of one trial: the coordinators change them."""

    lookup_value_converter = "int"
    model = None

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):
            return self.model.objects.none()
        return self.model.objects.filter(trial=self.get_trial())


class SiteViewSet(SetUpViewSet):
    """Sites: every member reads, coordinators manage."""

    model = Site
    serializer_class = SiteSerializer
    read_roles = ALL_ROLES


class CriterionViewSet(SetUpViewSet):
    """Eligibility criteria: every member reads, coordinators manage."""

    model = EligibilityCriterion
    serializer_class = CriterionSerializer
    read_roles = ALL_ROLES


class MemberViewSet(SetUpViewSet):
    """People and their roles: coordinators only. ``arm`` shows allocated readers only."""

    model = Membership
    serializer_class = MemberSerializer

    def get_queryset(self):
        return super().get_queryset().select_related("user", "site", "allocation_slot")
