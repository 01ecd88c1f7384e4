"""Every number of the trial report, from the tidy tables, as one JSON-serialisable dict.

Pure (no Django): it takes the DataFrames of ``analysis.datasets`` (or simulated ones with the
same columns) and calls ``analysis.stats`` only, so the report, the statistician's page, the
benchmark and a notebook all get the same numbers. A statistic the data cannot define yet
(no ratings, one arm, one rater ...) becomes ``{"available": False, "reason": ...}`` instead
of an exception, so a report can be built at any point of the trial.

Conventions (written into ``notes`` as well):

* Quality = instrument ``likert``, agreement = ``radpeer``; only the numeric 1-5 RADPEER
  (the reference trial's variant, 5 best) enters the means. Campaigns using ACR RADPEER 2016
  (1 / 2a / 2b / 3a / 3b, 1 best) are left out of them: they are not on the same scale.
* A report's score is the mean over its raters. Arms are compared over reports with the
  independent t-test (as published), paired by case, and with the mixed model over rating
  rows (reader, case and rater random effects). Differences are AI-assisted − SCP; reading
  time differences are SCP − AI-assisted (the reduction).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

import pandas as pd

from analysis import blinding, stats
from analysis.jsonsafe import clean
from trial.findings import COMPLEX_AT, FINDINGS, NO_FINDING

AI, SCP = "ai_assisted", "scp"
ARMS = (AI, SCP)
QUALITY, AGREEMENT = "likert", "radpeer"
OUTCOMES = {"quality": QUALITY, "agreement": AGREEMENT}
PROSPECTIVE, RETROSPECTIVE = "prospective", "retrospective"
HUMAN_SOURCES = {AI, SCP, "published"}
# Preference comparisons are oriented "A vs B" with A the first of these (then by name).
_SOURCE_ORDER = {"ai_alone": 0, AI: 1, SCP: 3, "published": 4}

NOTES = [
    "Quality is the 5-point Likert score, agreement the RADPEER-based 1-5 score (5 best); only "
    "numeric 1-5 RADPEER ratings enter the means (ACR RADPEER 2016 campaigns are left out).",
    "A report's score is the mean of its raters' scores; t-tests compare reports (independent "
    "as published, and paired by case); the mixed model uses every rating with reader, case "
    "and rater random effects, the analysis that respects the clustering.",
    "Differences are AI-assisted minus SCP; reading-time differences are SCP minus AI-assisted "
    "(the reduction), % reduction = (SCP - AI) / SCP mean.",
    "Preference: a case counts for A when a strict majority of its raters (3 of 5 as in the "
    "reference trial) preferred A, for B when a strict majority preferred B, and as a tie "
    "otherwise (with an even number of raters, half each way): a tie counts for neither. The "
    "share is over every case, ties included; P is the sign test (cases for A out of the "
    "cases with a majority either way, ties left out, against 50%). Cases with fewer raters "
    "than the most rated case are dropped (counted); pooled-vote figures ignore clustering.",
]
# ``complex_basis`` of the cases table (``analysis.datasets``): what complex_case comes from.
GOLD_LABELS, READER_TICKS, NO_GOLD_LABELS = "gold_labels", "reader_ticks", "no_gold_labels"


def complex_case_definition(cases: pd.DataFrame) -> dict[str, Any]:
    """Which complex-case definition the cases table used, in words for the notes.

    Gold labels when any case's ``complex_basis`` is ``gold_labels`` (the trial has a gold
    label set; cases it does not label are left out of the subgroup, counted); else the
    readers' ticks (tables without ``complex_basis``, as simulated ones, are ticks too)."""
    basis = cases["complex_basis"] if "complex_basis" in cases else pd.Series(dtype=object)
    flagged = cases["complex_case"].fillna(False).astype(bool) if len(cases) else basis
    if len(cases) and (basis == GOLD_LABELS).any():
        labelled = basis == GOLD_LABELS
        read = (pd.to_numeric(cases["n_readings_submitted"], errors="coerce").fillna(0) > 0
                if "n_readings_submitted" in cases else pd.Series(True, index=cases.index))
        unlabelled_read = int((~labelled & read).sum())
        n_complex = int((flagged & labelled).sum())
        text = (f"Complex case: >= {COMPLEX_AT} findings other than {NO_FINDING} in the "
                f"trial's gold-standard labels ({int(labelled.sum())} cases labelled, "
                f"{n_complex} complex). ")
        text += (f"{unlabelled_read} read case(s) have no gold labels and are left out of the "
                 "complex-case subgroup (not classified: the readers' ticks are not used "
                 "instead, since they are made after randomisation and may depend on the arm)."
                 if unlabelled_read else "Every read case has gold labels.")
        return {"basis": GOLD_LABELS, "text": text, "n_labelled": int(labelled.sum()),
                "n_complex": n_complex, "n_read_without_gold_labels": unlabelled_read}
    return {"basis": READER_TICKS, "n_complex": int(flagged.sum()) if len(cases) else 0,
            "text": f"Complex case: any reader ticked >= {COMPLEX_AT} findings other than "
                    f"{NO_FINDING} (the trial has no gold-standard label set; with one, its "
                    "labels define the subgroup)."}


