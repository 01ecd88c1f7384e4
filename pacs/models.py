"""Who the platform talks DICOM with, per site.

- ``CallingAE``: an AE title allowed to send studies to the platform's DICOM listener, and the
  site its studies belong to (an unknown caller is refused at association).
- ``SiteSender``: a user account a site's system uses to POST studies to the STOW-RS endpoint
  (token authentication); its studies belong to that site.
- ``RemoteNode``: a site's PACS the platform queries and retrieves from (DIMSE C-FIND/C-MOVE or
  DICOMweb QIDO-RS/WADO-RS) and, optionally, sends signed final reports to.
"""

from __future__ import annotations

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator, RegexValidator
from django.db import models

from trial.models import Site
from trial.validators import single_line

AE_TITLE = RegexValidator(r"^[ -~]{1,16}$", "1 to 16 printable ASCII characters.")


def clean_ae(value: str) -> str:
    """AE titles compare without their padding spaces (PS3.5: leading and trailing spaces are
    not significant)."""
    return (value or "").strip()


class CallingAE(models.Model):
    """An AE title allowed to send to the listener, and the site its studies belong to."""

    site = models.ForeignKey(Site, on_delete=models.CASCADE, related_name="calling_aes")
    ae_title = models.CharField(max_length=16, unique=True, validators=[AE_TITLE],
                                help_text="The sender's own AE title (calling AE), e.g. "
                                          "the site's PACS or modality.")
    created_at = models.DateTimeField(auto_now_add=True)

    audit_type = "pacs.CallingAE"

    class Meta:
        ordering = ["site", "ae_title"]

    def __str__(self) -> str:
        return f"{self.ae_title} → {self.site}"

    def save(self, *args, **kwargs) -> None:
        self.ae_title = clean_ae(self.ae_title)
        super().save(*args, **kwargs)


class SiteSender(models.Model):
    """A user account a site's system uses for STOW-RS (its token authenticates)."""

    site = models.ForeignKey(Site, on_delete=models.CASCADE, related_name="senders")
    user = models.OneToOneField(settings.AUTH_USER_MODEL, on_delete=models.CASCADE,
                                related_name="dicom_sender")
    created_at = models.DateTimeField(auto_now_add=True)

    audit_type = "pacs.SiteSender"

    class Meta:
        ordering = ["site", "user"]

    def __str__(self) -> str:
        return f"{self.user} → {self.site}"


class RemoteNode(models.Model):
    """A site's PACS: where studies are queried and retrieved from, and reports may go."""

    class Protocol(models.TextChoices):
        DIMSE = "dimse", "DICOM networking (C-FIND / C-MOVE / C-STORE)"
        DICOMWEB = "dicomweb", "DICOMweb (QIDO-RS / WADO-RS / STOW-RS)"

    site = models.ForeignKey(Site, on_delete=models.CASCADE, related_name="remote_nodes")
    name = models.CharField(max_length=100, validators=[single_line])
    protocol = models.CharField(max_length=8, choices=Protocol.choices)
    ae_title = models.CharField(max_length=16, blank=True, validators=[AE_TITLE],
                                help_text="DIMSE: the PACS's AE title (called AE).")
    host = models.CharField(max_length=255, blank=True, validators=[single_line])
    port = models.PositiveIntegerField(null=True, blank=True,
                                       validators=[MinValueValidator(1),
                                                   MaxValueValidator(65535)])
    base_url = models.URLField(max_length=300, blank=True,
                               help_text="DICOMweb: the service's root, e.g. "
                                         "http://pacs:8042/dicom-web")
    auth_env = models.CharField(
        max_length=100, blank=True,
        validators=[RegexValidator(r"^[A-Za-z_][A-Za-z0-9_]*$", "An environment variable name.")],
        help_text="DICOMweb: the environment variable holding the Authorization header's value "
                  "(e.g. 'Basic ...' or 'Bearer ...'); never stored here.")
    timeout_s = models.FloatField(default=30.0, validators=[MinValueValidator(1),
                                                            MaxValueValidator(3600)])
    retrieve = models.BooleanField(default=True, help_text="Studies are pulled from it.")
    receives_reports = models.BooleanField(
        default=False, help_text="Signed final reports are sent to it (a DICOM Basic Text SR).")
    keep_original_uids = models.BooleanField(
        default=False, help_text="The site allows the platform to keep its original study "
                                 "identifiers (encrypted), so a report sent back references "
                                 "the study as the site knows it; otherwise reports carry the "
                                 "trial's pseudonymous identifiers.")
    created_at = models.DateTimeField(auto_now_add=True)

    audit_type = "pacs.RemoteNode"

    class Meta:
        ordering = ["site", "name"]
        constraints = [models.UniqueConstraint(fields=["site", "name"],
                                               name="remote_node_name_unique_per_site")]

    def __str__(self) -> str:
        return f"{self.name} ({self.get_protocol_display()})"

    def clean(self) -> None:
        if self.protocol == self.Protocol.DIMSE and not (self.ae_title and self.host
                                                         and self.port):
            raise ValidationError("A DIMSE node needs its AE title, host and port.")
        if self.protocol == self.Protocol.DICOMWEB and not self.base_url:
            raise ValidationError("A DICOMweb node needs its base URL.")
