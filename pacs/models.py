"""Who the platform talks DICOM with, per site.

- ``CallingAE``: an AE title allowed to send studies to the platform's DICOM listener, and the
  site its studies belong to (an unknown caller is refused at association).
- ``SiteSender``: a user account a site's system uses to POST studies to the STOW-RS endpoint
  (token authentication); its studies belong to that site.
- ``RemoteNode``: a site's PACS the platform queries and retrieves from (DIMSE C-FIND/C-MOVE or
  DICOMweb QIDO-RS/WADO-RS) and, optionally, sends signed final reports to.
"""

from __future__ import annotations

import ipaddress

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator, RegexValidator
from django.db import models

from trial.fields import ServerURLField
from trial.models import Site
from trial.secrets import check_env_name
from trial.validators import single_line

AE_TITLE = RegexValidator(r"^[ -~]{1,16}$", "1 to 16 printable ASCII characters.")


def parse_networks(text: str) -> list[ipaddress.IPv4Network | ipaddress.IPv6Network]:
    """The networks of a comma-separated list (a bare address is a network of one)."""
    return [ipaddress.ip_network(part.strip(), strict=False)
            for part in (text or "").split(",") if part.strip()]


def check_networks(text: str) -> None:
    try:
        parse_networks(text)
    except ValueError as exc:
        raise ValidationError(f"Not an IP address or network: {exc}") from exc


def clean_ae(value: str) -> str:
    """AE titles compare without their padding spaces (PS3.5: leading and trailing spaces are
    not significant)."""
    return (value or "").strip()


class CallingAE(models.Model):
    """An AE title allowed to send to the listener, and the site its studies belong to."""

    site = models.ForeignKey(Site, on_delete=models.CASCADE, related_name="calling_aes")
    ae_title = models.CharField("AE title", max_length=16, unique=True, validators=[AE_TITLE],
                                help_text="The sender's own AE title (calling AE), e.g. "
                                          "the site's PACS or modality.")
    addresses = models.CharField(
        max_length=500, blank=True, validators=[check_networks],
        help_text="The sender's IP addresses or networks, comma-separated (e.g. 10.1.2.3, "
                  "10.1.4.0/24): an association from anywhere else is refused, whatever AE "
                  "title it gives. Empty: any address (the AE title alone).")
    created_at = models.DateTimeField(auto_now_add=True)

    audit_type = "pacs.CallingAE"

    class Meta:
        verbose_name = "calling AE"
        verbose_name_plural = "calling AEs"
        ordering = ["site", "ae_title"]

    def __str__(self) -> str:
        return f"{self.ae_title} → {self.site}"

    def save(self, *args, **kwargs) -> None:
        self.ae_title = clean_ae(self.ae_title)
        super().save(*args, **kwargs)

    def admits(self, address: str) -> bool:
        """Whether an association from ``address`` may use this AE title."""
        networks = parse_networks(self.addresses)
        if not networks:
            return True
        try:
            ip = ipaddress.ip_address(address)
        except ValueError:
            return False
        return any(ip in network for network in networks)

    @property
    def trial(self):
        """Its site's trial: where its audit events belong."""
        return self.site.trial


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

    @property
    def trial(self):
        """Its site's trial: where its audit events belong."""
        return self.site.trial


