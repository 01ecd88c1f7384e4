"""AI drafts in the coordinator's admin: the trial's model endpoint, and the drafts it made.

The API key is never stored: an endpoint names the environment variable that holds it, and the
page says only whether that variable is set in the web server's environment (the worker's is
what counts). Endpoint edits are audited like every set-up record. Drafts are written by the
worker only: the admin lists them, retries failed ones and queues missing ones, nothing else.
"""

from __future__ import annotations

from urllib.parse import urlencode

from django import forms
from django.contrib import admin, messages
from django.db import models
from django.http import HttpRequest
from django.urls import reverse
from django.utils.html import format_html, format_html_join
from django.utils.text import Truncator

from trial import secrets
from trial.admin.base import ReadOnlyAdmin, TrialScopedAdmin
from trial.admin.design import TrialAdmin
from trial.admin.records import pretty_json
from trial.admin.tools import Tool, ToolsMixin
from trial.models import Trial

from . import checks, queries, tasks
from .models import Draft, EndpointCheck, ModelEndpoint

RELATED_ONLY = admin.RelatedOnlyFieldListFilter
ERROR_CHARS = 80  # of an error in the draft list (the detail page shows all of it)
FINGERPRINT_HELP = (
    "A hash of what decides a draft: backend, server URL, model, max tokens, temperature, "
    "prompt template and image preprocessing. Changing any of them changes the fingerprint: "
    "drafts already made keep the old one, and every enrolled case then needs a new draft "
    "(made by the periodic sweep, or now with “Queue missing drafts”). Timeouts, retries and "
    "concurrency do not change it."
)


# --- services the pages share ----------------------------------------------------------------

CHECK_LEVELS = {EndpointCheck.Status.OK: messages.SUCCESS,
                EndpointCheck.Status.WARNING: messages.WARNING,
                EndpointCheck.Status.FAILED: messages.ERROR,
                EndpointCheck.Status.QUEUED: messages.INFO}
CHECK_COLOURS = {EndpointCheck.Status.OK: "#2e7d32", EndpointCheck.Status.WARNING: "#b26a00",
                 EndpointCheck.Status.FAILED: "#ba2121", EndpointCheck.Status.QUEUED: "#555"}
CHECKS_SHOWN = 5


def check_model(model_admin: admin.ModelAdmin, request: HttpRequest,
                endpoint: ModelEndpoint) -> None:
    """One test request to ``endpoint`` as saved, made by a worker (``checks.request_check``)."""
    check = checks.request_check(endpoint, by=request.user)
    if check.status == EndpointCheck.Status.QUEUED:
        text = (f"{endpoint.name}: the check is with a worker. Its answer appears under "
                "“Model checks” on this page in a few seconds: reload it. Still waiting after "
                "a minute: no worker is running, or it is busy with a backlog of drafts.")
    else:
        text = f"{endpoint.name}: {check.get_status_display()}. {check.summary}"
    model_admin.message_user(request, text, level=CHECK_LEVELS[check.status])


def check_html(check: EndpointCheck, current: str) -> str:
    """One check as the endpoint's page shows it: verdict, when, who, and what was said."""
    stale = (" (an earlier configuration)" if check.fingerprint != current else "")
    who = check.requested_by.get_username() if check.requested_by else "-"
    return format_html(
        '<div class="model-check" data-status="{}"><strong style="color:{}">{}</strong> '
        "{} by {}{}<br>{}{}</div>",
        check.status, CHECK_COLOURS[check.status], check.get_status_display(),
        check.requested_at.strftime("%Y-%m-%d %H:%M:%S"), who, stale, check.summary,
        format_html('<details><summary>What was sent and what came back</summary>'
                    '<pre style="white-space:pre-wrap">{}</pre></details>', check.output)
        if check.output else "",
    )


def report_queued(model_admin: admin.ModelAdmin, request: HttpRequest, trial: Trial) -> None:
    """Queue the drafts ``trial``'s enrolled cases lack (``tasks.queue_missing``); say so."""
    count = tasks.queue_missing(trial, by=request.user)
    if count is None:
        model_admin.message_user(
            request, f"{trial}: no active model endpoint, so no draft can be made.",
            level=messages.ERROR,
        )
    elif count == 0:
        model_admin.message_user(request, f"{trial}: every enrolled case already has a draft.",
                                 level=messages.INFO)
    else:
        model_admin.message_user(request, f"{trial}: {count} missing draft(s) queued.",
                                 level=messages.SUCCESS)


def draft_list_url(trial: Trial, **filters: str) -> str:
    """The draft list of ``trial``'s current configuration, further filtered by ``filters``."""
    query = {"case__trial__id__exact": trial.pk, "configuration": "current", **filters}
    return f"{reverse('admin:drafting_draft_changelist')}?{urlencode(query)}"


