"""The statistician's analysis plan page: write the plan, sign it (password), see every
signed version with its hash. Coordinators of the trial read it; other roles get 403, people
outside the trial 404."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render

from rating.models import Campaign
from trial.errors import ServiceError
from trial.models import Role, Trial
from trial.permissions import has_role, roles_of

from . import plans
from .models import OUTCOMES, SUBGROUPS, AnalysisPlan

CHECKBOXES = forms.CheckboxSelectMultiple


class PlanForm(forms.Form):
    primary_campaign = forms.ModelChoiceField(
        queryset=Campaign.objects.none(), required=False,
        help_text="The rating campaign the primary analysis uses.")
    primary_outcomes = forms.MultipleChoiceField(choices=list(OUTCOMES.items()),
                                                 required=False, widget=CHECKBOXES)
    secondary_outcomes = forms.MultipleChoiceField(choices=list(OUTCOMES.items()),
                                                   required=False, widget=CHECKBOXES)
    primary_method = forms.ChoiceField(choices=AnalysisPlan.Method.choices,
                                       widget=forms.RadioSelect)
    alpha = forms.FloatField(min_value=0.001, max_value=0.2, initial=0.05,
                             help_text="Two-sided; confidence intervals are 1 - alpha.")
    subgroups = forms.MultipleChoiceField(choices=list(SUBGROUPS.items()), required=False,
                                          widget=CHECKBOXES)
    missing_ratings = forms.ChoiceField(choices=AnalysisPlan.Missing.choices,
                                        widget=forms.RadioSelect)
    pooled_campaigns = forms.ModelMultipleChoiceField(
        queryset=Campaign.objects.none(), required=False, widget=CHECKBOXES,
        help_text="Pooled with the primary campaign in a separate, labelled analysis; leave "
                  "empty to pool nothing.")
    notes = forms.CharField(required=False, max_length=20000,
                            widget=forms.Textarea(attrs={"rows": 4}))
    reason = forms.CharField(required=False, max_length=5000,
                             widget=forms.Textarea(attrs={"rows": 2}),
                             help_text="For a new version: why it replaces the signed one.")

    def __init__(self, *args: Any, trial: Trial, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        campaigns = Campaign.objects.filter(trial=trial).order_by("pk")
        self.fields["primary_campaign"].queryset = campaigns
        self.fields["pooled_campaigns"].queryset = campaigns

    def plan_data(self) -> dict[str, Any]:
        data = dict(self.cleaned_data)
        data["pooled_campaigns"] = [c.pk for c in data["pooled_campaigns"]]
        return data


def _initial(plan: AnalysisPlan | None) -> dict[str, Any]:
    if plan is None:
        return {"primary_method": AnalysisPlan.Method.STUDENT, "alpha": 0.05,
                "missing_ratings": AnalysisPlan.Missing.AVAILABLE,
                "primary_outcomes": ["quality", "agreement", "preference", "reading_time"],
                "secondary_outcomes": ["positive_rates"], "subgroups": ["complex_cases"]}
    return {key: getattr(plan, key) for key in plans.FIELDS}


def _trial(user: Any, slug: str) -> tuple[Trial, bool]:
    """The trial and whether ``user`` may write its plan (statisticians)."""
    trial = get_object_or_404(Trial, slug=slug)
    if has_role(user, trial, Role.STATISTICIAN):
        return trial, True
    if has_role(user, trial, Role.COORDINATOR):
        return trial, False
    if roles_of(user, trial):
        raise PermissionDenied("Only the trial's statisticians and coordinators see its "
                               "analysis plan.")
    raise Http404


@login_required
def plan_page(request: HttpRequest, trial_slug: str) -> HttpResponse:
    trial, may_write = _trial(request.user, trial_slug)
    draft = plans.draft_plan(trial)
    signed = plans.frozen_plans(trial)
    error: ServiceError | None = None
    form = None
    if may_write and (draft is not None or not signed):
        form = PlanForm(request.POST or None, trial=trial, initial=_initial(draft))
    if request.method == "POST":
        if not may_write:
            raise PermissionDenied("Only the trial's statisticians write its analysis plan.")
        action = request.POST.get("action")
        try:
            if action == "new_version":
                plans.start_new_version(trial, by=request.user)
                return redirect("analysis:plan", trial.slug)
            if form is not None and form.is_valid():
                plan = plans.save_draft(trial, form.plan_data(), by=request.user)
                if action == "sign":
                    plans.freeze(plan, by=request.user, password=request.POST.get("password"))
                return redirect("analysis:plan", trial.slug)
        except ServiceError as exc:
            error = exc
    return render(request, "analysis/plan.html", {
        "trial": trial, "form": form, "draft": draft, "signed": [
            {"plan": p, "content": p.content(), "signature": plans.plan_summary(p)["signed"]}
            for p in signed],
        "may_write": may_write, "error": error,
        "outcome_names": OUTCOMES, "subgroup_names": SUBGROUPS,
    }, status=error.status if error else 200)
