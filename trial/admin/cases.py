"""Cases (screening, consent, enrolment through ``trial.enrolment``), images, imports, assignments.

Status fields are never edited by hand: they change only through the enrolment functions, which
check the rules and write the audit log. Images, import jobs and assignments are read-only.
"""

from __future__ import annotations

import json

from django import forms
from django.contrib import admin, messages
from django.contrib.admin import helpers
from django.core.exceptions import PermissionDenied
from django.db import models
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import URLPattern, path, reverse
from django.utils.html import format_html, format_html_join

from trial import enrolment
from trial.models import Assignment, Case, EligibilityCriterion, Image, ImportJob

from .base import ReadOnlyAdmin, TrialScopedAdmin, arm_html, call_service, for_each

RELATED_ONLY = admin.RelatedOnlyFieldListFilter
CASE_STATE_FIELDS = (
    "status", "eligibility", "exclusion_reason", "consent_recorded_by", "consent_recorded_at",
    "enrolled_at", "study_uid", "image_count", "created_at",
)


class CaseForm(forms.ModelForm):
    class Meta:
        model = Case
        fields = ("trial", "site", "case_id", "age", "sex", "chief_complaint", "history",
                  "lab_results", "prior_imaging")

    def clean(self) -> dict:
        data = super().clean()
        trial = data.get("trial") or getattr(self.instance, "trial", None)
        site = data.get("site")
        if trial and site and site.trial_id != trial.pk:
            self.add_error("site", "This site belongs to another trial.")
        return data


class ExcludeForm(forms.Form):
    reason = forms.CharField(widget=forms.Textarea(attrs={"rows": 3}),
                             help_text="Counted in the CONSORT flow diagram.")


def screening_form(case: Case) -> type[forms.Form]:
    """One checkbox per eligibility criterion of the case's trial."""
    fields = {}
    for c in EligibilityCriterion.objects.filter(trial_id=case.trial_id):
        meaning = "met" if c.kind == EligibilityCriterion.Kind.INCLUSION else "present"
        fields[c.code] = forms.BooleanField(
            required=False, label=f"{c.get_kind_display()}: {c.text} ({meaning})",
            initial=bool(case.eligibility_answers.get(c.code, False)),
        )
    return type("ScreeningForm", (forms.Form,), fields)


@admin.register(Case)
class CaseAdmin(TrialScopedAdmin):
    audited = True
    form = CaseForm
    list_display = ("case_id", "trial", "site", "status", "age", "sex", "consent", "image_count")
    list_filter = (("trial", RELATED_ONLY), ("site", RELATED_ONLY), "status", "sex")
    search_fields = ("case_id",)
    list_select_related = ("trial", "site")
    actions = ["record_consent_action", "enrol_action", "exclude_action"]

    def get_queryset(self, request: HttpRequest) -> models.QuerySet:
        return super().get_queryset(request).annotate(n_images=models.Count("images"))

    def get_fieldsets(self, request: HttpRequest, obj: Case | None = None):
        sets = [
            (None, {"fields": ("trial", "site", "case_id")}),
            ("Baseline", {"fields": ("age", "sex")}),
            ("Clinical history", {"fields": ("chief_complaint", "history", "lab_results",
                                             "prior_imaging")}),
        ]
        if obj is not None:
            sets.append(("Eligibility, consent and images", {"fields": CASE_STATE_FIELDS}))
        return sets

    def get_readonly_fields(self, request: HttpRequest, obj: Case | None = None):
        return () if obj is None else ("trial", *CASE_STATE_FIELDS)

    def has_delete_permission(self, request: HttpRequest, obj: Case | None = None) -> bool:
        """Only a screened case entered by mistake; the others count in the CONSORT flow."""
        if obj is not None and obj.status != Case.Status.SCREENED:
            return False
        return super().has_delete_permission(request, obj)

    @admin.display(description="consent", boolean=True)
    def consent(self, obj: Case) -> bool:
        return obj.consent_recorded_at is not None

    @admin.display(description="images", ordering="n_images")
    def image_count(self, obj: Case) -> int:
        return obj.n_images if hasattr(obj, "n_images") else obj.images.count()

    @admin.display(description="eligibility answers")
    def eligibility(self, obj: Case) -> str:
        answers = obj.eligibility_answers or {}
        if not answers:
            return "Not screened yet."
        criteria = {c.code: c for c in EligibilityCriterion.objects.filter(trial_id=obj.trial_id)}
        return format_html(
            "<ul>{}</ul>",
            format_html_join("", "<li>{}: <strong>{}</strong></li>", (
                (criteria[code].text if code in criteria else code, "yes" if value else "no")
                for code, value in answers.items()
            )),
        )

    def get_urls(self) -> list[URLPattern]:
        screen = path("<int:pk>/screen/", self.admin_site.admin_view(self.screen_view),
                      name="trial_case_screen")
        return [screen, *super().get_urls()]

    def render_change_form(self, request: HttpRequest, context: dict, *args, **kwargs):
        obj = context.get("original")
        if obj is not None and self.has_change_permission(request, obj):
            context["screen_url"] = reverse("admin:trial_case_screen", args=[obj.pk])
        return super().render_change_form(request, context, *args, **kwargs)

    def screen_view(self, request: HttpRequest, pk: int) -> HttpResponse:
        """Record the eligibility answers of one case (``enrolment.screen`` decides)."""
        case = self.get_object(request, str(pk))
        if case is None or not self.has_change_permission(request, case):
            raise PermissionDenied
        form = screening_form(case)(request.POST or None)
        if request.method == "POST" and form.is_valid():
            done, case = call_service(self, request, enrolment.screen, case,
                                      answers=form.cleaned_data, by=request.user)
            if done:
                self.message_user(request, f"{case}: screened, now {case.get_status_display()}.",
                                  level=messages.SUCCESS)
                return HttpResponseRedirect(reverse("admin:trial_case_change", args=[case.pk]))
        context = {**self.admin_site.each_context(request), "title": f"Screen case {case}",
                   "opts": self.model._meta, "original": case, "form": form}
        return TemplateResponse(request, "admin/trial/case/screen.html", context)

    @admin.action(description="Record consent")
    def record_consent_action(self, request: HttpRequest, queryset) -> None:
        for_each(self, request, queryset,
                 lambda c: enrolment.record_consent(c, by=request.user), "Consent recorded")

    @admin.action(description="Enrol selected cases")
    def enrol_action(self, request: HttpRequest, queryset) -> None:
        for_each(self, request, queryset, lambda c: enrolment.enrol(c, by=request.user),
                 "Cases enrolled")

    @admin.action(description="Exclude selected cases…")
    def exclude_action(self, request: HttpRequest, queryset) -> HttpResponse | None:
        form = ExcludeForm(request.POST if "apply" in request.POST else None)
        if form.is_bound and form.is_valid():
            reason = form.cleaned_data["reason"]
            for_each(self, request, queryset,
                     lambda c: enrolment.exclude(c, reason=reason, by=request.user),
                     "Cases excluded")
            return None
        context = {
            **self.admin_site.each_context(request), "title": "Exclude cases",
            "opts": self.model._meta, "form": form, "cases": queryset,
            "action_checkbox_name": helpers.ACTION_CHECKBOX_NAME,
        }
        return TemplateResponse(request, "admin/trial/case/exclude.html", context)