def drafts_progress(trial: Trial) -> str:
    """One line for the trial page: drafts of the current configuration per status."""
    endpoint = queries.active_endpoint(trial)
    if endpoint is None:
        add = reverse("admin:drafting_modelendpoint_add") + f"?trial={trial.pk}"
        return format_html('No active model endpoint: <a href="{}">add one</a>.', add)
    counts, enrolled = queries.status_counts(trial, endpoint)
    in_progress = counts.get(Draft.Status.QUEUED, 0) + counts.get(Draft.Status.RUNNING, 0)
    missing = enrolled - sum(counts.values())
    parts = [
        (counts.get(Draft.Status.DONE, 0), "done", draft_list_url(trial, status__exact="done")),
        (counts.get(Draft.Status.FAILED, 0), "failed",
         draft_list_url(trial, status__exact="failed")),
        (in_progress, "queued or running", draft_list_url(trial, status__in="queued,running")),
    ]
    links = format_html_join(" · ", '<a href="{}">{} {}</a>', ((u, n, w) for n, w, u in parts))
    endpoint_url = reverse("admin:drafting_modelendpoint_change", args=[endpoint.pk])
    return format_html(
        '{} of {} enrolled case(s); {} without a draft. Endpoint <a href="{}">{}</a>{}, '
        "fingerprint <code>{}</code>.",
        links, enrolled, missing, endpoint_url, endpoint.name,
        demo_badge(endpoint.backend), endpoint.fingerprint,
    )


def demo_badge(backend: str) -> str:
    if backend != ModelEndpoint.Backend.DEMO:
        return ""
    return format_html(' <strong class="demo-backend" style="color:#ba2121">{}</strong>',
                       "DEMO backend")


def backend_html(backend: str) -> str:
    """The backend, with the demo one labelled so nobody mistakes its drafts for a model's."""
    if backend == ModelEndpoint.Backend.DEMO:
        return format_html('<strong class="demo-backend" style="color:#ba2121">{}</strong> {}',
                           "DEMO backend", "(offline, not a model)")
    return ModelEndpoint.Backend(backend).label


def warning_html(text: str) -> str:
    return format_html('<strong class="draft-warning" style="color:#ba2121">⚠ {}</strong>', text)


# --- model endpoints -------------------------------------------------------------------------

def endpoint_formfield(db_field: models.Field, **kwargs) -> forms.Field | None:
    """Model servers on a LAN usually speak plain http: a URL typed without scheme gets it."""
    if db_field.name == "base_url":
        kwargs["assume_scheme"] = "http"
    return db_field.formfield(**kwargs)


class ModelEndpointForm(forms.ModelForm):
    class Meta:
        model = ModelEndpoint
        formfield_callback = endpoint_formfield
        fields = (
            "trial", "name", "active", "backend", "base_url", "model_name", "api_key_env",
            "timeout_s", "prompt_template", "max_tokens", "temperature", "image_size",
            "pad_value", "max_attempts", "retry_backoff_s", "concurrency",
        )

    def clean(self) -> dict:
        data = super().clean()
        trial_id = data["trial"].pk if data.get("trial") else self.instance.trial_id
        if data.get("active") and trial_id:
            clash = ModelEndpoint.objects.filter(trial_id=trial_id, active=True).exclude(
                pk=self.instance.pk
            ).first()
            if clash is not None:
                self.add_error("active", f"The trial's active endpoint is “{clash.name}”; "
                                         "deactivate it first (one active endpoint per trial).")
        return data

    def _get_validation_exclusions(self) -> set[str]:
        """``clean`` checks the one-active rule with a clearer message than the constraint's."""
        return {*super()._get_validation_exclusions(), "active"}


