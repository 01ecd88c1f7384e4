"""Report metrics in the coordinator's admin: labellers and error judges, the labels and
judgements they made, label sets (imported or from the readers' ticks), probabilities, and the
stored metric runs with their tables.

Scoped like every trial admin (``trial.admin.base``): a coordinator sees only their trials'
rows. A locked trial's set-up (its tools) and label sets do not change, but its analysis goes
on: labelling, judging, imports of gold labels and probabilities, and metric runs (each
audited) read texts that no longer change. As for the drafts' model endpoint, a tool's API
key is never stored or shown: the page says only whether the named variable is set. Labels and
judgements are written by the labeller or the worker only: the admin lists them, queues the
missing ones and retries failed ones, nothing else. Label sets and runs are never edited.

The computing modules (``compute``, ``judging``, ``exports``: numpy, scipy, nltk, pandas) are
imported inside the views that use them, not here: every process loads the admin at start-up.
"""

from __future__ import annotations

import io
import json
import secrets
import zipfile
from typing import Any
from urllib.parse import urlencode

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.db import models
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import URLPattern, path, reverse
from django.utils.html import format_html, format_html_join
from django.utils.text import Truncator

from rating.instruments import ERROR_TYPES
from rating.report_import import MAX_BYTES
from trial import audit
from trial import secrets as named_secrets
from trial.admin.base import (
    ReadOnlyAdmin,
    TrialScopedAdmin,
    call_service,
    may_coordinate,
    scoped_choices,
)
from trial.admin.design import TrialAdmin
from trial.admin.records import pretty_json
from trial.admin.tools import Tool, ToolsMixin
from trial.findings import FINDINGS
from trial.models import Trial
from trial.spreadsheet import csv_bytes
from trial.validators import single_line

from . import imports, jobs, levels, sources, tasks
from .models import (
    ChatJob,
    ChatTool,
    Judge,
    Judgement,
    Labeller,
    Labelling,
    LabelSet,
    MetricsRun,
)

RELATED_ONLY = admin.RelatedOnlyFieldListFilter
ERROR_CHARS = 80  # of an error in a list (the detail page shows all of it)
IN_PROGRESS = (ChatJob.Status.QUEUED, ChatJob.Status.RUNNING)
ERROR_NAMES = dict(ERROR_TYPES)
SUMMARY_METRICS = (("f1_14_micro", "F1-14 micro"), ("f1_5_micro", "F1-5 micro"),
                   ("bleu4", "BLEU-4"), ("rouge_l", "ROUGE-L"))
LABELLER_FINGERPRINT_HELP = (
    "A hash of what decides the labels: the kind, server URL, model, max tokens, temperature, "
    "prompt and uncertain policy (for the rule-based labeller: the rules' version and the "
    "uncertain policy). Changing any of them changes the fingerprint: every text is then "
    "labelled afresh (“Label all reports”), and the labels made under the old fingerprint are "
    "kept (runs that used them still name it). The name, key, timeout, retries and concurrency "
    "do not change it."
)
JUDGE_FINGERPRINT_HELP = (
    "A hash of what decides the judgements: server URL, model, max tokens, temperature and "
    "prompt. Changing any of them changes the fingerprint: every report is then judged afresh "
    "(“Judge all reports”), and the judgements made under the old fingerprint are kept. The "
    "name, key, timeout, retries and concurrency do not change it."
)


# --- services the pages share ----------------------------------------------------------------

def job_model(tool: ChatTool) -> type[ChatJob]:
    return Labelling if isinstance(tool, Labeller) else Judgement


def job_noun(tool: ChatTool) -> str:
    return "labelling" if isinstance(tool, Labeller) else "judgement"


def status_counts(tool: ChatTool) -> dict[str, int]:
    """The tool's rows of its current configuration per status (cached on the object).

    Rows are keyed by trial and fingerprint, not by tool: two tools configured alike share
    them, as ``metrics.jobs`` does."""
    if not hasattr(tool, "_status_counts"):
        rows = (job_model(tool).objects.filter(trial=tool.trial_id, fingerprint=tool.fingerprint)
                .order_by().values("status").annotate(n=models.Count("pk")))
        tool._status_counts = {row["status"]: row["n"] for row in rows}
    return tool._status_counts


def job_list_url(tool: ChatTool, **filters: str) -> str:
    """The list of the tool's rows of its current configuration, further filtered."""
    query = {"trial__id__exact": tool.trial_id, "fingerprint": tool.fingerprint, **filters}
    name = job_model(tool)._meta.model_name
    return f"{reverse(f'admin:metrics_{name}_changelist')}?{urlencode(query)}"


def count_link(tool: ChatTool, which: str) -> str:
    """``which`` is done, failed or queued (queued or running): the count, linking to them."""
    counts = status_counts(tool)
    if which == "queued":
        n = sum(counts.get(status, 0) for status in IN_PROGRESS)
        url = job_list_url(tool, status__in=",".join(IN_PROGRESS))
    else:
        n = counts.get(which, 0)
        url = job_list_url(tool, status__exact=which)
    return format_html('<a href="{}">{}</a>', url, n)


def progress_links(tool: ChatTool) -> str:
    """A progress bar of the tool's rows of its current configuration (finished of all), then
    one line per status, each a link; the page refreshes nothing itself: reload to follow."""
    parts = (("done", "done"), ("failed", "failed"), ("queued", "queued or running"))
    counts = status_counts(tool)
    total = sum(counts.values())
    finished = counts.get("done", 0) + counts.get("failed", 0)
    bar = format_html('<progress value="{}" max="{}" title="{} of {} finished"></progress> ',
                      finished, total, finished, total) if total else ""
    return bar + format_html_join(" · ", "{} {}", ((count_link(tool, which), words)
                                                   for which, words in parts))


