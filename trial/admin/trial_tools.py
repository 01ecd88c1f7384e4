"""The Trial page's tools: randomisation list (generate / import CSV), allocation, assignment.

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


def dicom_import_url(trial: Trial) -> str:
    """The DICOM import page of ``trial`` (views in ``trial.admin.imports``)."""
    return reverse("admin:trial_import", args=[trial.pk])
