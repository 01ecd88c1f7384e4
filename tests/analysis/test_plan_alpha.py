"""Every confidence interval of the analysis at the signed plan's level (1 − alpha), and the
tables labelled with it; and the pairwise preference with an even panel of raters, where a
tie counts for neither report.

Each interval is checked against an independent computation (scipy, statsmodels, a hand
calculation or a bootstrap rebuilt from the seed), never against the code's own output.
"""

from __future__ import annotations

import io
import math
import re

import numpy as np
import pandas as pd
import pytest
import statsmodels.formula.api as smf
from scipy import stats as sps
from statsmodels.stats.proportion import confint_proportions_2indep, proportion_confint

from analysis.report import _preference_figure, build_sections, key_numbers, plan_lines
from analysis.summary import FINDINGS, summarize
from analysis.tables import level, preference_table, table1
from tests.analysis.test_blinding import COLUMNS, source_id_rows
from tests.analysis.test_plan import plan
from tests.analysis.test_summary import make_frames

ALPHA = 0.10
Z90 = sps.norm.ppf(0.95)  # two-sided 90%: 1.6449
NAMES = {"ai_assisted": "AI-assisted", "scp": "SCP"}


def frames() -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """make_frames' trial with four raters' preference votes (r5's removed: ties possible)
    and 20 source-identification answers on AI-draft-alone vs SCP pairs (14 right) in the
    same campaign."""
    ratings, readings, cases = make_frames(30, seed=7)
    ratings = ratings[~((ratings.instrument == "preference") & (ratings.rater == "r5"))]
    ident = pd.DataFrame(source_id_rows(1, "prospective", "ai_alone", "scp",
                                        ["ai_alone"] * 14 + ["scp"] * 6), columns=COLUMNS)
    return pd.concat([ratings, ident], ignore_index=True), readings, cases


@pytest.fixture(scope="module")
def data():
    return frames()


@pytest.fixture(scope="module")
def summary(data):
    return summarize(*data, mixed=True, plan=plan(alpha=ALPHA))


def per_report(ratings: pd.DataFrame, instrument: str, arm: str) -> pd.Series:
    rows = ratings[(ratings.instrument == instrument) & (ratings.arm == arm)
                   & (ratings.item_kind == "single")]
    return rows.assign(value=rows.value.astype(float)).groupby("case")["value"].mean()


def pair_votes(ratings: pd.DataFrame) -> pd.DataFrame:
    """Per case: raters voting for the AI-assisted report, and raters voting."""
    pref = ratings[ratings.instrument == "preference"]
    return (pref.value == "ai_assisted").groupby(pref.case).agg(["sum", "count"])


def assert_ci(entry: dict, low: float, high: float, tol: float = 1e-9) -> None:
    assert entry["ci_low"] == pytest.approx(low, abs=tol)
    assert entry["ci_high"] == pytest.approx(high, abs=tol)


# ------------------------------------------------------------------ intervals at 1 - alpha

def test_t_test_and_subgroup_intervals_are_90_percent(data, summary) -> None:
    ratings, readings, cases = data
    assert summary["confidence"] == pytest.approx(0.90)
    for name, instrument in (("quality", "likert"), ("agreement", "radpeer")):
        ai, scp = per_report(ratings, instrument, "ai_assisted"), per_report(ratings,
                                                                             instrument, "scp")
        entry = summary["outcomes"][name]
        ci = sps.ttest_ind(ai, scp).confidence_interval(0.90)
        assert_ci(entry["student"], ci.low, ci.high)
        ci = sps.ttest_ind(ai, scp, equal_var=False).confidence_interval(0.90)
        assert_ci(entry["welch"], ci.low, ci.high)
        ci = sps.ttest_rel(ai.sort_index(), scp.sort_index()).confidence_interval(0.90)
        assert_ci(entry["paired"], ci.low, ci.high)
    times = readings[readings.status == "submitted"]
    scp_t = times.loc[times.arm == "scp", "reading_seconds"]
    ai_t = times.loc[times.arm == "ai_assisted", "reading_seconds"]
    ci = sps.ttest_ind(scp_t, ai_t).confidence_interval(0.90)
    assert_ci(summary["reading_time"]["overall"]["student"], ci.low, ci.high)
    complex_ids = set(cases.loc[cases.complex_case.fillna(False).astype(bool), "case"])
    sub = ratings[ratings.case.isin(complex_ids)]
    ci = sps.ttest_ind(per_report(sub, "likert", "ai_assisted"),
                       per_report(sub, "likert", "scp")).confidence_interval(0.90)
    assert_ci(summary["subgroups"]["complex_cases"]["quality"], ci.low, ci.high)


