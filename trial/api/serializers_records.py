"""Serializers of cases, images, allocations, the randomisation summary, assignments, audit.

Concealment: an allocation is a slot with a reader; unallocated slots, their arms and the seed
have no serializer at all.
"""

from __future__ import annotations

from django.conf import settings
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from trial.models import Assignment, AuditEvent, Case, Image, ImportJob, Membership
from trial.randomization import MAX_EXTENSION_BLOCKS
from trial.validators import SHORT_TEXT_MAX, multiline

from .schema import partial_response
from .serializers import SiteField, TrialScopedSerializer


class CaseSerializer(TrialScopedSerializer):
    """What is stored about a case (pseudonymous); status moves only through the actions."""

    site = SiteField()
    image_count = serializers.IntegerField(read_only=True, source="images.count")
    consent_recorded_by = serializers.SlugRelatedField(
        slug_field="username", read_only=True, allow_null=True,
        help_text="Who recorded the consent; null until it is recorded.")

    class Meta:
        model = Case
        fields = (
            "id", "case_id", "site", "age", "sex", "chief_complaint", "history", "lab_results",
            "prior_imaging", "status", "eligibility_answers", "exclusion_reason",
            "consent_recorded_by", "consent_recorded_at", "enrolled_at", "withdrawn_at",
            "withdrawal_reason", "study_uid", "image_count", "created_at",
        )
        read_only_fields = (
            "status", "eligibility_answers", "exclusion_reason", "consent_recorded_at",
            "enrolled_at", "withdrawn_at", "withdrawal_reason", "study_uid", "created_at",
        )

    def validate_case_id(self, case_id: str) -> str:
        clash = Case.objects.filter(trial=self.trial, case_id=case_id)
        if self.instance is not None:
            clash = clash.exclude(pk=self.instance.pk)
        if clash.exists():
            raise serializers.ValidationError("This trial already has a case with this id.")
        return case_id


class ScreenSerializer(serializers.Serializer):
    answers = serializers.DictField(
        child=serializers.BooleanField(),
        help_text="Criterion code -> true (inclusion met / exclusion present) or false.",
    )

    def validate_answers(self, value: dict) -> dict:
        if len(value) > 200:
            raise serializers.ValidationError("At most 200 answers (one per criterion).")
        return value


class ExcludeSerializer(serializers.Serializer):
    reason = serializers.CharField(help_text="Counted in the CONSORT flow diagram.",
                                   max_length=SHORT_TEXT_MAX, validators=[multiline])


class ImageSerializer(serializers.ModelSerializer):
    case = serializers.SlugRelatedField(slug_field="case_id", read_only=True)

    class Meta:
        model = Image
        fields = (
            "id", "case", "modality", "view_position", "rows", "columns", "bits_stored",
            "photometric", "transfer_syntax", "file_size", "sha256", "synthetic",
            "import_job", "imported_at",
        )
        read_only_fields = fields


@extend_schema_field(OpenApiTypes.BINARY)
class UploadField(serializers.FileField):
    """A file sent in a multipart request: bytes, not a URL (drf-spectacular's default for a
    ``FileField`` when requests and responses share their components)."""


class ImageUploadSerializer(serializers.Serializer):
    site = SiteField(help_text="Code of the site the images come from.")
    files = serializers.ListField(
        child=UploadField(), allow_empty=False,
        help_text="DICOM files, or one zip (folders inside are read too).",
    )

    def validate_files(self, files: list) -> list:
        limit = settings.DICOM_MAX_FILE_MB
        too_big = [f.name for f in files if f.size > limit * 1024 * 1024]
        if too_big:
            raise serializers.ValidationError(
                f"Over the {limit} MB limit per file: {', '.join(too_big)}."
            )
        return files


class ImportJobSerializer(serializers.ModelSerializer):
    site = serializers.SlugRelatedField(slug_field="code", read_only=True)
    created_by = serializers.SlugRelatedField(
        slug_field="username", read_only=True, allow_null=True,
        help_text="Who started the import; null if no signed-in person did (a command).")

    class Meta:
        model = ImportJob
        fields = ("id", "site", "status", "total", "processed", "percent", "imported",
                  "duplicates", "rejected", "error", "created_by", "created_at", "finished_at",
                  "report")
        read_only_fields = fields


class AllocationSerializer(serializers.Serializer):
    """One row of ``randomization.allocation_table``: an allocated reader and their arm."""

    reader = serializers.CharField()
    site = serializers.CharField()
    stratum = serializers.CharField()
    position = serializers.IntegerField()
    arm = serializers.CharField()
    arm_label = serializers.CharField()
    allocated_by = serializers.CharField()
    allocated_at = serializers.DateTimeField()


class AllocateSerializer(serializers.Serializer):
    membership = serializers.PrimaryKeyRelatedField(queryset=Membership.objects.none())

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        trial = self.context.get("trial")
        if trial is not None:
            self.fields["membership"].queryset = Membership.objects.filter(trial=trial)


