"""Cases (screening, consent, enrolment through ``trial.enrolment``), images, imports, assignments.

Status fields are never edited by hand: they change only through the enrolment and assignment
services, which check the rules and write the audit log. Images, import jobs and assignments
are read-only.

The case page shows the case in the protocol's order: its images (a thumbnail of each, made
from the viewer's prepared files, and a link to the full viewer), its clinical history, its
eligibility and consent, then the panels of the apps above ``trial`` (``CaseAdmin.add_panel``,
called from their ``AppConfig.ready()``: the AI draft, the readings, the review, the ratings).
Above them are the protocol's steps, screen, consent, enrol (or enrol and assign), assign: each
a POST form shown only when it applies, with an "I confirm" checkbox, run through its service
(which checks the rules, a locked trial included, and writes the audit event); a refusal is
shown with the service's reason. The case list keeps the same steps as bulk actions.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from django import forms
from django.contrib import admin, messages
from django.contrib.admin import helpers
from django.core.exceptions import PermissionDenied
from django.db import models
from django.http import (
    FileResponse,
    Http404,
    HttpRequest,
    HttpResponse,
    HttpResponseNotAllowed,
    HttpResponseRedirect,
)
from django.template.response import TemplateResponse
from django.urls import URLPattern, path, reverse
from django.utils.html import format_html, format_html_join

from trial import assignment, enrolment
from trial.dicom import thumbnails
from trial.models import Arm, Assignment, Case, EligibilityCriterion, Image, ImportJob

from .base import ReadOnlyAdmin, TrialScopedAdmin, arm_html, call_service, for_each

RELATED_ONLY = admin.RelatedOnlyFieldListFilter
# Shown, never edited: they change through the services only.
CASE_STATE_FIELDS = (
    "status", "images_shown", "eligibility", "exclusion_reason", "consent_shown", "enrolled_at",
    "study_uid", "image_count", "created_at",
)
CONFIRM = "confirm"  # the name of every step's "I confirm" checkbox
# A list in a read-only field, not indented like the admin's form lists (an inline style: the
# image page has no template of its own, and the policy allows styles, not scripts).
FLAT_LIST = "margin: 0; padding: 0; list-style: none; display: flex; flex-wrap: wrap; gap: 16px;"
PanelRender = Callable[[Case], str]


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


def is_consent_criterion(criterion: EligibilityCriterion) -> bool:
    """An inclusion criterion about informed consent (its code or text says "consent").

    Screening does not ask it: consent is the protocol's next step ("Record consent"), which
    records who obtained it and when, and enrolment requires that record."""
    return (criterion.kind == EligibilityCriterion.Kind.INCLUSION
            and "consent" in f"{criterion.code} {criterion.text}".lower())


def _criteria(case: Case) -> list[EligibilityCriterion]:
    """Inclusion criteria first, then exclusion, each in the coordinator's order."""
    inclusion = EligibilityCriterion.Kind.INCLUSION
    return sorted(EligibilityCriterion.objects.filter(trial_id=case.trial_id),
                  key=lambda c: (c.kind != inclusion, c.order, c.code))


def screening_form(case: Case) -> type[forms.Form]:
    """One checkbox per eligibility criterion of the case's trial, consent criteria aside."""
    fields = {}
    for c in _criteria(case):
        if is_consent_criterion(c):
            continue
        meaning = "met" if c.kind == EligibilityCriterion.Kind.INCLUSION else "present"
        fields[c.code] = forms.BooleanField(
            required=False, label=f"{c.get_kind_display()}: {c.text} ({meaning})",
            initial=bool(case.eligibility_answers.get(c.code, False)),
        )
    return type("ScreeningForm", (forms.Form,), fields)


def screening_answers(case: Case, cleaned: dict[str, Any]) -> dict[str, bool]:
    """The form's answers, and the consent criteria answered "met": the consent step records
    the consent itself, and a case is enrolled only once it has (``missing_for_enrolment``)."""
    consent = {c.code: True for c in _criteria(case) if is_consent_criterion(c)}
    return {**{code: bool(value) for code, value in cleaned.items()}, **consent}