@pytest.mark.filterwarnings("ignore:The MLE may be on the boundary")
@pytest.mark.filterwarnings("ignore:The Hessian matrix at the estimated")
def test_mixed_model_interval_is_90_percent(data, summary) -> None:
    # make_frames' raters add no variance: statsmodels warns that the rater component is on
    # the boundary (0), where the platform's fit reports exactly 0
    ratings = data[0]
    rows = ratings[(ratings.instrument == "likert") & (ratings.item_kind == "single")]
    rows = rows.assign(value=rows.value.astype(float),
                       ai=(rows.arm == "ai_assisted").astype(float), whole=1)
    fit = smf.mixedlm("value ~ ai", rows, groups="whole",
                      vc_formula={"reader": "0 + C(reader)", "case": "0 + C(case)",
                                  "rater": "0 + C(rater)"}
                      ).fit(reml=True, method=["nm", "lbfgs"], maxiter=5000)
    effect, se = fit.fe_params["ai"], fit.bse_fe["ai"]
    mixed = summary["outcomes"]["quality"]["mixed_model"]
    assert mixed["effect"] == pytest.approx(effect, abs=1e-4)
    assert mixed["se"] == pytest.approx(se, rel=1e-3)
    # the interval is effect ± z(0.95)·SE, whatever the SE's last digits
    half = (mixed["ci_high"] - mixed["ci_low"]) / 2
    assert half == pytest.approx(Z90 * mixed["se"], rel=1e-12)
    assert_ci(mixed, effect - Z90 * se, effect + Z90 * se, tol=1e-3)


def test_preference_and_positive_rate_intervals_are_90_percent(data, summary) -> None:
    ratings, readings, _ = data
    votes = pair_votes(ratings)
    k, n = int((votes["sum"] >= 3).sum()), len(votes)
    entry = summary["preference"]["comparisons"]["prospective: ai_assisted vs scp"]
    low, high = proportion_confint(k, n, alpha=ALPHA, method="wilson")
    assert entry["confidence"] == pytest.approx(0.90)
    assert_ci(entry, low, high)
    assert summary["campaigns"]["1"]["preference"]["comparisons"][
        "prospective: ai_assisted vs scp"]["ci_low"] == pytest.approx(low)

    done = readings[readings.status == "submitted"]
    ticked = done.findings_ticked.str.split(";").map(set)
    n_arm = {arm: int((done.arm == arm).sum()) for arm in NAMES}
    for finding in FINDINGS:
        x = {arm: int((ticked.map(lambda s, f=finding: f in s) & (done.arm == arm)).sum())
             for arm in NAMES}
        low, high = confint_proportions_2indep(x["ai_assisted"], n_arm["ai_assisted"],
                                               x["scp"], n_arm["scp"], method="newcomb",
                                               compare="diff", alpha=ALPHA)
        assert_ci(summary["positive_rates"]["findings"][finding], low, high)


def test_blinding_and_source_identification_intervals_are_90_percent(summary) -> None:
    # 14 of 20 answers right: BI = (14 - 6)/20 = 0.4; Var = [0.7·0.3 + 0.3·0.7 + 2·0.7·0.3]/20
    bi = 0.4
    se = math.sqrt((0.7 * 0.3 + 0.3 * 0.7 + 2 * 0.7 * 0.3) / 20)
    bang = summary["blinding"]["campaigns"]["1"]["comparisons"]["ai_alone vs scp"]["bang"]
    assert bang["bi"] == pytest.approx(bi)
    assert_ci(bang, bi - Z90 * se, bi + Z90 * se)
    assert "90% CI" in summary["blinding"]["campaigns"]["1"]["verdict"]
    ident = summary["source_identification"]["comparisons"]["prospective: ai_alone vs scp"]
    assert (ident["model_source"], ident["correct"], ident["n_answers"]) == ("ai_alone", 14, 20)
    accuracy = ident["accuracy"]
    low, high = proportion_confint(14, 20, alpha=ALPHA, method="wilson")
    assert_ci(accuracy, low, high)