class ExtensionSerializer(serializers.Serializer):
    """Blocks appended to the list for one stratum: how and by whom, and the commitment;
    never the seed or any planned arm."""

    number = serializers.IntegerField(help_text="1, 2, ... in the order they were made.")
    stratum = serializers.CharField(help_text="The site code; blank if not stratified.")
    method = serializers.CharField(help_text="``generated`` (a drawn seed) or ``imported``.")
    blocks = serializers.IntegerField()
    slots = serializers.IntegerField(source="slot_count")
    commitment = serializers.CharField(
        help_text="SHA-256 of the extension's seed and its (stratum, position, arm) sequence, "
                  "computed as the list's.")
    source_name = serializers.CharField()
    source_sha256 = serializers.CharField(help_text="Imported: SHA-256 of the file's text.")
    created_by = serializers.CharField(source="created_by.username")
    created_at = serializers.DateTimeField()


class RandomizationSerializer(serializers.Serializer):
    """How the list was made and how full it is; never the seed or any planned arm."""

    method = serializers.CharField()
    source_name = serializers.CharField()
    stratified = serializers.BooleanField()
    created_by = serializers.CharField(source="created_by.username")
    created_at = serializers.DateTimeField()
    commitment = serializers.CharField()
    slots = serializers.SerializerMethodField()
    extensions = ExtensionSerializer(
        many=True, read_only=True,
        help_text="Blocks appended since, per stratum, each with its own commitment.")

    def get_slots(self, obj) -> dict[str, int]:
        total = obj.slots.count()
        allocated = obj.slots.filter(membership__isnull=False).count()
        return {"total": total, "allocated": allocated, "available": total - allocated}


class SealedRequestSerializer(serializers.Serializer):
    """A request that makes sealed slots: the seed is drawn by the platform, so a request that
    brings one is refused, and so is any other unknown field."""

    def validate(self, attrs: dict) -> dict:
        unknown = sorted(set(self.initial_data) - set(self.fields))
        if "seed" in unknown:
            raise serializers.ValidationError({"seed": (
                "The platform draws the seed from the operating system's cryptographic "
                "generator; nobody chooses it. Only its commitment is shown until the lock.")})
        if unknown:
            raise serializers.ValidationError({name: "Unknown field." for name in unknown})
        return attrs


class GenerateSerializer(SealedRequestSerializer):
    """The seed is drawn by the platform; a request that brings one is refused."""

    slots_per_stratum = serializers.IntegerField(required=False, allow_null=True, min_value=1)


class ImportListSerializer(serializers.Serializer):
    file = UploadField(help_text="The statistician's CSV list (UTF-8).")
    expected_count = serializers.IntegerField(required=False, allow_null=True, min_value=1)


STRATUM_HELP = ("The site code of the stratum to extend; leave it out if the list is not "
                "stratified by site.")


class ExtendSerializer(SealedRequestSerializer):
    """Blocks to append for one stratum, from a seed the platform draws (a ``seed`` is
    refused)."""

    stratum = serializers.CharField(required=False, allow_blank=True, default="", max_length=20,
                                    help_text=STRATUM_HELP)
    blocks = serializers.IntegerField(
        min_value=1, max_value=MAX_EXTENSION_BLOCKS,
        help_text="Whole blocks of the trial's design (its block sizes and ratio).")


class ImportExtensionSerializer(SealedRequestSerializer):
    """A statistician's CSV extension for one stratum."""

    stratum = serializers.CharField(required=False, allow_blank=True, default="", max_length=20,
                                    help_text=STRATUM_HELP)
    file = UploadField(help_text="The CSV extension (UTF-8, header "
                                 "``position,arm[,stratum][,block]``, positions 1..n of the "
                                 "extension; its SHA-256 is recorded).")
    expected_count = serializers.IntegerField(required=False, allow_null=True, min_value=1)


class AssignSerializer(serializers.Serializer):
    seed = serializers.IntegerField(required=False, allow_null=True, write_only=True)


class AssignResultSerializer(serializers.Serializer):
    created = serializers.IntegerField()


class AssignmentSerializer(serializers.ModelSerializer):
    case = serializers.SlugRelatedField(slug_field="case_id", read_only=True)
    reader = serializers.CharField(source="reader.user.username", read_only=True)

    class Meta:
        model = Assignment
        fields = ("id", "case", "reader", "arm", "position", "assigned_at")
        read_only_fields = fields


class OwnAssignmentSerializer(serializers.ModelSerializer):
    """A reader's own worklist entry: which case, in which order; nothing about the others."""

    case = serializers.SlugRelatedField(slug_field="case_id", read_only=True)

    class Meta:
        model = Assignment
        fields = ("id", "case", "position")
        read_only_fields = fields


# What ``GET .../assignments/`` answers: coordinators get ``AssignmentSerializer``, a reader
# ``OwnAssignmentSerializer`` (no arm, reader or time: blinding). One schema for both.
AssignmentEntrySerializer = partial_response(
    AssignmentSerializer, always=("id", "case", "position"), name="AssignmentEntry",
    doc="An assignment. Coordinators get every field; a reader gets their own assignments "
        "with ``id``, ``case`` and ``position`` only (no ``reader``, ``arm`` or "
        "``assigned_at``).")


class AuditEventSerializer(serializers.ModelSerializer):
    actor = serializers.SlugRelatedField(
        slug_field="username", read_only=True, allow_null=True,
        help_text="Who did it; null for what the platform did by itself (a task, a command).")

    class Meta:
        model = AuditEvent
        fields = ("id", "at", "actor", "action", "object_type", "object_id", "object_repr",
                  "before", "after")
        read_only_fields = fields
