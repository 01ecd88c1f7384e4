"""A case's signed final report as a FHIR ``DiagnosticReport`` (``pacs.fhir``), for sites whose
reporting system takes FHIR:

- ``/api/trials/{slug}/cases/{pk}/diagnostic-report/``: one case's;
- ``/api/trials/{slug}/diagnostic-reports/``: a FHIR search (``Bundle`` of type
  ``searchset``) of the signed final reports, oldest first, ``issued=gt<time>`` (or ``ge``) to
  ask only for newer ones, ``_count`` (at most 500) and ``_offset`` to page: how a site's
  system polls for what was signed since it last asked.

Who: the trial's coordinators (every site), and a site's system by its *sender* token
(``pacs.SiteSender``, ``Authorization: Token <key>``): its own site's cases only, another
site's case is 404. Everyone else: 404 without a role in the trial, 403 with another role
(the trial API's rules). 404 until the final report is signed. Blinded: the final report
alone, never the readings' arms or AI drafts.
"""

from __future__ import annotations

from datetime import datetime

from django.db.models import QuerySet
from django.http import Http404
from django.utils.dateparse import parse_date, parse_datetime
from django.utils.timezone import is_naive, make_aware
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from fhir.resources.R4B.bundle import Bundle
from rest_framework.exceptions import ValidationError
from rest_framework.permissions import IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from reader.models import Review
from trial.api.base import TrialScopedMixin
from trial.models import Role, Trial

from .. import fhir
from ..models import SiteSender

MAX_COUNT = 500
REPORT = OpenApiResponse(OpenApiTypes.OBJECT, description=(
    "A FHIR R4 DiagnosticReport (resourceType, status final, code LOINC 18748-4, "
    "pseudonymous subject, conclusion, presentedForm)."))


class FinalReports(TrialScopedMixin):
    """Coordinators by role; a site's sender account for its own site's cases."""

    roles = (Role.COORDINATOR,)

    def sender(self) -> SiteSender | None:
        if not hasattr(self, "_sender"):
            user = self.request.user
            self._sender = SiteSender.objects.select_related("site__trial").filter(
                user=user, site__trial__slug=self.kwargs.get("trial_slug")).first() \
                if user.is_authenticated else None
        return self._sender

    def get_permissions(self) -> list:
        if self.sender() is not None:
            return [IsAuthenticated()]
        return super().get_permissions()

    def get_trial(self) -> Trial:
        sender = self.sender()
        return sender.site.trial if sender is not None else super().get_trial()

    def signed(self) -> QuerySet[Review]:
        reviews = Review.objects.select_related("case__trial", "senior__user").filter(
            case__trial=self.get_trial(), status=Review.Status.SIGNED)
        sender = self.sender()
        return reviews.filter(case__site=sender.site) if sender is not None else reviews


class DiagnosticReportView(FinalReports, APIView):
    """The signed final report of a case as a FHIR R4 ``DiagnosticReport``."""

    @extend_schema(responses={200: REPORT})
    def get(self, request: Request, trial_slug: str, pk: int) -> Response:
        review = self.signed().filter(case__pk=pk).first()
        if review is None:
            raise Http404("This case has no signed final report.")
        return Response(fhir.diagnostic_report(review))


class DiagnosticReportSearchView(FinalReports, APIView):
    """The signed final reports as a FHIR ``Bundle`` (searchset), oldest signature first."""

    @extend_schema(
        parameters=[
            OpenApiParameter("issued", str, description="gt<time> or ge<time> (ISO 8601, or a "
                             "date): only reports signed after (or at) that time."),
            OpenApiParameter("_count", int, description=f"Reports per page (at most "
                             f"{MAX_COUNT}; default 100)."),
            OpenApiParameter("_offset", int, description="Reports to skip (paging)."),
        ],
        responses={200: OpenApiResponse(OpenApiTypes.OBJECT, description=(
            "A FHIR R4 Bundle of type searchset: total, entry[].resource (DiagnosticReport), "
            "link self/next."))})
    def get(self, request: Request, trial_slug: str) -> Response:
        reviews = self.signed()
        issued = request.query_params.get("issued")
        if issued:
            reviews = reviews.filter(**since(issued))
        count = _number(request, "_count", 100, 1, MAX_COUNT)
        offset = _number(request, "_offset", 0, 0, None)
        reviews = reviews.order_by("signed_at", "pk")
        total = reviews.count()
        page = list(reviews[offset:offset + count])
        here = request.build_absolute_uri(request.path)
        query = request.query_params.copy()
        links = [{"relation": "self", "url": request.build_absolute_uri()}]
        if offset + count < total:
            query["_offset"] = str(offset + count)
            links.append({"relation": "next", "url": f"{here}?{query.urlencode()}"})
        base = request.build_absolute_uri(f"/api/trials/{trial_slug}/cases/")
        bundle = Bundle.model_validate({
            "resourceType": "Bundle", "type": "searchset", "total": total, "link": links,
            "entry": [{"fullUrl": f"{base}{review.case_id}/diagnostic-report/",
                       "resource": fhir.diagnostic_report(review),
                       "search": {"mode": "match"}} for review in page],
        })
        return Response(bundle.model_dump(mode="json", by_alias=True, exclude_none=True))


def since(value: str) -> dict:
    """The filter of FHIR's ``issued=gt<time>`` / ``ge<time>`` (400 otherwise)."""
    prefix, moment = value[:2], value[2:]
    when: datetime | None = parse_datetime(moment)
    if when is None and (day := parse_date(moment)) is not None:
        when = datetime(day.year, day.month, day.day)
    if prefix not in ("gt", "ge") or when is None:
        raise ValidationError({"issued": ["Give gt<time> or ge<time>, e.g. "
                                          "issued=gt2026-05-01T08:00:00Z."]})
    if is_naive(when):
        when = make_aware(when)
    return {f"signed_at__{'gt' if prefix == 'gt' else 'gte'}": when}


def _number(request: Request, name: str, default: int, low: int, high: int | None) -> int:
    raw = request.query_params.get(name)
    if raw is None:
        return default
    try:
        number = int(raw)
    except ValueError:
        raise ValidationError({name: ["A whole number."]}) from None
    if number < low or (high is not None and number > high):
        raise ValidationError({name: [f"From {low}" + (f" to {high}." if high else ".")]})
    return number
