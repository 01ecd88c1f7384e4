"""Benchmark of the full analysis (``analysis.summary.summarize``, no figures, no database).

    .venv/bin/python benchmarks/analysis.py [--cases 297] [--scale 100] [--repeat 3]

Generates tidy tables with the columns of ``analysis.datasets`` directly (the reference
trial's shape: 297 cases, 6 readers, 5 raters; every case read in both arms, every report
rated for quality and agreement by every rater, one preference pair per case), then times:

(a) ``summarize(..., mixed=False)`` at 1x (goal <= 1 s) and at ``--scale`` x the cases, same
    readers and raters (goal <= 60 s), and the per-case cost ratio between the two sizes
    (1.0 = exactly linear);
(b) the mixed model alone at 1x (quality and agreement), the part left out of (a).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("MPLBACKEND", "Agg")

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


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", type=int, default=297)
    parser.add_argument("--scale", type=int, default=100)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()

    small = synthetic_frames(args.cases)
    large = synthetic_frames(args.cases * args.scale, seed=2)
    summarize(*small, mixed=False)  # warm-up: imports, caches
    t_small = timed(lambda: summarize(*small, mixed=False), args.repeat)
    t_large = timed(lambda: summarize(*large, mixed=False), max(1, args.repeat - 2))
    rows = small[0][small[0]["instrument"].isin(["likert", "radpeer"])]
    t_mixed = timed(lambda: [stats.mixed_model(rows[rows.instrument == i].assign(
        value=lambda f: f["value"].astype(float)), "value", reference="scp")
        for i in ("likert", "radpeer")], 1)
    per_case_small = t_small / args.cases
    per_case_large = t_large / (args.cases * args.scale)
    print(f"rating rows: {len(small[0]):,} at 1x, {len(large[0]):,} at {args.scale}x")
    print(f"summarize, no mixed model, {args.cases} cases:  {t_small:8.3f} s  "
          f"(goal <= 1 s: {'met' if t_small <= 1 else 'MISSED'})")
    print(f"summarize, no mixed model, {args.cases * args.scale} cases: {t_large:8.3f} s  "
          f"(goal <= 60 s: {'met' if t_large <= 60 else 'MISSED'})")
    print(f"per-case cost ratio {args.scale}x / 1x: {per_case_large / per_case_small:.2f} "
          "(1.0 = linear; below 1: fixed costs amortised)")
    print(f"mixed model, quality + agreement, {args.cases} cases: {t_mixed:8.3f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