def all_texts(trial: Trial) -> list[str]:
    """Every report text the trial's metrics compare (``metrics.sources``)."""
    return [text for comparison in sources.comparisons(trial) for text in comparison.texts()]


def label_all(model_admin: admin.ModelAdmin, request: HttpRequest, labeller: Labeller) -> None:
    """Label the texts the labeller's configuration has not labelled: the rule-based labeller
    here and now, an LLM labeller's texts queued for the worker."""
    texts = all_texts(labeller.trial)
    wanted = len(jobs.distinct(texts))
    if not wanted:
        model_admin.message_user(
            request, f"{labeller.trial}: no report to label yet (no retrospective campaign "
                     "reports, AI drafts, submitted readings or signed final reports).",
            level=messages.WARNING)
        return
    rows = jobs.label(labeller, texts)
    already = wanted - len(rows)
    if labeller.kind == Labeller.Kind.RULES:
        done = f"{len(rows)} new text(s) labelled"
    else:
        done = (f"{len(rows)} new text(s) queued for labelling ({tasks.send_all(rows)} sent to "
                "the worker)")
    model_admin.message_user(
        request, f"{labeller.name}: {done}; {already} already labelled (or queued) by its "
                 "current configuration.", level=messages.SUCCESS)


def judge_all(model_admin: admin.ModelAdmin, request: HttpRequest, judge: Judge) -> None:
    """Queue a judgement of every report with a human reference that the judge's
    configuration has not judged."""
    from . import judging

    rows = judging.queue(judge.trial, judge)
    sent = tasks.send_all(rows)
    total = Judgement.objects.filter(trial=judge.trial_id, fingerprint=judge.fingerprint).count()
    if not total:
        model_admin.message_user(
            request, f"{judge.trial}: no report with a human reference (published or final "
                     "report) to judge yet.", level=messages.WARNING)
        return
    model_admin.message_user(
        request, f"{judge.name}: {len(rows)} new report(s) queued for judging ({sent} sent to "
                 f"the worker); {total - len(rows)} already judged (or queued) by its current "
                 "configuration.", level=messages.SUCCESS)


def retry_failed(model_admin: admin.ModelAdmin, request: HttpRequest, tool: ChatTool) -> None:
    """Put the tool's failed rows of its current configuration back in the queue (audited)."""
    rows = jobs.requeue_failed(tool, by=request.user)
    if not rows:
        model_admin.message_user(
            request, f"{tool.name}: no failed {job_noun(tool)} of its current configuration.",
            level=messages.INFO)
        return
    sent = tasks.send_all(rows)
    model_admin.message_user(
        request, f"{tool.name}: {len(rows)} failed {job_noun(tool)}(s) re-queued ({sent} sent "
                 "to the worker).", level=messages.SUCCESS)


def tool_label(tool: ChatTool) -> str:
    """A tool as lists name it: its name and what it runs."""
    if isinstance(tool, Labeller) and tool.kind == Labeller.Kind.RULES:
        return f"{tool.name} (rule-based)"
    return f"{tool.name} ({tool.model_name or 'no model'})"


def positive(labels: dict | None) -> str:
    """0/1 labels as the names of the positive findings."""
    if labels is None:
        return "–"
    return ", ".join(f for f in FINDINGS if labels.get(f)) or "none positive"


def error_counts_text(counts: dict | None) -> str:
    """A judge's counts as read: "Omitted finding 1 significant, 0 insignificant"."""
    if counts is None:
        return "–"
    parts = []
    for kind, value in counts.items():
        value = value if isinstance(value, dict) else {}
        significant, minor = value.get("significant", 0), value.get("insignificant", 0)
        if significant or minor:
            parts.append(f"{ERROR_NAMES.get(kind, kind)} {significant} significant, "
                         f"{minor} insignificant")
    return "; ".join(parts) or "no errors"


def reply_html(raw: str) -> str:
    """The raw reply: indented if it is JSON, else as sent."""
    if not raw:
        return "–"
    try:
        return pretty_json(json.loads(raw))
    except ValueError:
        return format_html('<pre style="white-space:pre-wrap">{}</pre>', raw)


def text_html(text: str) -> str:
    return format_html('<pre style="white-space:pre-wrap">{}</pre>', text) if text else "–"


def page_trials(request: HttpRequest) -> models.QuerySet:
    """The trials a page may act on (those the user coordinates). A request naming another
    trial is refused (403), as that trial's object pages are."""
    if not may_coordinate(request, None):
        raise PermissionDenied
    wanted = str(request.POST.get("trial") or request.GET.get("trial") or "")
    if wanted.isdigit() and not may_coordinate(request, int(wanted)):
        raise PermissionDenied
    return scoped_choices(Trial, request).order_by("name")


def trial_initial(request: HttpRequest) -> dict[str, str]:
    """A page opened from a trial's panel (``?trial=``) starts with that trial chosen."""
    wanted = request.GET.get("trial", "")
    return {"trial": wanted} if wanted.isdigit() else {}


def form_page(model_admin: admin.ModelAdmin, request: HttpRequest, template: str,
              title: str, form: forms.Form, **extra: Any) -> TemplateResponse:
    context = {**model_admin.admin_site.each_context(request), "title": title,
               "opts": model_admin.model._meta, "form": form, **extra}
    return TemplateResponse(request, f"admin/metrics/{template}", context)


