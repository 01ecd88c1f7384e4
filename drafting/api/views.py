"""The trial's model endpoints and AI drafts.

Trial integrity: drafts and endpoints are for coordinators (and, read-only, statisticians).
Readers of either arm, seniors and raters get 403: an SCP reader must never receive an AI
draft, and a rater must never learn which report came from the model. The AI-arm reader gets
their own case's draft through the reading workspace, not here.
"""

from __future__ import annotations

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import (
    OpenApiParameter,
    OpenApiResponse,
    extend_schema,
    extend_schema_view,
)
from rest_framework import status, viewsets
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response

from trial.api.base import AuditedWritesMixin, TrialScopedMixin
from trial.errors import Conflict, Invalid
from trial.models import Role

from .. import tasks
from ..models import Draft, ModelEndpoint
from .serializers import DraftSerializer, ModelEndpointSerializer

READERS_OF_SETUP = (Role.STATISTICIAN,)


class ModelEndpointViewSet(AuditedWritesMixin, TrialScopedMixin, viewsets.ModelViewSet):
    """Coordinators manage the trial's endpoints (delete only one that made no draft);
    statisticians read them. Every change is audited."""

    serializer_class = ModelEndpointSerializer
    read_roles = READERS_OF_SETUP
    lookup_value_converter = "int"

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):
            return ModelEndpoint.objects.none()
        return ModelEndpoint.objects.filter(trial=self.get_trial())

    def perform_destroy(self, instance: ModelEndpoint) -> None:
        made = instance.drafts.count()
        if made:
            raise Conflict(f"This endpoint made {made} draft(s), which keep naming it: "
                           "deactivate it instead of deleting it.")
        super().perform_destroy(instance)


STATUS_PARAM = OpenApiParameter(
    "status", OpenApiTypes.STR, enum=Draft.Status.values, description="Only drafts in this status."
)
CASE_PARAM = OpenApiParameter("case", OpenApiTypes.STR, description="Only drafts of this case id.")


@extend_schema_view(list=extend_schema(parameters=[STATUS_PARAM, CASE_PARAM]))
class DraftViewSet(TrialScopedMixin, viewsets.ReadOnlyModelViewSet):
    """The drafts of the trial's cases (every configuration's): coordinators and statisticians.

    ``POST …/{id}/retry/`` (coordinators) puts a failed draft of the current configuration back
    in the queue; 409 for any other draft.
    """

    serializer_class = DraftSerializer
    read_roles = READERS_OF_SETUP
    lookup_value_converter = "int"

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):
            return Draft.objects.none()
        qs = Draft.objects.filter(case__trial=self.get_trial()).select_related("case")
        if self.action != "list":
            return qs
        wanted = self.request.query_params.get("status")
        if wanted:
            if wanted not in Draft.Status.values:
                choices = ", ".join(Draft.Status.values)
                raise Invalid(f"Unknown status {wanted!r}; expected one of {choices}.")
            qs = qs.filter(status=wanted)
        case_id = self.request.query_params.get("case")
        if case_id:
            qs = qs.filter(case__case_id=case_id)
        return qs.order_by("case__case_id", "-queued_at")

    @extend_schema(
        request=None,
        responses={202: DraftSerializer,
                   409: OpenApiResponse(description="The draft is not a failed draft of the "
                                                    "active endpoint's configuration.")},
    )
    @action(detail=True, methods=["post"], url_path="retry")
    def retry(self, request: Request, trial_slug: str, pk: int) -> Response:
        draft = self.get_object()
        if not tasks.retry_failed(draft, by=request.user):
            draft.refresh_from_db()
            if draft.status != Draft.Status.FAILED:
                raise Conflict(f"Only a failed draft can be retried; this one is {draft.status}.")
            raise Conflict(
                "This draft was made with an earlier endpoint configuration (or the trial has "
                "no active endpoint): only drafts of the current one are retried.")
        draft.refresh_from_db()  # run again already if tasks run in-process (no broker)
        return Response(self.get_serializer(draft).data, status=status.HTTP_202_ACCEPTED)

