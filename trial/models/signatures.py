"""Electronic signatures where the protocol signs (21 CFR Part 11, section 11.200).

A signature is made by the person re-entering their password at that moment; it records the
printed name, the time and the meaning, and is shown wherever the signed record is shown.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models

from .design import Trial


class Signature(models.Model):
    class Meaning(models.TextChoices):
        FINAL_REPORT = "final_report", "Final report approved"
        AMENDMENT = "amendment", "Amendment of a submitted report"
        TRIAL_LOCKED = "trial_locked", "Trial locked (data final, unblinding allowed)"
        ANALYSIS_PLAN = "analysis_plan", "Statistical analysis plan approved"

    trial = models.ForeignKey(Trial, on_delete=models.PROTECT, related_name="signatures")
    signer = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT,
                               related_name="+")
    printed_name = models.CharField(max_length=300)
    meaning = models.CharField(max_length=20, choices=Meaning.choices)
    signed_at = models.DateTimeField(auto_now_add=True)
    object_type = models.CharField(max_length=60)
    object_id = models.CharField(max_length=64)
    simulated = models.BooleanField(
        default=False, help_text="Made by the demo's simulation (no password was entered); "
                                 "never by a person.")

    class Meta:
        ordering = ["-signed_at", "-pk"]
        indexes = [models.Index(fields=["object_type", "object_id"])]

    def __str__(self) -> str:
        made = " (simulated, no password entered)" if self.simulated else ""
        return (f"{self.printed_name}, {self.signed_at:%Y-%m-%d %H:%M:%S %Z}: "
                f"{self.get_meaning_display()}{made}")

    def save(self, *args, **kwargs) -> None:  # noqa: ANN002, ANN003
        if self.pk is not None:
            raise ValueError("A signature is final: it is never changed.")
        super().save(*args, **kwargs)

    def delete(self, *args, **kwargs):  # noqa: ANN002, ANN003
        raise ValueError("A signature is final: it is never deleted.")
