"""Admin pages for DICOM upload: the form, the job page with its progress bar, the progress JSON.

Plain view functions, so the admin can mount them with ``admin_site.admin_view`` (staff login,
CSRF, no caching); the trial's coordinator role is checked here, per trial.
"""

from __future__ import annotations

from collections.abc import Callable

from django import forms
from django.conf import settings
from django.contrib import admin
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import URLPattern, path, reverse

from trial.dicom.jobs import start_import
from trial.models import ImportJob, Role, Site, Trial
from trial.permissions import has_role

TEMPLATES = "admin/trial/import/"


class MultipleFileInput(forms.ClearableFileInput):
    allow_multiple_selected = True


class MultipleFileField(forms.FileField):
    """Several files in one input (Django's documented pattern)."""

    widget = MultipleFileInput

    def clean(self, data, initial=None):  # noqa: ANN001 - Django's signature
        single = super().clean
        if isinstance(data, list | tuple):
            return [single(item, initial) for item in data]
        return [single(data, initial)]


class ImportForm(forms.Form):
    site = forms.ModelChoiceField(queryset=Site.objects.none())
    files = MultipleFileField(label="DICOM files or a .zip")

    def __init__(self, *args, trial: Trial, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.fields["site"].queryset = trial.sites.all()
        self.fields["files"].help_text = (
            f"Select several files, or one zip (folders inside are read too); "
            f"at most {settings.DICOM_MAX_FILE_MB} MB per file and "
            f"{settings.DICOM_MAX_PIXELS / 1e6:g} megapixels per image. A zip that would "
            f"expand past its limits is refused whole."
        )

    def clean_files(self) -> list:
        files = self.cleaned_data["files"]
        limit = settings.DICOM_MAX_FILE_MB
        too_big = [f.name for f in files if f.size > limit * 1024 * 1024]
        if too_big:
            raise forms.ValidationError(
                f"Over the {limit} MB limit per file: {', '.join(too_big)}."
            )
        return files


def _coordinated(request: HttpRequest, trial: Trial) -> None:
    if not has_role(request.user, trial, Role.COORDINATOR):
        raise PermissionDenied("Only the trial's coordinators may import images.")


def _url(request: HttpRequest, name: str, *args: object) -> str:
    """Reverse within the namespace we were mounted in (``admin:`` or none in tests)."""
    match = getattr(request, "resolver_match", None)
    namespace = match.namespace if match else ""
    return reverse(f"{namespace}:{name}" if namespace else name, args=args)


def _context(request: HttpRequest, **extra: object) -> dict:
    return {**admin.site.each_context(request), **extra}


def import_view(request: HttpRequest, trial_pk: int) -> HttpResponse:
    """Upload form; on success queue the import (after commit) and go to the job page."""
    trial = get_object_or_404(Trial, pk=trial_pk)
    _coordinated(request, trial)
    if request.method == "POST":
        form = ImportForm(request.POST, request.FILES, trial=trial)
    else:
        form = ImportForm(trial=trial)
    if form.is_bound and form.is_valid():
        job = start_import(form.cleaned_data["files"], trial=trial,
                           site=form.cleaned_data["site"], by=request.user)
        return redirect(_url(request, "trial_import_job", job.pk))
    recent = ImportJob.objects.filter(trial=trial).select_related("site")[:10]
    return render(request, f"{TEMPLATES}form.html", _context(
        request, title=f"Import DICOM images into {trial}", trial=trial, form=form,
        recent=[(job, _url(request, "trial_import_job", job.pk)) for job in recent],
    ))


def _job(request: HttpRequest, job_pk: int) -> ImportJob:
    job = get_object_or_404(ImportJob.objects.select_related("trial", "site"), pk=job_pk)
    _coordinated(request, job.trial)
    return job


def progress_data(job: ImportJob) -> dict:
    return {
        "status": job.status, "finished": job.status in (ImportJob.Status.DONE,
                                                         ImportJob.Status.FAILED),
        "total": job.total, "processed": job.processed, "percent": job.percent,
        "imported": job.imported, "duplicates": job.duplicates, "rejected": job.rejected,
        "error": job.error,
    }


def import_job_view(request: HttpRequest, job_pk: int) -> HttpResponse:
    """Progress bar (polls the JSON endpoint) and, once finished, the per-file report."""
    job = _job(request, job_pk)
    return render(request, f"{TEMPLATES}job.html", _context(
        request, title=f"Import #{job.pk} into {job.trial}", job=job,
        progress=progress_data(job),
        progress_url=_url(request, "trial_import_job_progress", job.pk),
        again_url=_url(request, "trial_import", job.trial_id),
    ))


def import_job_progress(request: HttpRequest, job_pk: int) -> JsonResponse:
    return JsonResponse(progress_data(_job(request, job_pk)))


def import_urls(wrap: Callable | None = None) -> list[URLPattern]:
    """URL patterns for a ModelAdmin's ``get_urls``; pass ``wrap=admin_site.admin_view``."""
    wrap = wrap or (lambda view: view)
    return [
        path("<int:trial_pk>/import/", wrap(import_view), name="trial_import"),
        path("import-jobs/<int:job_pk>/", wrap(import_job_view), name="trial_import_job"),
        path("import-jobs/<int:job_pk>/progress/", wrap(import_job_progress),
             name="trial_import_job_progress"),
    ]