@admin.register(Image)
class ImageAdmin(ReadOnlyAdmin):
    trial_path = "case__trial"
    list_display = ("__str__", "case", "modality", "view_position", "size", "synthetic",
                    "import_job", "imported_at")
    list_filter = (("case__trial", RELATED_ONLY), "modality", "synthetic")
    search_fields = ("case__case_id",)
    list_select_related = ("case", "import_job")
    exclude = ("file",)

    @admin.display(description="size")
    def size(self, obj: Image) -> str:
        return f"{obj.columns}×{obj.rows}"


@admin.register(ImportJob)
class ImportJobAdmin(ReadOnlyAdmin):
    list_display = ("__str__", "site", "status", "progress", "imported", "duplicates",
                    "rejected", "created_by", "created_at", "finished_at")
    list_filter = (("trial", RELATED_ONLY), "status")
    list_select_related = ("trial", "site", "created_by")
    readonly_fields = ("progress", "job_page", "file_report")
    exclude = ("report",)

    @admin.display(description="job page")
    def job_page(self, obj: ImportJob) -> str:
        url = reverse("admin:trial_import_job", args=[obj.pk])
        return format_html('<a href="{}">Live progress and per-file report</a>', url)

    @admin.display(description="progress")
    def progress(self, obj: ImportJob) -> str:
        return format_html('<progress max="100" value="{}"></progress> {} of {} ({} %)',
                           obj.percent, obj.processed, obj.total, obj.percent)

    @admin.display(description="report")
    def file_report(self, obj: ImportJob) -> str:
        return format_html("<pre>{}</pre>", json.dumps(obj.report, indent=2, default=str))


@admin.register(Assignment)
class AssignmentAdmin(ReadOnlyAdmin):
    trial_path = "case__trial"
    list_display = ("case", "reader", "arm_shown", "position", "assigned_by", "assigned_at")
    list_filter = (("case__trial", RELATED_ONLY), ("reader", RELATED_ONLY))
    search_fields = ("case__case_id", "reader__user__username")
    list_select_related = ("case__trial", "reader__user", "assigned_by")
    fields = ("case", "reader", "arm_shown", "position", "assigned_by", "assigned_at")
    readonly_fields = fields

    @admin.display(description="arm", ordering="arm")
    def arm_shown(self, obj: Assignment) -> str:
        return arm_html(obj.case.trial, obj.arm)