def complex_case_ids(readings: pd.DataFrame, cases: pd.DataFrame) -> set[Any]:
    """The complex cases, by :func:`complex_case_definition`'s rule (with no classified case
    in the cases table, any submitted reading that ticked >= 3)."""
    if len(cases) and cases["complex_case"].notna().any():
        return set(cases.loc[cases["complex_case"].fillna(False).astype(bool), "case"])
    if not len(readings):
        return set()
    return set(readings.loc[readings["complex_case"].fillna(False).astype(bool), "case"])


# --------------------------------------------------------------------------------------------
# Helpers: unavailable entries and JSON-clean values
# --------------------------------------------------------------------------------------------

def unavailable(reason: str) -> dict[str, Any]:
    """The entry for a number the data cannot give yet, with the reason shown in the report."""
    return {"available": False, "reason": reason}


def _attempt(compute: Callable[[], Any]) -> dict[str, Any]:
    """``compute()`` as an available entry, or unavailable with the statistic's own reason."""
    try:
        result = compute()
    except stats.StatsError as exc:
        return unavailable(str(exc))
    return {"available": True, **result.as_dict()}


def _numeric(series: pd.Series) -> pd.Series:
    return pd.to_numeric(series, errors="coerce")


# --------------------------------------------------------------------------------------------
# Flow and baseline
# --------------------------------------------------------------------------------------------

def _submitted(readings: pd.DataFrame) -> pd.DataFrame:
    return readings[readings["status"] == "submitted"]


def flow_counts(cases: pd.DataFrame, readings: pd.DataFrame,
                ratings: pd.DataFrame) -> dict[str, Any]:
    """CONSORT-style counts: screened, excluded (by reason), enrolled, read and rated per arm."""
    status = cases["status"] if len(cases) else pd.Series(dtype=object)
    excluded = cases[status == "excluded"]
    reasons = (excluded["exclusion_reason"].fillna("").replace("", "(no reason given)")
               .value_counts().sort_index())
    submitted = _submitted(readings)
    read = {arm: int(submitted.loc[submitted["arm"] == arm, "case"].nunique()) for arm in ARMS}
    per_case = submitted.groupby("case")["arm"].nunique() if len(submitted) else pd.Series()
    prospective = ratings[(ratings["campaign_kind"] == PROSPECTIVE) & ratings["arm"].notna()]
    rated = {arm: int(prospective.loc[prospective["arm"] == arm, "case"].nunique())
             for arm in ARMS}
    rated_cases = prospective.groupby("case")["arm"].nunique() if len(prospective) else (
        pd.Series(dtype=int))
    return {
        "screened": len(cases),
        "excluded": len(excluded),
        "exclusion_reasons": {str(k): int(v) for k, v in reasons.items()},
        "awaiting_screening": int((status == "screened").sum()),
        "enrolled": int(cases["enrolled"].fillna(False).astype(bool).sum()) if len(cases) else 0,
        "withdrawn": int((status == "withdrawn").sum()),
        "read_per_arm": read,
        "read_both_arms": int((per_case == 2).sum()),
        "rated_per_arm": rated,
        "rated_both_arms": int((rated_cases == 2).sum()),
        "raters": int(ratings["rater"].nunique()),
        "ratings": int(ratings[["item_code"]].drop_duplicates().shape[0]) if len(ratings) else 0,
    }


def _counts(series: pd.Series) -> dict[str, Any]:
    total = int(series.notna().sum())
    return {str(k): {"n": int(v), "percent": 100 * v / total if total else None}
            for k, v in series.dropna().value_counts().sort_index().items()}


def baseline(cases: pd.DataFrame, readings: pd.DataFrame) -> dict[str, Any]:
    """The baseline table over enrolled cases: age, age classes, sex, sites, finding
    prevalence (share of read cases where any reader ticked it)."""
    enrolled = cases[cases["enrolled"].fillna(False).astype(bool)] if len(cases) else cases
    if not len(enrolled):
        return unavailable("no enrolled cases yet")
    submitted = _submitted(readings)
    submitted = submitted[submitted["case"].isin(set(enrolled["case"]))]
    prevalence: dict[str, Any] = {}
    n_read = int(submitted["case"].nunique())
    if n_read:
        ticks = _ticked(submitted)
        for finding in FINDINGS:
            cases_with = int(submitted.loc[ticks[finding], "case"].nunique())
            prevalence[finding] = {"n": cases_with, "percent": 100 * cases_with / n_read}
    return {
        "available": True, "n": len(enrolled),
        "age": _attempt(lambda: stats.describe(_numeric(enrolled["age"]))),
        "age_classes": _counts(enrolled["age_class"]),
        "sex": _counts(enrolled["sex"]),
        "sites": _counts(enrolled["site"]),
        "n_cases_read": n_read,
        "finding_prevalence": prevalence if n_read else unavailable("no submitted readings"),
    }


