"""The coordinator's side of rating campaigns over the API: ``/api/trials/{slug}/campaigns/``.

Coordinators create, change and delete campaigns (delete only while no item exists: items and
ratings are study data), build their items, open and close them, import the reports of a
retrospective campaign, and review the blinding of every report. Statisticians read campaigns
and the unblinded key. Raters never reach these URLs: they rate through ``rating.api.raters``,
which names nothing but opaque codes. Every change is audited; the services (``rating.lifecycle``,
``rating.build``, ``rating.queries``) are the admin's too, so both say and audit the same.
"""

from __future__ import annotations

from django.db import transaction
from drf_spectacular.utils import OpenApiResponse, extend_schema, inline_serializer
from rest_framework import serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import PermissionDenied
from rest_framework.parsers import FormParser, MultiPartParser
from rest_framework.request import Request
from rest_framework.response import Response

from trial.api.base import AuditedWritesMixin, TrialScopedMixin
from trial.api.serializers_records import UploadField
from trial.changes import record_edit, stored_snapshot
from trial.models import Membership, Role
from trial.permissions import has_role

from .. import instruments as inst
from ..build import build
from ..lifecycle import (
    audit_raters,
    canonical_instruments,
    check_deletable,
    check_not_frozen,
    design_problems,
    instrument_problem,
    rater_names,
    set_status,
    trial_raters,
)
from ..models import Campaign
from ..queries import report_rows, reveal_key
from ..report_import import import_reports

# --- serializers -----------------------------------------------------------------------------

SMALLINT_MAX = 32767  # the largest ``raters_per_item`` the database stores (smallint)


class CampaignSerializer(serializers.ModelSerializer):
    """A campaign's design; ``status`` changes through ``open/`` and ``close/`` only."""

    instruments = serializers.ListField(
        child=serializers.ChoiceField(choices=inst.ALL), allow_empty=False,
        help_text=f"Any of: {', '.join(inst.ALL)}.")
    raters = serializers.PrimaryKeyRelatedField(
        many=True, required=False, queryset=Membership.objects.filter(role=Role.RATER),
        help_text="Membership ids of the trial's raters.")
    raters_per_item = serializers.IntegerField(
        min_value=1, max_value=SMALLINT_MAX, required=False, allow_null=True,
        help_text="Empty: every rater of the campaign rates every item.")
    items = serializers.IntegerField(read_only=True, source="items.count")
    rater_items = serializers.IntegerField(read_only=True, source="rater_items.count")
    reports = serializers.IntegerField(read_only=True, source="reports.count")

    class Meta:
        model = Campaign
        fields = ("id", "name", "kind", "instruments", "radpeer_variant", "raters_per_item",
                  "allow_revision", "include_ai_alone", "seed", "raters", "status", "items",
                  "rater_items", "reports", "created_at")
        read_only_fields = ("status", "created_at")
        # The trial comes from the URL: the (trial, name) check is done in ``validate``.
        validators: list = []

    def get_fields(self) -> dict:
        fields = super().get_fields()
        trial = self.context.get("trial")
        if trial is not None:
            fields["raters"].child_relation.queryset = trial_raters(trial)
        return fields

    def validate_instruments(self, value: list[str]) -> list[str]:
        problem = instrument_problem(value)
        if problem:
            raise serializers.ValidationError(problem)
        return canonical_instruments(value)

    def validate(self, attrs: dict) -> dict:
        checked = {k: v for k, v in attrs.items() if k != "instruments"}  # checked above
        problems = design_problems(self.context["trial"], checked, self.instance)
        if problems:
            raise serializers.ValidationError(problems)
        if self.instance is not None:
            check_not_frozen(self.instance, attrs)
        return attrs


class ReportUploadSerializer(serializers.Serializer):
    file = UploadField(help_text="CSV, UTF-8: case_id,source,findings,impression.")


KEY_ROW = inline_serializer("CampaignKeyRow", {
    "code": serializers.CharField(), "rater": serializers.CharField(),
    "position": serializers.IntegerField(), "case_id": serializers.CharField(),
    "kind": serializers.CharField(), "report_source": serializers.CharField(),
    "other_source": serializers.CharField(allow_null=True),
    "swapped": serializers.BooleanField(),
    "instruments": serializers.ListField(child=serializers.CharField()),
    "values": serializers.DictField(allow_null=True),
    "revisions": serializers.IntegerField(), "seconds": serializers.FloatField(),
    "submitted_at": serializers.DateTimeField(allow_null=True),
}, many=True)
REPORT_ROW = inline_serializer("CampaignReportRow", {
    "id": serializers.IntegerField(), "case_id": serializers.CharField(),
    "source": serializers.CharField(), "findings": serializers.CharField(),
    "impression": serializers.CharField(), "shown_findings": serializers.CharField(),
    "shown_impression": serializers.CharField(),
    "stripped": serializers.ListField(child=serializers.CharField()),
}, many=True)
BUILT = inline_serializer("CampaignBuilt", {"items_added": serializers.IntegerField(),
                                            "campaign": CampaignSerializer()})
