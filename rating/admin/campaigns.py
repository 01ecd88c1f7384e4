"""Rating campaigns in the coordinator's admin: design, build, open/close, CSV import, review of
the blinding, progress, and the unblinded key.

Scoped like every trial admin (``trial.admin.base``): a coordinator sees only their trials'
campaigns. The design (instruments, raters, seed ...) is fixed once items exist, because the
orders and sides were drawn from it. Status changes only through the buttons, each audited
(the same services as the API's: ``rating.lifecycle``). The coordinator is unblinded here: sources,
original texts and the lines removed for raters are shown so the blinding can be checked.
"""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin, messages
from django.db import transaction
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import URLPattern, path, reverse
from django.utils.html import format_html, format_html_join

from trial.admin.base import TrialScopedAdmin, call_service, coordinated_ids
from trial.admin.tools import Tool, ToolsMixin
from trial.models import Membership, Role
from trial.permissions import is_superuser

from .. import instruments as inst
from ..build import build
from ..lifecycle import (
    DESIGN_FIELDS,
    audit_raters,
    canonical_instruments,
    deletable,
    design_problems,
    rater_names,
    set_status,
)
from ..models import Campaign
from ..queries import progress, report_rows
from ..report_import import MAX_BYTES, import_reports

RELATED_ONLY = admin.RelatedOnlyFieldListFilter


def build_one(model_admin: admin.ModelAdmin, request: HttpRequest, campaign: Campaign) -> None:
    done, added = call_service(model_admin, request, build, campaign, by=request.user)
    if done:
        given = campaign.rater_items.count()
        model_admin.message_user(
            request, f"{campaign}: {added} item(s) added; {given} rater item(s) in all.",
            level=messages.SUCCESS)


def open_one(model_admin: admin.ModelAdmin, request: HttpRequest, campaign: Campaign) -> None:
    done, _ = call_service(model_admin, request, set_status, campaign,
                           Campaign.Status.OPEN, by=request.user)
    if done:
        model_admin.message_user(request, f"{campaign}: open for rating.",
                                 level=messages.SUCCESS)


def close_one(model_admin: admin.ModelAdmin, request: HttpRequest, campaign: Campaign) -> None:
    done, _ = call_service(model_admin, request, set_status, campaign,
                           Campaign.Status.CLOSED, by=request.user)
    if done:
        model_admin.message_user(request, f"{campaign}: closed.", level=messages.SUCCESS)


TOOLS = (Tool("build", "Build items", build_one), Tool("open", "Open for rating", open_one),
         Tool("close", "Close", close_one))


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

    def clean(self) -> dict:
        data = super().clean()
        trial = data.get("trial") or getattr(self.instance, "trial", None)
        # The (trial, name) constraint says a clash in Django's own words: not checked here.
        changed = {name: data[name] for name in self.changed_data
                   if name in data and name != "name"}
        for field, problem in design_problems(trial, changed, self.instance).items():
            self.add_error(field if field in self.fields else None, problem)
        if data.get("instruments"):
            data["instruments"] = canonical_instruments(data["instruments"])
        return data


# --- the campaign admin ------------------------------------------------------------------------

class ReportUploadForm(forms.Form):
    csv_file = forms.FileField(label="CSV file",
                               help_text=f"At most {MAX_BYTES // (1024 * 1024)} MB.")


@admin.register(Campaign)
class CampaignAdmin(ToolsMixin, TrialScopedAdmin):
    """Coordinators design campaigns and run them with the buttons of the change page."""

    audited = True
    form = CampaignForm
    list_display = ("name", "trial", "kind", "status", "instrument_list", "item_count",
                    "progress_short")
    list_filter = (("trial", RELATED_ONLY), "kind", "status")
    search_fields = ("name",)
    list_select_related = ("trial",)
    filter_horizontal = ("raters",)
    tools = TOOLS

    def get_fieldsets(self, request: HttpRequest, obj: Campaign | None = None):
        design = ("trial", "name", "kind", "instruments", "radpeer_variant", "raters_per_item",
                  "allow_revision", "include_ai_alone", "seed", "raters")
        if obj is None:
            return ((None, {"fields": design}),)
        if obj.items.exists():  # read-only: the instruments by name, not as raw JSON
            design = tuple("instrument_names" if f == "instruments" else f for f in design)
        return (
            (None, {"fields": (*design, "status", "created_by", "created_at")}),
            ("Run", {"fields": ("rater_progress",)}),
            ("Review blinding", {"fields": ("blinding",),
                                 "description": "What raters see of each report, against "
                                                "the original; the removed lines in red."}),
        )

    def get_readonly_fields(self, request: HttpRequest, obj: Campaign | None = None):
        if obj is None:
            return ()
        fixed = ["trial", "status", "created_by", "created_at", "rater_progress", "blinding"]
        if obj.items.exists():  # orders and sides were drawn from these
            fixed += [*DESIGN_FIELDS, "instrument_names"]
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
        if obj is not None and not deletable(obj):
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

    @admin.display(description="instruments")
    def instrument_names(self, obj: Campaign) -> str:
        return ", ".join(inst.instrument(code).name for code in obj.instruments
                         if code in inst.ALL) or "–"

    @admin.display(description="items")
    def item_count(self, obj: Campaign) -> int:
        return obj.items.count()

    @admin.display(description="rated / given")
    def progress_short(self, obj: Campaign) -> str:
        rows = progress(obj)
        return f"{sum(r['submitted'] for r in rows)} / {sum(r['given'] for r in rows)}"

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

    def import_view(self, request: HttpRequest, pk: int) -> HttpResponse:
        """Upload a retrospective campaign's reports; a refused file lists every problem."""
        campaign = self.object_for_tool(request, pk)
        form = ReportUploadForm(request.POST or None, request.FILES or None)
        if request.method == "POST" and form.is_valid():
            upload = form.cleaned_data["csv_file"]
            done, count = call_service(self, request, import_reports, campaign, upload.read(),
                                       by=request.user)
            if done:
                self.message_user(request, f"{campaign}: {count} report(s) imported from "
                                           f"{upload.name}. Build the items next.",
                                  level=messages.SUCCESS)
                return HttpResponseRedirect(self.change_url(campaign))
        context = {**self.admin_site.each_context(request), "title": "Import reports",
                   "opts": self.model._meta, "original": campaign, "form": form}
        return TemplateResponse(request, "admin/rating/campaign/import_reports.html", context)

    def render_change_form(self, request: HttpRequest, context: dict, *args: Any, **kwargs: Any):
        """The tools' POST buttons and the campaign's pages, above the form."""
        obj = context.get("original")
        if obj is not None:
            context["object_tools"] = self.tool_buttons(obj)
            links = [{"url": reverse("admin:rating_rateritem_changelist")
                      + f"?campaign__id__exact={obj.pk}", "label": "Unblinded key"}]
            if obj.kind == Campaign.Kind.RETROSPECTIVE:
                links.insert(0, {"url": reverse("admin:rating_campaign_import", args=[obj.pk]),
                                 "label": "Import reports (CSV)"})
            context["tool_links"] = links
        return super().render_change_form(request, context, *args, **kwargs)

    def get_urls(self) -> list[URLPattern]:
        wrap = self.admin_site.admin_view
        tools = self.tool_urls()
        tools.append(path("<int:pk>/import-reports/", wrap(self.import_view),
                          name="rating_campaign_import"))
        return tools + super().get_urls()
