"""Automated report metrics: labellers and their labels, gold-standard label sets, imported
probabilities, an LLM error judge, and stored metric runs.

Labels are cached per report *text*: a ``Labelling`` is one text labelled by one labeller
configuration (its fingerprint), so labelling the same text twice makes no second model call,
and a changed prompt or model (a new fingerprint) labels afresh without losing the old labels.
A ``Judgement`` is the same for a (reference, candidate) pair of texts and an error judge.
"""

from __future__ import annotations

import hashlib
import json

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator, RegexValidator
from django.db import models

from trial.fields import ServerURLField
from trial.models import Case, Trial
from trial.secrets import check_env_name
from trial.validators import single_line

from . import prompts, rules


def text_hash(*texts: str) -> str:
    """SHA-256 of the texts (joined by NUL): the key under which their result is cached."""
    return hashlib.sha256("\x00".join(texts).encode("utf-8")).hexdigest()


class ChatTool(models.Model):
    """An OpenAI-compatible chat endpoint used as a tool (a labeller or a judge).

    The same settings as a draft's model endpoint: the key is read from the environment
    variable named here, calls retry with backoff, at most ``concurrency`` run at once.
    """

    name = models.CharField(max_length=100, validators=[single_line])
    base_url = ServerURLField(
        max_length=300, blank=True,
        help_text="Up to /v1, e.g. http://llm-host:8000/v1 (the server adds /chat/completions).")
    model_name = models.CharField(max_length=200, blank=True, validators=[single_line])
    api_key_env = models.CharField(verbose_name="API key env",
        max_length=100, blank=True,
        validators=[RegexValidator(r"^[A-Za-z_][A-Za-z0-9_]*$", "An environment variable name."),
                    check_env_name],
        help_text="Name of the environment variable holding the API key (the key itself is "
                  "never stored). Empty: no key is sent.")
    timeout_s = models.FloatField(default=60.0, validators=[MinValueValidator(0.1),
                                                            MaxValueValidator(3600)])
    max_tokens = models.PositiveIntegerField(
        default=400, validators=[MinValueValidator(1), MaxValueValidator(32_768)])
    temperature = models.FloatField(
        default=0.0, validators=[MinValueValidator(0.0), MaxValueValidator(2.0)])
    max_attempts = models.PositiveSmallIntegerField(
        default=3, validators=[MinValueValidator(1), MaxValueValidator(50)],
        help_text="Calls per text before it fails (timeouts, 429, 5xx, and a reply that is not "
                  "valid JSON of the required shape).")
    retry_backoff_s = models.FloatField(
        default=2.0, validators=[MinValueValidator(0.0), MaxValueValidator(300.0)],
        help_text="First retry delay; doubled each attempt (with jitter), at most 300 s.")
    concurrency = models.PositiveSmallIntegerField(
        default=4, validators=[MinValueValidator(1), MaxValueValidator(1000)],
        help_text="Most calls in flight to this server at once, over all workers.")
    created_at = models.DateTimeField(auto_now_add=True)

    FINGERPRINT_FIELDS: tuple[str, ...] = ("base_url", "model_name", "max_tokens", "temperature",
                                           "prompt")

    class Meta:
        abstract = True

    def __str__(self) -> str:
        return self.name

    def config(self) -> dict:
        """What decides the tool's answers (no key, no operational limits): the fingerprint."""
        return {field: getattr(self, field) for field in self.FINGERPRINT_FIELDS}

    @property
    def fingerprint(self) -> str:
        blob = json.dumps(self.config(), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(blob.encode()).hexdigest()[:16]

    @property
    def slot(self) -> str:
        """The concurrency limit's key (shared by every worker)."""
        return f"{self._meta.model_name}-{self.pk}"

    def clean_endpoint(self) -> None:
        if not (self.base_url and self.model_name):
            raise ValidationError("An LLM tool needs a base URL and a model name.")


class Labeller(ChatTool):
    """A labelling tool: the 14 findings as 0/1 from a report's text."""

    class Kind(models.TextChoices):
        LLM = "llm", "LLM (OpenAI-compatible chat endpoint)"
        RULES = "rules", "Rule-based (phrase rules; not a validated labeller)"

    class Uncertain(models.TextChoices):
        POSITIVE = "positive", "Uncertain counts as positive (as the reference trial)"
        NEGATIVE = "negative", "Uncertain counts as negative"

    trial = models.ForeignKey(Trial, on_delete=models.CASCADE, related_name="labellers")
    kind = models.CharField(max_length=8, choices=Kind.choices, default=Kind.LLM)
    prompt = models.TextField(
        default=prompts.LABEL_PROMPT, max_length=20_000,
        help_text="LLM: the instructions sent before the report (the reply must be JSON with "
                  "the 14 findings as 0, 1 or \"uncertain\").")
    uncertain_policy = models.CharField(max_length=8, choices=Uncertain.choices,
                                        default=Uncertain.POSITIVE)

    FINGERPRINT_FIELDS = ("kind", *ChatTool.FINGERPRINT_FIELDS, "uncertain_policy")

    audit_type = "metrics.Labeller"

    class Meta:
        ordering = ["trial", "name"]
        constraints = [models.UniqueConstraint(fields=["trial", "name"],
                                               name="labeller_name_unique_per_trial")]

    def __str__(self) -> str:
        return f"{self.name} ({self.get_kind_display()})"

    def clean(self) -> None:
        if self.kind == self.Kind.LLM:
            self.clean_endpoint()

    def config(self) -> dict:
        if self.kind == self.Kind.RULES:  # the rules' version decides, not an endpoint
            return {"kind": self.kind, "rules": rules.RULES_VERSION,
                    "uncertain_policy": self.uncertain_policy}
        return super().config()

    @property
    def description(self) -> str:
        """How its labels are described wherever they appear."""
        if self.kind == self.Kind.RULES:
            return f"{self.name}: {rules.DESCRIPTION}; uncertain as {self.uncertain_policy}"
        return (f"{self.name}: LLM labeller ({self.model_name} at {self.base_url}); uncertain "
                f"as {self.uncertain_policy}")


class Judge(ChatTool):
    """An LLM error judge: counts a report's errors against the reference, by type and
    clinical significance (CheXprompt-style)."""

    trial = models.ForeignKey(Trial, on_delete=models.CASCADE, related_name="judges")
    prompt = models.TextField(default=prompts.JUDGE_PROMPT, max_length=20_000)

    audit_type = "metrics.Judge"

    class Meta:
        ordering = ["trial", "name"]
        constraints = [models.UniqueConstraint(fields=["trial", "name"],
                                               name="judge_name_unique_per_trial")]

    def clean(self) -> None:
        self.clean_endpoint()


class ChatJob(models.Model):
    """One call's worth of work for a chat tool, claimed and stored like a draft."""

    class Status(models.TextChoices):
        QUEUED = "queued", "Queued"
        RUNNING = "running", "Running"
        DONE = "done", "Done"
        FAILED = "failed", "Failed"

    trial = models.ForeignKey(Trial, on_delete=models.CASCADE, related_name="+")
    fingerprint = models.CharField(max_length=16)
    input_hash = models.CharField(max_length=64)
    status = models.CharField(max_length=8, choices=Status.choices, default=Status.QUEUED)
    attempts = models.PositiveSmallIntegerField(default=0)
    raw_response = models.TextField(blank=True, help_text="The last reply, unparsed.")
    error = models.TextField(blank=True, help_text="Why it failed (or the last retried error).")
    model_reported = models.CharField(max_length=200, blank=True)
    latency_ms = models.PositiveIntegerField(null=True, blank=True)
    queued_at = models.DateTimeField()
    sent_at = models.DateTimeField(null=True, blank=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    claim = models.CharField(max_length=32, blank=True)
    lease_until = models.DateTimeField(null=True, blank=True)

    class Meta:
        abstract = True


class Labelling(ChatJob):
    """The labels of one report text by one labeller configuration."""

    labeller = models.ForeignKey(Labeller, on_delete=models.PROTECT, related_name="labellings")
    text = models.TextField()
    labels = models.JSONField(null=True, blank=True,
                              help_text="The 14 findings as 0/1, the uncertain policy applied.")
    uncertain = models.JSONField(default=list, blank=True,
                                 help_text="Findings the labeller called uncertain.")

    audit_type = "metrics.Labelling"

    class Meta:
        ordering = ["trial", "queued_at"]
        constraints = [models.UniqueConstraint(fields=["trial", "fingerprint", "input_hash"],
                                               name="one_labelling_per_text_and_config")]
        indexes = [models.Index(fields=["status", "queued_at"], name="labelling_status")]

    def __str__(self) -> str:
        return f"Labels of {self.input_hash[:8]} ({self.status})"


class Judgement(ChatJob):
    """One report's errors against its reference, counted by one judge configuration."""

    judge = models.ForeignKey(Judge, on_delete=models.PROTECT, related_name="judgements")
    reference = models.TextField()
    candidate = models.TextField()
    counts = models.JSONField(null=True, blank=True,
                              help_text="{error type: {significant: n, insignificant: n}}.")

    audit_type = "metrics.Judgement"

    class Meta:
        ordering = ["trial", "queued_at"]
        constraints = [models.UniqueConstraint(fields=["trial", "fingerprint", "input_hash"],
                                               name="one_judgement_per_pair_and_config")]
        indexes = [models.Index(fields=["status", "queued_at"], name="judgement_status")]

    def __str__(self) -> str:
        return f"Judgement of {self.input_hash[:8]} ({self.status})"


class LabelSet(models.Model):
    """Named 0/1 labels of the 14 findings per case, with where they came from."""

    class Provenance(models.TextChoices):
        IMPORTED = "imported", "Imported from a CSV file"
        FINAL_REPORTS = "final_reports", "Reference reports labelled by a labeller"
        READER_TICKS = "reader_ticks", "Findings ticked by the readers"

    trial = models.ForeignKey(Trial, on_delete=models.PROTECT, related_name="label_sets")
    name = models.CharField(max_length=120, validators=[single_line])
    provenance = models.CharField(max_length=14, choices=Provenance.choices)
    description = models.TextField(blank=True, help_text="Who labelled, how, when.")
    gold = models.BooleanField(
        default=False, help_text="The trial's gold standard: kappa, AUC, the labeller "
                                 "validation and the complex-case subgroup use it (one per trial).")
    labeller = models.ForeignKey(Labeller, on_delete=models.PROTECT, null=True, blank=True,
                                 related_name="+")
    fingerprint = models.CharField(max_length=16, blank=True,
                                   help_text="The labeller configuration that made the labels.")
    file_sha256 = models.CharField(max_length=64, blank=True)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT,
                                   null=True, blank=True, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)

    audit_type = "metrics.LabelSet"

    class Meta:
        ordering = ["trial", "name"]
        constraints = [
            models.UniqueConstraint(fields=["trial", "name"], name="label_set_name_unique"),
            models.UniqueConstraint(fields=["trial"], condition=models.Q(gold=True),
                                    name="one_gold_label_set"),
        ]

    def __str__(self) -> str:
        return self.name


class CaseLabels(models.Model):
    label_set = models.ForeignKey(LabelSet, on_delete=models.CASCADE, related_name="cases")
    case = models.ForeignKey(Case, on_delete=models.PROTECT, related_name="+")
    labels = models.JSONField(help_text="The 14 findings as 0/1.")

    class Meta:
        verbose_name = "case labels"
        verbose_name_plural = "case labels"
        ordering = ["label_set", "case"]
        constraints = [models.UniqueConstraint(fields=["label_set", "case"],
                                               name="one_label_row_per_case")]

    def __str__(self) -> str:
        return f"{self.label_set} / {self.case_id}"


class Probabilities(models.Model):
    """A source's per-finding probabilities for a case (imported), for ROC curves and AUC."""

    trial = models.ForeignKey(Trial, on_delete=models.PROTECT, related_name="+")
    source = models.CharField(max_length=60, validators=[single_line])
    case = models.ForeignKey(Case, on_delete=models.PROTECT, related_name="+")
    values = models.JSONField(help_text="{finding: probability in [0, 1]} (findings given).")
    imported_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name = "probabilities"
        verbose_name_plural = "probabilities"
        ordering = ["trial", "source", "case"]
        constraints = [models.UniqueConstraint(fields=["trial", "source", "case"],
                                               name="one_probability_row")]

    def __str__(self) -> str:
        return f"{self.source} / {self.case_id}"


class MetricsRun(models.Model):
    """A stored computation of every metric, with its seed: the analysis shows the newest."""

    trial = models.ForeignKey(Trial, on_delete=models.PROTECT, related_name="metrics_runs")
    labeller = models.ForeignKey(Labeller, on_delete=models.PROTECT, related_name="+")
    fingerprint = models.CharField(max_length=16)
    seed = models.BigIntegerField()
    resamples = models.PositiveIntegerField()
    results = models.JSONField()
    seconds = models.FloatField(default=0)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT,
                                   null=True, blank=True, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)

    audit_type = "metrics.MetricsRun"

    class Meta:
        ordering = ["trial", "-created_at"]

    def __str__(self) -> str:
        return f"Metrics of {self.trial} at {self.created_at:%Y-%m-%d %H:%M}"
