"""The Trial page's buttons: randomisation list (generate / import CSV), allocation, assignment.

Each is a POST-only admin view (CSRF-protected by ``admin_view``) that calls one service
function and reports the outcome as a message; the same helpers back the changelist actions.
"""

from __future__ import annotations

import io

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import reverse
from django.views.decorators.http import require_POST

from trial import assignment, randomization
from trial.models import Trial

from .base import call_service
from .drafts import report_queued


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


TOOLS = {"generate-list": generate_list, "allocate-all": allocate_all, "assign": assign_cases,
         "queue-drafts": report_queued}


def trial_for_change(model_admin: admin.ModelAdmin, request: HttpRequest, pk: int) -> Trial:
    trial = model_admin.get_object(request, str(pk))
    if trial is None:
        raise PermissionDenied  # superuser asking for a trial that does not exist
    if not model_admin.has_change_permission(request, trial):
        raise PermissionDenied
    return trial


def change_url(trial: Trial) -> str:
    return reverse("admin:trial_trial_change", args=[trial.pk])


def tool_view(model_admin: admin.ModelAdmin, tool: str):
    """A POST-only view running ``TOOLS[tool]`` on one trial, then back to its page."""

    @require_POST
    def view(request: HttpRequest, pk: int) -> HttpResponse:
        trial = trial_for_change(model_admin, request, pk)
        TOOLS[tool](model_admin, request, trial)
        return HttpResponseRedirect(change_url(trial))

    return view


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
        trial = trial_for_change(model_admin, request, pk)
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
                    return HttpResponseRedirect(change_url(trial))
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
    """The DICOM import page of ``trial`` (views in ``trial.admin_import``)."""
    return reverse("admin:trial_import", args=[trial.pk])