def image_tile(image: Image, *, details: bool = True) -> str:
    """A thumbnail of ``image`` linking to the full viewer, or "not prepared" (no decoding)."""
    viewer = reverse("reader:image", args=[image.pk])
    label = f"{image.modality} {image.view_position}".strip() or f"image {image.pk}"
    if thumbnails.is_prepared(image):
        width, height = thumbnails.thumbnail_size(image)
        picture = format_html(
            '<a class="case-thumb" href="{}"><img src="{}" width="{}" height="{}" alt="{}" '
            'loading="lazy"></a>',
            viewer, reverse("admin:trial_image_thumbnail", args=[image.pk]), width, height,
            f"{label} thumbnail: open the full viewer")
        links = format_html('<a class="viewer-link" href="{}">Open in the viewer</a>', viewer)
    else:
        picture = format_html('<span class="case-thumb not-prepared">{}</span>', "not prepared")
        links = format_html("Not prepared for the viewer (run <code>{}</code>).",
                            "manage.py prepare_images")
    more = format_html(' · <a href="{}">image details</a>',
                       reverse("admin:trial_image_change", args=[image.pk])) if details else ""
    return format_html('<li class="case-image" data-image="{}">{}<div>{} · {}×{}<br>{}{}</div>'
                       "</li>", image.pk, picture, label, image.columns, image.rows, links, more)


def images_html(images: list[Image], *, details: bool = True) -> str:
    if not images:
        return "No image imported."
    return format_html('<ul class="case-images" style="{}">{}</ul>', FLAT_LIST, format_html_join(
        "", "{}", ((image_tile(image, details=details),) for image in images)))


def _when(moment) -> str:
    return f"{moment:%Y-%m-%d %H:%M}" if moment else ""