@admin.register(ModelEndpoint)
class ModelEndpointAdmin(ToolsMixin, TrialScopedAdmin):
    audited = True
    form = ModelEndpointForm
    tools = (Tool("check-model", "Check the model", check_model,
                  action_label="Check the model (one test request each)"),)
    list_display = ("name", "trial", "backend_shown", "model_name", "active", "key_status",
                    "last_check", "fingerprint_shown", "draft_count")
    list_filter = (("trial", RELATED_ONLY), "backend", "active")
    search_fields = ("name", "model_name")
    list_select_related = ("trial",)
    fieldsets = (
        (None, {"fields": ("trial", "name", "active")}),
        ("Server", {"fields": ("backend", "base_url", "model_name", "api_key_env", "key_status",
                               "timeout_s")}),
        ("Prompt", {"fields": ("prompt_template", "max_tokens", "temperature")}),
        ("Image preprocessing", {"fields": ("image_size", "pad_value")}),
        ("Limits", {"fields": ("max_attempts", "retry_backoff_s", "concurrency")}),
        ("Fingerprint", {"fields": ("fingerprint_shown",), "description": FINGERPRINT_HELP}),
        ("Model checks", {"fields": ("checks_shown",), "description": (
            "“Check the model” (top right) has a worker send one synthetic radiograph, "
            "preprocessed as drafts are, with the prompt filled from a sample history, to the "
            "endpoint as saved, and shows the reply, the parsed report and the latency, or the "
            "error. Nothing is stored as a draft.")}),
    )

    def get_queryset(self, request: HttpRequest) -> models.QuerySet:
        return super().get_queryset(request).annotate(n_drafts=models.Count("drafts"))

    def formfield_for_dbfield(self, db_field, request: HttpRequest, **kwargs):
        if db_field.name == "base_url":  # as ``endpoint_formfield``
            kwargs["assume_scheme"] = "http"
        return super().formfield_for_dbfield(db_field, request, **kwargs)

    def get_readonly_fields(self, request: HttpRequest, obj: ModelEndpoint | None = None):
        fixed = ("trial",) if obj is not None else ()  # an endpoint belongs to its trial
        return (*fixed, "key_status", "fingerprint_shown", "checks_shown")

    def get_urls(self):
        return self.tool_urls() + super().get_urls()

    def render_change_form(self, request: HttpRequest, context: dict, *args, **kwargs):
        """"Check the model" above the form, for whoever may change the endpoint."""
        obj = context.get("original")
        if obj is not None and self.has_change_permission(request, obj):
            context["object_tools"] = self.tool_buttons(obj)
        return super().render_change_form(request, context, *args, **kwargs)

    def has_delete_permission(self, request: HttpRequest, obj: ModelEndpoint | None = None):
        """Only an endpoint that made no draft: the drafts keep naming the one that made them."""
        if obj is not None and obj.drafts.exists():
            return False
        return super().has_delete_permission(request, obj)

    @admin.display(description="backend", ordering="backend")
    def backend_shown(self, obj: ModelEndpoint) -> str:
        return backend_html(obj.backend)

    @admin.display(description="API key")
    def key_status(self, obj: ModelEndpoint) -> str:
        """Whether the named variable is set here; never its value."""
        if obj.backend == ModelEndpoint.Backend.DEMO:
            return "The demo backend sends no key."
        if not obj.api_key_env:
            return "No key is sent (no environment variable named)."
        state = "set" if secrets.read(obj.api_key_env) else "not set"
        return format_html(
            "<code>{}</code> is <strong>{}</strong> in the web server's environment. The "
            "worker's environment is what counts: the drafts are made there.",
            obj.api_key_env, state,
        )

    @admin.display(description="fingerprint")
    def fingerprint_shown(self, obj: ModelEndpoint) -> str:
        if obj.pk is None:
            return "Computed when saved."
        return format_html("<code>{}</code>", obj.fingerprint)

    @admin.display(description="model checks")
    def checks_shown(self, obj: ModelEndpoint) -> str:
        if obj.pk is None:
            return "Save the endpoint, then check it."
        shown = list(obj.checks.select_related("requested_by")[:CHECKS_SHOWN])
        if not shown:
            return "Not checked yet: use “Check the model” before drafts are made."
        return format_html_join("", "{}", ((check_html(c, obj.fingerprint),) for c in shown))

    @admin.display(description="last check")
    def last_check(self, obj: ModelEndpoint) -> str:
        check = obj.checks.first()
        if check is None:
            return "never"
        return format_html('<span style="color:{}">{}</span> {}', CHECK_COLOURS[check.status],
                           check.get_status_display(),
                           check.requested_at.strftime("%Y-%m-%d %H:%M"))

    @admin.display(description="drafts", ordering="n_drafts")
    def draft_count(self, obj: ModelEndpoint) -> int:
        return obj.n_drafts if hasattr(obj, "n_drafts") else obj.drafts.count()


# --- drafts ----------------------------------------------------------------------------------

class ConfigurationFilter(admin.SimpleListFilter):
    """Drafts of the trial's active endpoint as configured now, or of earlier configurations."""

    title = "configuration"
    parameter_name = "configuration"

    def lookups(self, request: HttpRequest, model_admin: admin.ModelAdmin):
        return (("current", "current (the active endpoint's)"), ("earlier", "earlier"))

    def queryset(self, request: HttpRequest, queryset: models.QuerySet):
        if self.value() not in ("current", "earlier"):
            return queryset
        matching = models.Q(pk__in=[])
        for endpoint in ModelEndpoint.objects.filter(active=True):
            matching |= models.Q(case__trial_id=endpoint.trial_id, fingerprint=endpoint.fingerprint)
        return queryset.filter(matching if self.value() == "current" else ~matching)