def test_every_table_and_figure_is_labelled_with_the_plans_level(summary) -> None:
    sections = build_sections(summary, NAMES, {})
    headers = [c for s in sections for t in s["tables"] for c in t.columns if "CI" in c]
    assert headers and set(headers) == {"90% CI"}
    text = " ".join([*(line for s in sections for line in s["intro"]),
                     *(t.note for s in sections for t in s["tables"]),
                     *(c for s in sections for t in s["tables"] for c in t.columns)])
    assert "95%" not in text
    assert "alpha 0.1 (two-sided; 90% CIs)" in " ".join(plan_lines(summary))
    lines = key_numbers(summary, NAMES)
    assert all("(90% CI " in line for line in lines) and "95%" not in " ".join(lines)
    figure = _preference_figure(summary, NAMES)
    assert "(90% CI)" in figure.axes[0].get_xlabel()


@pytest.mark.parametrize(("confidence", "text"), [(0.95, "95%"), (0.9, "90%"), (1 - 0.05, "95%"),
                                                  (1 - 0.001, "99.9%"), (1 - 0.2, "80%"),
                                                  (1 - 0.025, "97.5%")])
def test_level_text(confidence: float, text: str) -> None:
    # round(100 * 0.999) would print "100%": the level keeps its decimals
    assert level(confidence) == text


def test_without_a_plan_every_interval_is_95_percent(data) -> None:
    result = summarize(*data, mixed=False)
    votes = pair_votes(data[0])
    k, n = int((votes["sum"] >= 3).sum()), len(votes)
    entry = result["preference"]["comparisons"]["prospective: ai_assisted vs scp"]
    assert_ci(entry, *proportion_confint(k, n, alpha=0.05, method="wilson"))
    headers = {c for s in build_sections(result, NAMES, {}) for t in s["tables"]
               for c in t.columns if "CI" in c}
    assert headers == {"95% CI"}


# ---------------------------------------------------- preference: an even panel, with ties

def test_even_panel_ties_count_for_neither_report(data, summary) -> None:
    votes = pair_votes(data[0])
    assert set(votes["count"]) == {4}
    ai_cases = int((votes["sum"] >= 3).sum())       # 3 or 4 of 4 for AI-assisted
    scp_cases = int((votes["sum"] <= 1).sum())      # 3 or 4 of 4 for SCP
    ties = int((votes["sum"] == 2).sum())           # 2 of 4 each way: no majority
    assert ties > 0 and ai_cases + scp_cases + ties == len(votes)
    entry = summary["preference"]["comparisons"]["prospective: ai_assisted vs scp"]
    assert (entry["a"], entry["threshold"], entry["n_raters"]) == ("ai_assisted", 3, 4)
    assert (entry["n_cases_preferred"], entry["n_cases_preferred_b"], entry["n_ties"]) == (
        ai_cases, scp_cases, ties)
    assert entry["share"] == pytest.approx(ai_cases / len(votes))
    assert entry["share_b"] == pytest.approx(scp_cases / len(votes))
    # the sign test leaves the ties out
    assert entry["p"] == pytest.approx(sps.binomtest(ai_cases, ai_cases + scp_cases).pvalue)

    row = next(r for r in table1(summary, NAMES).rows if r[0].startswith("Preference"))
    assert row[3] == f"{100 * ai_cases / len(votes):.1f}% of {len(votes)} cases ({ties} tied)"
    table = preference_table(summary["preference"], NAMES, confidence=0.9)
    assert table.columns[:6] == ["comparison", "cases", "A preferred by a majority", "90% CI",
                                 "B preferred by a majority", "ties (no majority)"]
    (cells,) = table.rows
    assert cells[1] == str(len(votes)) and cells[5] == str(ties)
    assert re.match(rf"{scp_cases} \(", cells[4])
    assert "tie" in table.note and "counts for neither" in table.note


