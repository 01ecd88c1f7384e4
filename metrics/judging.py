"""The LLM error judge (CheXprompt-style): each report's errors against its reference, counted
by the six error types of the experts' error instrument, each clinically significant or not,
and compared with the experts' own counts where a rating campaign asked for them.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

import numpy as np

from rating.build import AI_ALONE
from rating.instruments import ERROR_TYPES, ERRORS
from rating.models import Campaign, Rating
from trial.models import Trial

from . import classification, jobs, resample, sources
from .models import ChatJob, Judge, Judgement, text_hash

PARTS = ("significant", "insignificant")
# A prospective campaign's sources, as the prospective comparison names them.
PROSPECTIVE_SOURCE = {"ai_assisted": "ai_assisted", "scp": "scp", AI_ALONE: sources.AI_DRAFT}


def pairs(trial: Trial) -> list[tuple[str, str, int, str, str]]:
    """(comparison key, source, case pk, reference text, report text) for every report that
    has a human reference (the published or the final report, not the AI draft)."""
    found = []
    for comparison in sources.comparisons(trial):
        if comparison.reference == sources.AI_DRAFT:
            continue
        for name, texts in comparison.sources.items():
            for case, text_ in texts.items():
                if case in comparison.references:
                    found.append((comparison.key, name, case, comparison.references[case],
                                  text_))
    return found


def expert_counts(trial: Trial) -> dict[tuple[str, str, int], list[dict]]:
    """The experts' error counts by (comparison key, source, case pk), one entry per rating."""
    found: dict[tuple[str, str, int], list[dict]] = defaultdict(list)
    ratings = Rating.objects.filter(rater_item__campaign__trial=trial).select_related(
        "rater_item__item__report__campaign")
    for rating in ratings:
        errors = (rating.values or {}).get(ERRORS)
        if not isinstance(errors, dict):
            continue
        report = rating.rater_item.item.report
        campaign = report.campaign
        if campaign.kind == Campaign.Kind.RETROSPECTIVE:
            key = (f"campaign-{campaign.pk}", report.source, report.case_id)
        else:
            key = ("prospective-final", PROSPECTIVE_SOURCE.get(report.source, report.source),
                   report.case_id)
        found[key].append(errors)
    return found


def _total(counts: dict, kind: str, part: str) -> int:
    return int((counts.get(kind) or {}).get(part, 0))


def summarise(trial: Trial, *, seed: int, resamples: int, alpha: float) -> list[dict[str, Any]]:
    """Per judge (current configuration) and source: mean errors per report by type and
    significance (significant errors per report with a bootstrap CI), and agreement with the
    experts' counts per type (exact agreement of the counts, and kappa of "any error of this
    type"), over the reports both counted."""
    found = pairs(trial)
    experts = expert_counts(trial)
    out = []
    for judge in Judge.objects.filter(trial=trial).order_by("name"):
        done = {row.input_hash: row.counts for row in Judgement.objects.filter(
            trial=trial, fingerprint=judge.fingerprint, status=ChatJob.Status.DONE)}
        by_source: dict[tuple[str, str], list[tuple[int, dict]]] = defaultdict(list)
        for key, name, case, ref, cand in found:
            counts = done.get(text_hash(ref, cand))
            if counts is not None:
                by_source[key, name].append((case, counts))
        sources_out = []
        for (key, name), rows in sorted(by_source.items()):
            matrix = np.array([[_total(c, kind, part) for kind, _ in ERROR_TYPES
                                for part in PARTS] for _, c in rows], dtype=float)
            significant = matrix[:, 0::2].sum(axis=1)
            weights = resample.bootstrap_weights(len(rows), resamples, seed)
            boot = resample.weighted_sum(weights, significant) / len(rows)
            low, high = resample.percentile_ci(boot, alpha)
            means = matrix.mean(axis=0)
            sources_out.append({
                "comparison": key, "source": name,
                "name": sources.SOURCE_NAMES.get(name, name), "n": len(rows),
                "significant_per_report": float(significant.mean()), "ci_low": low,
                "ci_high": high,
                "mean": {kind: {part: float(means[2 * i + j]) for j, part in enumerate(PARTS)}
                         for i, (kind, _) in enumerate(ERROR_TYPES)},
                "agreement": _agreement([(c, experts.get((key, name, case), []))
                                         for case, c in rows]),
            })
        pending = Judgement.objects.filter(trial=trial, fingerprint=judge.fingerprint).exclude(
            status=ChatJob.Status.DONE).count()
        out.append({"judge": judge.name, "model": judge.model_name,
                    "fingerprint": judge.fingerprint, "not_done": pending,
                    "sources": sources_out})
    return out


def _agreement(rows: list[tuple[dict, list[dict]]]) -> list[dict[str, Any]]:
    """Judge vs each expert rating of the same report, per error type (both parts summed)."""
    result = []
    for kind, label in ERROR_TYPES:
        judge_n, expert_n = [], []
        for counts, ratings in rows:
            for rating in ratings:
                judge_n.append(sum(_total(counts, kind, part) for part in PARTS))
                expert_n.append(sum(_total(rating, kind, part) for part in PARTS))
        if not judge_n:
            continue
        j, e = np.array(judge_n), np.array(expert_n)
        presence = classification.scores(classification.counts(
            (e > 0).astype(int)[:, None], (j > 0).astype(int)[:, None]).sum(axis=0))
        kappa = float(presence["kappa"][0])
        result.append({"type": kind, "label": label, "pairs": len(j),
                       "exact_agreement": float((j == e).mean()),
                       "kappa_any": None if np.isnan(kappa) else kappa,
                       "judge_mean": float(j.mean()), "expert_mean": float(e.mean())})
    return result


def queue(trial: Trial, judge: Judge) -> list[Judgement]:
    """Judgements of every report with a human reference, made where missing."""
    return jobs.judge(judge, [(ref, cand) for *_, ref, cand in pairs(trial)])
