"""The concealed randomisation list and its slots; a slot taken by a reader is an allocation."""

from __future__ import annotations

from django.conf import settings
from django.db import models

from .design import Arm, Membership, Trial


class RandomizationList(models.Model):
    """One list per trial, generated from a seed or imported from a statistician's CSV.

    The seed and the planned arms are concealed: only a commitment hash is shown until the
    trial is locked, so nobody can predict the next allocation.
    """

    class Method(models.TextChoices):
        GENERATED = "generated", "Generated from a seed"
        IMPORTED = "imported", "Imported CSV list"

    trial = models.OneToOneField(Trial, on_delete=models.PROTECT, related_name="randomization")
    method = models.CharField(max_length=10, choices=Method.choices)
    seed = models.BigIntegerField(null=True, blank=True)
    block_sizes = models.JSONField(default=list)
    stratified = models.BooleanField(default=False)
    commitment = models.CharField(max_length=64, help_text="SHA-256 of the seed and sequence.")
    source_name = models.CharField(max_length=255, blank=True)
    source_sha256 = models.CharField(
        max_length=64, blank=True, help_text="Imported lists: SHA-256 of the file's text.")
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return f"Randomisation list of {self.trial.slug} ({self.get_method_display()})"


class AllocationSlot(models.Model):
    """A position in the list. ``membership`` set = allocated, and never changed again."""

    randomization = models.ForeignKey(
        RandomizationList, on_delete=models.PROTECT, related_name="slots"
    )
    stratum = models.CharField(max_length=20, blank=True, help_text="Site code, or blank.")
    position = models.PositiveIntegerField(help_text="1-based order within the stratum.")
    block = models.PositiveIntegerField()
    block_size = models.PositiveSmallIntegerField()
    arm = models.CharField(max_length=12, choices=Arm.choices)
    membership = models.OneToOneField(
        Membership,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="allocation_slot",
    )
    allocated_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    allocated_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["randomization", "stratum", "position"]
        constraints = [
            models.UniqueConstraint(
                fields=["randomization", "stratum", "position"], name="slot_position_unique"
            ),
        ]

    def __str__(self) -> str:
        where = f"{self.stratum} " if self.stratum else ""
        return f"slot {where}#{self.position}"
