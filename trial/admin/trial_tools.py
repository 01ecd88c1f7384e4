"""The Trial page's tools: randomisation list (generate / import CSV / extend for a stratum),
allocation, assignment.

Each calls one service function and reports the outcome as a message (``trial.admin.tools``
makes them POST-only views, buttons and changelist actions). The two final ones, "Generate
randomisation list" and "Assign cases", take a confirmation step: pressed once, they change
nothing and say what would happen, with an "I confirm" checkbox and the button again (a POST
form in the page's messages, no script); the POST with ``confirm`` ticked does it.
"""

from __future__ import annotations

import io
from collections import Counter

from django import forms
from django.contrib import admin, messages
from django.db import models
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.middleware.csrf import get_token
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils.html import format_html

from trial import assignment, randomization
from trial.models import Arm, Case, Trial

from .base import call_service
from .tools import Tool

CONFIRM = "confirm"  # the "I confirm" checkbox of a confirmation step


def ask_confirmation(model_admin: admin.ModelAdmin, request: HttpRequest, trial: Trial, *,
                     tool: str, label: str, summary: str) -> None:
    """Nothing is done: a message says what would happen, with the form that does it."""
    url = reverse(f"admin:trial_trial_{tool.replace('-', '_')}", args=[trial.pk])
    box = f"confirm-{tool}-{trial.pk}"
    model_admin.message_user(request, format_html(
        '{} <form method="post" action="{}" class="confirm-step" data-tool="{}">'
        '<input type="hidden" name="csrfmiddlewaretoken" value="{}">'
        '<label for="{}"><input type="checkbox" name="{}" id="{}" required> I confirm</label> '
        '<button type="submit">{}</button></form>',
        summary, url, tool, get_token(request), box, CONFIRM, box, label,
    ), level=messages.WARNING)


def _confirmed(request: HttpRequest) -> bool:
    return bool(request.POST.get(CONFIRM))


def generate_list_summary(trial: Trial) -> str:
    ratio = f"{trial.ratio_ai_assisted}:{trial.ratio_scp}"
    labels = f"{trial.arm_label(Arm.AI_ASSISTED)} : {trial.arm_label(Arm.SCP)}"
    if trial.stratify_by_site:
        sites = ", ".join(trial.sites.order_by("code").values_list("code", flat=True)) or "none"
        strata = f"one stratum per site ({sites})"
    else:
        strata = "one stratum (not stratified by site)"
    return (f"Generate the randomisation list of {trial}? Permuted blocks of size "
            f"{', '.join(str(b) for b in trial.block_sizes)}, ratio {ratio} ({labels}), "
            f"{strata}; at least {randomization.MIN_SLOTS_PER_STRATUM} slots per stratum (more "
            "if it has more readers), rounded up to whole blocks. The platform draws the seed. "
            "The list is sealed at once and final: never replaced (only extended for a "
            "stratum), its arms concealed until the trial is locked.")


def generate_list(model_admin: admin.ModelAdmin, request: HttpRequest, trial: Trial) -> None:
    if not _confirmed(request) and trial.status != Trial.Status.LOCKED and not hasattr(
            trial, "randomization"):  # a refusal needs no confirmation
        ask_confirmation(model_admin, request, trial, tool="generate-list",
                         label="Generate randomisation list",
                         summary=generate_list_summary(trial))
        return
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


def assign_cases_summary(trial: Trial) -> tuple[int, bool, str]:
    """(assignments to make, whether each arm has an allocated reader, what "Assign cases"
    would do), from the stored rows."""
    arms = len(Arm.values)
    waiting = list(
        Case.objects.filter(trial=trial, status=Case.Status.ENROLLED).order_by()
        .annotate(n=models.Count("assignments", distinct=True)).filter(n__lt=arms)
        .values_list("n", flat=True))
    needed = sum(arms - n for n in waiting)
    per_arm = Counter(row["arm"] for row in assignment.workload(trial))
    readers = ", ".join(f"{trial.arm_label(arm)}: {per_arm[arm]}" for arm in Arm.values)
    site = " at the case's site" if trial.same_site_assignment else ""
    return needed, all(per_arm[arm] for arm in Arm.values), (
        f"Assign cases of {trial}? {len(waiting)} enrolled case(s) lack a reader of an arm: "
        f"{needed} assignment(s) will be made among the allocated readers ({readers}), each to "
        f"the least loaded reader of the arm{site}, at a random place after the reader's "
        "current worklist. Assignments are final: they are never undone.")


def assign_cases(model_admin: admin.ModelAdmin, request: HttpRequest, trial: Trial) -> None:
    if not _confirmed(request) and trial.status != Trial.Status.LOCKED:
        needed, staffed, summary = assign_cases_summary(trial)
        if needed and staffed:  # else the service says why nothing is assigned
            ask_confirmation(model_admin, request, trial, tool="assign", label="Assign cases",
                             summary=summary)
            return
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