# --- labellers and judges --------------------------------------------------------------------

class ChatToolAdmin(ToolsMixin, TrialScopedAdmin):
    """What labellers and judges share: the endpoint's fields, the key's status, the
    fingerprint, the rows of the current configuration, and the tools."""

    audited = True
    list_filter = (("trial", RELATED_ONLY),)
    search_fields = ("name", "model_name")
    list_select_related = ("trial",)
    SERVER = ("base_url", "model_name", "api_key_env", "key_status", "timeout_s")
    LIMITS = ("max_attempts", "retry_backoff_s", "concurrency")
    SHOWN = ("key_status", "fingerprint_shown", "progress")

    def formfield_for_dbfield(self, db_field, request: HttpRequest, **kwargs: Any):
        """Model servers on a LAN usually speak plain http: a URL typed without scheme gets it."""
        if db_field.name == "base_url":
            kwargs["assume_scheme"] = "http"
        return super().formfield_for_dbfield(db_field, request, **kwargs)

    def get_readonly_fields(self, request: HttpRequest, obj: ChatTool | None = None):
        fixed = ("trial",) if obj is not None else ()  # a tool belongs to its trial
        return (*fixed, *self.SHOWN)

    def in_use(self, obj: ChatTool) -> bool:
        return job_model(obj).objects.filter(**{self.opts.model_name: obj}).exists()

    def has_delete_permission(self, request: HttpRequest, obj: ChatTool | None = None) -> bool:
        """Only a tool that made nothing: its rows (and any run) keep naming it."""
        if obj is not None and self.in_use(obj):
            return False
        return super().has_delete_permission(request, obj)

    def object_for_tool(self, request: HttpRequest, pk: int) -> ChatTool:
        """Labelling and judging are analysis work: they go on after the lock (the texts
        they read are frozen), so a tool's coordinator may run them, not only edit it."""
        obj = self.get_object(request, str(pk))
        if obj is None or not may_coordinate(request, obj.trial_id):
            raise PermissionDenied
        return obj

    def render_change_form(self, request: HttpRequest, context: dict, *args: Any, **kwargs: Any):
        """The tools' POST buttons above the form (for the trial's coordinators)."""
        obj = context.get("original")
        if obj is not None and may_coordinate(request, obj.trial_id):
            context["object_tools"] = self.tool_buttons(obj)
        return super().render_change_form(request, context, *args, **kwargs)

    def get_urls(self) -> list[URLPattern]:
        return self.tool_urls() + super().get_urls()

    @admin.display(description="API key")
    def key_status(self, obj: ChatTool) -> str:
        """Whether the named variable is set here; never its value."""
        if isinstance(obj, Labeller) and obj.kind == Labeller.Kind.RULES:
            return "The rule-based labeller calls no server and sends no key."
        if not obj.api_key_env:
            return "No key is sent (no environment variable named)."
        state = "set" if named_secrets.read(obj.api_key_env) else "not set"
        return format_html(
            "<code>{}</code> is <strong>{}</strong> in the web server's environment. The "
            "worker's environment is what counts: the calls are made there.",
            obj.api_key_env, state,
        )

    @admin.display(description="fingerprint")
    def fingerprint_shown(self, obj: ChatTool) -> str:
        if obj.pk is None:
            return "Computed when saved."
        return format_html("<code>{}</code>", obj.fingerprint)

    @admin.display(description="rows of this configuration")
    def progress(self, obj: ChatTool) -> str:
        return progress_links(obj) if obj.pk else "–"

    @admin.display(description="done")
    def done_count(self, obj: ChatTool) -> str:
        return count_link(obj, "done")

    @admin.display(description="failed")
    def failed_count(self, obj: ChatTool) -> str:
        return count_link(obj, "failed")

    @admin.display(description="queued or running")
    def queued_count(self, obj: ChatTool) -> str:
        return count_link(obj, "queued")


@admin.register(Labeller)
class LabellerAdmin(ChatToolAdmin):
    """Labellers: an LLM endpoint, or the rule-based labeller (no server, no prompt)."""

    list_display = ("name", "trial", "kind", "model_shown", "fingerprint_shown", "done_count",
                    "failed_count", "queued_count")
    list_filter = (("trial", RELATED_ONLY), "kind")
    tools = (Tool("label-all", "Label all reports", label_all),
             Tool("retry-failed", "Retry failed", retry_failed,
                  action_label="Retry failed labellings (current configuration)"))
    SHOWN = ("kind_note", *ChatToolAdmin.SHOWN)

    def get_fieldsets(self, request: HttpRequest, obj: Labeller | None = None):
        rules = obj is not None and obj.kind == Labeller.Kind.RULES
        if rules:
            server = "Not used: the rule-based labeller calls no server."
            prompt = "The rule-based labeller uses no prompt; the uncertain policy applies."
            limits = "Not used by the rule-based labeller."
        else:
            server = ("For an LLM labeller (an OpenAI-compatible chat endpoint). A rule-based "
                      "labeller calls no server: leave these empty.")
            prompt = limits = ""
        return (
            (None, {"fields": ("trial", "name", "kind", "kind_note")}),
            ("Server", {"fields": self.SERVER, "description": server}),
            ("Prompt and uncertain findings", {
                "fields": ("prompt", "uncertain_policy", "max_tokens", "temperature"),
                "description": prompt}),
            ("Limits", {"fields": self.LIMITS, "description": limits}),
            ("Fingerprint", {"fields": ("fingerprint_shown", "progress"),
                             "description": LABELLER_FINGERPRINT_HELP}),
        )

    def in_use(self, obj: Labeller) -> bool:
        return (super().in_use(obj) or MetricsRun.objects.filter(labeller=obj).exists()
                or LabelSet.objects.filter(labeller=obj).exists())

    @admin.display(description="labeller")
    def kind_note(self, obj: Labeller) -> str:
        if obj.pk is None:
            return ("A rule-based labeller needs no server, prompt or limits: only its name "
                    "and the uncertain policy.")
        if obj.kind == Labeller.Kind.RULES:
            return format_html("{}. The server, prompt and limits below do not apply.",
                               obj.description)
        return obj.description

    @admin.display(description="model", ordering="model_name")
    def model_shown(self, obj: Labeller) -> str:
        return "rule-based" if obj.kind == Labeller.Kind.RULES else (obj.model_name or "–")


