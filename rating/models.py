"""Blinded rating campaigns: which reports are rated, by whom, in which order, and the ratings.

A campaign snapshots the texts it rates (``RatedReport``), so later amendments do not change
what raters saw; the text shown to raters has signature lines and model markers stripped
(``shown_*``), the original is kept for the coordinator. Each rater reaches an item only
through their own opaque code (``RaterItem.code``), with their own stored order and, for
pairs, their own stored left/right sides.

The tables keep the names they had when these models lived in ``reader`` (``reader_campaign``
...), and audit events keep naming them ``reader.Campaign`` ..., so a database and an audit
trail made before the move read the same.
"""

from __future__ import annotations

import secrets

from django.conf import settings
from django.db import models

from drafting.models import Draft
from trial.models import Case, Membership, Trial

from . import instruments as inst


def _seed() -> int:
    return secrets.randbelow(2**31)


def new_code() -> str:
    """An opaque item code: 10 characters, no meaning, no order."""
    alphabet = "ABCDEFGHJKMNPQRSTUVWXYZ23456789"
    return "".join(secrets.choice(alphabet) for _ in range(10))


class Campaign(models.Model):
    class Kind(models.TextChoices):
        PROSPECTIVE = "prospective", "Prospective (the trial's readings)"
        RETROSPECTIVE = "retrospective", "Retrospective (imported reports)"

    class Status(models.TextChoices):
        DRAFT = "draft", "Draft"
        OPEN = "open", "Open for rating"
        CLOSED = "closed", "Closed"

    trial = models.ForeignKey(Trial, on_delete=models.PROTECT, related_name="campaigns")
    name = models.CharField(max_length=120)
    kind = models.CharField(max_length=14, choices=Kind.choices, default=Kind.PROSPECTIVE)
    instruments = models.JSONField(
        default=list, help_text=f"Any of: {', '.join(inst.ALL)}.")
    radpeer_variant = models.CharField(verbose_name="RADPEER variant",
        max_length=10, default=inst.RADPEER_REFERENCE,
        choices=[(inst.RADPEER_REFERENCE, "1-5 as in the reference trial (5 best)"),
                 (inst.RADPEER_ACR2016, "ACR RADPEER 2016 (1 / 2a / 2b / 3a / 3b)")])
    raters_per_item = models.PositiveSmallIntegerField(
        null=True, blank=True, help_text="Empty: every rater of the campaign rates every item.")
    allow_revision = models.BooleanField(
        default=False, help_text="Raters may change a submitted rating (every change audited).")
    include_ai_alone = models.BooleanField(verbose_name="include AI alone",
        default=False, help_text="Prospective: also rate the AI draft alone, as a third report. "
        "Retrospective: also rate the draft worker's outputs of the cases (one source per "
        "model endpoint).")
    seed = models.BigIntegerField(default=_seed, help_text="Seed of the orders and sides.")
    status = models.CharField(max_length=8, choices=Status.choices, default=Status.DRAFT)
    raters = models.ManyToManyField(Membership, related_name="campaigns", blank=True,
                                    limit_choices_to={"role": "rater"})
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT,
                                   null=True, blank=True, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)

    audit_type = "reader.Campaign"

    class Meta:
        db_table = "reader_campaign"
        ordering = ["trial", "name"]
        constraints = [models.UniqueConstraint(fields=["trial", "name"],
                                               name="campaign_name_unique_per_trial")]

    def __str__(self) -> str:
        return self.name