def _ticked(readings: pd.DataFrame) -> dict[str, pd.Series]:
    """For each finding, whether each reading ticked it."""
    labels = readings["findings_ticked"].fillna("").astype(str).str.split(";")
    sets = labels.map(set)
    return {finding: sets.map(lambda s, f=finding: f in s).astype(bool) for finding in FINDINGS}


# --------------------------------------------------------------------------------------------
# Quality and agreement per arm
# --------------------------------------------------------------------------------------------

def _scored_rows(ratings: pd.DataFrame, instrument: str,
                 acr_campaigns: set[Any]) -> tuple[pd.DataFrame, list[str]]:
    """Numeric rating rows of one instrument, ACR RADPEER campaigns left out (with a note)."""
    rows = ratings[ratings["instrument"] == instrument]
    notes: list[str] = []
    if instrument == AGREEMENT and len(rows):
        answers = rows["answer"].astype(str)
        acr = set(rows.loc[~answers.str.fullmatch(r"[1-5](\.0)?"), "campaign"]) | (
            acr_campaigns & set(rows["campaign"]))
        if acr:
            rows = rows[~rows["campaign"].isin(acr)]
            notes.append(f"campaign(s) {sorted(acr, key=str)} use ACR RADPEER 2016 codes; "
                         "left out of the RADPEER means")
    rows = rows.assign(value=_numeric(rows["value"]))
    return rows[rows["value"].notna()], notes


def _report_scores(rows: pd.DataFrame, keys: list[str]) -> pd.DataFrame:
    return rows.groupby(keys, as_index=False, sort=True)["value"].mean()


def outcome_rows(ratings: pd.DataFrame, instrument: str,
                 acr_campaigns: set[Any]) -> tuple[pd.DataFrame, list[str]]:
    """The rating rows a prospective outcome is computed from (single reports, numeric values,
    ACR RADPEER campaigns left out) and the notes saying what was left out. The tables and the
    report's figures both start from these rows."""
    prospective = ratings[ratings["campaign_kind"] == PROSPECTIVE]
    rows, notes = _scored_rows(prospective, instrument, acr_campaigns)
    return rows[rows["item_kind"] == "single"], notes


def arm_scores(rows: pd.DataFrame) -> pd.DataFrame:
    """Per-report scores of the arms' reports (the mean over raters): case, arm, value."""
    return _report_scores(rows[rows["arm"].isin(ARMS)], ["case", "arm"])


def arm_outcome(rows: pd.DataFrame, *, mixed: bool, confidence: float = 0.95) -> dict[str, Any]:
    """Mean ± SD per arm of per-report scores; Student, Welch and paired t; the mixed model."""
    rows = rows[rows["arm"].isin(ARMS)]
    if not len(rows):
        return unavailable("no ratings of the arms' reports yet")
    scores = arm_scores(rows)
    by_arm = {arm: scores.loc[scores["arm"] == arm, "value"] for arm in ARMS}
    result: dict[str, Any] = {
        "available": True, "n_ratings": len(rows), "n_raters": int(rows["rater"].nunique()),
        "per_arm": {arm: _attempt(lambda v=v: stats.describe(v)) for arm, v in by_arm.items()},
    }
    missing = [arm for arm, v in by_arm.items() if not len(v)]
    if missing:
        why = f"no rated reports in arm(s) {missing}"
        for key in ("student", "welch", "paired", "mixed_model"):
            result[key] = unavailable(why)
        return result
    c = confidence
    result["student"] = _attempt(lambda: stats.compare_groups(by_arm[AI], by_arm[SCP],
                                                              confidence=c))
    result["welch"] = _attempt(lambda: stats.compare_groups(by_arm[AI], by_arm[SCP],
                                                            equal_var=False, confidence=c))
    wide = scores.pivot(index="case", columns="arm", values="value").reindex(columns=list(ARMS))
    both = wide.dropna()
    result["paired"] = _attempt(lambda: stats.compare_groups(both[AI], both[SCP], paired=True,
                                                             confidence=c))
    if mixed:
        result["mixed_model"] = _attempt(lambda: stats.mixed_model(
            rows, "value", arm="arm", groups=("reader", "case", "rater"), reference=SCP,
            confidence=c))
    else:
        result["mixed_model"] = unavailable("mixed model not run (analyze --no-mixed)")
    return result


def kendall_per_arm(rows: pd.DataFrame, key: str = "arm",
                    levels: Iterable[str] = ARMS) -> dict[str, Any]:
    """Kendall's W (raters x reports) for each arm or source, with its chi-square P."""
    out = {}
    for level in levels:
        subset = rows[rows[key] == level]
        if not len(subset):
            out[level] = unavailable(f"no ratings for {level}")
            continue
        subset = subset.groupby(["rater", "case"], as_index=False)["value"].mean()
        out[level] = _attempt(lambda s=subset: stats.kendalls_w(stats.ratings_matrix(s)))
    return out


# --------------------------------------------------------------------------------------------
# Preference and source identification
# --------------------------------------------------------------------------------------------

