"""The demo's report metrics: its synthetic truth as a gold-standard label set, the reports
labelled by the rule-based labeller, and one stored metrics run, so the analysis shows the
"Report generation metrics" section with kappa and the labeller validation from the start.

The gold labels are the generator's truth (what each synthetic image shows), not a
radiologist's: the label set's name and description say so.
"""

from __future__ import annotations

from typing import Any

from drafting.backends import demo_case
from metrics import compute, jobs, sources
from metrics.models import CaseLabels, LabelSet, MetricsRun
from trial import audit
from trial.findings import FINDINGS, with_no_finding
from trial.models import Case, Trial

from .cases import labels_of

GOLD_NAME = "Demo truth (synthetic)"


def gold_from_truth(trial: Trial, *, by: Any = None) -> LabelSet | None:
    """The demo cases' truth as the trial's gold label set (None if it has one already)."""
    if LabelSet.objects.filter(trial=trial, gold=True).exists():
        return None
    rows = []
    for case in Case.objects.filter(trial=trial).order_by("pk"):
        truth = demo_case(case.history)
        if truth is None:
            continue
        found = {label for f in truth.findings for label in labels_of(f.kind, cavity=f.cavity)}
        rows.append((case, with_no_finding({f: int(f in found) for f in FINDINGS})))
    if not rows:
        return None
    label_set = LabelSet.objects.create(
        trial=trial, name=GOLD_NAME, provenance=LabelSet.Provenance.IMPORTED, gold=True,
        created_by=by, description="The synthetic generator's truth: what each demo image "
        "shows. Not a radiologist's labels.")
    CaseLabels.objects.bulk_create([CaseLabels(label_set=label_set, case=case, labels=labels)
                                    for case, labels in rows])
    audit.record(action="label_set.made", obj=label_set, actor=by, trial=trial,
                 after={"cases": len(rows), "simulated": True})
    return label_set


def demo_metrics(trial: Trial, *, seed: int, by: Any = None) -> MetricsRun | None:
    """Gold labels from the truth, rule-based labels, one metrics run (None: nothing read)."""
    comparisons = sources.comparisons(trial)
    if not comparisons:
        return None
    gold_from_truth(trial, by=by)
    labeller = jobs.rules_labeller(trial)
    jobs.label(labeller, [text for c in comparisons for text in c.texts()])
    return compute.run(trial, labeller, seed=seed, by=by)
