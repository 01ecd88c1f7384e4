"""Benchmark of ``analysis.summary.summarize`` on generated tidy tables, and of the mixed model.

    .venv/bin/python benchmarks/analysis.py [--cases 297] [--scale 100] [--repeat 3]

What it times is the statistics only: no database (the tables are generated here with the
columns of ``analysis.datasets``, not loaded), no figures, no report files. The tables have the
reference trial's shape: 297 cases, 6 readers, 5 raters; every case read in both arms, every
report rated for quality and agreement by every rater, one preference pair per case.

(a) ``summarize(..., mixed=False)`` (every number of the report except the mixed model) at
    ``--cases`` and at ``--scale`` x the cases, same readers and raters; best of ``--repeat``
    runs each, after one warm-up run. Goals: at most 1 s at 1x and at most 60 s at 100x (a
    goal is printed only for the scale it is set for). Then the per-case cost ratio between the
    two sizes (1.0 = exactly linear).
(b) The mixed model alone (``analysis.stats.mixed_model``, quality and agreement) at
    ``--cases``, after statsmodels is imported: the part (a) leaves out.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from analysis import stats  # noqa: E402
from analysis.summary import FINDINGS, summarize  # noqa: E402

# analysis.datasets' columns (not imported from there: that module needs Django set up).
RATING_COLUMNS = [
    "trial", "campaign", "campaign_kind", "item_code", "case", "site", "item_kind", "source",
    "other_source", "arm", "reader", "rater", "instrument", "answer", "value", "seconds",
]
READING_COLUMNS = [
    "trial", "case", "site", "arm", "reader", "status", "reading_seconds", "active_seconds",
    "gap_seconds", "findings_ticked", "n_findings", "complex_case", "draft_used",
    "edit_distance_from_draft", "senior_edit_distance",
]
CASE_COLUMNS = [
    "trial", "case", "site", "status", "exclusion_reason", "age", "age_class", "sex",
    "enrolled", "n_readings_submitted", "n_findings_max", "complex_case",
]

READERS = {"ai_assisted": ["r1", "r2", "r3"], "scp": ["r4", "r5", "r6"]}
RATERS = [f"rater{i}" for i in range(1, 6)]
MEANS = {"ai_assisted": (4.37, 4.27, 119.4), "scp": (4.11, 4.09, 146.6)}
GOAL_SECONDS = {1: 1.0, 100: 60.0}  # summarize without the mixed model, by scale


def synthetic_frames(n_cases: int, *, seed: int = 1) -> tuple[pd.DataFrame, pd.DataFrame,
                                                               pd.DataFrame]:
    """(ratings, readings, cases) shaped like the datasets' tables, with the published means."""
    rng = np.random.default_rng(seed)
    case_ids = np.array([f"C{i:07d}" for i in range(n_cases)])
    sites = np.array(["A", "B", "C"])[np.arange(n_cases) % 3]
    n_findings = rng.poisson(1.6, size=(2, n_cases))
    complex_case = n_findings.max(axis=0) >= 3
    age = rng.integers(5, 95, n_cases)
    cases = pd.DataFrame({
        "trial": "bench", "case": case_ids, "site": sites, "status": "enrolled",
        "exclusion_reason": None, "age": age,
        "age_class": np.where(age < 18, "<18", np.where(age <= 60, "18-60", ">60")),
        "sex": rng.choice(["F", "M"], n_cases), "enrolled": True,
        "n_readings_submitted": 2, "n_findings_max": n_findings.max(axis=0),
        "complex_case": complex_case,
    }, columns=CASE_COLUMNS)
    reading_parts, rating_parts = [], []
    case_effect = rng.normal(0, 0.35, n_cases)
    for k, (arm, readers) in enumerate(READERS.items()):
        quality, agreement, seconds = MEANS[arm]
        reader = np.array(readers)[np.arange(n_cases) % 3]
        ticks = [";".join(sorted(rng.choice(FINDINGS[1:], size=min(m, 13), replace=False)))
                 if m else "No Finding" for m in n_findings[k]]
        times = np.clip(rng.normal(seconds, 45, n_cases) + 35 * complex_case, 20, None)
        reading_parts.append(pd.DataFrame({
            "trial": "bench", "case": case_ids, "site": sites, "arm": arm, "reader": reader,
            "status": "submitted", "reading_seconds": times, "active_seconds": times * 0.9,
            "gap_seconds": times * 0.1, "findings_ticked": ticks, "n_findings": n_findings[k],
            "complex_case": n_findings[k] >= 3, "draft_used": arm == "ai_assisted",
            "edit_distance_from_draft": 40.0 if arm == "ai_assisted" else np.nan,
            "senior_edit_distance": rng.integers(0, 200, n_cases).astype(float),
        }, columns=READING_COLUMNS))
        for instrument, mean in (("likert", quality), ("radpeer", agreement)):
            for rater in RATERS:
                value = np.clip(np.rint(mean + case_effect + rng.normal(0, 0.45, n_cases)), 1, 5)
                rating_parts.append(pd.DataFrame({
                    "trial": "bench", "campaign": 1, "campaign_kind": "prospective",
                    "item_code": [f"{c}{arm}{rater}" for c in case_ids], "case": case_ids,
                    "site": sites, "item_kind": "single", "source": arm,
                    "other_source": None, "arm": arm, "reader": reader, "rater": rater,
                    "instrument": instrument, "answer": value.astype(int).astype(str),
                    "value": value.astype(object), "seconds": 30.0,
                }, columns=RATING_COLUMNS))
    for rater in RATERS:
        chose_ai = rng.random(n_cases) < 0.55
        rating_parts.append(pd.DataFrame({
            "trial": "bench", "campaign": 1, "campaign_kind": "prospective",
            "item_code": [f"{c}pair{rater}" for c in case_ids], "case": case_ids, "site": sites,
            "item_kind": "pair", "source": "ai_assisted", "other_source": "scp", "arm": None,
            "reader": None, "rater": rater, "instrument": "preference",
            "answer": np.where(chose_ai, "A", "B"),
            "value": np.where(chose_ai, "ai_assisted", "scp").astype(object), "seconds": 20.0,
        }, columns=RATING_COLUMNS))
    return (pd.concat(rating_parts, ignore_index=True),
            pd.concat(reading_parts, ignore_index=True), cases)


