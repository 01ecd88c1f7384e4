"""What readers and seniors write: readings (with their event log) and senior reviews."""

from __future__ import annotations

from django.conf import settings
from django.db import models

from drafting.models import Draft
from trial.models import Assignment, Case, Membership


class Reading(models.Model):
    """One reader's report of one assigned case, and the clock of that reading."""

    class Status(models.TextChoices):
        OPEN = "open", "Open"
        SUBMITTED = "submitted", "Submitted"

    class Start(models.TextChoices):
        DRAFT = "draft", "AI draft"
        TEMPLATE = "template", "Report template"
        BLANK = "blank", "Blank"

    class Flag(models.TextChoices):
        """Implausible readings, for the coordinator (never blocking, never shown to readers)."""

        SHORT_READING = "short_reading", "Short reading"
        EMPTY_FINDINGS = "empty_findings", "Empty FINDINGS"
        EMPTY_IMPRESSION = "empty_impression", "Empty IMPRESSION"

    assignment = models.OneToOneField(Assignment, on_delete=models.PROTECT, related_name="reading")
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.OPEN)
    findings = models.TextField(blank=True)
    impression = models.TextField(blank=True)
    labels = models.JSONField(default=list, blank=True, help_text="Findings ticked (CheXpert).")
    started_from = models.CharField(max_length=10, choices=Start.choices)
    draft = models.ForeignKey(
        Draft, on_delete=models.PROTECT, null=True, blank=True, related_name="readings",
        help_text="The AI draft the editor opened with (AI-assisted arm only).",
    )
    deviation = models.TextField(
        blank=True, help_text="Protocol deviation, e.g. offered before its AI draft was ready."
    )
    version = models.PositiveIntegerField(default=0, help_text="Bumped by every save.")
    opened_at = models.DateTimeField()
    first_image_at = models.DateTimeField(null=True, blank=True)
    last_event_at = models.DateTimeField()
    submitted_at = models.DateTimeField(null=True, blank=True)
    reading_time_s = models.FloatField(
        null=True, blank=True, help_text="First image displayed to submitted, server clock."
    )
    active_time_s = models.FloatField(
        null=True, blank=True, help_text="Time the page was visible and focused."
    )
    gap_s = models.FloatField(
        default=0, help_text="Time with no sign of the page (closed, crashed)."
    )
    edit_distance_from_draft = models.PositiveIntegerField(
        null=True, blank=True,
        help_text="Characters from the AI draft to the submitted (or amended) report.",
    )
    flags = models.JSONField(
        default=list, blank=True,
        help_text="Implausible-reading flags set at submission (short_reading: reading time "
                  "under READING_MIN_SECONDS; empty_findings, empty_impression: re-checked at "
                  "each amendment). Shown to coordinators only.",
    )

    class Meta:
        ordering = ["assignment__reader", "assignment__position"]

    def __str__(self) -> str:
        return f"Reading of {self.assignment.case.case_id} ({self.status})"

    @property
    def case(self) -> Case:
        return self.assignment.case

    @property
    def text(self) -> str:
        return f"FINDINGS:\n{self.findings}\n\nIMPRESSION:\n{self.impression}\n"


class ReadingEvent(models.Model):
    """What the reading page reported, stamped with the server's clock."""

    class Kind(models.TextChoices):
        OPENED = "opened", "Opened"
        RESUMED = "resumed", "Resumed after a gap"
        IMAGE_DISPLAYED = "image_displayed", "First image displayed"
        HEARTBEAT = "heartbeat", "Heartbeat"
        AUTOSAVE = "autosave", "Autosave"
        VISIBLE = "visible", "Page visible"
        HIDDEN = "hidden", "Page hidden"
        FOCUS = "focus", "Window focused"
        BLUR = "blur", "Window lost focus"
        SUBMITTED = "submitted", "Submitted"
        AMENDED = "amended", "Amended"

    reading = models.ForeignKey(Reading, on_delete=models.CASCADE, related_name="events")
    kind = models.CharField(max_length=16, choices=Kind.choices)
    at = models.DateTimeField()
    client_at = models.DateTimeField(null=True, blank=True, help_text="The browser's clock.")
    detail = models.JSONField(default=dict, blank=True)

    class Meta:
        ordering = ["reading", "at", "pk"]

    def __str__(self) -> str:
        return f"{self.kind} at {self.at:%H:%M:%S.%f}"


class Amendment(models.Model):
    """A change to a submitted report: the text before and after, why, who and when."""

    reading = models.ForeignKey(Reading, on_delete=models.PROTECT, related_name="amendments")
    reason = models.TextField()
    before_findings = models.TextField(blank=True)
    before_impression = models.TextField(blank=True)
    after_findings = models.TextField(blank=True)
    after_impression = models.TextField(blank=True)
    by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["reading", "at"]

    def __str__(self) -> str:
        return f"Amendment of {self.reading_id} at {self.at:%Y-%m-%d %H:%M}"


class Review(models.Model):
    """A senior's final report of a case, written after both readings were submitted."""

    class Status(models.TextChoices):
        OPEN = "open", "Open"
        SIGNED = "signed", "Signed"

    case = models.OneToOneField(Case, on_delete=models.PROTECT, related_name="review")
    senior = models.ForeignKey(Membership, on_delete=models.PROTECT, related_name="reviews")
    order = models.JSONField(help_text="Reading ids shown as Report 1 and Report 2 (random).")
    started_from = models.CharField(max_length=10, blank=True, help_text="report1, report2, blank.")
    findings = models.TextField(blank=True)
    impression = models.TextField(blank=True)
    version = models.PositiveIntegerField(default=0)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.OPEN)
    opened_at = models.DateTimeField()
    signed_at = models.DateTimeField(null=True, blank=True)
    review_time_s = models.FloatField(null=True, blank=True)
    edit_distance_ai = models.PositiveIntegerField(
        null=True, blank=True, help_text="Characters from the AI-assisted report to the final."
    )
    edit_distance_scp = models.PositiveIntegerField(
        null=True, blank=True, help_text="Characters from the SCP report to the final."
    )

    class Meta:
        ordering = ["case"]

    def __str__(self) -> str:
        return f"Review of {self.case.case_id} ({self.status})"
