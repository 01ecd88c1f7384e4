"""The statistician's page: the same report as ``manage.py analyze``, its downloads, and the
"Compute report metrics" form (``metrics.compute.run``, as ``manage.py report_metrics``).

Open to the trial's statisticians and coordinators (and superusers): 404 to people with no
role in the trial (its existence is not disclosed), 403 to its other roles.

The analysis modules (pandas, scipy, statsmodels, matplotlib) are imported inside the views,
not here: the URLconf imports this module, and every process would otherwise pay for them at
start-up.
"""

from __future__ import annotations

import io
import zipfile

from django import forms
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseNotAllowed
from django.shortcuts import get_object_or_404, redirect
from django.urls import reverse

from trial import audit
from trial.models import Role, Trial
from trial.permissions import has_role, roles_of

ALLOWED = (Role.STATISTICIAN, Role.COORDINATOR)


def allowed_trial(user, slug: str) -> Trial:
    """The trial if ``user`` is one of its statisticians or coordinators (or a superuser):
    404 to non-members (the trial's existence is not disclosed), 403 to its other roles."""
    trial = get_object_or_404(Trial, slug=slug)
    if has_role(user, trial, *ALLOWED):
        return trial
    if roles_of(user, trial):
        raise PermissionDenied("Only a statistician or coordinator of this trial may see its "
                               "analysis.")
    raise Http404


def analysis_trial(user, slug: str, what: str) -> Trial:
    """The trial if ``user`` may see its analysis (:func:`allowed_trial`).

    The analysis is unblinded (results by arm): each view or download is an audit event.
    """
    trial = allowed_trial(user, slug)
    audit.record(action="analysis.viewed", obj=trial, actor=user, after={"what": what})
    return trial


RULES_CHOICE = "rules"
SEED_MAX = 2**63 - 1  # MetricsRun.seed is a signed 64-bit integer


class ComputeMetricsForm(forms.Form):
    """Which labeller's labels, and the bootstrap seed (random when empty)."""

    labeller = forms.ChoiceField(help_text="Whose finding labels the F1 and kappa values use.")
    seed = forms.IntegerField(required=False, min_value=0, max_value=SEED_MAX,
                              help_text="Bootstrap seed; empty: a random one (stored with the "
                                        "run and shown with its results).")

    def __init__(self, *args: object, trial: Trial, **kwargs: object) -> None:
        from metrics.models import Labeller

        super().__init__(*args, **kwargs)
        choices = []
        rules = None
        for labeller in Labeller.objects.filter(trial=trial).order_by("kind", "pk"):
            if labeller.kind == Labeller.Kind.RULES and rules is None:
                rules = labeller
            choices.append((str(labeller.pk), str(labeller)))
        if rules is None:  # made on first use (``metrics.jobs.rules_labeller``)
            choices.insert(0, (RULES_CHOICE, "Rule-based labeller (rule-based; not a "
                                             "validated labeller)"))
        self.fields["labeller"].choices = choices
        self.fields["labeller"].initial = str(rules.pk) if rules else RULES_CHOICE

    def chosen(self, trial: Trial):
        """The chosen labeller (the rule-based one made when it does not exist yet)."""
        from metrics import jobs
        from metrics.models import Labeller

        value = self.cleaned_data["labeller"]
        if value == RULES_CHOICE:
            return jobs.rules_labeller(trial)
        return Labeller.objects.get(trial=trial, pk=int(value))


@login_required
def report_page(request: HttpRequest, trial_slug: str) -> HttpResponse:
    """The report in the site's pages (figures embedded), with links to the exports and the
    analysis plan. The mixed model is always in it (it takes well under a second)."""
    from analysis.report import build_context, render_html

    trial = analysis_trial(request.user, trial_slug, "report page")
    context = build_context(trial, figures=True, mixed=True)
    context["metrics_form"] = ComputeMetricsForm(trial=trial, auto_id="metrics_%s")
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
    """The tidy tables, the report texts (a sheet of their own), the newest metrics run's
    tables and their data dictionary as one workbook."""
    from analysis import datasets

    trial = analysis_trial(request.user, trial_slug, "data (XLSX)")
    buffer = io.BytesIO()
    datasets.export_xlsx(datasets.export_frames(trial, texts=True, metrics=True), buffer)
    return _download(buffer.getvalue(), "application/vnd.openxmlformats-officedocument."
                     "spreadsheetml.sheet", f"{trial.slug}-data.xlsx")


@login_required
def export_csv_zip(request: HttpRequest, trial_slug: str) -> HttpResponse:
    """The tidy CSVs (the ones the snapshot hash is over), report_texts.csv and the newest
    metrics run's tables (not in the hash) and data_dictionary.csv, zipped."""
    from analysis import datasets

    trial = analysis_trial(request.user, trial_slug, "data (CSV zip)")
    files = datasets.csv_files(datasets.export_frames(trial, texts=True, metrics=True))
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


@login_required
def compute_metrics(request: HttpRequest, trial_slug: str) -> HttpResponse:
    """POST: compute the trial's report metrics and store the run (``metrics.compute.run``),
    then back to the page with a message. The same people as the page; a GET changes nothing.

    The rule-based labeller labels the comparisons' texts first (it needs no worker); an LLM
    labeller's missing labels make its F1 and kappa "not computed" in the run. A locked trial
    is computed too: the lock is when the analysis happens, on texts that no longer change.
    """
    import secrets

    from analysis.plans import plan_alpha
    from analysis.tables import level
    from metrics import compute, jobs, sources
    from metrics.models import Labeller
    from trial.errors import ServiceError

    trial = allowed_trial(request.user, trial_slug)
    if request.method != "POST":
        return HttpResponseNotAllowed(["POST"])
    back = reverse("analysis:report", args=[trial.slug]) + "#report-metrics"
    form = ComputeMetricsForm(request.POST, trial=trial)
    if not form.is_valid():
        problems = "; ".join(f"{form.fields[name].label or name}: {' '.join(errors)}"
                             for name, errors in form.errors.items())
        messages.error(request, f"Report metrics not computed: {problems}")
        return redirect(back)
    seed = form.cleaned_data["seed"]
    random_seed = seed is None
    if random_seed:
        seed = secrets.randbelow(2**31)
    try:
        labeller = form.chosen(trial)
        if labeller.kind == Labeller.Kind.RULES:
            jobs.label(labeller, [t for c in sources.comparisons(trial) for t in c.texts()])
        run = compute.run(trial, labeller, seed=seed, by=request.user,
                          alpha=plan_alpha(trial))
    except ServiceError as exc:
        messages.error(request, f"Report metrics not computed: {exc.message}")
        return redirect(back)
    kind = "rule-based" if labeller.kind == Labeller.Kind.RULES else labeller.get_kind_display()
    messages.success(request, f"Report metrics computed (run {run.pk}) with the {kind} "
                              f"labeller {labeller.name}; seed {seed}"
                              f"{' (random)' if random_seed else ''}, {run.resamples} "
                              f"resamples, {level(1 - run.results['alpha'])} CIs, "
                              f"{run.seconds:.1f} s.")
    for comparison in run.results.get("comparisons", []):
        if comparison.get("labels_reason"):
            messages.warning(request, f"{comparison['title']}: finding metrics "
                                      f"{comparison['labels_reason']}.")
    return redirect(back)
