"""Cases (screening, consent, enrolment via ``trial.enrolment``), images, assignments, audit."""

from __future__ import annotations

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema, extend_schema_view
from rest_framework import mixins, status, viewsets
from rest_framework.decorators import action
from rest_framework.generics import GenericAPIView
from rest_framework.request import Request
from rest_framework.response import Response

from trial import assignment, enrolment
from trial.models import Assignment, AuditEvent, Case, Role
from trial.permissions import has_role

from .base import AuditedWritesMixin, TrialScopedMixin
from .serializers_records import (
    AssignmentEntrySerializer,
    AssignmentSerializer,
    AssignResultSerializer,
    AssignSerializer,
    AuditEventSerializer,
    CaseSerializer,
    ExcludeSerializer,
    OwnAssignmentSerializer,
    ScreenSerializer,
)


@extend_schema_view(
    screen=extend_schema(request=ScreenSerializer, responses=CaseSerializer),
    consent=extend_schema(request=None, responses=CaseSerializer),
    enrol=extend_schema(request=None, responses=CaseSerializer),
    exclude=extend_schema(request=ExcludeSerializer, responses=CaseSerializer),
    withdraw=extend_schema(request=ExcludeSerializer, responses=CaseSerializer,
                           description="Withdraw an enrolled case (final, with its reason): "
                                       "from then on it is offered to nobody."),
)
class CaseViewSet(AuditedWritesMixin, TrialScopedMixin, viewsets.ModelViewSet):
    """Coordinators manage cases; statisticians read them. Status changes only via actions."""

    serializer_class = CaseSerializer
    read_roles = (Role.STATISTICIAN,)
    lookup_value_converter = "int"

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):
            return Case.objects.none()
        return Case.objects.filter(trial=self.get_trial()).select_related(
            "site", "consent_recorded_by"
        )

    def perform_destroy(self, instance: Case) -> None:
        if instance.status != Case.Status.SCREENED:
            raise enrolment.EnrolmentError(
                f"Case {instance} is {instance.get_status_display().lower()}; only a screened "
                "case can be deleted (the others count in the CONSORT flow: exclude instead)."
            )
        super().perform_destroy(instance)

    def _done(self, case: Case, code: int = status.HTTP_200_OK) -> Response:
        case.refresh_from_db()
        return Response(self.get_serializer(case).data, status=code)

    @action(detail=True, methods=["post"])
    def screen(self, request: Request, trial_slug: str, pk: int) -> Response:
        payload = ScreenSerializer(data=request.data)
        payload.is_valid(raise_exception=True)
        case = enrolment.screen(self.get_object(), answers=payload.validated_data["answers"],
                                by=request.user)
        return self._done(case)

    @action(detail=True, methods=["post"])
    def consent(self, request: Request, trial_slug: str, pk: int) -> Response:
        return self._done(enrolment.record_consent(self.get_object(), by=request.user))

    @action(detail=True, methods=["post"])
    def enrol(self, request: Request, trial_slug: str, pk: int) -> Response:
        return self._done(enrolment.enrol(self.get_object(), by=request.user))

    @action(detail=True, methods=["post"])
    def exclude(self, request: Request, trial_slug: str, pk: int) -> Response:
        payload = ExcludeSerializer(data=request.data)
        payload.is_valid(raise_exception=True)
        case = enrolment.exclude(self.get_object(), reason=payload.validated_data["reason"],
                                 by=request.user)
        return self._done(case)

    @action(detail=True, methods=["post"])
    def withdraw(self, request: Request, trial_slug: str, pk: int) -> Response:
        payload = ExcludeSerializer(data=request.data)
        payload.is_valid(raise_exception=True)
        case = enrolment.withdraw(self.get_object(), reason=payload.validated_data["reason"],
                                  by=request.user)
        return self._done(case)


@extend_schema_view(list=extend_schema(responses=AssignmentEntrySerializer))
class AssignmentViewSet(TrialScopedMixin, mixins.ListModelMixin, viewsets.GenericViewSet):
    """Coordinators see every assignment; a reader sees only their own worklist order."""

    roles = (Role.COORDINATOR, Role.READER)

    def _sees_all(self) -> bool:
        return has_role(self.request.user, self.get_trial(), Role.COORDINATOR)

    def get_serializer_class(self):
        if getattr(self, "swagger_fake_view", False) or self._sees_all():
            return AssignmentSerializer
        return OwnAssignmentSerializer

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):
            return Assignment.objects.none()
        qs = Assignment.objects.filter(case__trial=self.get_trial()).select_related(
            "case", "reader__user"
        )
        if self._sees_all():
            return qs.order_by("reader__user__username", "position")
        return qs.filter(reader__user=self.request.user).order_by("position")


@extend_schema_view(list=extend_schema(parameters=[OpenApiParameter(
    "action", OpenApiTypes.STR, description="Only events of this action, e.g. case.enrolled.")]))
class AuditViewSet(TrialScopedMixin, mixins.ListModelMixin, viewsets.GenericViewSet):
    """The trial's audit log, newest first (``?action=`` filters): coordinators, read-only."""

    serializer_class = AuditEventSerializer

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):
            return AuditEvent.objects.none()
        qs = AuditEvent.objects.filter(trial=self.get_trial()).select_related("actor")
        wanted = self.request.query_params.get("action")
        return qs.filter(action=wanted) if wanted else qs


class AssignView(TrialScopedMixin, GenericAPIView):
    """Assign every enrolled, unassigned case to one reader of each arm (coordinators)."""

    serializer_class = AssignSerializer

    @extend_schema(request=AssignSerializer,
                   responses={201: AssignResultSerializer})
    def post(self, request: Request, trial_slug: str) -> Response:
        payload = AssignSerializer(data=request.data)
        payload.is_valid(raise_exception=True)
        created = assignment.assign_cases(self.get_trial(), by=request.user,
                                          seed=payload.validated_data.get("seed"))
        return Response({"created": len(created)}, status=status.HTTP_201_CREATED)
