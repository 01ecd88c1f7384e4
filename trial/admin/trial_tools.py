"""The Trial page's tools: randomisation list (generate / import CSV / extend for a stratum),
allocation, assignment.

Each calls one service function and reports the outcome as a message (``trial.admin.tools``
makes them POST-only views, buttons and changelist actions).
"""

from __future__ import annotations

import io

from django import forms
from django.contrib import admin, messages
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import reverse

from trial import assignment, randomization
from trial.models import Trial

from .base import call_service
from .tools import Tool


def generate_list(model_admin: admin.ModelAdmin, request: HttpRequest, trial: Trial) -> None:
    done, rlist = call_service(
        model_admin, request, randomization.generate_list, trial, by=request.user
    )
    if done:
        model_admin.message_user(
            request,
            f"{trial}: randomisation list generated ({rlist.slots.count()} sealed slots; "
            f"commitment {rlist.commitment[:12]}…).",
            level=messages.SUCCESS,
        )


def allocate_all(model_admin: admin.ModelAdmin, request: HttpRequest, trial: Trial) -> None:
    try:
        slots = randomization.allocate_all(trial, by=request.user)
    except randomization.RandomizationError as exc:  # some readers may have been allocated
        slots = getattr(exc, "allocated", [])
        model_admin.message_user(request, f"{trial}: {exc}", level=messages.ERROR)
    if slots:
        model_admin.message_user(
            request, f"{trial}: {len(slots)} reader(s) allocated.", level=messages.SUCCESS
        )


def assign_cases(model_admin: admin.ModelAdmin, request: HttpRequest, trial: Trial) -> None:
    done, created = call_service(model_admin, request, assignment.assign_cases, trial,
                                 by=request.user)
    if done:
        model_admin.message_user(
            request, f"{trial}: {len(created)} assignment(s) made.", level=messages.SUCCESS
        )


TOOLS = (
    Tool("generate-list", "Generate randomisation list", generate_list),
    Tool("allocate-all", "Allocate unallocated readers", allocate_all),
    Tool("assign", "Assign cases", assign_cases, action="assign_cases_action",
         action_label="Assign cases to readers"),
)


class ImportListForm(forms.Form):
    csv_file = forms.FileField(
        label="CSV file",
        help_text="One row per slot, as exported by the statistician (UTF-8).",
    )
    expected_count = forms.IntegerField(
        required=False, min_value=1,
        help_text="Number of slots the statistician says the list holds (checked if given).",
    )


def import_list_view(model_admin: admin.ModelAdmin):
    """Upload a statistician's CSV list; invalid lists are explained, nothing is stored."""

    def view(request: HttpRequest, pk: int) -> HttpResponse:
        trial = model_admin.object_for_tool(request, pk)
        form = ImportListForm(request.POST or None, request.FILES or None)
        if request.method == "POST" and form.is_valid():
            upload = form.cleaned_data["csv_file"]
            try:
                text = upload.read().decode("utf-8-sig")
            except UnicodeDecodeError:
                model_admin.message_user(
                    request, "The file is not UTF-8 text; export the list as UTF-8 CSV.",
                    level=messages.ERROR,
                )
            else:
                done, rlist = call_service(
                    model_admin, request, randomization.import_list, trial, io.StringIO(text),
                    by=request.user, source_name=upload.name,
                    expected_count=form.cleaned_data["expected_count"],
                )
                if done:
                    model_admin.message_user(
                        request,
                        f"{trial}: randomisation list imported from {upload.name} "
                        f"({rlist.slots.count()} sealed slots).",
                        level=messages.SUCCESS,
                    )
                    return HttpResponseRedirect(model_admin.change_url(trial))
        context = {
            **model_admin.admin_site.each_context(request),
            "title": "Import randomisation list",
            "opts": model_admin.model._meta,
            "original": trial,
            "form": form,
        }
        return TemplateResponse(request, "admin/trial/trial/import_list.html", context)

    return view