@admin.register(Case)
class CaseAdmin(TrialScopedAdmin):
    """The case list (bulk steps) and the case page (the protocol's steps and the panels)."""

    audited = True
    form = CaseForm
    list_display = ("case_id", "trial", "site", "status", "age", "sex", "consent", "image_count")
    list_filter = (("trial", RELATED_ONLY), ("site", RELATED_ONLY), "status", "sex")
    search_fields = ("case_id",)
    list_select_related = ("trial", "site")
    actions = ["record_consent_action", "enrol_action", "enrol_and_assign_action",
               "exclude_action"]
    panels: tuple[tuple[str, str], ...] = ()  # (field name, section title), added by other apps

    @classmethod
    def add_panel(cls, name: str, title: str, render: PanelRender, *,
                  description: str = "") -> None:
        """A read-only section ``title`` of the case page: ``render(case)`` returns its HTML.

        For the apps above ``trial`` (``trial`` never imports them), from their
        ``AppConfig.ready()``; sections follow the case's own, in the order added."""
        def panel(model_admin: CaseAdmin, obj: Case) -> str:
            return render(obj) if obj.pk else "–"

        if name in {known for known, _ in cls.panels}:
            return
        panel.short_description = description or title.lower()
        setattr(cls, name, panel)
        cls.panels = (*cls.panels, (name, title))

    def get_queryset(self, request: HttpRequest) -> models.QuerySet:
        return super().get_queryset(request).annotate(n_images=models.Count("images"))

    def get_fieldsets(self, request: HttpRequest, obj: Case | None = None):
        history = ("Clinical history", {"fields": ("chief_complaint", "history", "lab_results",
                                                   "prior_imaging")})
        baseline = ("Baseline", {"fields": ("age", "sex")})
        if obj is None:
            return [(None, {"fields": ("trial", "site", "case_id")}), baseline, history]
        return [
            (None, {"fields": ("trial", "site", "case_id", "status")}),
            ("Images", {"fields": ("images_shown",)}),
            baseline,
            history,
            ("Eligibility and consent", {"fields": ("eligibility", "exclusion_reason",
                                                    "consent_shown", "enrolled_at")}),
            *((title, {"fields": (name,)}) for name, title in self.panels),
            ("Record", {"fields": ("study_uid", "image_count", "created_at")}),
        ]

    def get_readonly_fields(self, request: HttpRequest, obj: Case | None = None):
        if obj is None:
            return ()
        return ("trial", *CASE_STATE_FIELDS, *(name for name, _ in self.panels))

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

    @admin.display(description="images (thumbnails open the viewer)")
    def images_shown(self, obj: Case) -> str:
        return images_html(list(obj.images.all()))

    @admin.display(description="consent")
    def consent_shown(self, obj: Case) -> str:
        if obj.consent_recorded_at is None:
            return "Not recorded."
        return format_html("Recorded by <strong>{}</strong> on {}.",
                           obj.consent_recorded_by or "an unknown user",
                           _when(obj.consent_recorded_at))

    @admin.display(description="eligibility answers")
    def eligibility(self, obj: Case) -> str:
        answers = obj.eligibility_answers or {}
        if not answers:
            return "Not screened yet."
        criteria = {c.code: c for c in _criteria(obj)}

        def shown(code: str, value: bool) -> tuple[str, str]:
            criterion = criteria.get(code)
            text = criterion.text if criterion else code
            if criterion is not None and is_consent_criterion(criterion):
                return text, ("by the consent step: " + ("recorded" if obj.consent_recorded_at
                                                         else "not recorded yet"))
            return text, "yes" if value else "no"

        eligible, _ = enrolment.evaluate_eligibility(obj, answers)
        return format_html(
            '<p>{}</p><ul style="{}">{}</ul>', "Eligible." if eligible else "Not eligible.",
            "margin: 0; padding-left: 1.2em;",
            format_html_join("", "<li>{}: <strong>{}</strong></li>",
                             (shown(code, value) for code, value in answers.items())),
        )

    # --- the protocol's steps -----------------------------------------------------------------

    def get_urls(self) -> list[URLPattern]:
        wrap = self.admin_site.admin_view
        steps = [
            path("<int:pk>/screen/", wrap(self.screen_view), name="trial_case_screen"),
            path("<int:pk>/consent/", wrap(self.consent_view), name="trial_case_consent"),
            path("<int:pk>/enrol/", wrap(self.enrol_view), name="trial_case_enrol"),
            path("<int:pk>/assign/", wrap(self.assign_view), name="trial_case_assign"),
            path("<int:pk>/withdraw/", wrap(self.withdraw_view), name="trial_case_withdraw"),
        ]
        return [*steps, *super().get_urls()]

    def change_url(self, case: Case) -> str:
        return reverse("admin:trial_case_change", args=[case.pk])

    def render_change_form(self, request: HttpRequest, context: dict, *args, **kwargs):
        obj = context.get("original")
        if obj is not None and self._may(request, obj):
            context["workflow"] = self.workflow(request, obj)
        return super().render_change_form(request, context, *args, **kwargs)

    def workflow(self, request: HttpRequest, case: Case) -> dict[str, Any]:
        """The protocol's steps in order, each done, to do (with its form), or not yet."""
        can_act = self.has_change_permission(request, case)  # in scope, trial not locked
        open_ = case.status == Case.Status.SCREENED
        answers = case.eligibility_answers or {}
        eligible, reasons = enrolment.evaluate_eligibility(case, answers)
        eligible = eligible and bool(answers)
        consented = case.consent_recorded_at is not None

        def url(name: str) -> str:
            return reverse(f"admin:trial_case_{name}", args=[case.pk])

        def step(name: str, title: str, state: str, summary: str = "", **more: Any) -> dict:
            return {"name": name, "title": title, "state": state, "summary": summary, **more}

        if answers:
            screen = step("screen", "Screen", "done",
                          "Eligible." if eligible else "Not eligible: " + "; ".join(reasons) + ".",
                          link=url("screen") if can_act and open_ else "")
        elif can_act and open_:
            consent_texts = [c.text for c in _criteria(case) if is_consent_criterion(c)]
            screen = step("screen", "Screen", "next", "Not screened yet.", url=url("screen"),
                          form=screening_form(case)(auto_id="screen_%s"),
                          consent_texts=consent_texts)
        else:
            screen = step("screen", "Screen", "waiting", "Not screened.")

        if consented:
            consent = step("consent", "Record consent", "done",
                           f"Recorded by {case.consent_recorded_by or 'an unknown user'} on "
                           f"{_when(case.consent_recorded_at)}.")
        elif can_act and open_ and eligible:
            consent = step("consent", "Record consent", "next", "Not recorded yet.",
                           url=url("consent"))
        else:
            consent = step("consent", "Record consent", "waiting",
                           "After screening, once the case is eligible.")

        if case.enrolled_at is not None:
            enrol = step("enrol", "Enrol", "done", f"Enrolled on {_when(case.enrolled_at)}.")
        elif can_act and open_ and eligible and consented:
            missing = enrolment.missing_for_enrolment(case)
            enrol = step("enrol", "Enrol", "next",
                         "Still missing: " + "; ".join(missing) + "." if missing else
                         "Ready: eligible, consented, complete record, images imported.",
                         url=url("enrol"))
        else:
            enrol = step("enrol", "Enrol", "waiting", "Once the case is eligible and consented.")

        assign = self._assign_step(case, can_act, url("assign"), step)
        note = ""
        if case.status == Case.Status.EXCLUDED:
            note = f"Excluded: {case.exclusion_reason} (counted in the CONSORT flow)."
        elif case.status == Case.Status.WITHDRAWN:
            note = (f"Withdrawn on {_when(case.withdrawn_at)}: {case.withdrawal_reason} "
                    "Offered to nobody since; the analysis leaves it out (counted in the "
                    "CONSORT flow).") if case.withdrawn_at else "Withdrawn."
        elif not can_act:
            note = "The trial is locked: its records are read-only, so no step can be taken."
        withdraw = (url("withdraw") if can_act and case.status == Case.Status.ENROLLED
                    else "")
        return {"steps": [screen, consent, enrol, assign], "note": note, "withdraw": withdraw}

    def _assign_step(self, case: Case, can_act: bool, url: str,
                     step: Callable[..., dict]) -> dict:
        if case.status != Case.Status.ENROLLED:
            return step("assign", "Assign readers", "waiting",
                        "After enrolment (or with “Enrol and assign”).")
        rows = list(Assignment.objects.filter(case=case).select_related("reader__user"))
        given = {row.arm for row in rows}
        who = ", ".join(f"{row.reader.user.get_username()} ({case.trial.arm_label(row.arm)})"
                        for row in sorted(rows, key=lambda r: r.arm))
        lacking = [case.trial.arm_label(arm) for arm in Arm.values if arm not in given]
        if not lacking:
            return step("assign", "Assign readers", "done", f"One reader of each arm: {who}.")
        summary = (f"No reader of: {', '.join(lacking)}." +
                   (f" Assigned so far: {who}." if who else ""))
        if can_act:
            return step("assign", "Assign readers", "next", summary, url=url)
        return step("assign", "Assign readers", "waiting", summary)

    def _case_for_step(self, request: HttpRequest, pk: int) -> Case:
        """The case, if the user coordinates its trial (403 otherwise); the services refuse
        what the case's state or a locked trial does not allow, with their reason."""
        case = self.get_object(request, str(pk))
        if case is None or not self._may(request, case):
            raise PermissionDenied
        return case

    def _step(self, request: HttpRequest, pk: int, what: str,
              run: Callable[[Case], None]) -> HttpResponse:
        if request.method != "POST":
            return HttpResponseNotAllowed(["POST"])
        case = self._case_for_step(request, pk)
        if not request.POST.get(CONFIRM):
            self.message_user(request, f"{case}: nothing done; tick “I confirm” to {what}.",
                              level=messages.ERROR)
        else:
            run(case)
        return HttpResponseRedirect(self.change_url(case))

    def screen_view(self, request: HttpRequest, pk: int) -> HttpResponse:
        """Record the eligibility answers of one case (``enrolment.screen`` decides).

        Answers can be corrected until the case is enrolled; answers that exclude the case
        (final) are saved only with "I confirm" ticked, else the page asks for it."""
        case = self._case_for_step(request, pk)
        form = screening_form(case)(request.POST or None, auto_id="screen_%s")
        exclusion: list[str] = []
        if request.method == "POST" and form.is_valid():
            answers = screening_answers(case, form.cleaned_data)
            eligible, exclusion = enrolment.evaluate_eligibility(case, answers)
            if eligible or request.POST.get(CONFIRM):
                done, screened = call_service(self, request, enrolment.screen, case,
                                              answers=answers, by=request.user)
                if done:
                    self.message_user(
                        request, f"{case}: screened, now {screened.get_status_display()}"
                        + ("." if eligible else f": {screened.exclusion_reason}."),
                        level=messages.SUCCESS)
                return HttpResponseRedirect(self.change_url(case))
        context = {
            **self.admin_site.each_context(request), "title": f"Screen case {case}",
            "opts": self.model._meta, "original": case, "form": form,
            "exclusion": exclusion,
            "consent_texts": [c.text for c in _criteria(case) if is_consent_criterion(c)],
        }
        return TemplateResponse(request, "admin/trial/case/screen.html", context)

    def consent_view(self, request: HttpRequest, pk: int) -> HttpResponse:
        def run(case: Case) -> None:
            done, case = call_service(self, request, enrolment.record_consent, case,
                                      by=request.user)
            if done:
                self.message_user(request, f"{case}: consent recorded by {request.user} on "
                                           f"{_when(case.consent_recorded_at)}.",
                                  level=messages.SUCCESS)

        return self._step(request, pk, "record the consent", run)

    def enrol_view(self, request: HttpRequest, pk: int) -> HttpResponse:
        """Enrol; with ``assign`` (the "Enrol and assign" button) assign it too, or neither."""
        with_assign = bool(request.POST.get("assign"))

        def run(case: Case) -> None:
            if with_assign:
                done, result = call_service(self, request, assignment.enrol_and_assign, case,
                                            by=request.user)
                if done:
                    case, rows = result
                    self.message_user(request, f"{case}: enrolled and assigned to "
                                               f"{self._readers_text(case, rows)}.",
                                      level=messages.SUCCESS)
                return
            done, case = call_service(self, request, enrolment.enrol, case, by=request.user)
            if done:
                self.message_user(request, f"{case}: enrolled.", level=messages.SUCCESS)

        return self._step(request, pk, "enrol the case", run)

    def assign_view(self, request: HttpRequest, pk: int) -> HttpResponse:
        def run(case: Case) -> None:
            done, rows = call_service(self, request, assignment.assign_case, case,
                                      by=request.user)
            if done and rows:
                self.message_user(request, f"{case}: assigned to "
                                           f"{self._readers_text(case, rows)}.",
                                  level=messages.SUCCESS)
            elif done:
                self.message_user(request, f"{case}: already has a reader of each arm.",
                                  level=messages.INFO)

        return self._step(request, pk, "assign the case", run)

    def withdraw_view(self, request: HttpRequest, pk: int) -> HttpResponse:
        """Withdraw an enrolled case (``enrolment.withdraw``): final, with its reason."""
        def run(case: Case) -> None:
            done, case = call_service(self, request, enrolment.withdraw, case,
                                      reason=request.POST.get("reason", ""), by=request.user)
            if done:
                self.message_user(request, f"{case}: withdrawn ({case.withdrawal_reason}). It "
                                           "is offered to nobody from now on.",
                                  level=messages.SUCCESS)

        return self._step(request, pk, "withdraw the case", run)

    @staticmethod
    def _readers_text(case: Case, rows: list[Assignment]) -> str:
        return " and ".join(f"{row.reader.user.get_username()} "
                            f"({case.trial.arm_label(row.arm)})"
                            for row in sorted(rows, key=lambda r: r.arm)) or "nobody new"

    # --- bulk actions of the case list ----------------------------------------------------------

    @admin.action(description="Record consent")
    def record_consent_action(self, request: HttpRequest, queryset) -> None:
        for_each(self, request, queryset,
                 lambda c: enrolment.record_consent(c, by=request.user), "Consent recorded")

    @admin.action(description="Enrol selected cases")
    def enrol_action(self, request: HttpRequest, queryset) -> None:
        for_each(self, request, queryset, lambda c: enrolment.enrol(c, by=request.user),
                 "Cases enrolled")

    @admin.action(description="Enrol and assign selected cases")
    def enrol_and_assign_action(self, request: HttpRequest, queryset) -> None:
        """Each case enrolled and given a reader of each arm (balanced), or left as it was."""
        for_each(self, request, queryset.order_by("case_id"),
                 lambda c: assignment.enrol_and_assign(c, by=request.user),
                 "Cases enrolled and assigned")

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
    readonly_fields = ("thumbnail_shown",)

    def get_fields(self, request: HttpRequest, obj: Image | None = None):
        fields = [f for f in super().get_fields(request, obj) if f != "thumbnail_shown"]
        return ["thumbnail_shown", *fields]

    @admin.display(description="size")
    def size(self, obj: Image) -> str:
        return f"{obj.columns}×{obj.rows}"

    @admin.display(description="image")
    def thumbnail_shown(self, obj: Image) -> str:
        return images_html([obj], details=False) if obj.pk else "–"

    def get_urls(self) -> list[URLPattern]:
        thumb = path("<int:pk>/thumbnail/", self.admin_site.admin_view(self.thumbnail_view),
                     name="trial_image_thumbnail")
        return [thumb, *super().get_urls()]

    def thumbnail_view(self, request: HttpRequest, pk: int) -> HttpResponse:
        """The image's PNG thumbnail, for its trial's coordinators (403 for others): made from
        the viewer's prepared files, never by decoding the DICOM file (404 if not prepared)."""
        image = self.get_object(request, str(pk))
        if image is None or not self.has_view_permission(request, image):
            raise Http404("No such image.")
        try:
            target = thumbnails.thumbnail(image)
        except thumbnails.ThumbnailNotPrepared as exc:
            raise Http404(str(exc)) from exc
        response = FileResponse(target.open("rb"), content_type="image/png")
        response["Cache-Control"] = "private, max-age=86400"  # the pixels of a row never change
        return response


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
