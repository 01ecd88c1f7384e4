"""The coordinator's side of rating campaigns over the API: ``/api/trials/{slug}/campaigns/``.

Coordinators create, change and delete campaigns (delete only while no item exists: items and
ratings are study data), build their items, open and close them, import the reports of a
retrospective campaign, and review the blinding of every report. Statisticians read campaigns
and the unblinded key. Raters never reach these URLs: they rate through ``reader.rating_api``,
which names nothing but opaque codes. Every change is audited; service refusals are 400/409.

The small services here (open, close, key rows, progress, the frozen design) are shared with
the admin (``reader.admin_campaigns``), so both say and audit the same thing.
"""

from __future__ import annotations

from typing import Any

from django.db import transaction
from django.db.models import Count
from drf_spectacular.utils import OpenApiResponse, extend_schema, inline_serializer
from rest_framework import serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import PermissionDenied
from rest_framework.parsers import FormParser, MultiPartParser
from rest_framework.request import Request
from rest_framework.response import Response

from trial import audit
from trial.api.base import AuditedWritesMixin, ServiceError, TrialScopedMixin
from trial.api.changes import record_edit, stored_snapshot
from trial.models import Membership, Role, Trial
from trial.permissions import has_role

from . import campaigns as svc
from . import instruments as inst
from .rating_models import Campaign, RaterItem
from .reading import Locked, NotReady, ReadingError
from .report_import import ReportImportError, import_reports

# What decides the items, their raters, orders and sides: fixed once the campaign has items.
DESIGN_FIELDS = ("kind", "instruments", "radpeer_variant", "raters_per_item",
                 "include_ai_alone", "seed", "raters")


# --- services shared with the admin ------------------------------------------------------------

def trial_raters(trial: Trial):
    """The memberships that may rate in ``trial``'s campaigns."""
    return (Membership.objects.filter(trial=trial, role=Role.RATER)
            .select_related("user").order_by("user__username"))


def frozen_changes(campaign: Campaign, changes: dict[str, Any]) -> list[str]:
    """Names of design fields ``changes`` would alter although the campaign has items."""
    if campaign.pk is None or not campaign.items.exists():
        return []
    changed = []
    for name in DESIGN_FIELDS:
        if name not in changes:
            continue
        if name == "raters":
            now = set(campaign.raters.values_list("pk", flat=True))
            if {getattr(m, "pk", m) for m in changes[name]} != now:
                changed.append(name)
        elif changes[name] != getattr(campaign, name):
            changed.append(name)
    return changed


def set_status(campaign: Campaign, wanted: str, *, by: Any) -> Campaign:
    """Open (from draft or closed, once it has items) or close (from open); audited."""
    with transaction.atomic():
        locked = Campaign.objects.select_for_update().get(pk=campaign.pk)
        if wanted == Campaign.Status.OPEN:
            if locked.status == Campaign.Status.OPEN:
                raise svc.CampaignError("The campaign is already open.")
            if not locked.rater_items.exists():
                raise svc.CampaignError("Build the items first: the campaign has nothing to "
                                        "rate.")
        elif wanted == Campaign.Status.CLOSED:
            if locked.status != Campaign.Status.OPEN:
                raise svc.CampaignError("Only an open campaign can be closed.")
        else:
            raise svc.CampaignError(f"Unknown status {wanted!r}.")
        before = locked.status
        locked.status = wanted
        locked.save(update_fields=["status"])
        audit.record(action=f"campaign.{'opened' if wanted == 'open' else 'closed'}",
                     obj=locked, actor=by, trial=locked.trial, before={"status": before},
                     after={"status": wanted})
    return locked


def progress(campaign: Campaign) -> list[dict]:
    """Per rater: items given and ratings submitted."""
    rows = (RaterItem.objects.filter(campaign=campaign).values("rater", "rater__user__username")
            .annotate(given=Count("pk"), submitted=Count("rating"))
            .order_by("rater__user__username"))
    done = {r["rater"]: r for r in rows}
    out = []
    for member in campaign.raters.select_related("user").order_by("user__username"):
        row = done.get(member.pk, {})
        out.append({"rater": member.user.get_username(), "given": row.get("given", 0),
                    "submitted": row.get("submitted", 0)})
    return out


def key_rows(campaign: Campaign) -> list[dict]:
    """The unblinded key: one row per rater item, with its sources, side and ratings."""
    items = (RaterItem.objects.filter(campaign=campaign)
             .select_related("rater__user", "item__case", "item__report", "item__other",
                             "rating")
             .order_by("rater__user__username", "position"))
    out = []
    for ri in items:
        item = ri.item
        rating = getattr(ri, "rating", None)
        out.append({
            "code": ri.code, "rater": ri.rater.user.get_username(), "position": ri.position,
            "case_id": item.case.case_id, "kind": item.kind, "report_source": item.report.source,
            "other_source": item.other.source if item.other_id else None,
            "swapped": ri.swapped, "instruments": item.instruments,
            "values": rating.values if rating else None,
            "revisions": rating.revisions if rating else 0,
            "seconds": rating.seconds if rating else ri.seconds,
            "submitted_at": rating.submitted_at if rating else None,
        })
    return out


