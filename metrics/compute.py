"""Every automated report metric of a trial, with bootstrap CIs and paired comparisons, stored.

For each comparison (``metrics.sources``) and each of its sources, on the cases that have both
the source's report and the reference report:

- **text metrics**: corpus BLEU-1 and BLEU-4, the mean per-report (smoothed) BLEU-1/BLEU-4, and
  the mean per-report ROUGE-L F (``metrics.text``);
- **finding metrics** from the labeller's labels of both texts: per finding precision, recall,
  F1 and positive rates; micro and macro F1 over the 14 findings (F1-14) and over the 5 most
  frequent in the reference labels (F1-5, listed) (``metrics.classification``);
- a 95% CI for each from the same seeded bootstrap over cases (percentile), and for each pair
  of sources, on their common cases, the paired difference with a paired-bootstrap CI and an
  approximate-randomisation P (``metrics.resample``).

Against the trial's gold-standard labels (when it has a gold label set): Cohen's kappa per
finding of each source's labels, ROC curves and AUC with DeLong CIs per finding of each source
that has imported probabilities (``metrics.roc``), and every labeller's F1 per finding on the
reference reports (how far to trust automated labels).

A metric that cannot be computed is ``{"value": None, "reason": ...}``: never a number that
was not computed.
"""

from __future__ import annotations

import itertools
import math
import time
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
from django.db import transaction
from django.utils import timezone

from trial import audit
from trial.findings import FINDINGS
from trial.models import Trial

from . import classification, jobs, judging, model_metrics, resample, roc, sources, text
from .models import CaseLabels, Labeller, LabelSet, MetricsRun, Probabilities, text_hash

VERSION = 1
RESAMPLES = 1000
PERMUTATIONS = 1000
K = len(FINDINGS)
# Columns of the per-case statistics every source-level metric is a function of.
BLEU, ROUGE, BLEU1_SENT, BLEU4_SENT, BERTSCORE, COUNTS = slice(0, 10), 10, 11, 12, 13, 14
MAIN = ("f1_14_micro", "f1_14_macro", "f1_5_micro", "f1_5_macro", "bleu1", "bleu4", "rouge_l",
        "bertscore")
TEXT_ONLY = ("bleu1", "bleu4", "bleu1_mean", "bleu4_mean", "rouge_l")
LABELS = ("f1_14_micro", "f1_14_macro", "f1_5_micro", "f1_5_macro")
NAMES = {"f1_14_micro": "F1-14 micro", "f1_14_macro": "F1-14 macro", "f1_5_micro": "F1-5 micro",
         "f1_5_macro": "F1-5 macro", "bleu1": "BLEU-1", "bleu4": "BLEU-4",
         "bleu1_mean": "BLEU-1 (mean per report)", "bleu4_mean": "BLEU-4 (mean per report)",
         "rouge_l": "ROUGE-L", **{key: spec.title for key, spec in model_metrics.SPECS.items()}}
ROC_POINTS = 200
#: The per-report values a run stores (``results["reports"]``, the export's
#: ``report_level_metrics``): the text metrics and the one model metric computed per report
#: (BERTScore, empty unless configured). RadGraph, CheXbert and GREEN are never computed
#: (``model_metrics.COMPUTED``), so they have no per-report column.
PER_REPORT_METRICS = ("bleu1", "bleu4", "rouge_l", *model_metrics.COMPUTED)
REPORT_COLUMNS = ("comparison", "source", "case_id", *PER_REPORT_METRICS, "labels",
                  "reference_labels")


def methods(alpha: float, resamples: int, permutations: int) -> dict[str, str]:
    """How each number was made, in words the report prints."""
    level = round(100 * (1 - alpha))
    return {
        "tokenisation": text.TOKENISATION,
        "bleu": "BLEU-1 and BLEU-4 with uniform weights; corpus-level from the summed clipped "
                "n-gram counts (NLTK corpus_bleu), per-report values smoothed. "
                + text.SMOOTHING,
        "rouge": "ROUGE-L F-measure (Google's rouge-score, no stemming), mean over reports.",
        "f1": "Labels of both reports by the labeller; F1 with zero_division 0; micro F1 pools "
              "the findings' counts, macro F1 averages the findings' F1 (undefined as 0). F1-5 "
              "uses the 5 findings most often positive in the reference labels (No Finding "
              "excluded).",
        "ci": f"{level}% percentile bootstrap over cases, {resamples} resamples, seeded.",
        "paired": f"Paired comparisons on common cases: difference with a {level}% paired "
                  f"bootstrap CI, two-sided P from an approximate randomisation test "
                  f"({permutations} permutations swapping the two sources within a case).",
        "kappa": "Cohen's kappa per finding, source labels vs the gold-standard labels.",
        "auc": f"ROC AUC per finding from imported probabilities vs the gold-standard labels, "
               f"{level}% CI by DeLong's method.",
    }