IMPORTED = inline_serializer("CampaignReportsImported", {"imported": serializers.IntegerField()})
REFUSED = OpenApiResponse(description="Refused by the campaign's state or the file; "
                                      "``detail`` says why (``problems``: each line's).")


class CampaignViewSet(AuditedWritesMixin, TrialScopedMixin, viewsets.ModelViewSet):
    """The trial's rating campaigns: coordinators manage them, statisticians read them and
    their unblinded key. Design fields are fixed once items exist; a campaign with items is
    never deleted (close it instead)."""

    serializer_class = CampaignSerializer
    read_roles = (Role.STATISTICIAN,)
    lookup_value_converter = "int"

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):
            return Campaign.objects.none()
        return Campaign.objects.filter(trial=self.get_trial()).order_by("name")

    def perform_create(self, serializer: CampaignSerializer) -> None:
        self.check_write()
        with transaction.atomic():
            obj = serializer.save(trial=self.get_trial(), created_by=self.request.user)
            record_edit(obj, actor=self.request.user, before=None)
            audit_raters(obj, by=self.request.user, before=[])

    def perform_update(self, serializer: CampaignSerializer) -> None:
        self.check_write()
        with transaction.atomic():
            before = stored_snapshot(serializer.instance)
            raters_before = rater_names(serializer.instance)
            obj = serializer.save()
            record_edit(obj, actor=self.request.user, before=before)
            audit_raters(obj, by=self.request.user, before=raters_before)

    def perform_destroy(self, instance: Campaign) -> None:
        check_deletable(instance)
        super().perform_destroy(instance)

    def _coordinator_only(self) -> None:
        if not has_role(self.request.user, self.get_trial(), Role.COORDINATOR):
            raise PermissionDenied("Only the trial's coordinators may do this.")

    @extend_schema(request=None, responses={200: BUILT, 409: REFUSED})
    @action(detail=True, methods=["post"])
    def build(self, request: Request, trial_slug: str, pk: int) -> Response:
        """Add the items of every eligible case not yet in the campaign and give them out."""
        campaign = self.get_object()
        added = build(campaign, by=request.user)
        campaign.refresh_from_db()
        return Response({"items_added": added,
                         "campaign": self.get_serializer(campaign).data})

    @extend_schema(request=None, responses={200: CampaignSerializer, 409: REFUSED})
    @action(detail=True, methods=["post"], url_path="open")
    def open_(self, request: Request, trial_slug: str, pk: int) -> Response:
        """Open the campaign to its raters (it needs items)."""
        campaign = set_status(self.get_object(), Campaign.Status.OPEN, by=request.user)
        return Response(self.get_serializer(campaign).data)

    @extend_schema(request=None, responses={200: CampaignSerializer, 409: REFUSED})
    @action(detail=True, methods=["post"])
    def close(self, request: Request, trial_slug: str, pk: int) -> Response:
        """Close an open campaign: raters still see their items, but rate no more."""
        campaign = set_status(self.get_object(), Campaign.Status.CLOSED, by=request.user)
        return Response(self.get_serializer(campaign).data)

    @extend_schema(methods=["GET"], request=None, responses={200: REPORT_ROW})
    @extend_schema(methods=["POST"], request={"multipart/form-data": ReportUploadSerializer},
                   responses={201: IMPORTED, 400: REFUSED})
    @action(detail=True, methods=["get", "post"],
            parser_classes=[MultiPartParser, FormParser], pagination_class=None)
    def reports(self, request: Request, trial_slug: str, pk: int) -> Response:
        """GET (coordinators): every report with original and shown text and the lines cut.
        POST (coordinators): import a retrospective campaign's reports from CSV."""
        self._coordinator_only()
        campaign = self.get_object()
        if request.method == "GET":
            return Response(report_rows(campaign))
        payload = ReportUploadSerializer(data=request.data)
        payload.is_valid(raise_exception=True)
        count = import_reports(campaign, payload.validated_data["file"].read(),
                               by=request.user)
        return Response({"imported": count}, status=status.HTTP_201_CREATED)

    @extend_schema(request=None, responses={200: KEY_ROW})
    @action(detail=True, methods=["get"], pagination_class=None)
    def key(self, request: Request, trial_slug: str, pk: int) -> Response:
        """The unblinded key (coordinators and statisticians), once the trial is locked: per
        rater item its case, the sources, whether the sides were swapped, the values and times.
        Each reveal is audited; 409 before the lock."""
        return Response(reveal_key(self.get_object(), by=request.user))