def _oriented(a: Any, b: Any) -> tuple[str, str]:
    pair = sorted((str(a), str(b)), key=lambda s: (_SOURCE_ORDER.get(s, 2), s))
    return pair[0], pair[1]


def preference(ratings: pd.DataFrame, *, confidence: float = 0.95) -> dict[str, Any]:
    """Per comparison (A vs B): share of cases preferred by a strict majority of raters (a
    tie, possible with an even panel, counts for neither), with its (``confidence``) CI."""
    rows = ratings[(ratings["instrument"] == "preference") & ratings["other_source"].notna()]
    if not len(rows):
        return unavailable("no preference ratings yet")
    pairs = [_oriented(a, b) for a, b in zip(rows["source"], rows["other_source"], strict=True)]
    rows = rows.assign(_a=[p[0] for p in pairs], _b=[p[1] for p in pairs])
    out: dict[str, Any] = {"available": True, "comparisons": {}}
    for (kind, a, b), group in rows.groupby(["campaign_kind", "_a", "_b"], sort=True):
        votes = group.assign(vote=(blinding.picked_sources(group) == a).astype(float))
        votes = votes.drop_duplicates(["rater", "case"], keep="last").sort_values(
            ["case", "rater"])
        # A case's raters may differ from another's (a case's pairs go to disjoint raters), so
        # votes are matched within a case by slot, not by rater: slots x cases.
        votes = votes.assign(slot=votes.groupby("case").cumcount())
        matrix = votes.pivot(index="slot", columns="case", values="vote")
        threshold = matrix.shape[0] // 2 + 1
        entry = _attempt(lambda m=matrix, t=threshold: stats.majority_preference(
            m, threshold=t, confidence=confidence))
        entry.update({"a": a, "b": b, "campaign_kind": kind})
        out["comparisons"][f"{kind}: {a} vs {b}"] = entry
    return out


def source_identification(ratings: pd.DataFrame, *,
                          confidence: float = 0.95) -> dict[str, Any]:
    """Confusion matrices of "which report did the model write?" per pair of sources.

    Truth: of the two reports, the one whose source is not a human one (not ai_assisted, scp
    or published) is model-written. Each answer labels the picked report "model" and the
    other "human", so the 2 x 2 table over reports is [[correct, wrong], [wrong, correct]]
    (rows: actually model / human; columns: called model / human)."""
    rows = ratings[(ratings["instrument"] == "source_id") & ratings["other_source"].notna()]
    if not len(rows):
        return unavailable("no source-identification ratings")
    out: dict[str, Any] = {"available": True, "comparisons": {}}
    keyed = rows.assign(_pair=[_oriented(a, b) for a, b in zip(rows["source"],
                                                               rows["other_source"],
                                                               strict=True)])
    for (kind, pair), group in keyed.groupby(["campaign_kind", "_pair"], sort=True):
        model = [s for s in pair if s not in HUMAN_SOURCES]
        key = f"{kind}: {pair[0]} vs {pair[1]}"
        if len(model) != 1:
            out["comparisons"][key] = unavailable(
                "exactly one of the two reports must be model-written to score the answers")
            continue
        picks = blinding.picked_sources(group)
        correct = int((picks == model[0]).sum())
        n = len(group)
        entry = {"available": True, "campaign_kind": kind, "model_source": model[0],
                 "other_source": pair[1] if pair[0] == model[0] else pair[0],
                 "labels": ["model-written", "human-written"],
                 "matrix": [[correct, n - correct], [n - correct, correct]],
                 "n_answers": n, "correct": correct,
                 "accuracy": _attempt(lambda c=correct, t=n: stats.proportion_ci(
                     c, t, confidence=confidence)),
                 "p_vs_chance": stats.binomial_test(correct, n)}
        per_rater = group.assign(ok=(picks == model[0])).groupby("rater")["ok"].mean()
        entry["accuracy_per_rater"] = {str(k): float(v) for k, v in per_rater.items()}
        out["comparisons"][key] = entry
    return out


# --------------------------------------------------------------------------------------------
# Reading time and positive rates
# --------------------------------------------------------------------------------------------