def _value(samples: np.ndarray, observed: float, alpha: float) -> dict[str, Any]:
    low, high = resample.percentile_ci(samples, alpha)
    return {"value": _num(observed), "ci_low": _num(low), "ci_high": _num(high)}


def _num(x: float | None) -> float | None:
    return None if x is None or not math.isfinite(float(x)) else float(x)


def not_computed(reason: str) -> dict[str, Any]:
    return {"value": None, "ci_low": None, "ci_high": None, "reason": f"not computed: {reason}"}


def _metric_fns(top5: list[int], n: int) -> dict[str, Callable[[np.ndarray], np.ndarray]]:
    """Metric value(s) from summed per-case statistics (shape (67,) or (B, 67))."""

    def totals(s: np.ndarray) -> np.ndarray:
        return s[..., COUNTS:].reshape(*s.shape[:-1], 4, K)

    def f1(columns: list[int] | None, kind: str) -> Callable[[np.ndarray], np.ndarray]:
        def fn(s: np.ndarray) -> np.ndarray:
            t = totals(s)
            return classification.scores(t if columns is None else
                                         classification.subset(t, columns))[kind]
        return fn

    return {
        "f1_14_micro": f1(None, "micro_f1"), "f1_14_macro": f1(None, "macro_f1"),
        "f1_5_micro": f1(top5, "micro_f1"), "f1_5_macro": f1(top5, "macro_f1"),
        "bleu1": lambda s: text.corpus_bleu(s[..., BLEU], 1),
        "bleu4": lambda s: text.corpus_bleu(s[..., BLEU], 4),
        "bleu1_mean": lambda s: s[..., BLEU1_SENT] / n,
        "bleu4_mean": lambda s: s[..., BLEU4_SENT] / n,
        "rouge_l": lambda s: s[..., ROUGE] / n,
        "bertscore": lambda s: s[..., BERTSCORE] / n,
    }


class Labels:
    """The labeller's labels by text hash (and the count of texts it has not labelled)."""

    def __init__(self, labeller: Labeller, texts: Sequence[str]) -> None:
        found = jobs.labels_of(labeller, texts)
        self.by_hash = {key: row.labels for key, row in found.items()}

    def of(self, text_: str) -> list[int] | None:
        labels = self.by_hash.get(text_hash(text_))
        return None if labels is None else [int(labels[f]) for f in FINDINGS]


def _stats(hyps: list[str], refs: list[str], labels: Labels | None) -> tuple[np.ndarray, dict]:
    """Per-case statistics (n, 14 + 4K) and the per-report values for exports."""
    found = text.text_stats(hyps, refs)
    n = len(hyps)
    x = np.zeros((n, COUNTS + 4 * K))
    x[:, BLEU], x[:, ROUGE] = found["bleu_stats"], found["rouge_l"]
    x[:, BLEU1_SENT], x[:, BLEU4_SENT] = found["bleu1"], found["bleu4"]
    per_report = {"bleu1": found["bleu1"], "bleu4": found["bleu4"],
                  "rouge_l": found["rouge_l"], "bertscore": np.full(n, np.nan)}
    if model_metrics.available("bertscore"):
        x[:, BERTSCORE] = per_report["bertscore"] = model_metrics.bertscore(hyps, refs)
    if labels is not None:
        y_ref = np.array([labels.of(r) for r in refs], dtype=np.int64).reshape(n, K)
        y_hyp = np.array([labels.of(h) for h in hyps], dtype=np.int64).reshape(n, K)
        x[:, COUNTS:] = classification.counts(y_ref, y_hyp).reshape(n, 4 * K)
        per_report["labels"], per_report["reference_labels"] = y_hyp, y_ref
    return x, per_report


def _source_result(x: np.ndarray, *, fns: dict, weights: np.ndarray, alpha: float,
                   labelled: bool, unlabelled_reason: str) -> dict[str, Any]:
    summed = x.sum(axis=0)
    boot = resample.weighted_sum(weights, x)
    metrics: dict[str, Any] = {}
    for key, fn in fns.items():
        if key in LABELS and not labelled:
            metrics[key] = not_computed(unlabelled_reason)
        elif key in model_metrics.SPECS and not model_metrics.available(key):
            metrics[key] = not_computed(model_metrics.reason(key).removeprefix(
                "not computed: "))
        else:
            metrics[key] = _value(np.asarray(fn(boot), dtype=float), float(fn(summed)), alpha)
    return metrics


