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
(b) The whole analysis, ``summarize(..., mixed=True)`` (the mixed model of quality and of
    agreement included), at the same two sizes and with the same goals.
(c) The mixed model alone (``analysis.stats.mixed_model``, quality and agreement): the fast
    REML fitter (``analysis.mixed``) against the statsmodels fit it replaced
    (``analysis.stats.mixed_model_statsmodels``) at ``--cases``, in the same run: times, their
    ratio, the largest absolute difference of effect, SE, variance components and residual
    variance, and -2 REML log-likelihood of both estimates (lower = the better optimum). Where
    they differ by more than 1e-4, statsmodels is refitted with derivative-free Powell, which
    does not stall on the boundary as its L-BFGS does. statsmodels gets one BLAS thread, as
    the fast fitter (with OpenBLAS' threads on a busy machine it was 3-5x slower). The fast
    fitter alone is also timed at ``--scale`` x; statsmodels is not (too slow there).
"""

from __future__ import annotations

import argparse
import contextlib
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from analysis import mixed, stats  # noqa: E402
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
GOAL_SECONDS = {1: 1.0, 100: 60.0}  # summarize, with or without the mixed model, by scale
OUTCOMES = {"quality": "likert", "agreement": "radpeer"}
GROUPS = ("reader", "case", "rater")


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


def mixed_inputs(ratings: pd.DataFrame) -> dict[str, pd.DataFrame]:
    """The rating rows of each outcome, as summarize passes them to the mixed model."""
    rows = ratings[ratings["instrument"].isin(OUTCOMES.values())]
    return {name: rows[rows["instrument"] == instrument].assign(
        value=lambda f: f["value"].astype(float)) for name, instrument in OUTCOMES.items()}


def fit_all(frames: dict[str, pd.DataFrame], fitter, **kwargs) -> dict[str, Any]:
    return {name: fitter(frame, "value", reference="scp", **kwargs)
            for name, frame in frames.items()}


def differences(a: stats.MixedModelResult, b: stats.MixedModelResult) -> dict[str, float]:
    out = {"effect": abs(a.effect - b.effect), "SE": abs(a.se - b.se),
           "residual": abs(a.residual_variance - b.residual_variance)}
    out.update({f"var({g})": abs(v - b.variance_components[g])
                for g, v in a.variance_components.items()})
    return out


def _largest(diff: dict[str, float]) -> str:
    name = max(diff, key=diff.get)
    return f"{diff[name]:.2e} ({name})"


def reml_deviance(frame: pd.DataFrame, result: stats.MixedModelResult) -> float:
    """-2 REML log-likelihood of a result's estimates, on the fast fitter's scale."""
    y = frame["value"].to_numpy(float)
    X = np.column_stack([np.ones(len(y)), (frame["arm"] == "ai_assisted").to_numpy(float)])
    theta = [result.variance_components[g] / result.residual_variance for g in GROUPS]
    return mixed.reml_deviance(y, X, [pd.factorize(frame[g])[0] for g in GROUPS], theta)


def _one_blas_thread():
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:  # pragma: no cover
        return contextlib.nullcontext()
    return threadpool_limits(1, user_api="blas")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", type=int, default=297)
    parser.add_argument("--scale", type=int, default=100)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    n_large = args.cases * args.scale

    small = synthetic_frames(args.cases)
    summarize(*small, mixed=True)  # warm-up: imports (statsmodels' too), caches
    t_small = timed(lambda: summarize(*small, mixed=False), args.repeat)
    t_small_mixed = timed(lambda: summarize(*small, mixed=True), args.repeat)

    # Before the large tables exist: with their millions of Python objects alive, the garbage
    # collector's passes made the same statsmodels fit ~9x slower, which is not the model's cost.
    frames = mixed_inputs(small[0])
    t_fast = timed(lambda: fit_all(frames, stats.mixed_model), args.repeat)
    fast = fit_all(frames, stats.mixed_model)
    with _one_blas_thread():
        start = time.perf_counter()
        slow = fit_all(frames, stats.mixed_model_statsmodels)
        t_slow = time.perf_counter() - start
        diff = {name: differences(fast[name], slow[name]) for name in frames}
        powell = {name: stats.mixed_model_statsmodels(frames[name], "value", reference="scp",
                                                      method="powell")
                  for name in frames if max(diff[name].values()) > 1e-4}
    deviances = {name: (reml_deviance(frame, fast[name]), reml_deviance(frame, slow[name]))
                 for name, frame in frames.items()}

    large = synthetic_frames(n_large, seed=2)
    t_large = timed(lambda: summarize(*large, mixed=False), args.repeat)
    t_large_mixed = timed(lambda: summarize(*large, mixed=True), args.repeat)
    frames_large = mixed_inputs(large[0])
    t_fast_large = timed(lambda: fit_all(frames_large, stats.mixed_model), args.repeat)
    fast_large = fit_all(frames_large, stats.mixed_model)

    per_case_small = t_small / args.cases
    per_case_large = t_large / n_large
    sizes = (f"1x, {args.cases:,} cases ({len(small[0]):,} rating rows)",
             f"{args.scale}x, {n_large:,} cases ({len(large[0]):,} rating rows)")
    print("(a) summarize(..., mixed=False) on generated tidy tables (no database, no figures), "
          f"best of {args.repeat}:")
    print(f"  {sizes[0]}: {t_small:8.3f} s{_goal(1, t_small)}")
    print(f"  {sizes[1]}: {t_large:8.3f} s{_goal(args.scale, t_large)}")
    print(f"  per-case cost ratio {args.scale}x / 1x: {per_case_large / per_case_small:.2f} "
          "(1.0 = linear; below 1: fixed costs amortised)")
    print("(b) the whole analysis, summarize(..., mixed=True) (mixed model of quality and "
          f"agreement included), best of {args.repeat}:")
    print(f"  {sizes[0]}: {t_small_mixed:8.3f} s{_goal(1, t_small_mixed)}")
    print(f"  {sizes[1]}: {t_large_mixed:8.3f} s{_goal(args.scale, t_large_mixed)}")
    print("(c) the mixed model alone (quality + agreement):")
    print(f"  fast REML (analysis.mixed), 1x, best of {args.repeat}:   {t_fast:8.3f} s")
    print(f"  statsmodels MixedLM (mixed_model_statsmodels, L-BFGS, one BLAS thread), 1x, one "
          f"run: {t_slow:8.3f} s")
    print(f"  ratio statsmodels / fast at 1x: {t_slow / t_fast:,.0f}x")
    for name in frames:
        f, s = fast[name], slow[name]
        print(f"  {name}: max |fast - statsmodels| {_largest(diff[name])}; effect {f.effect:.6f} "
              f"vs {s.effect:.6f}, SE {f.se:.6f} vs {s.se:.6f}, components "
              + ", ".join(f"{g} {f.variance_components[g]:.6f} vs {s.variance_components[g]:.6f}"
                          for g in GROUPS)
              + f", residual {f.residual_variance:.6f} vs {s.residual_variance:.6f}")
        dev_fast, dev_slow = deviances[name]
        print(f"    -2 REML log-lik: fast {dev_fast:.6f}, statsmodels {dev_slow:.6f} "
              f"(statsmodels {dev_slow - dev_fast:+.2e}; positive = it stopped short of the "
              "optimum)")
        if name in powell:
            print(f"    statsmodels refitted with Powell: max |fast - statsmodels| "
                  f"{_largest(differences(f, powell[name]))}")
    best_reference = {n: differences(fast[n], powell.get(n, slow[n])) for n in frames}
    print(f"  max |difference| over both outcomes vs statsmodels (L-BFGS): "
          f"{max(max(d.values()) for d in diff.values()):.2e}"
          + (f"; vs statsmodels (Powell where L-BFGS stalled): "
             f"{max(max(d.values()) for d in best_reference.values()):.2e}" if powell else ""))
    print(f"  fast REML, {args.scale}x ({n_large:,} cases, "
          f"{sum(len(f) for f in frames_large.values()):,} rows), best of {args.repeat}: "
          f"{t_fast_large:8.3f} s (converged: "
          + ", ".join(f"{n} {r.converged}" for n, r in fast_large.items()) + ")")
    print(f"  statsmodels not run at {args.scale}x: too slow (it took {t_slow:.0f} s at 1x and "
          "grows faster than linearly with the cases)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
