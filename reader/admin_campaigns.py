"""Rating campaigns in the coordinator's admin: design, build, open/close, CSV import, review of
the blinding, progress, and the unblinded key.

Scoped like every trial admin (``trial.admin.base``): a coordinator sees only their trials'
campaigns. The design (instruments, raters, seed ...) is fixed once items exist, because the
orders and sides were drawn from it. Status changes only through the buttons, each audited
(shared with the API: ``reader.campaign_api``). The coordinator is unblinded here: sources,
original texts and the lines removed for raters are shown so the blinding can be checked.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.db import models, transaction
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.template import engines
from django.urls import URLPattern, path, reverse
from django.utils.html import format_html, format_html_join
from django.views.decorators.http import require_POST

from trial.admin.base import ReadOnlyAdmin, TrialScopedAdmin, coordinated_ids
from trial.models import Membership, Role
from trial.permissions import is_superuser

from . import campaigns as svc
from . import instruments as inst
from .campaign_api import (
    DESIGN_FIELDS,
    audit_raters,
    progress,
    rater_names,
    report_rows,
    set_status,
)
from .rating_models import Campaign, RaterItem
from .reading import ReadingError
from .report_import import MAX_BYTES, ReportImportError, import_reports

RELATED_ONLY = admin.RelatedOnlyFieldListFilter


# --- messages ----------------------------------------------------------------------------------

def refusal_html(exc: Exception) -> str:
    """A service refusal; a refused file shows each problem on its own line."""
    problems = getattr(exc, "problems", None)
    if isinstance(exc, ReportImportError) and problems:
        return format_html("Nothing imported:<ul>{}</ul>",
                           format_html_join("", "<li>{}</li>", ((p,) for p in problems)))
    return str(exc) or exc.__class__.__name__


def run(model_admin: admin.ModelAdmin, request: HttpRequest, func: Callable[..., Any],
        *args: Any, **kwargs: Any) -> tuple[bool, Any]:
    """Call a campaign service; its refusal becomes an error message, never a traceback."""
    try:
        return True, func(*args, **kwargs)
    except ReadingError as exc:  # CampaignError, ReportImportError, Locked ...
        model_admin.message_user(request, refusal_html(exc), level=messages.ERROR)
        return False, None


def build_one(model_admin: admin.ModelAdmin, request: HttpRequest, campaign: Campaign) -> None:
    done, added = run(model_admin, request, svc.build, campaign, by=request.user)
    if done:
        given = campaign.rater_items.count()
        model_admin.message_user(
            request, f"{campaign}: {added} item(s) added; {given} rater item(s) in all.",
            level=messages.SUCCESS)


def open_one(model_admin: admin.ModelAdmin, request: HttpRequest, campaign: Campaign) -> None:
    done, _ = run(model_admin, request, set_status, campaign, Campaign.Status.OPEN,
                  by=request.user)
    if done:
        model_admin.message_user(request, f"{campaign}: open for rating.",
                                 level=messages.SUCCESS)


def close_one(model_admin: admin.ModelAdmin, request: HttpRequest, campaign: Campaign) -> None:
    done, _ = run(model_admin, request, set_status, campaign, Campaign.Status.CLOSED,
                  by=request.user)
    if done:
        model_admin.message_user(request, f"{campaign}: closed.", level=messages.SUCCESS)


TOOLS = {"build": ("Build items", build_one), "open": ("Open for rating", open_one),
         "close": ("Close", close_one)}


# --- the form ----------------------------------------------------------------------------------

class CampaignForm(forms.ModelForm):
    instruments = forms.MultipleChoiceField(
        choices=inst.CHOICES, widget=forms.CheckboxSelectMultiple,
        help_text="Single-report instruments rate each report; pair instruments compare two "
                  "reports shown as Report A / Report B.")

    class Meta:
        model = Campaign
        fields = ("trial", "name", "kind", "instruments", "radpeer_variant", "raters_per_item",
                  "allow_revision", "include_ai_alone", "seed", "raters")

    def clean_instruments(self) -> list[str]:
        chosen = self.cleaned_data["instruments"]
        return [code for code in inst.ALL if code in chosen]

    def clean_raters_per_item(self) -> int | None:
        value = self.cleaned_data.get("raters_per_item")
        if value is not None and value < 1:
            raise forms.ValidationError("At least 1 (or empty: every rater rates every item).")
        return value

    def clean(self) -> dict:
        data = super().clean()
        trial = data.get("trial") or getattr(self.instance, "trial", None)
        raters = data.get("raters")
        if trial is not None and raters is not None:
            strangers = [m for m in raters if m.trial_id != trial.pk or m.role != Role.RATER]
            if strangers:
                self.add_error("raters", "Only raters of the campaign's trial: "
                               + ", ".join(str(m) for m in strangers))
        return data


# --- the campaign admin ------------------------------------------------------------------------

PAGE = engines["django"].from_string("""{% extends "admin/base_site.html" %}
{% load i18n admin_urls %}
{% block breadcrumbs %}<div class="breadcrumbs">
<a href="{% url 'admin:index' %}">{% translate 'Home' %}</a>
&rsaquo; <a href="{% url opts|admin_urlname:'changelist' %}">
{{ opts.verbose_name_plural|capfirst }}</a>
&rsaquo; <a href="{% url opts|admin_urlname:'change' original.pk %}">{{ original }}</a>
&rsaquo; {{ title }}</div>{% endblock %}
{% block content %}
<p>One row per report: <code>case_id,source,findings,impression</code> (UTF-8 CSV, header
first). The source <code>published</code> is the case's published report, the reference; any
other name is a source to rate (a model, say). Signature lines, model markers and source names
are removed from what raters see; review them on the campaign's page. A file with any wrong
row is refused whole.</p>
<form method="post" enctype="multipart/form-data">{% csrf_token %}
{% include "admin/trial/_fields.html" %}
<div class="submit-row"><input type="submit" class="default" value="Import reports"></div>
</form>
{% endblock %}""")


class ReportUploadForm(forms.Form):
    csv_file = forms.FileField(label="CSV file",
                               help_text=f"At most {MAX_BYTES // (1024 * 1024)} MB.")


@admin.register(Campaign)
class CampaignAdmin(TrialScopedAdmin):
    """Coordinators design campaigns and run them with the buttons of the change page."""

    audited = True
    form = CampaignForm
    list_display = ("name", "trial", "kind", "status", "instrument_list", "item_count",
                    "progress_short")
    list_filter = (("trial", RELATED_ONLY), "kind", "status")
    search_fields = ("name",)
    list_select_related = ("trial",)
    filter_horizontal = ("raters",)
    actions = ["build_action", "open_action", "close_action"]

    def get_fieldsets(self, request: HttpRequest, obj: Campaign | None = None):
        design = ("trial", "name", "kind", "instruments", "radpeer_variant", "raters_per_item",
                  "allow_revision", "include_ai_alone", "seed", "raters")
        if obj is None:
            return ((None, {"fields": design}),)
        return (
            (None, {"fields": (*design, "status", "created_by", "created_at")}),
            ("Run", {"fields": ("tools", "rater_progress")}),
            ("Review blinding", {"fields": ("blinding",),
                                 "description": "What raters see of each report, against "
                                                "the original; the removed lines in red."}),
        )

    def get_readonly_fields(self, request: HttpRequest, obj: Campaign | None = None):
        if obj is None:
            return ()
        fixed = ["trial", "status", "created_by", "created_at", "tools", "rater_progress",
                 "blinding"]
        if obj.items.exists():  # orders and sides were drawn from these
            fixed += [*DESIGN_FIELDS]
        return fixed

    def get_form(self, request: HttpRequest, obj: Campaign | None = None, **kwargs: Any):
        request._campaign_trial_id = obj.trial_id if obj is not None else None
        return super().get_form(request, obj, **kwargs)

    def formfield_for_manytomany(self, db_field, request: HttpRequest, **kwargs: Any):
        if db_field.name == "raters":
            trial_id = getattr(request, "_campaign_trial_id", None)
            qs = Membership.objects.filter(role=Role.RATER).select_related("user", "trial")
            if trial_id is not None:
                qs = qs.filter(trial_id=trial_id)
            elif not is_superuser(request.user):
                qs = qs.filter(trial_id__in=coordinated_ids(request))
            kwargs["queryset"] = qs.order_by("user__username")
        return super().formfield_for_manytomany(db_field, request, **kwargs)

    def has_delete_permission(self, request: HttpRequest, obj: Campaign | None = None) -> bool:
        """Never once items exist: they (and any ratings) are study data. Close it instead."""
        if obj is not None and obj.items.exists():
            return False
        return super().has_delete_permission(request, obj)

    def save_model(self, request: HttpRequest, obj: Campaign, form, change: bool) -> None:
        if not change:
            obj.created_by = request.user
        request._campaign_raters_before = rater_names(obj) if change else []
        super().save_model(request, obj, form, change)

    def save_related(self, request: HttpRequest, form, formsets, change: bool) -> None:
        with transaction.atomic():
            super().save_related(request, form, formsets, change)
            audit_raters(form.instance, by=request.user,
                         before=getattr(request, "_campaign_raters_before", []))

    # --- columns and panels

    @admin.display(description="instruments")
    def instrument_list(self, obj: Campaign) -> str:
        return ", ".join(obj.instruments) or "–"

    @admin.display(description="items")
    def item_count(self, obj: Campaign) -> int:
        return obj.items.count()

    @admin.display(description="rated / given")
    def progress_short(self, obj: Campaign) -> str:
        rows = progress(obj)
        return f"{sum(r['submitted'] for r in rows)} / {sum(r['given'] for r in rows)}"

    @admin.display(description="actions")
    def tools(self, obj: Campaign) -> str:
        """POST buttons inside the change form (``formaction``: its CSRF token goes along)."""
        if obj.pk is None:
            return "–"
        buttons = format_html_join(
            " ", '<button type="submit" class="button" formaction="{}" formmethod="post" '
                 'formnovalidate name="_tool" value="{}">{}</button>',
            ((reverse(f"admin:reader_campaign_{name}", args=[obj.pk]), name, label)
             for name, (label, _) in TOOLS.items()))
        links = [(reverse("admin:reader_rateritem_changelist") + f"?campaign__id__exact={obj.pk}",
                  "Unblinded key")]
        if obj.kind == Campaign.Kind.RETROSPECTIVE:
            links.insert(0, (reverse("admin:reader_campaign_import", args=[obj.pk]),
                             "Import reports (CSV)"))
        return format_html("{}<p>{}</p>", buttons,
                           format_html_join(" · ", '<a href="{}">{}</a>', links))

    @admin.display(description="progress per rater")
    def rater_progress(self, obj: Campaign) -> str:
        rows = progress(obj) if obj.pk else []
        if not rows:
            return "No rater yet."
        body = format_html_join("", "<tr><td>{}</td><td>{}</td><td>{}</td></tr>",
                                ((r["rater"], r["submitted"], r["given"]) for r in rows))
        return format_html('<table class="rating-progress"><thead><tr><th>rater</th>'
                           "<th>submitted</th><th>given</th></tr></thead><tbody>{}</tbody>"
                           "</table>", body)

    @admin.display(description="reports")
    def blinding(self, obj: Campaign) -> str:
        rows = report_rows(obj) if obj.pk else []
        if not rows:
            return "No report yet (build the items, or import reports)."

        def text(findings: str, impression: str) -> str:
            return format_html('<pre style="white-space:pre-wrap">{}\n\n{}</pre>',
                               findings, impression)

        body = format_html_join("", "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td>"
                                    '<td style="color:#ba2121">{}</td></tr>', (
            (r["case_id"], r["source"], text(r["findings"], r["impression"]),
             text(r["shown_findings"], r["shown_impression"]),
             format_html_join("", "<div>{}</div>", ((line,) for line in r["stripped"]))
             if r["stripped"] else "–")
            for r in rows))
        return format_html('<table class="blinding-review"><thead><tr><th>case</th>'
                           "<th>source</th><th>original</th><th>shown to raters</th>"
                           "<th>removed</th></tr></thead><tbody>{}</tbody></table>", body)

    # --- actions and pages

    def _each(self, request: HttpRequest, queryset: models.QuerySet, tool: str) -> None:
        for campaign in queryset.order_by("pk"):
            TOOLS[tool][1](self, request, campaign)

    @admin.action(description="Build items")
    def build_action(self, request: HttpRequest, queryset: models.QuerySet) -> None:
        self._each(request, queryset, "build")

    @admin.action(description="Open for rating")
    def open_action(self, request: HttpRequest, queryset: models.QuerySet) -> None:
        self._each(request, queryset, "open")

    @admin.action(description="Close")
    def close_action(self, request: HttpRequest, queryset: models.QuerySet) -> None:
        self._each(request, queryset, "close")

    def campaign_for_change(self, request: HttpRequest, pk: int) -> Campaign:
        campaign = self.get_object(request, str(pk))
        if campaign is None or not self.has_change_permission(request, campaign):
            raise PermissionDenied
        return campaign

    def tool_view(self, tool: str) -> Callable[..., HttpResponse]:
        @require_POST
        def view(request: HttpRequest, pk: int) -> HttpResponse:
            campaign = self.campaign_for_change(request, pk)
            TOOLS[tool][1](self, request, campaign)
            return HttpResponseRedirect(reverse("admin:reader_campaign_change", args=[pk]))

        return view

    def import_view(self, request: HttpRequest, pk: int) -> HttpResponse:
        """Upload a retrospective campaign's reports; a refused file lists every problem."""
        campaign = self.campaign_for_change(request, pk)
        form = ReportUploadForm(request.POST or None, request.FILES or None)
        if request.method == "POST" and form.is_valid():
            upload = form.cleaned_data["csv_file"]
            done, count = run(self, request, import_reports, campaign, upload.read(),
                              by=request.user)
            if done:
                self.message_user(request, f"{campaign}: {count} report(s) imported from "
                                           f"{upload.name}. Build the items next.",
                                  level=messages.SUCCESS)
                return HttpResponseRedirect(reverse("admin:reader_campaign_change",
                                                    args=[pk]))
        context = {**self.admin_site.each_context(request), "title": "Import reports",
                   "opts": self.model._meta, "original": campaign, "form": form}
        return HttpResponse(PAGE.render(context, request))

    def get_urls(self) -> list[URLPattern]:
        wrap = self.admin_site.admin_view
        tools = [path(f"<int:pk>/{name}/", wrap(self.tool_view(name)),
                      name=f"reader_campaign_{name}") for name in TOOLS]
        tools.append(path("<int:pk>/import-reports/", wrap(self.import_view),
                          name="reader_campaign_import"))
        return tools + super().get_urls()