class WarningFilter(admin.SimpleListFilter):
    """Drafts stored with a warning (e.g. a reply without an IMPRESSION section), or without."""

    title = "warning"
    parameter_name = "warning"

    def lookups(self, request: HttpRequest, model_admin: admin.ModelAdmin):
        return (("yes", "with a warning"), ("no", "without"))

    def queryset(self, request: HttpRequest, queryset: models.QuerySet):
        if self.value() == "yes":
            return queryset.exclude(warning="")
        if self.value() == "no":
            return queryset.filter(warning="")
        return queryset


DRAFT_FIELDS = (
    "case", "endpoint", "status", "warning_shown", "attempts", "backend_shown", "model_reported",
    "findings", "impression", "raw_response", "error", "prompt_tokens", "completion_tokens",
    "model_latency_ms", "total_latency_ms", "queued_at", "sent_at", "started_at", "finished_at",
    "fingerprint", "config_shown",
)


@admin.register(Draft)
class DraftAdmin(ReadOnlyAdmin):
    """Read-only: a draft is what the model said. Retry and queue are the only actions."""

    trial_path = "case__trial"
    list_display = ("case", "status", "warning_short", "attempts", "backend_shown",
                    "model_reported", "latency", "tokens", "error_short", "fingerprint_shown")
    list_filter = (("case__trial", RELATED_ONLY), "status", WarningFilter, "backend",
                   ConfigurationFilter)
    search_fields = ("case__case_id",)
    list_select_related = ("case__trial",)
    fields = DRAFT_FIELDS
    readonly_fields = DRAFT_FIELDS
    actions = ["retry_failed_action", "queue_missing_action"]

    @admin.display(description="backend", ordering="backend")
    def backend_shown(self, obj: Draft) -> str:
        return backend_html(obj.backend)

    @admin.display(description="latency")
    def latency(self, obj: Draft) -> str:
        if obj.model_latency_ms is None and obj.total_latency_ms is None:
            return "–"
        seconds = [f"{ms / 1000:.1f} s" if ms is not None else "–"
                   for ms in (obj.model_latency_ms, obj.total_latency_ms)]
        return f"{seconds[0]} model / {seconds[1]} total"

    @admin.display(description="tokens (prompt + completion)")
    def tokens(self, obj: Draft) -> str:
        if obj.prompt_tokens is None and obj.completion_tokens is None:
            return "–"
        return f"{obj.prompt_tokens or 0} + {obj.completion_tokens or 0}"

    @admin.display(description="error")
    def error_short(self, obj: Draft) -> str:
        return Truncator(obj.error).chars(ERROR_CHARS) if obj.error else "–"

    @admin.display(description="warning")
    def warning_short(self, obj: Draft) -> str:
        """A done draft the coordinator should look at before readers see it."""
        if not obj.warning:
            return "–"
        return warning_html(Truncator(obj.warning).chars(ERROR_CHARS))

    @admin.display(description="warning")
    def warning_shown(self, obj: Draft) -> str:
        return warning_html(obj.warning) if obj.warning else "–"

    @admin.display(description="fingerprint", ordering="fingerprint")
    def fingerprint_shown(self, obj: Draft) -> str:
        return format_html("<code>{}</code>", obj.fingerprint)

    @admin.display(description="configuration")
    def config_shown(self, obj: Draft) -> str:
        return pretty_json(obj.config)

    @admin.action(description="Retry failed drafts")
    def retry_failed_action(self, request: HttpRequest, queryset) -> None:
        drafts = list(queryset.select_related("case__trial").order_by("pk"))
        retried = sum(tasks.retry_failed(d, by=request.user) for d in drafts)
        if retried:
            self.message_user(request, f"{retried} failed draft(s) re-queued.",
                              level=messages.SUCCESS)
        if len(drafts) > retried:
            self.message_user(
                request,
                f"{len(drafts) - retried} selected draft(s) left alone: only a failed draft of "
                "the active endpoint's current configuration can be retried.",
                level=messages.WARNING,
            )

    @admin.action(description="Queue missing drafts (trials of the selected drafts)")
    def queue_missing_action(self, request: HttpRequest, queryset) -> None:
        """The queryset is already the user's (``get_queryset``): so are its trials."""
        trials = Trial.objects.filter(pk__in=queryset.values("case__trial")).order_by("name")
        for trial in trials:
            report_queued(self, request, trial)


# --- the trial's page ------------------------------------------------------------------------

def extend_trial_admin() -> None:
    """The trial's page gets the drafts' progress and "Queue missing drafts" (from
    ``DraftingConfig.ready``: ``trial`` never imports ``drafting``)."""
    TrialAdmin.add_tool(Tool("queue-drafts", "Queue missing drafts", report_queued,
                             action_label="Queue missing AI drafts"))
    TrialAdmin.add_panel("ai_drafts", "AI drafts", drafts_progress,
                         description="drafts of enrolled cases")