@admin.register(Judge)
class JudgeAdmin(ChatToolAdmin):
    """LLM error judges: a report's errors against its reference, counted by type."""

    list_display = ("name", "trial", "model_name", "fingerprint_shown", "done_count",
                    "failed_count", "queued_count")
    tools = (Tool("judge-all", "Judge all reports", judge_all),
             Tool("retry-failed", "Retry failed", retry_failed,
                  action_label="Retry failed judgements (current configuration)"))
    fieldsets = (
        (None, {"fields": ("trial", "name")}),
        ("Server", {"fields": ChatToolAdmin.SERVER}),
        ("Prompt", {"fields": ("prompt", "max_tokens", "temperature")}),
        ("Limits", {"fields": ChatToolAdmin.LIMITS}),
        ("Fingerprint", {"fields": ("fingerprint_shown", "progress"),
                         "description": JUDGE_FINGERPRINT_HELP}),
    )


# --- labellings and judgements ---------------------------------------------------------------

class ConfigurationFilter(admin.SimpleListFilter):
    """Rows of their tool's configuration now, or of earlier configurations."""

    title = "configuration"
    parameter_name = "configuration"

    def lookups(self, request: HttpRequest, model_admin: admin.ModelAdmin):
        return (("current", "current (the tool's)"), ("earlier", "earlier"))

    def queryset(self, request: HttpRequest, queryset: models.QuerySet):
        if self.value() not in ("current", "earlier"):
            return queryset
        tool_model = Labeller if queryset.model is Labelling else Judge
        matching = models.Q(pk__in=[])
        for tool in tool_model.objects.all():
            matching |= models.Q(trial_id=tool.trial_id, fingerprint=tool.fingerprint)
        return queryset.filter(matching if self.value() == "current" else ~matching)


class ChatJobAdmin(ReadOnlyAdmin):
    """Read-only: a row is what the tool said. "Retry failed" is the only action."""

    tool_field = ""
    list_select_related = ("trial",)
    actions = ["retry_failed_action"]

    @admin.display(description="error")
    def error_short(self, obj: ChatJob) -> str:
        return Truncator(obj.error).chars(ERROR_CHARS) if obj.error else "–"

    @admin.display(description="latency", ordering="latency_ms")
    def latency(self, obj: ChatJob) -> str:
        return "–" if obj.latency_ms is None else f"{obj.latency_ms / 1000:.1f} s"

    @admin.display(description="fingerprint", ordering="fingerprint")
    def fingerprint_shown(self, obj: ChatJob) -> str:
        return format_html("<code>{}</code>", obj.fingerprint)

    @admin.display(description="raw response")
    def reply(self, obj: ChatJob) -> str:
        return reply_html(obj.raw_response)

    @admin.display(description="error")
    def error_shown(self, obj: ChatJob) -> str:
        return text_html(obj.error)

    @admin.action(description="Retry failed (their tool's current configuration)")
    def retry_failed_action(self, request: HttpRequest, queryset: models.QuerySet) -> None:
        """Each tool of a selected failed row of its current configuration has its failed
        rows re-queued (``jobs.requeue_failed`` works per tool)."""
        tools: dict[int, ChatTool] = {}
        skipped = 0
        for row in queryset.select_related(self.tool_field).order_by("pk"):
            tool = getattr(row, self.tool_field)
            if row.status == ChatJob.Status.FAILED and row.fingerprint == tool.fingerprint:
                tools[tool.pk] = tool
            else:
                skipped += 1
        for tool in tools.values():
            retry_failed(self, request, tool)
        if skipped:
            self.message_user(
                request, f"{skipped} selected row(s) left alone: only a failed row of its "
                         f"{self.tool_field}'s current configuration can be retried.",
                level=messages.WARNING)


LABELLING_FIELDS = (
    "trial", "labeller", "status", "attempts", "text_shown", "positive_findings",
    "uncertain_findings", "reply", "error_shown", "model_reported", "latency", "queued_at",
    "sent_at", "started_at", "finished_at", "fingerprint", "input_hash",
)