def timed(function, repeat: int) -> float:
    """Best wall time of ``repeat`` runs (the least disturbed by the machine)."""
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        function()
        best = min(best, time.perf_counter() - start)
    return best


def _goal(scale: int, seconds: float) -> str:
    goal = GOAL_SECONDS.get(scale)
    if goal is None:
        return ""
    return f"  (goal <= {goal:g} s at {scale}x: {'met' if seconds <= goal else 'MISSED'})"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", type=int, default=297)
    parser.add_argument("--scale", type=int, default=100)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    n_large = args.cases * args.scale

    small = synthetic_frames(args.cases)
    summarize(*small, mixed=False)  # warm-up: imports, caches
    t_small = timed(lambda: summarize(*small, mixed=False), args.repeat)

    import statsmodels.formula.api  # noqa: F401  (mixed_model imports it lazily; not timed)

    # Before the large tables exist: with their millions of Python objects alive, the garbage
    # collector's passes made the same fit ~9x slower here, which is not the model's cost.
    rows = small[0][small[0]["instrument"].isin(["likert", "radpeer"])]
    t_mixed = timed(lambda: [stats.mixed_model(rows[rows.instrument == i].assign(
        value=lambda f: f["value"].astype(float)), "value", reference="scp")
        for i in ("likert", "radpeer")], 1)

    large = synthetic_frames(n_large, seed=2)
    t_large = timed(lambda: summarize(*large, mixed=False), args.repeat)
    per_case_small = t_small / args.cases
    per_case_large = t_large / n_large
    print("summarize(..., mixed=False) on generated tidy tables (no database, no figures), "
          f"best of {args.repeat}:")
    print(f"  1x, {args.cases:,} cases ({len(small[0]):,} rating rows): {t_small:8.3f} s"
          f"{_goal(1, t_small)}")
    print(f"  {args.scale}x, {n_large:,} cases ({len(large[0]):,} rating rows): {t_large:8.3f} s"
          f"{_goal(args.scale, t_large)}")
    print(f"  per-case cost ratio {args.scale}x / 1x: {per_case_large / per_case_small:.2f} "
          "(1.0 = linear; below 1: fixed costs amortised)")
    print(f"mixed model alone (quality + agreement), 1x, {args.cases:,} cases, one run, "
          f"statsmodels already imported: {t_mixed:8.3f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
