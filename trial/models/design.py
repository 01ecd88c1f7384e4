"""What the coordinator designs: the trial, its sites, people and roles, eligibility."""

from __future__ import annotations

import secrets

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator, RegexValidator
from django.db import models

from ..validators import SHORT_TEXT_MAX, modality_list, multiline, single_line


class Arm(models.TextChoices):
    AI_ASSISTED = "ai_assisted", "AI-assisted"
    SCP = "scp", "SCP"


class Role(models.TextChoices):
    COORDINATOR = "coordinator", "Coordinator"
    READER = "reader", "Reader"
    SENIOR = "senior", "Senior radiologist"
    RATER = "rater", "Expert rater"
    STATISTICIAN = "statistician", "Statistician"


def _new_salt() -> str:
    return secrets.token_hex(16)


def default_block_sizes() -> list[int]:
    return [2, 4]


def default_modalities() -> list[str]:
    return ["CR", "DX"]


class Trial(models.Model):
    class Status(models.TextChoices):
        SETUP = "setup", "Set-up"
        ENROLLING = "enrolling", "Enrolling"
        READING = "reading", "Reading"
        RATING = "rating", "Rating"
        LOCKED = "locked", "Locked"

    name = models.CharField(max_length=200, validators=[single_line])
    slug = models.SlugField(
        max_length=60, unique=True,
        help_text="The trial's address in every URL, including those blinded raters see: "
                  "keep model, arm and source names out of it (e.g. 'cxr-2026').")
    registry_id = models.CharField(
        max_length=40,
        blank=True,
        validators=[single_line],
        help_text="Trial registry identifier, e.g. NCT06874647.",
    )
    status = models.CharField(max_length=12, choices=Status.choices, default=Status.SETUP)
    ai_assisted_label = models.CharField(
        "name of the AI-assisted arm", max_length=60, default="AI-assisted",
        validators=[single_line], help_text="How readers, tables and figures name the arm.")
    scp_label = models.CharField(
        "name of the standard-practice (SCP) arm", max_length=60,
        default="Standard clinical practice", validators=[single_line],
        help_text="How readers, tables and figures name the arm.")
    ratio_ai_assisted = models.PositiveSmallIntegerField(verbose_name="ratio AI-assisted",
        default=1, validators=[MinValueValidator(1), MaxValueValidator(10)]
    )
    ratio_scp = models.PositiveSmallIntegerField(verbose_name="ratio SCP",
        default=1, validators=[MinValueValidator(1), MaxValueValidator(10)]
    )
    block_sizes = models.JSONField(
        default=default_block_sizes,
        help_text="Permuted block sizes drawn at random, each a multiple of the ratio's sum.",
    )
    stratify_by_site = models.BooleanField(default=False)
    same_site_assignment = models.BooleanField(
        default=False, help_text="Assign cases only to readers of the case's site."
    )
    report_template = models.TextField(
        blank=True, default="FINDINGS:\n\nIMPRESSION:\n", help_text="Starting text of a report.",
        max_length=SHORT_TEXT_MAX, validators=[multiline],
    )
    allowed_modalities = models.JSONField(
        default=default_modalities, validators=[modality_list],
        help_text='DICOM modality codes accepted at import, e.g. ["CR", "DX"].')
    offer_without_draft = models.BooleanField(
        default=False,
        help_text="AI arm: offer a case whose draft is not ready (blank editor) and record a "
                  "protocol deviation, instead of holding it back until the draft is ready.",
    )
    findings_checklist = models.BooleanField(
        default=False, help_text="Readers tick the 14 CheXpert findings with each report."
    )
    assign_on_enrolment = models.BooleanField(
        "assign each case on enrolment", default=False,
        help_text="Give each case to one reader of each arm as soon as it is enrolled (the "
                  "balancing of Assign cases); otherwise cases wait for Assign cases.")
    require_two_factor = models.BooleanField(
        "require two-factor sign-in for everyone",
        default=False,
        help_text="Everyone with a role in this trial signs in with a code from an "
                  "authenticator app as well as the password. Coordinators, statisticians and "
                  "superusers always do.",
    )
    deid_salt = models.CharField(max_length=64, default=_new_salt, editable=False)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name

    def arm_label(self, arm: str) -> str:
        return self.ai_assisted_label if arm == Arm.AI_ASSISTED else self.scp_label

    def clean(self) -> None:
        unit = self.ratio_ai_assisted + self.ratio_scp
        sizes = self.block_sizes
        if not isinstance(sizes, list) or not sizes:
            raise ValidationError({"block_sizes": "Give a list of block sizes, e.g. [2, 4]."})
        bad = [s for s in sizes if not isinstance(s, int) or s <= 0 or s % unit]
        if bad:
            raise ValidationError(
                {"block_sizes": f"Block sizes {bad} are not multiples of {unit} "
                                f"(ratio {self.ratio_ai_assisted}:{self.ratio_scp})."}
            )
        try:
            modality_list(self.allowed_modalities)
        except ValidationError as exc:
            raise ValidationError({"allowed_modalities": exc.messages}) from exc


class Site(models.Model):
    trial = models.ForeignKey(Trial, on_delete=models.CASCADE, related_name="sites")
    code = models.CharField(
        max_length=20, validators=[RegexValidator(r"^[A-Za-z0-9_-]+$", "Letters, digits, - and _.")]
    )
    name = models.CharField(max_length=200, validators=[single_line])

    class Meta:
        ordering = ["trial", "code"]
        constraints = [
            models.UniqueConstraint(fields=["trial", "code"], name="site_code_unique_per_trial")
        ]

    def __str__(self) -> str:
        return f"{self.code} – {self.name}"


class Membership(models.Model):
    """A person's role in one trial (one row per role), with site and experience."""

    trial = models.ForeignKey(Trial, on_delete=models.CASCADE, related_name="memberships")
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="memberships"
    )
    role = models.CharField(max_length=12, choices=Role.choices)
    site = models.ForeignKey(Site, on_delete=models.PROTECT, null=True, blank=True)
    years_experience = models.PositiveSmallIntegerField(
        null=True, blank=True, validators=[MaxValueValidator(70)])
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["trial", "role", "user__username"]
        constraints = [
            models.UniqueConstraint(
                fields=["trial", "user", "role"], name="one_membership_per_role"
            )
        ]

    def __str__(self) -> str:
        return f"{self.user.get_username()} ({self.get_role_display()}, {self.trial.slug})"

    def clean(self) -> None:
        if self.site_id and self.trial_id and self.site.trial_id != self.trial_id:
            raise ValidationError({"site": "This site belongs to another trial."})

    @property
    def arm(self) -> str | None:
        """The allocated arm of a reader, or None before allocation (never a planned arm)."""
        slot = getattr(self, "allocation_slot", None)
        return slot.arm if slot is not None else None


class EligibilityCriterion(models.Model):
    class Kind(models.TextChoices):
        INCLUSION = "inclusion", "Inclusion"
        EXCLUSION = "exclusion", "Exclusion"

    trial = models.ForeignKey(Trial, on_delete=models.CASCADE, related_name="criteria")
    kind = models.CharField(max_length=10, choices=Kind.choices)
    code = models.SlugField(max_length=40)
    text = models.CharField(max_length=300, validators=[single_line])
    order = models.PositiveSmallIntegerField(default=0)

    class Meta:
        ordering = ["trial", "kind", "order", "code"]
        verbose_name_plural = "eligibility criteria"
        constraints = [
            models.UniqueConstraint(fields=["trial", "code"], name="criterion_code_unique")
        ]

    def __str__(self) -> str:
        return f"{self.get_kind_display()}: {self.text}"