@admin.register(Labelling)
class LabellingAdmin(ChatJobAdmin):
    tool_field = "labeller"
    list_display = ("input_short", "status", "labeller_shown", "fingerprint_shown", "attempts",
                    "error_short", "positive_findings", "latency")
    list_filter = ("status", ("labeller", RELATED_ONLY), ("trial", RELATED_ONLY),
                   ConfigurationFilter, "fingerprint")
    search_fields = ("input_hash", "text")
    list_select_related = ("trial", "labeller")
    fields = LABELLING_FIELDS
    readonly_fields = LABELLING_FIELDS

    @admin.display(description="text")
    def input_short(self, obj: Labelling) -> str:
        return Truncator(" ".join(obj.text.split())).chars(60) or obj.input_hash[:12]

    @admin.display(description="labeller", ordering="labeller__name")
    def labeller_shown(self, obj: Labelling) -> str:
        return tool_label(obj.labeller)

    @admin.display(description="positive findings")
    def positive_findings(self, obj: Labelling) -> str:
        return positive(obj.labels)

    @admin.display(description="uncertain (before the policy)")
    def uncertain_findings(self, obj: Labelling) -> str:
        return ", ".join(obj.uncertain or []) or "–"

    @admin.display(description="text")
    def text_shown(self, obj: Labelling) -> str:
        return text_html(obj.text)


JUDGEMENT_FIELDS = (
    "trial", "judge", "status", "attempts", "reference_shown", "candidate_shown", "errors",
    "reply", "error_shown", "model_reported", "latency", "queued_at", "sent_at", "started_at",
    "finished_at", "fingerprint", "input_hash",
)


@admin.register(Judgement)
class JudgementAdmin(ChatJobAdmin):
    tool_field = "judge"
    list_display = ("candidate_short", "status", "judge", "fingerprint_shown", "attempts",
                    "error_short", "errors", "latency")
    list_filter = ("status", ("judge", RELATED_ONLY), ("trial", RELATED_ONLY),
                   ConfigurationFilter, "fingerprint")
    search_fields = ("input_hash", "candidate")
    list_select_related = ("trial", "judge")
    fields = JUDGEMENT_FIELDS
    readonly_fields = JUDGEMENT_FIELDS

    @admin.display(description="report")
    def candidate_short(self, obj: Judgement) -> str:
        return Truncator(" ".join(obj.candidate.split())).chars(60) or obj.input_hash[:12]

    @admin.display(description="errors (type and significance)")
    def errors(self, obj: Judgement) -> str:
        return error_counts_text(obj.counts)

    @admin.display(description="reference")
    def reference_shown(self, obj: Judgement) -> str:
        return text_html(obj.reference)

    @admin.display(description="report judged")
    def candidate_shown(self, obj: Judgement) -> str:
        return text_html(obj.candidate)


# --- label sets and probabilities ------------------------------------------------------------

def _at_most(upload) -> None:
    """Refused from its size, before it is read into memory."""
    if upload.size > MAX_BYTES:
        raise forms.ValidationError(f"The file is larger than {MAX_BYTES // (1024 * 1024)} MB.")


def _file_field() -> forms.FileField:
    return forms.FileField(label="CSV file", validators=[_at_most],
                           help_text=f"UTF-8, header first; at most "
                                     f"{MAX_BYTES // (1024 * 1024)} MB.")