def report_rows(campaign: Campaign) -> list[dict]:
    """Each rated report with its source, the original and the shown text, and what was cut."""
    return [{"id": r.pk, "case_id": r.case.case_id, "source": r.source,
             "findings": r.findings, "impression": r.impression,
             "shown_findings": r.shown_findings, "shown_impression": r.shown_impression,
             "stripped": r.stripped}
            for r in campaign.reports.select_related("case").order_by("case__case_id", "source")]


# --- serializers -----------------------------------------------------------------------------

class CampaignSerializer(serializers.ModelSerializer):
    """A campaign's design; ``status`` changes through ``open/`` and ``close/`` only."""

    instruments = serializers.ListField(
        child=serializers.ChoiceField(choices=inst.ALL), allow_empty=False,
        help_text=f"Any of: {', '.join(inst.ALL)}.")
    raters = serializers.PrimaryKeyRelatedField(
        many=True, required=False, queryset=Membership.objects.filter(role=Role.RATER),
        help_text="Membership ids of the trial's raters.")
    raters_per_item = serializers.IntegerField(
        min_value=1, required=False, allow_null=True,
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
        if len(set(value)) != len(value):
            raise serializers.ValidationError("Name each instrument once.")
        return [code for code in inst.ALL if code in value]  # the canonical order

    def validate(self, attrs: dict) -> dict:
        trial = self.context["trial"]
        name = attrs.get("name", getattr(self.instance, "name", None))
        clash = Campaign.objects.filter(trial=trial, name=name)
        if self.instance is not None:
            clash = clash.exclude(pk=self.instance.pk)
        if clash.exists():
            raise serializers.ValidationError({"name": "This trial has a campaign of that "
                                                       "name already."})
        if self.instance is not None:
            frozen = frozen_changes(self.instance, attrs)
            if frozen:
                raise ServiceError(f"The campaign has items: {', '.join(frozen)} can no longer "
                                   "change.", status.HTTP_409_CONFLICT)
        return attrs


class ReportUploadSerializer(serializers.Serializer):
    file = serializers.FileField(help_text="CSV, UTF-8: case_id,source,findings,impression.")


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


# --- views -----------------------------------------------------------------------------------

def campaign_error(exc: Exception) -> Exception:
    """Campaign refusals as API errors: a refused file is 400 with its problems; a state
    conflict (locked, nothing ready, wrong status) 409."""
    if isinstance(exc, ReportImportError):
        return ServiceError({"detail": str(exc), "problems": exc.problems},
                            status.HTTP_400_BAD_REQUEST)
    if isinstance(exc, ReadingError):
        code = (status.HTTP_409_CONFLICT if isinstance(exc, svc.CampaignError | Locked
                                                       | NotReady)
                else status.HTTP_400_BAD_REQUEST)
        return ServiceError(str(exc), code)
    return exc


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

    def handle_exception(self, exc: Exception):
        return super().handle_exception(campaign_error(exc))

    def perform_create(self, serializer: CampaignSerializer) -> None:
        with transaction.atomic():
            obj = serializer.save(trial=self.get_trial(), created_by=self.request.user)
            record_edit(obj, actor=self.request.user, before=None)
            audit_raters(obj, by=self.request.user, before=[])

    def perform_update(self, serializer: CampaignSerializer) -> None:
        with transaction.atomic():
            before = stored_snapshot(serializer.instance)
            raters_before = rater_names(serializer.instance)
            obj = serializer.save()
            record_edit(obj, actor=self.request.user, before=before)
            audit_raters(obj, by=self.request.user, before=raters_before)

    def perform_destroy(self, instance: Campaign) -> None:
        if instance.items.exists():
            raise ServiceError("The campaign has items (and perhaps ratings): close it instead "
                               "of deleting it.", status.HTTP_409_CONFLICT)
        super().perform_destroy(instance)

    def _coordinator_only(self) -> None:
        if not has_role(self.request.user, self.get_trial(), Role.COORDINATOR):
            raise PermissionDenied("Only the trial's coordinators may do this.")

    @extend_schema(request=None, responses={200: BUILT, 409: REFUSED})
    @action(detail=True, methods=["post"])
    def build(self, request: Request, trial_slug: str, pk: int) -> Response:
        """Add the items of every eligible case not yet in the campaign and give them out."""
        campaign = self.get_object()
        added = svc.build(campaign, by=request.user)
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
            parser_classes=[MultiPartParser, FormParser])
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
    @action(detail=True, methods=["get"])
    def key(self, request: Request, trial_slug: str, pk: int) -> Response:
        """The unblinded key (coordinators and statisticians): per rater item its case, the
        sources, whether the sides were swapped, the values and times."""
        return Response(key_rows(self.get_object()))


def rater_names(campaign: Campaign) -> list[str]:
    return sorted(campaign.raters.values_list("user__username", flat=True))


def audit_raters(campaign: Campaign, *, by: Any, before: list[str]) -> None:
    """The raters are a many-to-many field, outside the snapshot: audit their changes too."""
    after = rater_names(campaign)
    if after != before:
        audit.record(action="campaign.raters_changed", obj=campaign, actor=by,
                     trial=campaign.trial, before={"raters": before}, after={"raters": after})
