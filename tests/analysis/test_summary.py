"""summarize() on hand-made tables: each number against an independent scipy/pandas
computation, and the edge cases that must say "not available" instead of raising."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from scipy import stats as sps

from analysis.summary import FINDINGS, summarize

RATERS = ["r1", "r2", "r3", "r4", "r5"]
READERS = {"ai_assisted": ["a1", "a2", "a3"], "scp": ["s1", "s2", "s3"]}


def make_frames(n_cases: int = 30, seed: int = 0):
    """Ratings, readings and cases with the datasets' columns (no database)."""
    rng = np.random.default_rng(seed)
    cases = [f"C{i:03d}" for i in range(n_cases)]
    ratings, readings = [], []
    for arm, shift, seconds in (("ai_assisted", 0.4, 120.0), ("scp", 0.0, 150.0)):
        for i, case in enumerate(cases):
            reader = READERS[arm][i % 3]
            n_findings = int(rng.integers(0, 5))
            ticked = list(rng.choice(FINDINGS[1:], n_findings, replace=False)) or ["No Finding"]
            readings.append({
                "trial": "t", "case": case, "site": "A", "arm": arm, "reader": reader,
                "status": "submitted", "reading_seconds": seconds + rng.normal(0, 20),
                "active_seconds": seconds * 0.9, "gap_seconds": 1.0,
                "findings_ticked": ";".join(sorted(ticked)), "n_findings": n_findings,
                "complex_case": n_findings >= 3, "draft_used": arm == "ai_assisted",
                "edit_distance_from_draft": None, "senior_edit_distance": None,
            })
            for rater in RATERS:
                for instrument in ("likert", "radpeer"):
                    value = float(np.clip(round(3.5 + shift + rng.normal(0, 0.8)), 1, 5))
                    ratings.append({
                        "trial": "t", "campaign": 1, "campaign_kind": "prospective",
                        "item_code": f"{case}{arm}{rater}", "case": case, "site": "A",
                        "item_kind": "single", "source": arm, "other_source": None, "arm": arm,
                        "reader": reader, "rater": rater, "instrument": instrument,
                        "answer": str(int(value)), "value": value, "seconds": 10.0})
    for case in cases:
        for rater in RATERS:
            chosen = "ai_assisted" if rng.random() < 0.6 else "scp"
            ratings.append({
                "trial": "t", "campaign": 1, "campaign_kind": "prospective",
                "item_code": f"{case}pair{rater}", "case": case, "site": "A",
                "item_kind": "pair", "source": "scp", "other_source": "ai_assisted",
                "arm": None, "reader": None, "rater": rater, "instrument": "preference",
                "answer": "A", "value": chosen, "seconds": 5.0})
    readings_frame = pd.DataFrame(readings)
    n_max = readings_frame.groupby("case")["n_findings"].max()
    cases_frame = pd.DataFrame({
        "trial": "t", "case": cases, "site": "A", "status": "enrolled", "exclusion_reason": None,
        "age": rng.integers(10, 90, n_cases), "age_class": None, "sex": "F", "enrolled": True,
        "n_readings_submitted": 2, "n_findings_max": n_max.loc[cases].to_numpy(),
        "complex_case": (n_max.loc[cases] >= 3).to_numpy()})
    excluded = pd.DataFrame([{"trial": "t", "case": "X1", "site": "A", "status": "excluded",
                              "exclusion_reason": "Pregnant", "age": 30, "age_class": "18-60",
                              "sex": "F", "enrolled": False, "n_readings_submitted": 0,
                              "n_findings_max": None, "complex_case": None}])
    return pd.DataFrame(ratings), readings_frame, pd.concat([cases_frame, excluded],
                                                            ignore_index=True)


@pytest.fixture(scope="module")
def frames():
    return make_frames()


@pytest.fixture(scope="module")
def summary(frames):
    return summarize(*frames, mixed=False)


def report_means(ratings: pd.DataFrame, instrument: str, arm: str) -> pd.Series:
    rows = ratings[(ratings.instrument == instrument) & (ratings.arm == arm)]
    return rows.assign(value=rows.value.astype(float)).groupby("case")["value"].mean().sort_index()


def test_json_serialisable_without_nan(summary) -> None:
    json.dumps(summary, allow_nan=False)
    assert set(summary) >= {"flow", "baseline", "outcomes", "kendall", "preference",
                            "reading_time", "positive_rates", "retrospective"}


@pytest.mark.parametrize(("name", "instrument"), [("quality", "likert"),
                                                  ("agreement", "radpeer")])