def _per_finding(x: np.ndarray) -> list[dict[str, Any]]:
    totals = x[:, COUNTS:].sum(axis=0).reshape(4, K)
    s = classification.scores(totals)
    return [{"finding": name, "precision": _num(s["precision"][i]),
             "recall": _num(s["recall"][i]), "f1": _num(s["f1"][i]),
             "support": int(s["support"][i]),
             "positive_rate": _num(s["positive_rate_pred"][i]),
             "reference_positive_rate": _num(s["positive_rate_true"][i])}
            for i, name in enumerate(FINDINGS)]


def _paired(a_name: str, b_name: str, xa: np.ndarray, xb: np.ndarray, *, fns: dict,
            keys: Sequence[str], seed: int, resamples: int, permutations: int,
            alpha: float) -> list[dict[str, Any]]:
    """Every metric's paired difference at once: one permutation test and one paired
    bootstrap over the stacked metrics (their sums do not depend on the metric)."""
    n = len(xa)
    weights = resample.bootstrap_weights(n, resamples, seed)

    def stacked(s: np.ndarray) -> np.ndarray:
        return np.stack([np.asarray(fns[key](s), dtype=float) for key in keys], axis=-1)

    test = resample.paired_permutation(stacked, xa, xb, permutations=permutations, seed=seed)
    low, high = resample.paired_bootstrap_ci(stacked, xa, xb, weights, alpha)
    return [{"a": a_name, "b": b_name, "metric": key, "n": n,
             "difference": _num(test["difference"][i]), "ci_low": _num(low[i]),
             "ci_high": _num(high[i]), "p": _num(test["p"][i])}
            for i, key in enumerate(keys)]


def _comparison(comparison: sources.Comparison, labels: Labels, *, seed: int, resamples: int,
                permutations: int, alpha: float, labeller_name: str,
                reports: list[list[Any]]) -> dict[str, Any]:
    texts = comparison.texts()
    missing = {text_hash(t) for t in texts if t.strip()} - set(labels.by_hash)
    labelled = not missing
    reason = (f"{len(missing)} of {len({text_hash(t) for t in texts if t.strip()})} texts have "
              f"no labels from {labeller_name} yet (run label_reports)")
    ref_cases = sorted(comparison.references)
    top5: list[str] = []
    if labelled and ref_cases:
        y_ref = np.array([labels.of(comparison.references[c]) for c in ref_cases])
        top5 = classification.top_findings(y_ref, FINDINGS, k=5)
    top5_idx = [FINDINGS.index(f) for f in top5]
    per_case: dict[str, tuple[list[int], np.ndarray]] = {}
    results = []
    for name, texts_by_case in comparison.sources.items():
        cases = [c for c in ref_cases if c in texts_by_case]
        if not cases:
            continue
        hyps = [texts_by_case[c] for c in cases]
        refs = [comparison.references[c] for c in cases]
        x, per_report = _stats(hyps, refs, labels if labelled else None)
        per_case[name] = (cases, x)
        fns = _metric_fns(top5_idx, len(cases))
        weights = resample.bootstrap_weights(len(cases), resamples, seed)
        entry = {"source": name, "name": sources.SOURCE_NAMES.get(name, name), "n": len(cases),
                 "metrics": _source_result(x, fns=fns, weights=weights, alpha=alpha,
                                           labelled=labelled, unlabelled_reason=reason),
                 "per_finding": _per_finding(x) if labelled else []}
        if labelled and not top5:
            for key in ("f1_5_micro", "f1_5_macro"):
                entry["metrics"][key] = not_computed("no finding is positive in the reference "
                                                     "labels")
        results.append(entry)
        for i, case in enumerate(cases):
            row = [comparison.key, name, comparison.case_ids.get(case, str(case)),
                   *(_num(float(per_report[key][i])) if key in per_report else None
                     for key in PER_REPORT_METRICS)]
            if "labels" in per_report:
                row.append("".join(map(str, per_report["labels"][i])))
                row.append("".join(map(str, per_report["reference_labels"][i])))
            else:
                row += [None, None]
            reports.append(row)
    paired: list[dict[str, Any]] = []
    keys = [k for k in MAIN if (k not in LABELS or labelled)
            and (k not in ("f1_5_micro", "f1_5_macro") or top5)
            and (k not in model_metrics.SPECS or model_metrics.available(k))]
    for a, b in itertools.combinations(per_case, 2):
        (cases_a, xa), (cases_b, xb) = per_case[a], per_case[b]
        common = sorted(set(cases_a) & set(cases_b))
        if len(common) < 2:
            continue
        ia = {c: i for i, c in enumerate(cases_a)}
        ib = {c: i for i, c in enumerate(cases_b)}
        fns = _metric_fns(top5_idx, len(common))
        paired += _paired(a, b, xa[[ia[c] for c in common]], xb[[ib[c] for c in common]],
                          fns=fns, keys=keys, seed=seed, resamples=resamples,
                          permutations=permutations, alpha=alpha)
    return {"key": comparison.key, "title": comparison.title, "study": comparison.study,
            "reference": comparison.reference,
            "reference_name": sources.SOURCE_NAMES.get(comparison.reference,
                                                       comparison.reference),
            "labelled": labelled, "labels_reason": None if labelled else reason,
            "top5": top5, "sources": results, "paired": paired}


