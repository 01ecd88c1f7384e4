"""The statistician's page: the same report as ``manage.py analyze``, and its downloads.

Open to the trial's statisticians and coordinators (and superusers): 404 to people with no
role in the trial (its existence is not disclosed), 403 to its other roles.

The analysis modules (pandas, scipy, statsmodels, matplotlib) are imported inside the views,
not here: the URLconf imports this module, and every process would otherwise pay for them at
start-up.
"""

from __future__ import annotations

import io
import zipfile

from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404
from django.urls import reverse

from trial import audit
from trial.models import Role, Trial
from trial.permissions import has_role, roles_of

ALLOWED = (Role.STATISTICIAN, Role.COORDINATOR)


def analysis_trial(user, slug: str, what: str) -> Trial:
    """The trial if ``user`` may see its analysis: 404 to non-members, 403 to other roles.

    The analysis is unblinded (results by arm): each view or download is an audit event.
    """
    trial = get_object_or_404(Trial, slug=slug)
    if has_role(user, trial, *ALLOWED):
        audit.record(action="analysis.viewed", obj=trial, actor=user, after={"what": what})
        return trial
    if roles_of(user, trial):
        raise PermissionDenied("Only a statistician or coordinator of this trial may see its "
                               "analysis.")
    raise Http404


@login_required
def report_page(request: HttpRequest, trial_slug: str) -> HttpResponse:
    """The report in the site's pages (figures embedded), with links to the exports and the
    analysis plan. The mixed model is always in it (it takes well under a second)."""
    from analysis.report import build_context, render_html

    trial = analysis_trial(request.user, trial_slug, "report page")
    context = build_context(trial, figures=True, mixed=True)
    context["links"] = [
        {"url": reverse("analysis:export-xlsx", args=[trial.slug]), "label": "Data (XLSX)"},
        {"url": reverse("analysis:export-csv", args=[trial.slug]), "label": "Data (CSV zip)"},
        {"url": reverse("analysis:report-pdf", args=[trial.slug]), "label": "Report (PDF)"},
        {"url": reverse("analysis:plan", args=[trial.slug]), "label": "Analysis plan"},
    ]
    return HttpResponse(render_html(context, request, template="analysis/report_page.html"))


def _download(content: bytes, content_type: str, filename: str) -> HttpResponse:
    response = HttpResponse(content, content_type=content_type)
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response


@login_required
def export_xlsx(request: HttpRequest, trial_slug: str) -> HttpResponse:
    """The tidy tables, the report texts (a sheet of their own) and their data dictionary as
    one workbook."""
    from analysis import datasets

    trial = analysis_trial(request.user, trial_slug, "data (XLSX)")
    buffer = io.BytesIO()
    datasets.export_xlsx(datasets.export_frames(trial, texts=True), buffer)
    return _download(buffer.getvalue(), "application/vnd.openxmlformats-officedocument."
                     "spreadsheetml.sheet", f"{trial.slug}-data.xlsx")


@login_required
def export_csv_zip(request: HttpRequest, trial_slug: str) -> HttpResponse:
    """The tidy CSVs (the ones the snapshot hash is over), report_texts.csv (not in the hash)
    and data_dictionary.csv, zipped."""
    from analysis import datasets

    trial = analysis_trial(request.user, trial_slug, "data (CSV zip)")
    files = datasets.csv_files(datasets.export_frames(trial, texts=True))
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, content in files.items():
            archive.writestr(name, content)
    return _download(buffer.getvalue(), "application/zip", f"{trial.slug}-data.zip")


@login_required
def report_pdf(request: HttpRequest, trial_slug: str) -> HttpResponse:
    """The PDF report (the same context as the page)."""
    from analysis.report import build_context, render_pdf

    trial = analysis_trial(request.user, trial_slug, "report (PDF)")
    context = build_context(trial, figures=True, mixed=True)
    buffer = io.BytesIO()
    render_pdf(context, buffer)
    return _download(buffer.getvalue(), "application/pdf", f"{trial.slug}-report.pdf")