def test_arm_comparisons_match_scipy(frames, summary, name, instrument) -> None:
    ratings = frames[0]
    ai, scp = report_means(ratings, instrument, "ai_assisted"), report_means(ratings, instrument,
                                                                            "scp")
    entry = summary["outcomes"][name]
    assert entry["per_arm"]["ai_assisted"]["mean"] == pytest.approx(ai.mean())
    assert entry["per_arm"]["scp"]["sd"] == pytest.approx(scp.std(ddof=1))
    student = sps.ttest_ind(ai, scp)
    assert entry["student"]["difference"] == pytest.approx(ai.mean() - scp.mean())
    assert entry["student"]["p"] == pytest.approx(student.pvalue)
    assert entry["welch"]["p"] == pytest.approx(sps.ttest_ind(ai, scp, equal_var=False).pvalue)
    assert entry["paired"]["p"] == pytest.approx(sps.ttest_rel(ai, scp).pvalue)
    assert entry["mixed_model"]["available"] is False


def test_kendalls_w_matches_friedman(frames, summary) -> None:
    ratings = frames[0]
    rows = ratings[(ratings.instrument == "likert") & (ratings.arm == "scp")]
    matrix = rows.pivot(index="rater", columns="case", values="value").astype(float)
    chi2 = sps.friedmanchisquare(*matrix.to_numpy().T).statistic  # raters are blocks
    m, n = matrix.shape
    w = summary["kendall"]["quality"]["scp"]
    assert w["w"] == pytest.approx(chi2 / (m * (n - 1)))
    assert w["n_raters"] == 5 and w["n_items"] == 30


def test_preference_share_by_majority_of_five(frames, summary) -> None:
    pref = frames[0][frames[0].instrument == "preference"]
    votes = (pref.value == "ai_assisted").groupby(pref.case).sum()
    entry = summary["preference"]["comparisons"]["prospective: ai_assisted vs scp"]
    assert entry["threshold"] == 3 and entry["n_raters"] == 5
    assert entry["n_cases_preferred"] == int((votes >= 3).sum())
    assert entry["p"] == pytest.approx(sps.binomtest(int((votes >= 3).sum()), 30).pvalue)


def test_reading_time_reduction(frames, summary) -> None:
    readings = frames[1]
    scp = readings[readings.arm == "scp"].reading_seconds
    ai = readings[readings.arm == "ai_assisted"].reading_seconds
    overall = summary["reading_time"]["overall"]
    assert overall["reduction_seconds"] == pytest.approx(scp.mean() - ai.mean())
    assert overall["reduction_percent"] == pytest.approx(100 * (scp.mean() - ai.mean())
                                                         / scp.mean())
    assert overall["student"]["p"] == pytest.approx(sps.ttest_ind(scp, ai).pvalue)
    complex_cases = set(frames[2].loc[frames[2].complex_case.fillna(False).astype(bool), "case"])
    sub = readings[readings.case.isin(complex_cases)]
    entry = summary["reading_time"]["complex_cases"]
    assert entry["per_arm"]["scp"]["n"] == len(complex_cases)
    assert entry["student"]["difference"] == pytest.approx(
        sub[sub.arm == "scp"].reading_seconds.mean()
        - sub[sub.arm == "ai_assisted"].reading_seconds.mean())


def test_positive_rate_chi_square(frames, summary) -> None:
    readings = frames[1]
    finding = "Cardiomegaly"
    has = readings.findings_ticked.str.split(";").map(lambda s: finding in s)
    table = pd.crosstab(readings.arm, has).reindex(index=["ai_assisted", "scp"],
                                                   columns=[True, False], fill_value=0)
    entry = summary["positive_rates"]["findings"][finding]
    assert entry["x_a"] == table.loc["ai_assisted", True]
    assert entry["chi2"] is not None  # both arms tick it and miss it: chi-square is defined
    expected = sps.chi2_contingency(table.to_numpy(), correction=False)
    assert entry["chi2"] == pytest.approx(expected.statistic)


def test_flow_and_baseline(summary) -> None:
    flow = summary["flow"]
    assert flow["screened"] == 31 and flow["excluded"] == 1 and flow["enrolled"] == 30
    assert flow["exclusion_reasons"] == {"Pregnant": 1}
    assert flow["read_per_arm"] == {"ai_assisted": 30, "scp": 30}
    assert flow["rated_both_arms"] == 30 and flow["raters"] == 5
    assert summary["baseline"]["n"] == 30 and summary["baseline"]["sex"]["F"]["n"] == 30


def test_no_ratings_yet_is_not_available() -> None:
    ratings, readings, cases = make_frames(6)
    result = summarize(ratings.iloc[0:0], readings, cases)
    assert result["outcomes"]["quality"]["available"] is False
    assert "no ratings" in result["outcomes"]["quality"]["reason"]
    assert result["kendall"]["quality"]["available"] is False
    assert result["preference"]["available"] is False
    assert result["reading_time"]["available"] is True
    json.dumps(result, allow_nan=False)


def test_empty_everything() -> None:
    ratings, readings, cases = make_frames(3)
    result = summarize(ratings.iloc[0:0], readings.iloc[0:0], cases.iloc[0:0])
    assert result["flow"]["screened"] == 0
    for key in ("baseline", "reading_time", "positive_rates", "preference", "retrospective"):
        assert result[key]["available"] is False, key


