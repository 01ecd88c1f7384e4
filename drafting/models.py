"""AI drafts: the model endpoint a trial uses, and the draft report made for each case.

The tables keep the names they had when these models lived in ``trial`` (``trial_draft``,
``trial_modelendpoint``), and audit events keep naming them ``trial.Draft`` and
``trial.ModelEndpoint``, so a database and an audit trail made before the move read the same.
"""

from __future__ import annotations

import hashlib
import json
import string
from collections.abc import Iterator, Mapping

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator, RegexValidator
from django.db import models

from trial.errors import Invalid
from trial.fields import ServerURLField
from trial.models import Case, Trial
from trial.secrets import check_env_name
from trial.validators import single_line

REFERENCE_PROMPT = (
    "As a radiology expert, please provide a detailed report of this chest X-ray image, "
    "including FINDINGS and IMPRESSION."
)
DEFAULT_PROMPT_TEMPLATE = (
    REFERENCE_PROMPT + "\n\nClinical information:\n"
    "Chief complaint: {chief_complaint}\n"
    "History: {history}\n"
    "Laboratory results: {lab_results}"
)
# The case fields a prompt template may name, as ``{name}`` and nothing more.
PROMPT_FIELDS = ("chief_complaint", "history", "lab_results", "prior_imaging", "age", "sex")
# The fields that decide what the model is asked and how: their hash is the fingerprint.
FINGERPRINT_FIELDS = (
    "backend", "base_url", "model_name", "max_tokens", "temperature", "prompt_template",
    "image_size", "pad_value",
)


class PromptTemplateError(Invalid):
    """A prompt template that names something other than the documented placeholders."""


def _placeholders() -> str:
    return ", ".join("{" + name + "}" for name in PROMPT_FIELDS)


def _template_parts(template: str) -> Iterator[tuple[str, str | None]]:
    """(literal text, placeholder name or None) pairs; refuses anything but ``{name}``.

    Parsed with ``string.Formatter().parse``, never formatted: ``str.format`` would follow
    attributes and indexes (``{age.foo}``, ``{age[0]}``) and pad to any width
    (``{age:>50000000}`` is a 50 MB prompt), so only the bare documented names are allowed.
    """
    try:
        for literal, name, spec, conversion in string.Formatter().parse(template):
            if name is None:
                yield literal, None
                continue
            shown = "{" + name + (f"!{conversion}" if conversion else "") + (
                f":{spec}" if spec else "") + "}"
            if len(shown) > 60:
                shown = shown[:57] + "..."
            base = name.partition(".")[0].partition("[")[0]
            if name != base and base in PROMPT_FIELDS:
                raise PromptTemplateError(
                    f"Placeholder {shown} has an attribute or index: write {{{base}}} alone.")
            if name not in PROMPT_FIELDS:
                raise PromptTemplateError(
                    f"Unknown placeholder {shown}: use only {_placeholders()}, or write a "
                    "brace as {{ or }}.")
            if spec or conversion:
                raise PromptTemplateError(
                    f"Placeholder {shown} has a format specification or conversion: write "
                    f"{{{name}}} alone.")
            yield literal, name
    except ValueError as exc:  # unbalanced braces
        raise PromptTemplateError(
            f"Malformed placeholder: {exc}. Use {_placeholders()}, and write a brace as {{{{ "
            "or }}.") from exc


def check_template(template: str) -> None:
    """Raise PromptTemplateError unless ``template`` names only the documented placeholders."""
    for _ in _template_parts(template):
        pass


def fill_template(template: str, values: Mapping[str, str]) -> str:
    """``template`` with each ``{name}`` replaced by ``values[name]`` (no ``str.format``)."""
    return "".join(literal + (values[name] if name else "")
                   for literal, name in _template_parts(template))