def _time_comparison(times: pd.DataFrame, column: str, *, confidence: float = 0.95,
                     mixed: bool = False) -> dict[str, Any]:
    c = confidence
    by_arm = {arm: _numeric(times.loc[times["arm"] == arm, column]).dropna() for arm in ARMS}
    out: dict[str, Any] = {
        "available": True,
        "per_arm": {arm: _attempt(lambda v=v: stats.describe(v)) for arm, v in by_arm.items()},
    }
    student = _attempt(lambda: stats.compare_groups(by_arm[SCP], by_arm[AI], confidence=c))
    out["student"] = student
    out["welch"] = _attempt(lambda: stats.compare_groups(by_arm[SCP], by_arm[AI],
                                                         equal_var=False, confidence=c))
    wide = (times.assign(_t=_numeric(times[column]))
            .pivot_table(index="case", columns="arm", values="_t", aggfunc="mean")
            .reindex(columns=list(ARMS)).dropna())
    out["paired"] = _attempt(lambda: stats.compare_groups(wide[SCP], wide[AI], paired=True,
                                                          confidence=c))
    if mixed:
        # Reader and case random effects (no raters in a reading); effect SCP − AI-assisted as
        # the t-tests report it (the reduction).
        frame = times.assign(_t=_numeric(times[column])).dropna(subset=["_t"])
        out["mixed_model"] = _attempt(lambda: stats.mixed_model(
            frame, "_t", arm="arm", groups=("reader", "case"), reference=AI, confidence=c))
    if student["available"] and student["mean_a"]:
        out["reduction_seconds"] = student["difference"]
        out["reduction_percent"] = 100 * student["difference"] / student["mean_a"]
    else:
        out["reduction_percent"] = None
        out["reduction_note"] = "not available: " + student.get("reason", "SCP mean is 0")
    return out


def reading_time(readings: pd.DataFrame, cases: pd.DataFrame, *, confidence: float = 0.95,
                 mixed: bool = False) -> dict[str, Any]:
    """Reading time per arm, SCP − AI with CI and P, % reduction; overall and complex cases."""
    times = _submitted(readings)
    times = times[times["reading_seconds"].notna()]
    if not len(times):
        return unavailable("no submitted readings yet")
    complex_cases = complex_case_ids(times, cases)
    subset = times[times["case"].isin(complex_cases)]
    return {
        "available": True,
        "overall": _time_comparison(times, "reading_seconds", confidence=confidence,
                                    mixed=mixed),
        "complex_cases": (_time_comparison(subset, "reading_seconds", confidence=confidence)
                          if len(subset) else unavailable("no complex cases read yet")),
        "n_complex_cases": len(complex_cases),
        "active_time": _time_comparison(times, "active_seconds", confidence=confidence),
    }


def positive_rates(readings: pd.DataFrame, *, confidence: float = 0.95) -> dict[str, Any]:
    """Each finding's positive rate per arm (AI − SCP) with its (``confidence``) Newcombe CI,
    chi-square and Fisher P."""
    submitted = _submitted(readings)
    n = {arm: int((submitted["arm"] == arm).sum()) for arm in ARMS}
    if not all(n.values()):
        return unavailable(f"needs submitted readings in both arms (have {n})")
    ticks = _ticked(submitted)
    out: dict[str, Any] = {"available": True, "n_readings": n, "findings": {}}
    is_arm = {arm: (submitted["arm"] == arm).to_numpy() for arm in ARMS}
    for finding in FINDINGS:
        ticked = ticks[finding].to_numpy()
        x = {arm: int((ticked & is_arm[arm]).sum()) for arm in ARMS}
        out["findings"][finding] = _attempt(
            lambda x=x: stats.compare_proportions(x[AI], n[AI], x[SCP], n[SCP],
                                                  confidence=confidence))
    return out


# --------------------------------------------------------------------------------------------
# Retrospective campaigns
# --------------------------------------------------------------------------------------------

def retrospective(ratings: pd.DataFrame, acr_campaigns: set[Any]) -> dict[str, Any]:
    """Per source mean ± SD and Kendall's W, one-way ANOVA (Fisher and Welch) across sources."""
    retro = ratings[ratings["campaign_kind"] == RETROSPECTIVE]
    if not len(retro):
        return unavailable("no retrospective campaign ratings")
    out: dict[str, Any] = {"available": True}
    for name, instrument in OUTCOMES.items():
        rows, notes = _scored_rows(retro, instrument, acr_campaigns)
        rows = rows[rows["item_kind"] == "single"]
        if not len(rows):
            out[name] = unavailable(f"no numeric {instrument} ratings")
            continue
        scores = _report_scores(rows, ["case", "source"])
        sources = sorted(scores["source"].unique(), key=str)
        groups = [scores.loc[scores["source"] == s, "value"] for s in sources]
        out[name] = {
            "available": True, "sources": sources, "notes": notes,
            "per_source": {s: _attempt(lambda g=g: stats.describe(g))
                           for s, g in zip(sources, groups, strict=True)},
            "anova": _attempt(lambda g=groups: stats.one_way_anova(*g)),
            "welch_anova": _attempt(lambda g=groups: stats.one_way_anova(*g, welch=True)),
            "kendall": kendall_per_arm(rows, key="source", levels=sources),
        }
    return out


# --------------------------------------------------------------------------------------------
# The whole summary
# --------------------------------------------------------------------------------------------

def complete_reports(rows: pd.DataFrame) -> tuple[pd.DataFrame, int]:
    """The rows of reports rated by as many raters as the most-rated report of their campaign
    (the plan's "complete reports only" rule) and how many reports were left out."""
    if not len(rows):
        return rows, 0
    keys = ["campaign", "case", "source"]
    per_report = rows.groupby(keys)["rater"].nunique().rename("_n").reset_index()
    per_report["_max"] = per_report.groupby("campaign")["_n"].transform("max")
    kept = per_report[per_report["_n"] == per_report["_max"]][keys]
    return rows.merge(kept, on=keys), int(len(per_report) - len(kept))