class ExtendListForm(forms.Form):
    """Which stratum, how many blocks (or a statistician's CSV extension), and a confirmation."""

    stratum = forms.ChoiceField(
        help_text="The stratum that needs slots: a site added after the list was made, or one "
                  "with more readers than slots. Counts only; no arm is ever shown.")
    blocks = forms.IntegerField(
        required=False, min_value=1, max_value=randomization.MAX_EXTENSION_BLOCKS, initial=1,
        help_text="Whole permuted blocks of the trial's design (its block sizes and ratio), "
                  "drawn from a fresh seed the platform takes from the operating system's "
                  "cryptographic generator; nobody chooses it.")
    csv_file = forms.FileField(
        required=False, label="Or a CSV extension",
        help_text="Instead of generated blocks: the statistician's extension for this stratum "
                  "(UTF-8, header position,arm[,stratum][,block]; positions 1..n of the "
                  "extension). Its SHA-256 is recorded.")
    expected_count = forms.IntegerField(
        required=False, min_value=1,
        help_text="CSV only: the number of slots the statistician says it holds (checked).")
    confirm = forms.BooleanField(
        label="I confirm the extension",
        help_text="The new slots are sealed at once and final: an extension is never changed "
                  "or removed. Only its commitment is shown until the trial is locked.")

    def __init__(self, trial: Trial, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        choices = []
        for stratum, n in randomization.stratum_counts(trial).items():
            name = stratum or "the whole list (not stratified by site)"
            count = (f"{n['free']} of {n['total']} slots free" if n["total"]
                     else "no slots yet")
            choices.append((stratum, f"{name} ({count})"))
        self.fields["stratum"].choices = choices
        if len(choices) == 1:
            self.fields["stratum"].initial = choices[0][0]

    def clean(self) -> dict:
        data = super().clean()
        if not data.get("csv_file") and not data.get("blocks"):
            self.add_error("blocks", "Give the number of blocks (or a CSV extension).")
        return data


def extend_list_view(model_admin: admin.ModelAdmin):
    """Append blocks for one stratum (``randomization.extend_list``) or a statistician's CSV
    extension (``randomization.import_extension``), after a confirmation."""

    def view(request: HttpRequest, pk: int) -> HttpResponse:
        trial = model_admin.object_for_tool(request, pk)
        form = ExtendListForm(trial, request.POST or None, request.FILES or None,
                              initial={"stratum": request.GET.get("stratum", "")})
        if request.method == "POST" and form.is_valid():
            data = form.cleaned_data
            upload = data["csv_file"]
            done = False
            if upload:
                try:
                    text = upload.read().decode("utf-8-sig")
                except UnicodeDecodeError:
                    model_admin.message_user(
                        request, "The file is not UTF-8 text; export the list as UTF-8 CSV.",
                        level=messages.ERROR)
                else:
                    done, extension = call_service(
                        model_admin, request, randomization.import_extension, trial,
                        io.StringIO(text), stratum=data["stratum"], by=request.user,
                        source_name=upload.name, expected_count=data["expected_count"])
            else:
                done, extension = call_service(
                    model_admin, request, randomization.extend_list, trial,
                    stratum=data["stratum"], blocks=data["blocks"], by=request.user)
            if done:
                where = f"stratum {extension.stratum!r}" if extension.stratum else "the list"
                model_admin.message_user(
                    request,
                    f"{trial}: randomisation list extended for {where} (extension "
                    f"{extension.number}: {extension.blocks} block(s), {extension.slot_count} "
                    f"sealed slots; commitment {extension.commitment[:12]}…).",
                    level=messages.SUCCESS,
                )
                return HttpResponseRedirect(model_admin.change_url(trial))
        context = {
            **model_admin.admin_site.each_context(request),
            "title": "Extend the randomisation list for a stratum",
            "opts": model_admin.model._meta,
            "original": trial,
            "form": form,
            "ratio": f"{trial.ratio_ai_assisted}:{trial.ratio_scp}",
            "arm_labels": (trial.arm_label("ai_assisted"), trial.arm_label("scp")),
        }
        return TemplateResponse(request, "admin/trial/trial/extend_list.html", context)

    return view


def dicom_import_url(trial: Trial) -> str:
    """The DICOM import page of ``trial`` (views in ``trial.admin.imports``)."""
    return reverse("admin:trial_import", args=[trial.pk])