class RemoteNode(models.Model):
    """A site's PACS: where studies are queried and retrieved from, and reports may go."""

    class Protocol(models.TextChoices):
        DIMSE = "dimse", "DICOM networking (C-FIND / C-MOVE / C-STORE)"
        DICOMWEB = "dicomweb", "DICOMweb (QIDO-RS / WADO-RS / STOW-RS)"

    site = models.ForeignKey(Site, on_delete=models.CASCADE, related_name="remote_nodes")
    name = models.CharField(max_length=100, validators=[single_line])
    protocol = models.CharField(max_length=8, choices=Protocol.choices)
    ae_title = models.CharField("AE title", max_length=16, blank=True, validators=[AE_TITLE],
                                help_text="DIMSE: the PACS's AE title (called AE).")
    host = models.CharField(max_length=255, blank=True, validators=[single_line])
    port = models.PositiveIntegerField(null=True, blank=True,
                                       validators=[MinValueValidator(1),
                                                   MaxValueValidator(65535)])
    base_url = ServerURLField(max_length=300, blank=True,
                               help_text="DICOMweb: the service's root, e.g. "
                                         "http://pacs:8042/dicom-web")
    auth_env = models.CharField(
        max_length=100, blank=True,
        validators=[RegexValidator(r"^[A-Za-z_][A-Za-z0-9_]*$", "An environment variable name."),
                    check_env_name],
        help_text="DICOMweb: the environment variable holding the Authorization header's value "
                  "(e.g. 'Basic ...' or 'Bearer ...'); never stored here.")
    timeout_s = models.FloatField(default=30.0, validators=[MinValueValidator(1),
                                                            MaxValueValidator(3600)])
    retrieve = models.BooleanField(default=True, help_text="Studies are pulled from it.")
    receives_reports = models.BooleanField(
        default=False, help_text="Signed final reports are sent to it (a DICOM Basic Text SR).")
    keep_original_uids = models.BooleanField(verbose_name="keep original UIDs",
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

    @property
    def trial(self):
        """Its site's trial: where its audit events belong."""
        return self.site.trial


class PullRun(models.Model):
    """One request to pull studies from a site's PACS: a list of accession numbers (or a date
    range), each followed by a ``PullItem``. A second run of the same list skips what is in."""

    class Status(models.TextChoices):
        RUNNING = "running", "Running"
        DONE = "done", "Done"
        FAILED = "failed", "Failed"

    site = models.ForeignKey(Site, on_delete=models.PROTECT, related_name="pull_runs")
    node = models.ForeignKey(RemoteNode, on_delete=models.PROTECT, related_name="pull_runs")
    status = models.CharField(max_length=8, choices=Status.choices, default=Status.RUNNING)
    request = models.CharField(max_length=300, blank=True,
                               help_text="What was asked, without identifiers (e.g. '120 "
                                         "accession numbers from worklist.csv').")
    total = models.PositiveIntegerField(default=0)
    processed = models.PositiveIntegerField(default=0)
    error = models.TextField(blank=True)
    requested_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT,
                                     null=True, blank=True, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    audit_type = "pacs.PullRun"

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"Pull from {self.node} ({self.status})"


class PullItem(models.Model):
    """One accession number of a pull: what happened to it. The accession number itself is an
    identifier and is not stored: ``accession_key`` is its salted hash (the trial's salt), so
    a later run recognises it, and ``line`` says where it was in the requested list."""

    class Status(models.TextChoices):
        PENDING = "pending", "Pending"
        IMPORTED = "imported", "Imported"
        DUPLICATE = "duplicate", "Already in the trial"
        NOT_FOUND = "not_found", "Not found"
        REFUSED = "refused", "Refused"
        FAILED = "failed", "Failed"

    run = models.ForeignKey(PullRun, on_delete=models.CASCADE, related_name="items")
    line = models.PositiveIntegerField(help_text="Its place in the requested list (1-based).")
    accession_key = models.CharField(max_length=64)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.PENDING)
    reason = models.TextField(blank=True)
    instances = models.PositiveIntegerField(default=0)
    case = models.ForeignKey("trial.Case", on_delete=models.PROTECT, null=True, blank=True,
                             related_name="+")
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["run", "line"]
        constraints = [models.UniqueConstraint(fields=["run", "accession_key"],
                                               name="one_pull_item_per_accession")]

    def __str__(self) -> str:
        return f"line {self.line}: {self.status}"


class UidLink(models.Model):
    """The original identifiers of a case's study as its site knows them, encrypted at rest
    (``PACS_UID_KEY``), kept only where the site's node allows it (``keep_original_uids``): a
    final report sent back then references the study the site can find."""

    case = models.OneToOneField("trial.Case", on_delete=models.CASCADE, related_name="uid_link")
    token = models.BinaryField(help_text="Fernet token of the JSON of the original study UID "
                                         "and accession number.")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name = "UID link"

    def __str__(self) -> str:
        return f"Original identifiers of case {self.case_id} (encrypted)"


class ReportDelivery(models.Model):
    """A signed final report sent to a site's PACS as a DICOM Basic Text SR: claimed, sent and
    stored like a draft, retried with backoff, failures visible and retryable."""

    class Status(models.TextChoices):
        QUEUED = "queued", "Queued"
        RUNNING = "running", "Running"
        DONE = "done", "Done"
        FAILED = "failed", "Failed"

    review = models.ForeignKey("reader.Review", on_delete=models.PROTECT,
                               related_name="deliveries")
    node = models.ForeignKey(RemoteNode, on_delete=models.PROTECT, related_name="deliveries")
    status = models.CharField(max_length=8, choices=Status.choices, default=Status.QUEUED)
    attempts = models.PositiveSmallIntegerField(default=0)
    error = models.TextField(blank=True)
    sop_instance_uid = models.CharField(max_length=64, blank=True,
                                        help_text="The SR's SOP Instance UID.")
    queued_at = models.DateTimeField()
    sent_at = models.DateTimeField(null=True, blank=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    claim = models.CharField(max_length=32, blank=True)
    lease_until = models.DateTimeField(null=True, blank=True)

    audit_type = "pacs.ReportDelivery"

    class Meta:
        verbose_name = "report delivery"
        verbose_name_plural = "report deliveries"
        ordering = ["-queued_at"]
        constraints = [models.UniqueConstraint(fields=["review", "node"],
                                               name="one_delivery_per_review_and_node")]
        indexes = [models.Index(fields=["status", "queued_at"], name="delivery_status")]

    def __str__(self) -> str:
        return f"Report of case {self.review.case_id} to {self.node} ({self.status})"