# --- the unblinded key -------------------------------------------------------------------------

KEY_FIELDS = ("code", "campaign", "rater", "position", "case", "sources", "swapped",
              "values", "seconds_shown", "submitted_at", "revisions")


@admin.register(RaterItem)
class UnblindedKeyAdmin(ReadOnlyAdmin):
    """The unblinded key for coordinators: which report is behind each rater's code and side.

    Statisticians get the same rows from ``GET /api/trials/{slug}/campaigns/{id}/key/``.
    """

    trial_path = "campaign__trial"
    list_display = KEY_FIELDS
    list_filter = (("campaign__trial", RELATED_ONLY), ("campaign", RELATED_ONLY), "swapped",
                   "item__kind")
    search_fields = ("code", "rater__user__username", "item__case__case_id")
    list_select_related = ("campaign", "rater__user", "item__case", "item__report",
                           "item__other", "rating")
    fields = KEY_FIELDS
    readonly_fields = KEY_FIELDS

    def changelist_view(self, request: HttpRequest, extra_context: dict | None = None):
        return super().changelist_view(request, {**(extra_context or {}),
                                                 "title": "Unblinded key of rating campaigns"})

    @admin.display(description="rater", ordering="rater__user__username")
    def rater(self, obj: RaterItem) -> str:
        return obj.rater.user.get_username()

    @admin.display(description="case", ordering="item__case__case_id")
    def case(self, obj: RaterItem) -> str:
        return obj.item.case.case_id

    @admin.display(description="report (A) / other (B)")
    def sources(self, obj: RaterItem) -> str:
        item = obj.item
        if not item.other_id:
            return item.report.source
        first, second = item.report.source, item.other.source
        if obj.swapped:
            first, second = second, first
        return f"A: {first} / B: {second}"

    @admin.display(description="values")
    def values(self, obj: RaterItem) -> str:
        rating = getattr(obj, "rating", None)
        if rating is None:
            return "–"
        return ", ".join(f"{k}={v}" for k, v in rating.values.items())

    @admin.display(description="seconds")
    def seconds_shown(self, obj: RaterItem) -> str:
        rating = getattr(obj, "rating", None)
        return f"{(rating.seconds if rating else obj.seconds):.1f}"

    @admin.display(description="submitted")
    def submitted_at(self, obj: RaterItem) -> str:
        rating = getattr(obj, "rating", None)
        return f"{rating.submitted_at:%Y-%m-%d %H:%M}" if rating else "–"

    @admin.display(description="revisions")
    def revisions(self, obj: RaterItem) -> int:
        rating = getattr(obj, "rating", None)
        return rating.revisions if rating else 0