def arm_outcomes(ratings: pd.DataFrame, *, acr: set[Any], mixed: bool,
                 confidence: float = 0.95,
                 missing: str = "available") -> tuple[dict[str, Any], dict[str, Any]]:
    """Quality and agreement per arm (and Kendall's W) over ``ratings``: one campaign, or the
    campaigns a plan pools."""
    outcomes: dict[str, Any] = {}
    kendall: dict[str, Any] = {}
    for name, instrument in OUTCOMES.items():
        rows, notes = outcome_rows(ratings, instrument, acr)
        if missing == "complete":
            rows, dropped = complete_reports(rows)
            notes = [*notes, f"complete reports only (analysis plan): {dropped} report(s) "
                             "with fewer raters left out"]
        entry = arm_outcome(rows, mixed=mixed, confidence=confidence)
        entry["instrument"] = instrument
        if notes:
            entry["notes"] = notes
        if len(rows):
            by_source = _report_scores(rows, ["case", "source"])
            entry["per_source"] = {
                str(s): _attempt(lambda g=g: stats.describe(g["value"]))
                for s, g in by_source.groupby("source", sort=True)}
        outcomes[name] = entry
        armed = rows[rows["arm"].isin(ARMS)]
        kendall[name] = (kendall_per_arm(armed) if len(armed)
                         else unavailable(f"no {instrument} ratings of the arms yet"))
    return outcomes, kendall


# --------------------------------------------------------------------------------------------
# The analysis plan: which campaign is primary, what is pre-specified
# --------------------------------------------------------------------------------------------

PRE_PRIMARY = "pre-specified, primary"
PRE_SECONDARY = "pre-specified, secondary"
PRE_SUBGROUP = "pre-specified subgroup"
EXPLORATORY = "exploratory"
NO_PLAN = "exploratory (no signed analysis plan)"
METHOD_LABELS = {"student": "independent t (Student, as published)",
                 "welch": "independent t (Welch)", "paired": "paired by case",
                 "mixed_model": "mixed model (random effects)"}


def basis(plan: dict[str, Any] | None, outcome: str, method: str | None = None, *,
          campaign: Any = None, subgroup: str | None = None) -> str:
    """Whether a number was pre-specified by the signed plan or is exploratory.

    Pre-specified: the outcome is one of the plan's primary (or secondary) outcomes, computed
    with the plan's primary method (``None``: a method-free outcome such as preference), on
    the plan's primary campaign (``None``: not from a rating campaign), and, for a subgroup,
    the subgroup is in the plan. Anything else is exploratory."""
    if plan is None:
        return NO_PLAN
    if campaign is not None and campaign != plan.get("primary_campaign_id"):
        return EXPLORATORY
    if method is not None and method != plan.get("primary_method"):
        return EXPLORATORY
    if outcome in plan.get("primary_outcomes", []):
        level = PRE_PRIMARY
    elif outcome in plan.get("secondary_outcomes", []):
        level = PRE_SECONDARY
    else:
        return EXPLORATORY
    if subgroup is not None:
        return PRE_SUBGROUP if subgroup in plan.get("subgroups", []) else EXPLORATORY
    return level


def _campaign_order(cid: Any) -> tuple[int, float, str]:
    """Campaign ids in the order they were made: numbers as numbers (2 before 10)."""
    try:
        return 0, float(cid), ""
    except (TypeError, ValueError):
        return 1, 0.0, str(cid)


def choose_primary(campaigns: dict[Any, dict[str, Any]], ratings: pd.DataFrame,
                   plan: dict[str, Any] | None) -> tuple[Any, str]:
    """The campaign the primary analysis uses, and why that one."""
    if plan is not None and plan.get("primary_campaign_id") is not None:
        return plan["primary_campaign_id"], "the signed analysis plan"
    rated = set(ratings["campaign"].dropna()) if len(ratings) else set()
    prospective = sorted((cid for cid, info in campaigns.items()
                          if info.get("kind") == PROSPECTIVE and cid in rated),
                         key=_campaign_order)
    if not prospective:
        return None, "no prospective campaign has ratings yet"
    if len(prospective) == 1:
        return prospective[0], "the only prospective campaign with ratings; no signed plan"
    return prospective[0], (f"no signed analysis plan: the first of {len(prospective)} "
                            "prospective campaigns; the others have their own sections")


def _campaigns_seen(ratings: pd.DataFrame,
                    campaigns: dict[Any, dict[str, Any]] | None) -> dict[Any, dict[str, Any]]:
    """Every campaign with ratings (name and kind), plus the ones the caller named."""
    known = dict(campaigns or {})
    if len(ratings):
        for cid, kind in ratings[["campaign", "campaign_kind"]].drop_duplicates().itertuples(
                index=False):
            known.setdefault(cid, {"name": f"campaign {cid}", "kind": kind})
    return known


