"""E-mail notifications: each trial's settings, each person's opt-out, and the log of what was
sent (so nobody is mailed again within the interval).

The e-mails themselves are built and sent by ``notify.send``; nothing here holds case ids,
arms, sources or report text, and neither does the log.
"""

from __future__ import annotations

from django.conf import settings
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models

from trial.models import Trial

DEFAULT_INTERVAL_HOURS = 24
MAX_INTERVAL_HOURS = 24 * 30


class Kind(models.TextChoices):
    """What a part of a summary e-mail is about (one person's e-mail may hold several)."""

    READER = "reader", "Cases to read"
    SENIOR = "senior", "Cases to finalise"
    RATER = "rater", "Items to rate"
    COORDINATOR = "coordinator", "Failed drafts and overdue work"


class NotificationSettings(models.Model):
    """A trial's e-mail notifications: on or off, and how often at most (default: daily).

    A trial without a row has the defaults (on, every 24 hours).
    """

    trial = models.OneToOneField(Trial, on_delete=models.CASCADE,
                                 related_name="notification_settings")
    enabled = models.BooleanField(
        "send e-mail notifications", default=True,
        help_text="Off: nobody is e-mailed about this trial's work.")
    interval_hours = models.PositiveSmallIntegerField(
        default=DEFAULT_INTERVAL_HOURS,
        validators=[MinValueValidator(1), MaxValueValidator(MAX_INTERVAL_HOURS)],
        help_text="A person is e-mailed about this trial's work at most once every this many "
                  "hours (24: daily), and only while work is waiting for them.")
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["trial"]
        verbose_name = "notification settings"
        verbose_name_plural = "notification settings"

    def __str__(self) -> str:
        state = f"every {self.interval_hours} h" if self.enabled else "off"
        return f"Notifications of {self.trial.slug} ({state})"


class NotificationPreference(models.Model):
    """A person's own choice: e-mail notifications on (default) or off, for all their trials."""

    user = models.OneToOneField(settings.AUTH_USER_MODEL, on_delete=models.CASCADE,
                                related_name="notification_preference")
    email_enabled = models.BooleanField(
        "e-mail notifications", default=True,
        help_text="Off: this person gets no notification e-mail about any trial.")
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["user__username"]

    def __str__(self) -> str:
        return f"{self.user.get_username()}: e-mails {'on' if self.email_enabled else 'off'}"


class Notification(models.Model):
    """One summary e-mail to one person (sent, or failed and retried at the next run).

    ``counts`` holds only numbers per trial and kind (and campaign numbers for raters), never
    what the e-mail said about a case.
    """

    class Status(models.TextChoices):
        SENT = "sent", "Sent"
        FAILED = "failed", "Failed (retried at the next run)"

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE,
                             related_name="notifications")
    address = models.EmailField(blank=True, help_text="The address it was sent to.")
    trials = models.ManyToManyField(Trial, related_name="notifications", blank=True)
    kinds = models.JSONField(default=list, blank=True,
                             help_text=f"What it was about: any of {', '.join(Kind.values)}.")
    sent_at = models.DateTimeField(db_index=True)
    status = models.CharField(max_length=8, choices=Status.choices, default=Status.SENT)
    counts = models.JSONField(default=list, blank=True,
                              help_text="Per trial and kind, the numbers the e-mail gave.")
    error = models.TextField(blank=True)

    class Meta:
        ordering = ["-sent_at", "-pk"]
        indexes = [models.Index(fields=["user", "status", "sent_at"])]

    def __str__(self) -> str:
        who = self.user.get_username()
        return f"{self.get_status_display()} to {who} at {self.sent_at:%Y-%m-%d %H:%M}"
