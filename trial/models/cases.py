"""Cases (screening, eligibility, consent, history), their DICOM images, imports, assignment."""

from __future__ import annotations

from django.conf import settings
from django.core.validators import MaxValueValidator
from django.db import models

from ..validators import CLINICAL_TEXT_MAX, SHORT_TEXT_MAX, multiline, single_line
from .design import Arm, Membership, Site, Trial


class Case(models.Model):
    class Status(models.TextChoices):
        SCREENED = "screened", "Screened"
        EXCLUDED = "excluded", "Excluded"
        ENROLLED = "enrolled", "Enrolled"
        WITHDRAWN = "withdrawn", "Withdrawn"

    class Sex(models.TextChoices):
        FEMALE = "F", "Female"
        MALE = "M", "Male"
        OTHER = "O", "Other"
        UNKNOWN = "U", "Unknown"

    trial = models.ForeignKey(Trial, on_delete=models.PROTECT, related_name="cases")
    site = models.ForeignKey(Site, on_delete=models.PROTECT, related_name="cases")
    case_id = models.CharField(max_length=40, help_text="Pseudonymous case identifier.",
                               validators=[single_line])
    age = models.PositiveSmallIntegerField(null=True, blank=True, help_text="Years; 90 = 90+.",
                                           validators=[MaxValueValidator(90)])
    sex = models.CharField(max_length=1, choices=Sex.choices, default=Sex.UNKNOWN)
    chief_complaint = models.TextField(blank=True, max_length=CLINICAL_TEXT_MAX,
                                       validators=[multiline])
    history = models.TextField(blank=True, max_length=CLINICAL_TEXT_MAX, validators=[multiline])
    lab_results = models.TextField(blank=True, max_length=CLINICAL_TEXT_MAX,
                                   validators=[multiline])
    prior_imaging = models.TextField(blank=True, max_length=CLINICAL_TEXT_MAX,
                                     validators=[multiline])
    eligibility_answers = models.JSONField(default=dict, blank=True)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.SCREENED)
    exclusion_reason = models.TextField(blank=True, max_length=SHORT_TEXT_MAX,
                                        validators=[multiline])
    consent_recorded_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    consent_recorded_at = models.DateTimeField(null=True, blank=True)
    enrolled_at = models.DateTimeField(null=True, blank=True)
    withdrawn_at = models.DateTimeField(null=True, blank=True)
    withdrawal_reason = models.TextField(blank=True, max_length=SHORT_TEXT_MAX,
                                         validators=[multiline],
                                         help_text="Why an enrolled case left the trial.")
    study_key = models.CharField(
        max_length=64, blank=True, help_text="Salted hash of the source study UID (grouping)."
    )
    study_uid = models.CharField(max_length=64, blank=True, help_text="De-identified study UID.")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["trial", "case_id"]
        constraints = [
            models.UniqueConstraint(fields=["trial", "case_id"], name="case_id_unique_per_trial"),
            models.UniqueConstraint(
                fields=["trial", "study_key"],
                condition=~models.Q(study_key=""),
                name="one_case_per_study",
            ),
        ]

    def __str__(self) -> str:
        return self.case_id

    @property
    def has_history(self) -> bool:
        return bool(self.chief_complaint.strip() and self.history.strip())


class ImportJob(models.Model):
    """One DICOM import (admin upload or command): progress and the per-file report."""

    class Status(models.TextChoices):
        QUEUED = "queued", "Queued"
        RUNNING = "running", "Running"
        DONE = "done", "Done"
        FAILED = "failed", "Failed"

    trial = models.ForeignKey(Trial, on_delete=models.PROTECT, related_name="import_jobs")
    site = models.ForeignKey(Site, on_delete=models.PROTECT)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    status = models.CharField(max_length=8, choices=Status.choices, default=Status.QUEUED)
    source = models.CharField(max_length=500, help_text="Uploaded or given path.")
    total = models.PositiveIntegerField(default=0)
    processed = models.PositiveIntegerField(default=0)
    imported = models.PositiveIntegerField(default=0)
    duplicates = models.PositiveIntegerField(default=0)
    rejected = models.PositiveIntegerField(default=0)
    report = models.JSONField(default=list, blank=True, help_text="One entry per file.")
    error = models.TextField(blank=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"Import #{self.pk} into {self.trial.slug} ({self.status})"

    @property
    def percent(self) -> int:
        return int(100 * self.processed / self.total) if self.total else 0


def image_upload_path(instance: Image, filename: str) -> str:
    return f"dicom/{instance.case.trial.slug}/{instance.case.case_id}/{filename}"


class Image(models.Model):
    """A de-identified DICOM file. Only de-identified bytes are ever stored."""

    case = models.ForeignKey(Case, on_delete=models.PROTECT, related_name="images")
    file = models.FileField(upload_to=image_upload_path, max_length=300)
    source_key = models.CharField(
        max_length=64, unique=True, help_text="Salted hash of the source SOP Instance UID."
    )
    sop_uid = models.CharField(max_length=64)
    series_uid = models.CharField(max_length=64)
    modality = models.CharField(max_length=16)
    view_position = models.CharField(max_length=16, blank=True)
    rows = models.PositiveIntegerField()
    columns = models.PositiveIntegerField()
    bits_stored = models.PositiveSmallIntegerField()
    photometric = models.CharField(max_length=16)
    transfer_syntax = models.CharField(max_length=64)
    window_center = models.FloatField(null=True, blank=True)
    window_width = models.FloatField(null=True, blank=True)
    file_size = models.PositiveBigIntegerField()
    sha256 = models.CharField(max_length=64)
    synthetic = models.BooleanField(default=False, help_text="Generated image, not a patient's.")
    import_job = models.ForeignKey(ImportJob, on_delete=models.SET_NULL, null=True, blank=True)
    imported_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["case", "imported_at", "pk"]

    def __str__(self) -> str:
        return f"{self.case.case_id} / {self.modality} {self.view_position}".strip()


class Assignment(models.Model):
    """A case given to one reader of one arm, at a stored random position in their worklist."""

    case = models.ForeignKey(Case, on_delete=models.PROTECT, related_name="assignments")
    reader = models.ForeignKey(Membership, on_delete=models.PROTECT, related_name="assignments")
    arm = models.CharField(max_length=12, choices=Arm.choices)
    position = models.PositiveIntegerField(help_text="1-based place in the reader's worklist.")
    assigned_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    assigned_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["reader", "position"]
        constraints = [
            models.UniqueConstraint(fields=["case", "arm"], name="one_reader_per_arm_per_case"),
            models.UniqueConstraint(fields=["reader", "position"], name="worklist_position_unique"),
        ]

    def __str__(self) -> str:
        return f"{self.case.case_id} → {self.reader.user.get_username()}"