def campaign_analysis(ratings: pd.DataFrame, cid: Any, info: dict[str, Any], *,
                      acr: set[Any], mixed: bool, confidence: float,
                      missing: str) -> dict[str, Any]:
    """One campaign's own results: never pooled with another campaign's ratings."""
    rows = ratings[ratings["campaign"] == cid]
    out: dict[str, Any] = {"id": cid, "name": info.get("name", str(cid)),
                           "kind": info.get("kind"), "n_ratings": len(rows),
                           "n_raters": int(rows["rater"].nunique())}
    if not len(rows):
        out["available"] = False
        out["reason"] = "no ratings in this campaign yet"
        return out
    out["available"] = True
    if info.get("kind") == PROSPECTIVE:
        out["outcomes"], out["kendall"] = arm_outcomes(rows, acr=acr, mixed=mixed,
                                                       confidence=confidence, missing=missing)
    else:
        out["retrospective"] = retrospective(rows, acr)
    out["preference"] = preference(rows, confidence=confidence)
    out["source_identification"] = source_identification(rows, confidence=confidence)
    return out


def subgroups(ratings: pd.DataFrame, readings: pd.DataFrame, cases: pd.DataFrame, *,
              acr: set[Any], confidence: float, plan: dict[str, Any] | None,
              primary: Any) -> dict[str, Any]:
    """Complex cases and each site: quality and agreement (primary campaign) and reading time,
    independent t-tests; labelled pre-specified only when the plan lists the subgroup."""
    complex_cases = complex_case_ids(readings, cases)
    groups: dict[str, tuple[str, set[Any]]] = {"complex_cases": ("complex_cases",
                                                                 complex_cases)}
    sites = sorted(set(cases["site"].dropna()), key=str) if len(cases) else []
    if len(sites) > 1:
        for site in sites:
            groups[f"site {site}"] = ("sites", set(cases.loc[cases["site"] == site, "case"]))
    primary_rows = ratings[ratings["campaign"] == primary] if primary is not None else (
        ratings.iloc[0:0])
    times = _submitted(readings)
    out: dict[str, Any] = {}
    for label, (kind, members) in groups.items():
        entry: dict[str, Any] = {"kind": kind, "n_cases": len(members)}
        for name, instrument in OUTCOMES.items():
            rows, _ = outcome_rows(primary_rows[primary_rows["case"].isin(members)],
                                   instrument, acr)
            scores = arm_scores(rows)
            by_arm = {arm: scores.loc[scores["arm"] == arm, "value"] for arm in ARMS}
            entry[name] = (_attempt(lambda b=by_arm: stats.compare_groups(
                b[AI], b[SCP], confidence=confidence)) if all(len(v) for v in by_arm.values())
                else unavailable("no rated reports of both arms in this subgroup"))
            entry[name]["basis"] = basis(plan, name, "student", campaign=primary, subgroup=kind)
        subset = times[times["case"].isin(members) & times["reading_seconds"].notna()]
        by_arm = {arm: _numeric(subset.loc[subset["arm"] == arm, "reading_seconds"]).dropna()
                  for arm in ARMS}
        entry["reading_time"] = (_attempt(lambda b=by_arm: stats.compare_groups(
            b[SCP], b[AI], confidence=confidence)) if all(len(v) for v in by_arm.values())
            else unavailable("no readings of both arms in this subgroup"))
        entry["reading_time"]["basis"] = basis(plan, "reading_time", "student", subgroup=kind)
        out[label] = entry
    return out


def _label_bases(summary: dict[str, Any], plan: dict[str, Any] | None, primary: Any) -> None:
    """Write each number's basis (pre-specified or exploratory) next to it."""
    for name, entry in summary["outcomes"].items():
        entry["basis"] = {method: basis(plan, name, method, campaign=primary)
                          for method in ("student", "welch", "paired", "mixed_model")}
    times = summary["reading_time"]
    if times.get("available"):
        times["basis"] = {method: basis(plan, "reading_time", method)
                          for method in ("student", "welch", "paired", "mixed_model")}
        times["complex_cases_basis"] = basis(plan, "reading_time", "student",
                                             subgroup="complex_cases")
    summary["preference"]["basis"] = basis(plan, "preference", campaign=primary)
    for entry in summary["campaigns"].values():
        real_id = entry.get("id")
        for name, outcome in entry.get("outcomes", {}).items():
            outcome["basis"] = {method: basis(plan, name, method, campaign=real_id)
                                for method in ("student", "welch", "paired", "mixed_model")}
        if "preference" in entry:
            entry["preference"]["basis"] = basis(plan, "preference", campaign=real_id)
    pooled = summary["pooled"]
    if pooled.get("available"):
        for name, outcome in pooled["outcomes"].items():
            pre = basis(plan, name, plan.get("primary_method") if plan else None)
            outcome["basis"] = {method: (f"{pre} (pooled as planned)"
                                         if method == (plan or {}).get("primary_method")
                                         and pre != EXPLORATORY else "exploratory (pooled)")
                                for method in ("student", "welch", "paired", "mixed_model")}
    summary["positive_rates"]["basis"] = basis(plan, "positive_rates")


