"""The statistical analysis plan (SAP): written and signed before unblinding, then frozen.

The final analysis runs the plan: its primary campaign, outcomes and method, alpha, subgroups
and missing-rating rule decide what is *pre-specified*; everything else the report shows is
labelled *exploratory*. A frozen plan never changes: a change is a new version with a reason,
signed again (``analysis.plans``).
"""

from __future__ import annotations

from django.conf import settings
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models

from rating.models import Campaign
from trial.models import Trial

OUTCOMES = {
    "quality": "Report quality (5-point Likert)",
    "agreement": "Agreement with the reference report (RADPEER 1-5)",
    "preference": "Pairwise preference (AI-assisted vs SCP)",
    "reading_time": "Reading time",
    "positive_rates": "Positive rate per finding",
}
SUBGROUPS = {
    "complex_cases": "Complex cases (>= 3 findings)",
    "sites": "Per site",
}


class AnalysisPlan(models.Model):
    class Status(models.TextChoices):
        DRAFT = "draft", "Draft"
        FROZEN = "frozen", "Signed and frozen"

    class Method(models.TextChoices):
        STUDENT = "student", "Independent t-test (Student), as in the reference trial"
        PAIRED = "paired", "Paired t-test by case"
        MIXED = "mixed_model", "Mixed model (reader, case and rater random effects)"

    class Missing(models.TextChoices):
        AVAILABLE = "available", "Available ratings: a report's score is the mean of the " \
                                 "raters who rated it"
        COMPLETE = "complete", "Complete reports only: reports not rated by every rater of " \
                               "the campaign are left out"

    audit_type = "analysis.AnalysisPlan"

    trial = models.ForeignKey(Trial, on_delete=models.PROTECT, related_name="analysis_plans")
    version = models.PositiveIntegerField()
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.DRAFT)
    primary_campaign = models.ForeignKey(
        Campaign, on_delete=models.PROTECT, null=True, blank=True, related_name="+",
        help_text="The rating campaign the primary analysis uses.")
    primary_outcomes = models.JSONField(default=list, blank=True)
    secondary_outcomes = models.JSONField(default=list, blank=True)
    primary_method = models.CharField(max_length=20, choices=Method.choices,
                                      default=Method.STUDENT)
    alpha = models.FloatField(default=0.05, validators=[MinValueValidator(0.001),
                                                        MaxValueValidator(0.2)],
                              help_text="Two-sided significance level; CIs are 1 - alpha.")
    subgroups = models.JSONField(default=list, blank=True)
    missing_ratings = models.CharField(max_length=10, choices=Missing.choices,
                                       default=Missing.AVAILABLE)
    pooled_campaigns = models.JSONField(
        default=list, blank=True,
        help_text="Campaigns (ids) pooled with the primary campaign in a labelled pooled "
                  "analysis; empty: nothing is pooled.")
    notes = models.TextField(blank=True, max_length=20000)
    reason = models.TextField(blank=True, max_length=5000,
                              help_text="Why this version replaces the previous one.")
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT,
                                   related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)
    frozen_at = models.DateTimeField(null=True, blank=True)
    frozen_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT,
                                  null=True, blank=True, related_name="+")
    sha256 = models.CharField(max_length=64, blank=True)
    after_unblinding = models.BooleanField(
        default=False, help_text="Signed when the trial was already locked (unblinded).")

    class Meta:
        ordering = ["trial", "-version"]
        constraints = [models.UniqueConstraint(fields=["trial", "version"],
                                               name="one_plan_version")]

    def __str__(self) -> str:
        return f"Analysis plan v{self.version} of {self.trial} ({self.get_status_display()})"

    def save(self, *args, **kwargs) -> None:  # noqa: ANN002, ANN003
        if self.pk is not None and AnalysisPlan.objects.filter(
                pk=self.pk, status=self.Status.FROZEN).exists():
            raise ValueError("A signed analysis plan is frozen: make a new version instead.")
        super().save(*args, **kwargs)

    def delete(self, *args, **kwargs):  # noqa: ANN002, ANN003
        if self.status == self.Status.FROZEN:
            raise ValueError("A signed analysis plan is never deleted.")
        return super().delete(*args, **kwargs)

    @property
    def confidence(self) -> float:
        return 1 - self.alpha

    def content(self) -> dict:
        """What the plan says, canonical: the frozen plan's SHA-256 is over this."""
        campaign = self.primary_campaign
        return {
            "trial": self.trial.slug, "version": self.version,
            "primary_campaign": ({"id": campaign.pk, "name": campaign.name}
                                 if campaign else None),
            "primary_outcomes": list(self.primary_outcomes),
            "secondary_outcomes": list(self.secondary_outcomes),
            "primary_method": self.primary_method, "alpha": self.alpha,
            "subgroups": list(self.subgroups), "missing_ratings": self.missing_ratings,
            "pooled_campaigns": sorted(self.pooled_campaigns), "notes": self.notes,
            "reason": self.reason,
        }
