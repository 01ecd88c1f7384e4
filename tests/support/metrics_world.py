"""A retrospective trial for the metrics tests: cases with a known truth, the published report
written from it, two models' reports with errors, gold labels and one model's probabilities.

Everything is drawn from a seeded generator, so a test can recompute any expected number from
the same texts with the libraries (NLTK, rouge-score, scikit-learn) on its own.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass, field

import numpy as np

from metrics.imports import import_labels, import_probabilities
from rating import instruments as inst
from rating.models import Campaign
from rating.report_import import import_reports
from tests.support.factories import CaseFactory, SiteFactory, TrialFactory
from trial.findings import FINDINGS, NO_FINDING, with_no_finding
from trial.models import Trial

SENTENCES = {
    "Enlarged Cardiomediastinum": "The mediastinum is widened.",
    "Cardiomegaly": "The heart is enlarged.",
    "Lung Opacity": "There is patchy opacity in the left mid zone.",
    "Lung Lesion": "A 2 cm nodule is seen in the right upper lobe.",
    "Edema": "There is interstitial pulmonary edema.",
    "Consolidation": "There is consolidation in the right lower lobe.",
    "Pneumonia": "Findings are in keeping with pneumonia.",
    "Atelectasis": "Bibasal atelectasis.",
    "Pneumothorax": "There is a small left apical pneumothorax.",
    "Pleural Effusion": "Small right pleural effusion.",
    "Pleural Other": "Left pleural thickening.",
    "Fracture": "Fracture of the right sixth rib.",
    "Support Devices": "A central venous catheter is in the superior vena cava.",
}
NORMAL = ("The lungs are clear.", "No pleural effusion or pneumothorax.",
          "The heart size is normal.")
PREVALENCE = {"Pleural Effusion": 0.35, "Lung Opacity": 0.3, "Support Devices": 0.3,
              "Cardiomegaly": 0.25, "Consolidation": 0.2, "Atelectasis": 0.2, "Edema": 0.15,
              "Pneumonia": 0.15, "Lung Lesion": 0.1, "Pneumothorax": 0.1, "Fracture": 0.08,
              "Enlarged Cardiomediastinum": 0.06, "Pleural Other": 0.05}


def write(found: set[str], rng: np.random.Generator) -> tuple[str, str]:
    """(findings, impression) mentioning exactly ``found`` (and normal phrases otherwise)."""
    sentences = [SENTENCES[f] for f in FINDINGS if f in found]
    if not sentences:
        sentences = list(NORMAL)
    else:
        sentences += [s for s in NORMAL if rng.random() < 0.5 and not (
            ("effusion" in s and "Pleural Effusion" in found)
            or ("heart" in s and "Cardiomegaly" in found)
            or ("clear" in s and found - {"Support Devices", "Fracture"}))]
    impression = "No acute cardiopulmonary abnormality." if not found - {"Support Devices"} \
        else "Abnormal chest radiograph."
    return " ".join(sentences), impression


@dataclass
class MetricsWorld:
    trial: Trial
    campaign: Campaign
    truth: dict[str, dict[str, int]]  # case_id -> gold labels
    reports: dict[str, dict[str, tuple[str, str]]] = field(default_factory=dict)  # source ->
    probabilities: dict[str, dict[str, float]] = field(default_factory=dict)  # case -> p


def build_metrics_world(*, cases: int = 40, seed: int = 11, gold: bool = True,
                        probabilities: bool = True) -> MetricsWorld:
    rng = np.random.default_rng(seed)
    trial = TrialFactory()
    site = SiteFactory(trial=trial)
    campaign = Campaign.objects.create(trial=trial, name="Retrospective", seed=5,
                                       kind=Campaign.Kind.RETROSPECTIVE,
                                       instruments=[inst.LIKERT])
    truth: dict[str, dict[str, int]] = {}
    reports: dict[str, dict[str, tuple[str, str]]] = {"published": {}, "modelA": {},
                                                       "modelB": {}}
    probs: dict[str, dict[str, float]] = {}
    for n in range(1, cases + 1):
        case_id = f"R{n:03d}"
        CaseFactory(trial=trial, site=site, case_id=case_id)
        found = {f for f, p in PREVALENCE.items() if rng.random() < p}
        truth[case_id] = with_no_finding({f: int(f in found) for f in FINDINGS})
        reports["published"][case_id] = write(found, rng)
        # model A misses or adds a finding now and then; model B much more often
        for source, flip in (("modelA", 0.04), ("modelB", 0.15)):
            said = {f for f in PREVALENCE if (f in found) != (rng.random() < flip)}
            reports[source][case_id] = write(said, rng)
        probs[case_id] = {f: float(np.clip((0.6 if f in found else 0.25)
                                           + rng.normal(0, 0.2), 0, 1))
                          for f in PREVALENCE}
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(["case_id", "source", "findings", "impression"])
    for source, by_case in reports.items():
        for case_id, (findings, impression) in by_case.items():
            writer.writerow([case_id, source, findings, impression])
    import_reports(campaign, out.getvalue())
    world = MetricsWorld(trial, campaign, truth, reports, probs)
    if gold:
        rows = ["case_id," + ",".join(FINDINGS)] + [
            case_id + "," + ",".join(str(labels[f]) for f in FINDINGS)
            for case_id, labels in truth.items()]
        import_labels(trial, "\n".join(rows) + "\n", name="Gold", gold=True)
    if probabilities:
        names = [f for f in FINDINGS if f != NO_FINDING]
        rows = ["case_id,source," + ",".join(names)] + [
            f"{case_id},modelA," + ",".join(f"{p[f]:.4f}" for f in names)
            for case_id, p in probs.items()]
        import_probabilities(trial, "\n".join(rows) + "\n")
    return world