def test_one_arm_and_one_rater() -> None:
    ratings, readings, cases = make_frames(6)
    only_ai = ratings[(ratings.arm == "ai_assisted") & (ratings.rater == "r1")]
    result = summarize(only_ai, readings[readings.arm == "ai_assisted"], cases)
    quality = result["outcomes"]["quality"]
    assert quality["available"] is True and quality["per_arm"]["ai_assisted"]["available"]
    assert "scp" in quality["student"]["reason"]
    assert "one rater" in result["kendall"]["quality"]["ai_assisted"]["reason"]
    assert result["positive_rates"]["available"] is False
    assert result["reading_time"]["overall"]["student"]["available"] is False
    json.dumps(result, allow_nan=False)


def test_acr_radpeer_stays_out_of_the_means() -> None:
    ratings, readings, cases = make_frames(6)
    acr = ratings[ratings.instrument == "radpeer"].assign(campaign=2, answer="2a", value="2a")
    result = summarize(pd.concat([ratings, acr]), readings, cases, mixed=False)
    entry = result["outcomes"]["agreement"]  # the primary campaign's (campaign 1)
    assert entry["per_arm"]["scp"]["n"] == 6
    assert result["primary_campaign"]["id"] == 1
    acr_section = result["campaigns"]["2"]["outcomes"]["agreement"]  # its own section
    assert acr_section["available"] is False and "ACR" in acr_section["notes"][0]


def test_retrospective_anova_and_source_identification() -> None:
    rng = np.random.default_rng(5)
    rows = []
    for case in [f"R{i}" for i in range(12)]:
        for source, mean in (("published", 4.0), ("janus", 3.2), ("general", 1.6)):
            for rater in RATERS[:3]:
                rows.append({"trial": "t", "campaign": 3, "campaign_kind": "retrospective",
                             "item_code": f"{case}{source}{rater}", "case": case, "site": "A",
                             "item_kind": "single", "source": source, "other_source": None,
                             "arm": None, "reader": None, "rater": rater, "instrument": "likert",
                             "answer": "x", "value": float(np.clip(round(mean + rng.normal()),
                                                                   1, 5)), "seconds": 1.0})
        for rater in RATERS[:3]:
            rows.append({"trial": "t", "campaign": 3, "campaign_kind": "retrospective",
                         "item_code": f"{case}id{rater}", "case": case, "site": "A",
                         "item_kind": "pair", "source": "published", "other_source": "janus",
                         "arm": None, "reader": None, "rater": rater, "instrument": "source_id",
                         "answer": "A", "value": "janus" if rater != "r3" else "published",
                         "seconds": 1.0})
    ratings = pd.DataFrame(rows)
    _, readings, cases = make_frames(3)
    result = summarize(ratings, readings, cases, mixed=False)
    retro = result["retrospective"]["quality"]
    scores = ratings[ratings.instrument == "likert"].groupby(["source", "case"])["value"].mean()
    groups = [scores.loc[s].to_numpy() for s in sorted(retro["sources"])]
    assert retro["anova"]["p"] == pytest.approx(sps.f_oneway(*groups).pvalue)
    assert retro["anova"]["f"] == pytest.approx(sps.f_oneway(*groups).statistic)
    ident = result["source_identification"]["comparisons"]["retrospective: janus vs published"]
    assert ident["model_source"] == "janus"
    assert ident["matrix"] == [[24, 12], [12, 24]]
    assert ident["accuracy_per_rater"] == {"r1": 1.0, "r2": 1.0, "r3": 0.0}


def test_without_a_plan_the_primary_campaign_is_the_first_made_not_the_first_as_text() -> None:
    """Campaign 2 was made before campaign 10 (ids sorted as text put "10" first)."""
    from analysis.summary import choose_primary

    campaigns = {10: {"kind": "prospective"}, 2: {"kind": "prospective"},
                 1: {"kind": "retrospective"}, 3: {"kind": "prospective"}}
    ratings = pd.DataFrame({"campaign": [10, 2, 1]})  # campaign 3 has no ratings yet
    chosen, why = choose_primary(campaigns, ratings, plan=None)
    assert chosen == 2 and "first of 2 prospective" in why
    assert choose_primary(campaigns, ratings, plan={"primary_campaign_id": 10})[0] == 10


def test_campaigns_are_listed_and_headlined_in_the_order_they_were_made() -> None:
    """The headline retrospective campaign is the first made (3, not "10" as text), and the
    per-campaign sections follow the ids as numbers."""
    ratings, readings, cases = make_frames(8, seed=2)
    ratings = ratings.assign(campaign=2)
    single = ratings[ratings.item_kind == "single"]
    retro = [single.assign(campaign=cid, campaign_kind="retrospective",
                           item_code=single.item_code + f"-{cid}") for cid in (10, 3)]
    result = summarize(pd.concat([ratings, *retro], ignore_index=True), readings, cases,
                       mixed=False)
    assert result["primary_campaign"]["id"] == 2
    assert result["headline_campaigns"] == [2, 3]
    assert list(result["campaigns"]) == ["2", "3", "10"]