class RatedReport(models.Model):
    """A report text as the campaign rates it: its source is known here, never to raters."""

    PUBLISHED = "published"

    campaign = models.ForeignKey(Campaign, on_delete=models.CASCADE, related_name="reports")
    case = models.ForeignKey(Case, on_delete=models.PROTECT, related_name="+")
    source = models.CharField(max_length=60, help_text="ai_assisted, scp, ai_alone, published, "
                              "or an imported source's name.")
    findings = models.TextField(blank=True)
    impression = models.TextField(blank=True)
    shown_findings = models.TextField(blank=True, help_text="As raters see it (stripped).")
    shown_impression = models.TextField(blank=True)
    stripped = models.JSONField(default=list, blank=True, help_text="Lines removed for raters.")
    reading = models.ForeignKey("reader.Reading", on_delete=models.PROTECT, null=True,
                                blank=True, related_name="+")
    draft = models.ForeignKey(Draft, on_delete=models.PROTECT, null=True, blank=True,
                              related_name="+")

    audit_type = "reader.RatedReport"

    class Meta:
        db_table = "reader_ratedreport"
        ordering = ["campaign", "case", "source"]
        constraints = [models.UniqueConstraint(fields=["campaign", "case", "source"],
                                               name="one_report_per_source_and_case")]

    def __str__(self) -> str:
        return f"{self.case.case_id} / {self.source}"


class Item(models.Model):
    """One thing to rate: a report (single instruments) or two (pair instruments)."""

    class Kind(models.TextChoices):
        SINGLE = "single", "One report"
        PAIR = "pair", "Two reports"

    campaign = models.ForeignKey(Campaign, on_delete=models.CASCADE, related_name="items")
    case = models.ForeignKey(Case, on_delete=models.PROTECT, related_name="+")
    kind = models.CharField(max_length=6, choices=Kind.choices)
    report = models.ForeignKey(RatedReport, on_delete=models.CASCADE, related_name="+")
    other = models.ForeignKey(RatedReport, on_delete=models.CASCADE, null=True, blank=True,
                              related_name="+", help_text="Pairs: the second report.")
    instruments = models.JSONField(default=list)
    reference_findings = models.TextField(blank=True)
    reference_impression = models.TextField(blank=True)

    audit_type = "reader.Item"

    class Meta:
        db_table = "reader_item"
        ordering = ["campaign", "case", "pk"]

    def __str__(self) -> str:
        other = f" vs {self.other.source}" if self.other_id else ""
        return f"{self.case.case_id}: {self.report.source}{other}"


class RaterItem(models.Model):
    """An item given to one rater: their opaque code, their position, their sides."""

    campaign = models.ForeignKey(Campaign, on_delete=models.CASCADE, related_name="rater_items")
    item = models.ForeignKey(Item, on_delete=models.CASCADE, related_name="rater_items")
    rater = models.ForeignKey(Membership, on_delete=models.PROTECT, related_name="rater_items")
    code = models.CharField(max_length=16, unique=True, default=new_code)
    position = models.PositiveIntegerField()
    swapped = models.BooleanField(default=False, help_text="Pairs: Report A is `other`.")
    opened_at = models.DateTimeField(null=True, blank=True)
    seconds = models.FloatField(default=0, help_text="Time on the item page, server clock.")

    audit_type = "reader.RaterItem"

    class Meta:
        db_table = "reader_rateritem"
        ordering = ["rater", "position"]
        constraints = [
            models.UniqueConstraint(fields=["item", "rater"], name="one_rater_item_per_rater"),
            models.UniqueConstraint(fields=["campaign", "rater", "position"],
                                    name="unique_rating_position"),
        ]

    def __str__(self) -> str:
        return self.code


class Rating(models.Model):
    """A rater's submitted answers for one item; changed only if the campaign allows it."""

    rater_item = models.OneToOneField(RaterItem, on_delete=models.PROTECT, related_name="rating")
    values = models.JSONField(help_text="By instrument, as the rater answered (A/B for pairs).")
    seconds = models.FloatField(help_text="Time on the item until (last) submission.")
    submitted_at = models.DateTimeField()
    revisions = models.PositiveIntegerField(default=0)

    audit_type = "reader.Rating"

    class Meta:
        db_table = "reader_rating"
        ordering = ["rater_item"]

    def __str__(self) -> str:
        return f"Rating of {self.rater_item.code}"