class ModelEndpoint(models.Model):
    """Where and how a trial's drafts are made. The API key is read from the environment."""

    class Backend(models.TextChoices):
        OPENAI = "openai", "OpenAI-compatible chat completions"
        DEMO = "demo", "Demo (offline, not a model)"

    trial = models.ForeignKey(Trial, on_delete=models.CASCADE, related_name="model_endpoints")
    name = models.CharField(max_length=100, validators=[single_line])
    active = models.BooleanField(
        default=True, help_text="The endpoint that makes the trial's drafts (one per trial)."
    )
    backend = models.CharField(max_length=10, choices=Backend.choices, default=Backend.OPENAI)
    base_url = ServerURLField(
        max_length=300, blank=True,
        help_text="Up to /v1, e.g. http://gpu-host:8000/v1 (the server adds /chat/completions).",
    )
    model_name = models.CharField(max_length=200, blank=True, validators=[single_line])
    api_key_env = models.CharField(verbose_name="API key env",
        max_length=100, blank=True,
        validators=[RegexValidator(r"^[A-Za-z_][A-Za-z0-9_]*$", "An environment variable name."),
                    check_env_name],
        help_text="Name of the environment variable holding the API key (the key itself is "
                  "never stored). Empty: no key is sent.",
    )
    timeout_s = models.FloatField(
        default=60.0, validators=[MinValueValidator(0.1), MaxValueValidator(3600)],
        help_text="Seconds to wait for one model reply.",
    )
    max_tokens = models.PositiveIntegerField(
        default=512, validators=[MinValueValidator(1), MaxValueValidator(32_768)],
        help_text="Most tokens of a reply (a report needs a few hundred).")
    temperature = models.FloatField(
        default=0.0, validators=[MinValueValidator(0.0), MaxValueValidator(2.0)]
    )
    prompt_template = models.TextField(
        default=DEFAULT_PROMPT_TEMPLATE, max_length=10_000,
        help_text="Placeholders: {chief_complaint}, {history}, {lab_results}, {prior_imaging}, "
                  "{age}, {sex}.",
    )
    image_size = models.PositiveIntegerField(
        default=384, validators=[MinValueValidator(32), MaxValueValidator(4096)],
        help_text="Long side scaled to this many pixels, short side padded to a square.",
    )
    pad_value = models.PositiveSmallIntegerField(
        default=127, validators=[MaxValueValidator(255)], help_text="Grey level of the padding."
    )
    max_attempts = models.PositiveSmallIntegerField(
        default=5, validators=[MinValueValidator(1), MaxValueValidator(50)],
        help_text="Calls per draft before it fails (timeouts, connection errors, 429, 5xx).",
    )
    retry_backoff_s = models.FloatField(
        default=2.0, validators=[MinValueValidator(0.0), MaxValueValidator(300.0)],
        help_text="First retry delay; doubled each attempt (with jitter), at most 300 s.",
    )
    concurrency = models.PositiveSmallIntegerField(
        default=4, validators=[MinValueValidator(1), MaxValueValidator(1000)],
        help_text="Most calls in flight to this server at once, over all workers.",
    )
    created_at = models.DateTimeField(auto_now_add=True)

    audit_type = "trial.ModelEndpoint"

    class Meta:
        db_table = "trial_modelendpoint"
        ordering = ["trial", "name"]
        constraints = [
            models.UniqueConstraint(
                fields=["trial"], condition=models.Q(active=True), name="one_active_endpoint"
            )
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.get_backend_display()})"

    def clean(self) -> None:
        if self.backend == self.Backend.OPENAI and not (self.base_url and self.model_name):
            raise ValidationError("An OpenAI-compatible endpoint needs a base URL and a model.")
        try:
            check_template(self.prompt_template)
        except PromptTemplateError as exc:
            raise ValidationError({"prompt_template": exc.message}) from exc

    def config(self) -> dict:
        """What decides a draft (no key, no operational limits): stored with every draft."""
        return {field: getattr(self, field) for field in FINGERPRINT_FIELDS}

    @property
    def fingerprint(self) -> str:
        blob = json.dumps(self.config(), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(blob.encode()).hexdigest()[:16]


class EndpointCheck(models.Model):
    """One test request to an endpoint, asked for in the admin and made by a worker (where the
    API key is): what the coordinator sees before drafts are made, kept as a record."""

    class Status(models.TextChoices):
        QUEUED = "queued", "Waiting for a worker"
        OK = "ok", "OK"
        WARNING = "warning", "Answered, with a warning"
        FAILED = "failed", "Failed"

    endpoint = models.ForeignKey(ModelEndpoint, on_delete=models.CASCADE, related_name="checks")
    requested_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.SET_NULL,
                                     null=True, blank=True, related_name="+")
    requested_at = models.DateTimeField(auto_now_add=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    fingerprint = models.CharField(max_length=16, help_text="The configuration checked.")
    status = models.CharField(max_length=8, choices=Status.choices, default=Status.QUEUED)
    summary = models.TextField(blank=True)
    output = models.TextField(blank=True, help_text="What was sent and what came back.")
    latency_ms = models.PositiveIntegerField(null=True, blank=True)

    class Meta:
        ordering = ["-requested_at", "-pk"]
        get_latest_by = "requested_at"

    def __str__(self) -> str:
        return f"Check of {self.endpoint.name} ({self.get_status_display()})"



class Draft(models.Model):
    """The AI draft report of one case by one endpoint configuration (its fingerprint)."""

    class Status(models.TextChoices):
        QUEUED = "queued", "Queued"
        RUNNING = "running", "Running"
        DONE = "done", "Done"
        FAILED = "failed", "Failed"

    case = models.ForeignKey(Case, on_delete=models.PROTECT, related_name="drafts")
    endpoint = models.ForeignKey(ModelEndpoint, on_delete=models.PROTECT, related_name="drafts")
    fingerprint = models.CharField(max_length=16)
    config = models.JSONField(help_text="The endpoint configuration that made this draft.")
    backend = models.CharField(max_length=10, choices=ModelEndpoint.Backend.choices)
    status = models.CharField(max_length=8, choices=Status.choices, default=Status.QUEUED)
    attempts = models.PositiveSmallIntegerField(default=0)
    findings = models.TextField(blank=True)
    impression = models.TextField(blank=True)
    raw_response = models.TextField(blank=True, help_text="The model's reply, unparsed.")
    error = models.TextField(blank=True)
    warning = models.TextField(
        blank=True, help_text="Why a done draft needs a look, e.g. the model's reply had no "
                              "IMPRESSION section (it is then empty).",
    )
    model_reported = models.CharField(max_length=200, blank=True,
                                      help_text="The model name the server reported.")
    prompt_tokens = models.PositiveIntegerField(null=True, blank=True)
    completion_tokens = models.PositiveIntegerField(null=True, blank=True)
    model_latency_ms = models.PositiveIntegerField(
        null=True, blank=True, help_text="Duration of the successful model call."
    )
    total_latency_ms = models.PositiveIntegerField(
        null=True, blank=True, help_text="From queued to stored, retries included."
    )
    queued_at = models.DateTimeField()
    sent_at = models.DateTimeField(
        null=True, blank=True, help_text="When its task was last handed to the queue (or is due)."
    )
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    claim = models.CharField(max_length=32, blank=True, help_text="The run that holds it.")
    lease_until = models.DateTimeField(null=True, blank=True)

    audit_type = "trial.Draft"

    class Meta:
        db_table = "trial_draft"
        ordering = ["case", "-queued_at"]
        constraints = [
            models.UniqueConstraint(fields=["case", "fingerprint"], name="one_draft_per_config")
        ]
        indexes = [models.Index(fields=["status", "queued_at"])]

    def __str__(self) -> str:
        return f"Draft of {self.case.case_id} ({self.status})"

    @property
    def text(self) -> str:
        """The draft as the AI-arm reader's editor starts: FINDINGS then IMPRESSION."""
        return f"FINDINGS:\n{self.findings}\n\nIMPRESSION:\n{self.impression}\n"

    @property
    def is_demo(self) -> bool:
        return self.backend == ModelEndpoint.Backend.DEMO