def gold_labels(trial: Trial) -> tuple[LabelSet | None, dict[int, list[int]]]:
    """The trial's gold-standard label set and its labels by case pk."""
    gold = LabelSet.objects.filter(trial=trial, gold=True).first()
    if gold is None:
        return None, {}
    return gold, {row.case_id: [int(row.labels[f]) for f in FINDINGS]
                  for row in CaseLabels.objects.filter(label_set=gold)}


def _kappas(comparisons: list[sources.Comparison], labels: Labels, gold: dict[int, list[int]],
            *, seed: int, resamples: int, alpha: float) -> list[dict[str, Any]]:
    """Cohen's kappa per finding of each source's labels against the gold labels."""
    rows = []
    for comparison in comparisons:
        named = {comparison.reference: comparison.references, **comparison.sources}
        for name, texts_by_case in named.items():
            cases = [c for c in sorted(texts_by_case) if c in gold
                     and labels.of(texts_by_case[c]) is not None]
            if len(cases) < 2:
                continue
            y_gold = np.array([gold[c] for c in cases])
            y_src = np.array([labels.of(texts_by_case[c]) for c in cases])
            per_case = classification.counts(y_gold, y_src)
            observed = classification.scores(per_case.sum(axis=0))
            weights = resample.bootstrap_weights(len(cases), resamples, seed)
            boot = classification.scores(resample.weighted_sum(weights, per_case))
            for i, finding in enumerate(FINDINGS):
                low, high = resample.percentile_ci(boot["kappa"][:, i], alpha)
                rows.append({"comparison": comparison.key, "source": name,
                             "name": sources.SOURCE_NAMES.get(name, name), "finding": finding,
                             "n": len(cases), "kappa": _num(observed["kappa"][i]),
                             "ci_low": _num(low), "ci_high": _num(high),
                             "positive_rate": _num(observed["positive_rate_pred"][i]),
                             "gold_positive_rate": _num(observed["positive_rate_true"][i])})
    return rows


def _roc(trial: Trial, gold: dict[int, list[int]], alpha: float) -> list[dict[str, Any]]:
    """ROC and AUC per finding of each source with imported probabilities."""
    by_source: dict[str, dict[int, dict]] = {}
    for row in Probabilities.objects.filter(trial=trial):
        by_source.setdefault(row.source, {})[row.case_id] = row.values
    rows = []
    for source, by_case in sorted(by_source.items()):
        for i, finding in enumerate(FINDINGS):
            cases = [c for c in sorted(by_case) if c in gold and finding in by_case[c]]
            if not cases:
                continue
            y = np.array([gold[c][i] for c in cases])
            p = np.array([by_case[c][finding] for c in cases], dtype=float)
            found = roc.auc_ci(y, p, alpha=alpha)
            entry = {"source": source, "finding": finding, "n": len(cases),
                     **{k: (_num(v) if isinstance(v, float) else v) for k, v in found.items()}}
            if found.get("auc") is not None:
                fpr, tpr, _ = roc.roc_curve(y, p)
                keep = np.unique(np.linspace(0, len(fpr) - 1, min(len(fpr), ROC_POINTS))
                                 .round().astype(int))
                entry["fpr"] = [round(float(v), 4) for v in fpr[keep]]
                entry["tpr"] = [round(float(v), 4) for v in tpr[keep]]
            rows.append(entry)
    return rows