def test_table1_uses_b_s_own_share_when_ai_assisted_is_second() -> None:
    # A preference entry oriented SCP vs AI-assisted (A = SCP): the AI-assisted share is B's
    # own count over every case, not 1 - A's share (which would count the ties for AI).
    entry = {"available": True, "a": "scp", "b": "ai_assisted", "n_cases": 10,
             "n_cases_preferred": 3, "share": 0.3, "ci_low": 0.1, "ci_high": 0.6,
             "n_cases_preferred_b": 5, "share_b": 0.5, "ci_b_low": 0.24, "ci_b_high": 0.76,
             "n_ties": 2, "p": sps.binomtest(3, 8).pvalue, "confidence": 0.95}
    summary = {"outcomes": {"quality": {"available": False, "reason": "x"},
                            "agreement": {"available": False, "reason": "x"}},
               "reading_time": {"available": False, "reason": "x"},
               "preference": {"available": True, "comparisons": {"p: scp vs ai_assisted": entry}},
               "confidence": 0.95}
    row = next(r for r in table1(summary, NAMES).rows if r[0].startswith("Preference"))
    assert row[3] == "50.0% of 10 cases (2 tied)" and row[4] == "24.0% to 76.0%"


# ---------------------------------------------- the report metrics run at the plan's alpha

@pytest.mark.django_db
def test_metrics_computed_from_the_page_use_the_plans_alpha(client, tmp_path) -> None:
    from analysis import plans
    from metrics import compute, exports
    from tests.analysis.test_report_metrics import make_world, run_metrics
    from tests.support.factories import PASSWORD

    world = make_world()
    old = run_metrics(world.trial)  # before the plan: 95%
    assert old.results["alpha"] == 0.05
    draft = plans.save_draft(world.trial, {
        "primary_campaign": world.campaign, "primary_outcomes": ["quality"],
        "secondary_outcomes": [], "primary_method": "student", "alpha": ALPHA,
        "subgroups": [], "missing_ratings": "available", "pooled_campaigns": [], "notes": "",
        "reason": ""}, by=world.statistician)
    plans.freeze(draft, by=world.statistician, password=PASSWORD)
    client.force_login(world.statistician)
    page = f"/analysis/{world.trial.slug}/"
    shown = client.get(page).content.decode()
    assert "This run&#x27;s CIs are 95%, not the 90% of the signed analysis plan" in shown

    form = {"labeller": str(old.labeller.pk), "seed": "2025"}
    assert client.post(f"{page}metrics/compute/", form).status_code == 302
    run = compute.latest(world.trial)
    assert run.pk != old.pk and run.results["alpha"] == pytest.approx(ALPHA)
    # ROUGE-L's CI: the 5th and 95th percentiles of the bootstrap means rebuilt from the seed
    per_report = exports.tables(run.results)["report_level_metrics"]
    values = per_report.loc[per_report.source == "modelA", "rouge_l"].to_numpy(float)
    rng = np.random.default_rng(2025)
    means = [np.bincount(rng.integers(0, len(values), len(values)),
                         minlength=len(values)) @ values / len(values)
             for _ in range(compute.RESAMPLES)]
    low, high = np.percentile(means, [5, 95])
    stored = run.results["comparisons"][0]["sources"][0]["metrics"]["rouge_l"]
    assert (stored["ci_low"], stored["ci_high"]) == pytest.approx((low, high), abs=1e-12)
    shown = client.get(page).content.decode()
    assert "permutations; 90% CIs." in shown and "This run&#x27;s CIs are" not in shown
    assert "90% CI" in shown and "90% percentile bootstrap over cases" in shown
    assert "95% CI" not in shown and "95% percentile" not in shown

    # manage.py report_metrics takes the plan's alpha too, unless --alpha says otherwise
    from django.core.management import call_command

    call_command("report_metrics", trial=world.trial.slug, out=str(tmp_path / "m"), seed=3,
                 resamples=100, permutations=100, stdout=io.StringIO(), stderr=io.StringIO())
    assert compute.latest(world.trial).results["alpha"] == pytest.approx(ALPHA)
    call_command("report_metrics", trial=world.trial.slug, out=str(tmp_path / "m"), seed=3,
                 resamples=100, permutations=100, alpha=0.01, stdout=io.StringIO(),
                 stderr=io.StringIO())
    assert compute.latest(world.trial).results["alpha"] == pytest.approx(0.01)
