"""``/api/trials/{slug}/cases/{pk}/diagnostic-report/``: a case's signed final report as a FHIR
``DiagnosticReport`` (``pacs.fhir``), for sites whose reporting system takes FHIR.

The trial's coordinators only (404 to people with no role in the trial, 403 to its other
roles: the trial API's rules); 404 until the final report is signed. Blinded: the final
report alone, never the readings' arms or AI drafts.
"""

from __future__ import annotations

from django.http import Http404
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from reader.models import Review
from trial.api.base import TrialScopedMixin
from trial.models import Role

from .. import fhir


class DiagnosticReportView(TrialScopedMixin, APIView):
    """The signed final report of a case as a FHIR R4 ``DiagnosticReport``."""

    roles = (Role.COORDINATOR,)

    @extend_schema(responses={200: OpenApiResponse(
        OpenApiTypes.OBJECT, description="A FHIR R4 DiagnosticReport (resourceType, status "
                                         "final, code LOINC 18748-4, pseudonymous subject, "
                                         "conclusion, presentedForm).")})
    def get(self, request: Request, trial_slug: str, pk: int) -> Response:
        review = Review.objects.select_related("case__trial", "senior__user").filter(
            case__trial=self.get_trial(), case__pk=pk, status=Review.Status.SIGNED).first()
        if review is None:
            raise Http404("This case has no signed final report.")
        return Response(fhir.diagnostic_report(review))
