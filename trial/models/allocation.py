"""The concealed randomisation list, its extensions and its slots; a slot taken by a reader is an
allocation.

A list is made once (generated or imported) and never replaced. When a stratum runs out (a
site added later, more readers than slots), blocks are appended for that stratum as an
``RandomizationExtension``: made the same concealed way, with its own commitment, and never
touching the slots already there.
"""

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


class RandomizationExtension(models.Model):
    """Blocks appended to the list for one stratum: generated from a fresh seed the platform
    draws, or imported from a statistician's CSV extension. Concealed like the list: only its
    commitment is shown until the trial is locked. Never changed or deleted (PostgreSQL trigger).
    """

    randomization = models.ForeignKey(
        RandomizationList, on_delete=models.PROTECT, related_name="extensions"
    )
    number = models.PositiveIntegerField(
        help_text="1, 2, ... in the order the extensions were made (the list itself is part 0).")
    stratum = models.CharField(max_length=20, blank=True, help_text="Site code, or blank.")
    method = models.CharField(max_length=10, choices=RandomizationList.Method.choices)
    seed = models.BigIntegerField(null=True, blank=True)
    block_sizes = models.JSONField(default=list)
    blocks = models.PositiveIntegerField(help_text="Number of blocks appended.")
    slot_count = models.PositiveIntegerField(help_text="Number of slots appended.")
    commitment = models.CharField(
        max_length=64, help_text="SHA-256 of the seed and this extension's sequence.")
    source_name = models.CharField(max_length=255, blank=True)
    source_sha256 = models.CharField(
        max_length=64, blank=True, help_text="Imported extensions: SHA-256 of the file's text.")
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["randomization", "number"]
        constraints = [
            models.UniqueConstraint(fields=["randomization", "number"],
                                    name="extension_number_unique"),
        ]

    def __str__(self) -> str:
        where = f"stratum {self.stratum}" if self.stratum else "the list"
        return f"Extension {self.number} of the randomisation list ({where})"

    @property
    def trial(self) -> Trial:
        return self.randomization.trial


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
    extension = models.ForeignKey(
        RandomizationExtension, on_delete=models.PROTECT, null=True, blank=True,
        related_name="slots", help_text="The extension that appended it; blank: the list itself.",
    )
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