def summarize(ratings: pd.DataFrame, readings: pd.DataFrame, cases: pd.DataFrame, *,
              mixed: bool = True, acr_campaigns: Iterable[Any] = (),
              plan: dict[str, Any] | None = None,
              campaigns: dict[Any, dict[str, Any]] | None = None) -> dict[str, Any]:
    """Every number of the report (JSON-serialisable; NaN never appears, None with a note).

    ``acr_campaigns``: campaigns whose RADPEER uses ACR 2016 codes (left out of the means;
    campaigns with any non-numeric RADPEER answer are detected anyway). ``plan``: the signed
    analysis plan (``analysis.plans.plan_summary``), or None. ``campaigns``: id -> name and
    kind. Rating outcomes are computed per campaign; the top-level ``outcomes``, ``kendall``
    and ``preference`` are the primary campaign's (the plan's, else the first prospective
    one), and campaigns are pooled only in ``pooled``, when the plan says so.
    """
    acr = set(acr_campaigns)
    complex_definition = complex_case_definition(cases)
    confidence = 1 - float(plan["alpha"]) if plan else 0.95
    missing = plan.get("missing_ratings", "available") if plan else "available"
    known = _campaigns_seen(ratings, campaigns)
    primary, why = choose_primary(known, ratings, plan)
    per_campaign = {cid: campaign_analysis(ratings, cid, info, acr=acr, mixed=mixed,
                                           confidence=confidence, missing=missing)
                    for cid, info in sorted(known.items(),
                                            key=lambda kv: _campaign_order(kv[0]))}
    primary_rows = ratings[ratings["campaign"] == primary] if primary is not None else (
        ratings.iloc[0:0])
    if primary is not None and primary in per_campaign and per_campaign[primary].get(
            "outcomes"):
        outcomes, kendall = per_campaign[primary]["outcomes"], per_campaign[primary]["kendall"]
    else:
        outcomes, kendall = arm_outcomes(primary_rows, acr=acr, mixed=mixed,
                                         confidence=confidence, missing=missing)
    # The headline sections use one campaign of each kind (the primary prospective one and the
    # first retrospective one); every campaign has its own section in ``campaigns``.
    retro_ids = sorted((cid for cid, info in known.items()
                        if info.get("kind") == RETROSPECTIVE), key=_campaign_order)
    headline_ids = [cid for cid in (primary, retro_ids[0] if retro_ids else None)
                    if cid is not None]
    headline = ratings[ratings["campaign"].isin(headline_ids)]
    pooled: dict[str, Any] = unavailable("the analysis plan pools no campaigns")
    if plan and plan.get("pooled_campaigns") and primary is not None:
        ids = [primary, *plan["pooled_campaigns"]]
        pooled_outcomes, _ = arm_outcomes(ratings[ratings["campaign"].isin(ids)], acr=acr,
                                          mixed=mixed, confidence=confidence, missing=missing)
        pooled = {"available": True, "campaigns": ids, "outcomes": pooled_outcomes,
                  "label": "pooled as the analysis plan pre-specifies: campaigns "
                           + ", ".join(str(known.get(i, {}).get("name", i)) for i in ids)}
    summary = {
        "notes": [*NOTES, complex_definition["text"]],
        "complex_case_definition": complex_definition,
        "plan": plan,
        "confidence": confidence,
        "primary_campaign": {"id": primary, "why": why,
                             "name": known.get(primary, {}).get("name") if primary is not None
                             else None},
        "counts": {"ratings_rows": len(ratings), "readings": len(readings),
                   "cases": len(cases), "raters": int(ratings["rater"].nunique()),
                   "readers": int(readings["reader"].nunique())},
        "flow": flow_counts(cases, readings, ratings),
        "baseline": baseline(cases, readings),
        "outcomes": outcomes,
        "kendall": kendall,
        "preference": (per_campaign[primary]["preference"]
                       if primary in per_campaign and "preference" in per_campaign[primary]
                       else preference(primary_rows, confidence=confidence)
                       if primary is not None
                       else unavailable("no prospective campaign has ratings yet")),
        "reading_time": reading_time(readings, cases, confidence=confidence, mixed=mixed),
        "positive_rates": positive_rates(readings, confidence=confidence),
        "retrospective": retrospective(headline, acr),
        "source_identification": source_identification(headline, confidence=confidence),
        "headline_campaigns": headline_ids,
        "blinding": blinding.blinding_assessment(ratings, confidence=confidence),
        "consistency_flags": blinding.consistency_flags(ratings, acr_campaigns=acr),
        "campaigns": {str(cid): entry for cid, entry in per_campaign.items()},
        "pooled": pooled,
        "subgroups": subgroups(ratings, readings, cases, acr=acr, confidence=confidence,
                               plan=plan, primary=primary),
    }
    if "complex_cases" in summary["subgroups"]:
        summary["subgroups"]["complex_cases"]["definition"] = complex_definition["text"]
    _label_bases(summary, plan, primary)
    return clean(summary)