def _validation(trial: Trial, comparisons: list[sources.Comparison],
                gold: dict[int, list[int]]) -> list[dict[str, Any]]:
    """Each labeller's F1 per finding on the reference reports of the gold cases."""
    reference_text: dict[int, str] = {}
    for comparison in comparisons:
        if comparison.reference in (sources.FINAL, "published"):
            for case, text_ in comparison.references.items():
                reference_text.setdefault(case, text_)
    cases = [c for c in sorted(reference_text) if c in gold]
    if not cases:
        return []
    rules = jobs.rules_labeller(trial)
    jobs.label(rules, [reference_text[c] for c in cases])
    rows = []
    for labeller in Labeller.objects.filter(trial=trial).order_by("kind", "name"):
        labels = Labels(labeller, [reference_text[c] for c in cases])
        have = [c for c in cases if labels.of(reference_text[c]) is not None]
        if not have:
            continue
        totals = classification.counts(np.array([gold[c] for c in have]), np.array(
            [labels.of(reference_text[c]) for c in have])).sum(axis=0)
        s = classification.scores(totals)
        for i, finding in enumerate(FINDINGS):
            rows.append({"labeller": labeller.name, "kind": labeller.kind,
                         "description": labeller.description, "finding": finding,
                         "n": len(have), "support": int(s["support"][i]),
                         "precision": _num(s["precision"][i]), "recall": _num(s["recall"][i]),
                         "f1": _num(s["f1"][i])})
    return rows


def compute(trial: Trial, labeller: Labeller, *, seed: int, resamples: int = RESAMPLES,
            permutations: int = PERMUTATIONS, alpha: float = 0.05,
            progress: Callable[[int, int, str], None] | None = None) -> dict[str, Any]:
    """Every metric of the trial with ``labeller``'s labels (see the module docstring)."""
    comparisons = sources.comparisons(trial)
    labels = Labels(labeller, [t for c in comparisons for t in c.texts()])
    gold_set, gold = gold_labels(trial)
    steps = len(comparisons) + 3
    reports: list[list[Any]] = []
    results = []
    for step, comparison in enumerate(comparisons, start=1):
        if progress:
            progress(step - 1, steps, comparison.title)
        results.append(_comparison(comparison, labels, seed=seed, resamples=resamples,
                                   permutations=permutations, alpha=alpha,
                                   labeller_name=labeller.name, reports=reports))
    no_gold = "the trial has no gold-standard label set (import one)"
    if progress:
        progress(len(comparisons), steps, "kappa")
    kappa = _kappas(comparisons, labels, gold, seed=seed, resamples=resamples,
                    alpha=alpha) if gold else []
    if progress:
        progress(len(comparisons) + 1, steps, "ROC")
    roc_rows = _roc(trial, gold, alpha) if gold else []
    if progress:
        progress(len(comparisons) + 2, steps, "labeller validation")
    validation = _validation(trial, comparisons, gold) if gold else []
    judged = judging.summarise(trial, seed=seed, resamples=resamples, alpha=alpha)
    if progress:
        progress(steps, steps, "done")
    return {
        "version": VERSION, "trial": trial.slug, "computed_at": timezone.now().isoformat(),
        "seed": seed, "resamples": resamples, "permutations": permutations, "alpha": alpha,
        "labeller": {"name": labeller.name, "kind": labeller.kind,
                     "fingerprint": labeller.fingerprint,
                     "description": labeller.description,
                     "uncertain_policy": labeller.uncertain_policy},
        "methods": methods(alpha, resamples, permutations),
        "metric_names": NAMES,
        "gold": None if gold_set is None else {
            "name": gold_set.name, "provenance": gold_set.get_provenance_display(),
            "description": gold_set.description, "cases": len(gold)},
        "gold_reason": None if gold_set else f"not computed: {no_gold}",
        "comparisons": results,
        "model_metrics": model_metrics.status(),
        "kappa": kappa, "roc": roc_rows, "labeller_validation": validation, "judge": judged,
        "report_columns": list(REPORT_COLUMNS),
        "reports": reports,
    }


def run(trial: Trial, labeller: Labeller, *, seed: int, by: Any = None,
        resamples: int = RESAMPLES, permutations: int = PERMUTATIONS, alpha: float = 0.05,
        progress: Callable[[int, int, str], None] | None = None) -> MetricsRun:
    """Compute and store a run (audited); the analysis shows the newest."""
    started = time.perf_counter()
    results = compute(trial, labeller, seed=seed, resamples=resamples,
                      permutations=permutations, alpha=alpha, progress=progress)
    with transaction.atomic():
        stored = MetricsRun.objects.create(
            trial=trial, labeller=labeller, fingerprint=labeller.fingerprint, seed=seed,
            resamples=resamples, results=results, created_by=by,
            seconds=time.perf_counter() - started)
        audit.record(action="metrics.computed", obj=stored, actor=by, trial=trial,
                     after={"seed": seed, "resamples": resamples,
                            "labeller": labeller.fingerprint})
    return stored


def latest(trial: Trial) -> MetricsRun | None:
    return MetricsRun.objects.filter(trial=trial).order_by("-created_at", "-pk").first()