class TrialChoiceForm(forms.Form):
    """A form of a page that acts on one of the user's trials."""

    trial = forms.ModelChoiceField(queryset=Trial.objects.none())

    def __init__(self, *args: Any, trials: models.QuerySet, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["trial"].queryset = trials
        if len(trials) == 1 and not self.is_bound:
            self.fields["trial"].initial = trials[0].pk


class LabelsUploadForm(TrialChoiceForm):
    name = forms.CharField(max_length=120, validators=[single_line],
                           help_text="How the label set is named wherever it is used.")
    description = forms.CharField(required=False, widget=forms.Textarea(attrs={"rows": 3}),
                                  help_text="Who labelled, how, when.")
    gold = forms.BooleanField(required=False, label="Gold standard",
                              help_text=LabelSet._meta.get_field("gold").help_text)
    csv_file = _file_field()


class TicksForm(TrialChoiceForm):
    name = forms.CharField(max_length=120, validators=[single_line], initial="Readers' ticks")


class ProbabilitiesUploadForm(TrialChoiceForm):
    csv_file = _file_field()


LABEL_SET_FIELDS = ("trial", "name", "provenance", "description", "gold", "labeller",
                    "fingerprint", "file_sha256", "created_by", "created_at", "case_table")


@admin.register(LabelSet)
class LabelSetAdmin(TrialScopedAdmin):
    """Label sets are made by the import pages (or from the readers' ticks) and never edited:
    runs and reports name them. One may be deleted while its trial is not locked (audited)."""

    audited = True
    list_display = ("name", "trial", "provenance", "gold", "case_count", "created_at",
                    "created_by")
    list_filter = (("trial", RELATED_ONLY), "provenance", "gold")
    search_fields = ("name",)
    list_select_related = ("trial", "created_by")
    fields = LABEL_SET_FIELDS
    readonly_fields = LABEL_SET_FIELDS

    def get_queryset(self, request: HttpRequest) -> models.QuerySet:
        return super().get_queryset(request).annotate(n_cases=models.Count("cases"))

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False  # the import pages make them

    def has_change_permission(self, request: HttpRequest, obj: LabelSet | None = None) -> bool:
        return False

    @admin.display(description="cases", ordering="n_cases")
    def case_count(self, obj: LabelSet) -> int:
        return obj.n_cases if hasattr(obj, "n_cases") else obj.cases.count()

    @admin.display(description="labels per case")
    def case_table(self, obj: LabelSet) -> str:
        rows = obj.cases.select_related("case").order_by("case__case_id") if obj.pk else []
        body = format_html_join("", "<tr><td>{}</td><td>{}</td></tr>",
                                ((row.case.case_id, positive(row.labels)) for row in rows))
        if not body:
            return "No case."
        return format_html('<table class="label-set-cases"><thead><tr><th>case</th>'
                           "<th>positive findings</th></tr></thead><tbody>{}</tbody></table>",
                           body)

    def changelist_view(self, request: HttpRequest, extra_context: dict | None = None):
        links = [{"url": reverse(f"admin:metrics_labelset_{name}"), "label": label}
                 for name, label in (("import", "Import labels (CSV)"),
                                     ("from_ticks", "Labels from readers' ticks"),
                                     ("import_probabilities", "Import probabilities (CSV)"))]
        return super().changelist_view(request, {**(extra_context or {}), "tool_links": links})

    def import_view(self, request: HttpRequest) -> HttpResponse:
        """Upload a label set; a refused file lists every problem and nothing is imported."""
        trials = page_trials(request)
        form = LabelsUploadForm(request.POST or None, request.FILES or None, trials=trials,
                                initial=trial_initial(request))
        if request.method == "POST" and form.is_valid():
            data, upload = form.cleaned_data, form.cleaned_data["csv_file"]
            done, label_set = call_service(
                self, request, imports.import_labels, data["trial"], upload.read(),
                name=data["name"], description=data["description"], gold=data["gold"],
                by=request.user)
            if done:
                gold = " as the trial's gold standard" if label_set.gold else ""
                self.message_user(
                    request, f"{label_set.trial}: label set “{label_set.name}” imported from "
                             f"{upload.name}{gold} ({label_set.cases.count()} case(s)).",
                    level=messages.SUCCESS)
                return HttpResponseRedirect(
                    reverse("admin:metrics_labelset_change", args=[label_set.pk]))
        return form_page(self, request, "labelset/import_labels.html", "Import labels (CSV)",
                         form, findings=FINDINGS)

    def from_ticks_view(self, request: HttpRequest) -> HttpResponse:
        """A label set of the findings the readers ticked (``label_set_from_ticks``)."""
        trials = page_trials(request)
        form = TicksForm(request.POST or None, trials=trials,
                         initial=trial_initial(request))
        if request.method == "POST" and form.is_valid():
            data = form.cleaned_data
            done, label_set = call_service(self, request, imports.label_set_from_ticks,
                                           data["trial"], name=data["name"], by=request.user)
            if done:
                self.message_user(
                    request, f"{label_set.trial}: label set “{label_set.name}” made from the "
                             f"readers' ticks ({label_set.cases.count()} case(s)).",
                    level=messages.SUCCESS)
                return HttpResponseRedirect(
                    reverse("admin:metrics_labelset_change", args=[label_set.pk]))
        return form_page(self, request, "labelset/from_ticks.html", "Labels from readers' ticks",
                         form)

    def import_probabilities_view(self, request: HttpRequest) -> HttpResponse:
        """Upload a source's per-finding probabilities (for ROC curves and AUC)."""
        trials = page_trials(request)
        form = ProbabilitiesUploadForm(request.POST or None, request.FILES or None,
                                       trials=trials, initial=trial_initial(request))
        if request.method == "POST" and form.is_valid():
            trial, upload = form.cleaned_data["trial"], form.cleaned_data["csv_file"]
            done, count = call_service(self, request, imports.import_probabilities, trial,
                                       upload.read(), by=request.user)
            if done:
                self.message_user(request, f"{trial}: {count} row(s) of probabilities imported "
                                           f"from {upload.name}.", level=messages.SUCCESS)
                return HttpResponseRedirect(reverse("admin:metrics_labelset_changelist"))
        return form_page(self, request, "labelset/import_probabilities.html",
                         "Import probabilities (CSV)", form, findings=FINDINGS)

    def get_urls(self) -> list[URLPattern]:
        wrap = self.admin_site.admin_view
        return [
            path("import/", wrap(self.import_view), name="metrics_labelset_import"),
            path("from-ticks/", wrap(self.from_ticks_view), name="metrics_labelset_from_ticks"),
            path("import-probabilities/", wrap(self.import_probabilities_view),
                 name="metrics_labelset_import_probabilities"),
        ] + super().get_urls()


# --- metric runs -----------------------------------------------------------------------------

class ComputeForm(TrialChoiceForm):
    labeller = forms.ModelChoiceField(
        queryset=Labeller.objects.none(), required=False,
        empty_label="The trial's rule-based labeller (made if missing)",
        help_text="Whose labels the finding metrics use. The rule-based labeller first labels "
                  "what it has not labelled; an LLM labeller's labels must be done (“Label all "
                  "reports” on its page), or the finding metrics say how many are missing.")
    seed = forms.IntegerField(required=False, min_value=0, max_value=2**63 - 1,
                              help_text="Of the bootstrap and the permutation tests. Empty: a "
                                        "random one, stored with the run.")
    resamples = forms.IntegerField(min_value=100, max_value=100_000,
                                   help_text="Bootstrap resamples (the default is the "
                                             "protocol's).")

    def __init__(self, *args: Any, trials: models.QuerySet, **kwargs: Any) -> None:
        super().__init__(*args, trials=trials, **kwargs)
        field = self.fields["labeller"]
        field.queryset = Labeller.objects.filter(trial__in=trials).select_related("trial")
        field.label_from_instance = lambda labeller: f"{labeller.trial}: {tool_label(labeller)}"

    def clean(self) -> dict:
        data = super().clean()
        trial, labeller = data.get("trial"), data.get("labeller")
        if trial is not None and labeller is not None and labeller.trial_id != trial.pk:
            self.add_error("labeller", f"{labeller.name} is a labeller of {labeller.trial}, "
                                       f"not of {trial}.")
        return data


def _metric_text(value: dict | None) -> str:
    if not value:
        return "–"
    if value.get("value") is None:
        return format_html('<span title="{}">n/a</span>', value.get("reason") or "")
    if value.get("ci_low") is None or value.get("ci_high") is None:
        return f"{value['value']:.3f}"
    return f"{value['value']:.3f} ({value['ci_low']:.3f} to {value['ci_high']:.3f})"


RUN_FIELDS = ("trial", "labeller", "fingerprint", "labeller_description", "seed", "resamples",
              "seconds_shown", "created_by", "created_at", "gold_shown", "summary")


@admin.register(MetricsRun)
class MetricsRunAdmin(ReadOnlyAdmin):
    """Stored computations, never changed: the analysis shows the newest. Each has its tables
    as a zip of CSVs; "Compute metrics now" makes a new one."""

    list_display = ("created_at", "trial", "labeller", "seed", "resamples", "seconds_shown",
                    "created_by", "download_link")
    list_filter = (("trial", RELATED_ONLY), ("labeller", RELATED_ONLY))
    list_select_related = ("trial", "labeller", "created_by")
    fields = RUN_FIELDS
    readonly_fields = RUN_FIELDS

    def get_queryset(self, request: HttpRequest) -> models.QuerySet:
        """The results are large and the list needs none (a page reads them when shown)."""
        return super().get_queryset(request).defer("results")

    @admin.display(description="seconds", ordering="seconds")
    def seconds_shown(self, obj: MetricsRun) -> str:
        return f"{obj.seconds:.1f}"

    @admin.display(description="tables")
    def download_link(self, obj: MetricsRun) -> str:
        url = reverse("admin:metrics_metricsrun_download", args=[obj.pk])
        return format_html('<a href="{}">CSV zip</a>', url)

    @admin.display(description="labeller (as run)")
    def labeller_description(self, obj: MetricsRun) -> str:
        return ((obj.results or {}).get("labeller") or {}).get("description") or "–"

    @admin.display(description="gold-standard labels")
    def gold_shown(self, obj: MetricsRun) -> str:
        results = obj.results or {}
        gold = results.get("gold")
        if not gold:
            return results.get("gold_reason") or "–"
        return f"{gold['name']} ({gold['provenance']}; {gold['cases']} case(s))"

    @admin.display(description="main metrics (95% CI)")
    def summary(self, obj: MetricsRun) -> str:
        rows = [(comparison.get("title", ""), source.get("name", ""), source.get("n", ""),
                 *(_metric_text((source.get("metrics") or {}).get(key))
                   for key, _ in SUMMARY_METRICS))
                for comparison in (obj.results or {}).get("comparisons", [])
                for source in comparison.get("sources", [])]
        if not rows:
            return ("No comparison: no retrospective campaign reports, and no prospective "
                    "report with its reference yet.")
        head = format_html_join("", "<th>{}</th>", ((name,) for _, name in SUMMARY_METRICS))
        body = format_html_join("", "<tr>" + "<td>{}</td>" * (3 + len(SUMMARY_METRICS))
                                + "</tr>", rows)
        return format_html('<table class="metrics-summary"><thead><tr><th>comparison</th>'
                           "<th>source</th><th>n</th>{}</tr></thead><tbody>{}</tbody></table>"
                           "<p>Every table, every metric: download the CSV zip.</p>",
                           head, body)

    def changelist_view(self, request: HttpRequest, extra_context: dict | None = None):
        links = [{"url": reverse("admin:metrics_metricsrun_compute"),
                  "label": "Compute metrics now"}]
        return super().changelist_view(request, {**(extra_context or {}), "tool_links": links})

    def change_view(self, request: HttpRequest, object_id: str, form_url: str = "",
                    extra_context: dict | None = None):
        links = [{"url": reverse("admin:metrics_metricsrun_download", args=[object_id]),
                  "label": "Download tables (CSV zip)"}] if str(object_id).isdigit() else []
        run = self.get_object(request, object_id)
        if run is not None and self.has_view_permission(request, run):
            # its summary is by source and arm, as the analysis page: every look is recorded
            audit.record(action="analysis.viewed", obj=run.trial, actor=request.user,
                         after={"what": f"metrics run {run.pk}"})
        return super().change_view(request, object_id, form_url,
                                   {**(extra_context or {}), "tool_links": links})

    def download_view(self, request: HttpRequest, pk: int) -> HttpResponse:
        """The run's tables (``metrics.exports``) as CSVs and the whole run as JSON, zipped.
        The results are by arm (unblinded): each download is an audit event."""
        from . import exports

        run = self.get_object(request, str(pk))
        if run is None:
            raise Http404
        if not self.has_view_permission(request, run):
            raise PermissionDenied
        buffer = io.BytesIO()
        with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
            for stem, frame in exports.tables(run.results).items():
                archive.writestr(f"{stem}.csv", csv_bytes(frame))
            archive.writestr("report_metrics.json", json.dumps(run.results, indent=1))
        audit.record(action="metricsrun.downloaded", obj=run, actor=request.user)
        response = HttpResponse(buffer.getvalue(), content_type="application/zip")
        response["Content-Disposition"] = (f'attachment; filename="{run.trial.slug}-metrics-'
                                           f'{run.pk}.zip"')
        return response

    def compute_view(self, request: HttpRequest) -> HttpResponse:
        """Compute and store a run now, in the request (a large trial takes a while)."""
        from . import compute

        trials = page_trials(request)
        form = ComputeForm(request.POST or None, trials=trials, initial={
            **trial_initial(request), "resamples": compute.RESAMPLES})
        if request.method == "POST" and form.is_valid():
            run = self._compute(request, form.cleaned_data)
            if run is not None:
                return HttpResponseRedirect(
                    reverse("admin:metrics_metricsrun_change", args=[run.pk]))
        return form_page(self, request, "metricsrun/compute.html", "Compute metrics now", form)

    def _compute(self, request: HttpRequest, data: dict) -> MetricsRun | None:
        from . import compute

        trial, labeller = data["trial"], data["labeller"]
        if labeller is None:
            labeller = jobs.rules_labeller(trial)
        if labeller.kind == Labeller.Kind.RULES:  # needs no worker: label what it has not
            jobs.label(labeller, all_texts(trial))
        seed = data["seed"] if data["seed"] is not None else secrets.randbelow(2**31)
        alpha = levels.trial_alpha(trial)  # the CIs at the signed analysis plan's level
        done, run = call_service(self, request, compute.run, trial, labeller, seed=seed,
                                 by=request.user, resamples=data["resamples"], alpha=alpha)
        if not done:
            return None
        self.message_user(
            request, f"{trial}: metrics computed in {run.seconds:.1f} s with {labeller.name} "
                     f"(seed {seed}, {run.resamples} resamples).", level=messages.SUCCESS)
        for comparison in run.results.get("comparisons", []):
            if comparison.get("labels_reason"):
                self.message_user(request, f"{comparison['title']}: no finding metrics, "
                                           f"{comparison['labels_reason']}.",
                                  level=messages.WARNING)
        if not run.results.get("comparisons"):
            self.message_user(request, f"{trial}: nothing to compare yet (no retrospective "
                                       "campaign reports, no prospective report with its "
                                       "reference).", level=messages.WARNING)
        return run

    def get_urls(self) -> list[URLPattern]:
        wrap = self.admin_site.admin_view
        return [
            path("compute/", wrap(self.compute_view), name="metrics_metricsrun_compute"),
            path("<int:pk>/download/", wrap(self.download_view),
                 name="metrics_metricsrun_download"),
        ] + super().get_urls()


# --- the trial's page ------------------------------------------------------------------------

def _tool_line(tool: ChatTool) -> tuple[str, str, str]:
    opts = tool._meta
    url = reverse(f"admin:{opts.app_label}_{opts.model_name}_change", args=[tool.pk])
    return url, tool_label(tool), progress_links(tool)


def metrics_panel(trial: Trial) -> str:
    """The trial's labellers and judges with their rows per status, its gold-standard label
    set, and its newest metrics run."""
    labellers = list(Labeller.objects.filter(trial=trial).order_by("name"))
    judges = list(Judge.objects.filter(trial=trial).order_by("name"))
    if labellers:
        labeller_html = format_html_join("", '<li><a href="{}">{}</a>: {}</li>',
                                         (_tool_line(t) for t in labellers))
        labeller_html = format_html("<ul>{}</ul>", labeller_html)
    else:
        add = reverse("admin:metrics_labeller_add") + f"?trial={trial.pk}"
        labeller_html = format_html('None yet: <a href="{}">add one</a> (“Compute metrics '
                                    'now” makes the rule-based one).', add)
    judge_html = format_html("<ul>{}</ul>", format_html_join(
        "", '<li><a href="{}">{}</a>: {}</li>', (_tool_line(t) for t in judges))
    ) if judges else "None."
    gold = LabelSet.objects.filter(trial=trial, gold=True).annotate(
        n_cases=models.Count("cases")).first()
    if gold is not None:
        gold_html = format_html('<a href="{}">{}</a> ({}; {} case(s))',
                                reverse("admin:metrics_labelset_change", args=[gold.pk]),
                                gold.name, gold.get_provenance_display(), gold.n_cases)
    else:
        url = reverse("admin:metrics_labelset_import") + f"?trial={trial.pk}"
        gold_html = format_html('none (<a href="{}">import labels</a>)', url)
    run = MetricsRun.objects.filter(trial=trial).defer("results").select_related(
        "labeller").order_by("-created_at", "-pk").first()
    compute_url = reverse("admin:metrics_metricsrun_compute") + f"?trial={trial.pk}"
    if run is not None:
        run_html = format_html(
            '<a href="{}">{}</a> with {}, seed {}, {} resamples, {} s (<a href="{}">CSV zip</a>'
            ' · <a href="{}">compute again</a>)',
            reverse("admin:metrics_metricsrun_change", args=[run.pk]),
            f"{run.created_at:%Y-%m-%d %H:%M}", run.labeller.name, run.seed, run.resamples,
            f"{run.seconds:.1f}", reverse("admin:metrics_metricsrun_download", args=[run.pk]),
            compute_url)
    else:
        run_html = format_html('none (<a href="{}">compute metrics now</a>)', compute_url)
    rows = (("Labellers (current configuration)", labeller_html),
            ("Error judges", judge_html), ("Gold-standard labels", gold_html),
            ("Newest metrics run", run_html))
    return format_html('<table class="metrics-panel"><tbody>{}</tbody></table>',
                       format_html_join("", '<tr><th scope="row">{}</th><td>{}</td></tr>', rows))


def extend_trial_admin() -> None:
    """The trial's page gets the "Report metrics" panel (``trial`` never imports ``metrics``).
    Called below, when the admin loads this module; a second call changes nothing."""
    TrialAdmin.add_panel("report_metrics", "Report metrics", metrics_panel,
                         description="labels, gold standard and metric runs")


extend_trial_admin()
