"""The analysis plan and per-campaign analysis: a second campaign never moves the primary
numbers; the plan picks the campaign, method, alpha, missing-rating rule and what is pooled;
every number says whether it was pre-specified. Checked against scipy/pandas, not the code."""

from __future__ import annotations

import hashlib
import json

import pandas as pd
import pytest
from scipy import stats as sps

from analysis.summary import EXPLORATORY, NO_PLAN, PRE_PRIMARY, PRE_SECONDARY, summarize
from tests.analysis.test_summary import make_frames

CAMPAIGNS = {1: {"name": "First", "kind": "prospective"},
             2: {"name": "Second", "kind": "prospective"}}


def two_campaigns() -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """Campaign 1 and a campaign 2 with different ratings of the same reports."""
    ratings, readings, cases = make_frames(24, seed=3)
    second, _, _ = make_frames(24, seed=11)
    second = second.assign(campaign=2, item_code=second["item_code"] + "-2")
    return pd.concat([ratings, second], ignore_index=True), readings, cases


def report_means(ratings: pd.DataFrame, campaign: int | list[int], arm: str) -> pd.Series:
    ids = campaign if isinstance(campaign, list) else [campaign]
    rows = ratings[(ratings.instrument == "likert") & ratings.campaign.isin(ids)
                   & (ratings.arm == arm)]
    return rows.assign(value=rows["value"].astype(float)).groupby("case")["value"].mean()


def plan(**overrides) -> dict:
    base = {"version": 1, "sha256": "x" * 64, "primary_campaign_id": 1,
            "primary_outcomes": ["quality", "agreement", "preference", "reading_time"],
            "secondary_outcomes": ["positive_rates"], "primary_method": "student",
            "alpha": 0.05, "subgroups": ["complex_cases"], "missing_ratings": "available",
            "pooled_campaigns": [], "signed": "Stat, now", "after_unblinding": False,
            "reason": ""}
    return {**base, **overrides}


def test_a_second_campaign_does_not_move_the_primary_numbers() -> None:
    ratings, readings, cases = two_campaigns()
    result = summarize(ratings, readings, cases, mixed=False, campaigns=CAMPAIGNS)
    alone = summarize(ratings[ratings.campaign == 1], readings, cases, mixed=False)
    assert result["primary_campaign"]["id"] == 1
    for arm in ("ai_assisted", "scp"):
        expected = report_means(ratings, 1, arm)
        got = result["outcomes"]["quality"]["per_arm"][arm]
        assert got["mean"] == pytest.approx(expected.mean(), abs=1e-12)
        assert got == alone["outcomes"]["quality"]["per_arm"][arm]
        second = result["campaigns"]["2"]["outcomes"]["quality"]["per_arm"][arm]
        assert second["mean"] == pytest.approx(report_means(ratings, 2, arm).mean())
    pooled_mean = report_means(ratings, [1, 2], "ai_assisted").mean()
    assert result["outcomes"]["quality"]["per_arm"]["ai_assisted"]["mean"] != pytest.approx(
        pooled_mean)
    assert result["pooled"]["available"] is False
    assert "first of 2" in result["primary_campaign"]["why"]
    assert result["outcomes"]["quality"]["basis"]["student"] == NO_PLAN


def test_the_plan_chooses_campaign_method_alpha_and_labels_every_number() -> None:
    ratings, readings, cases = two_campaigns()
    result = summarize(ratings, readings, cases, mixed=False, campaigns=CAMPAIGNS,
                       plan=plan(primary_campaign_id=2, alpha=0.1))
    assert result["primary_campaign"] == {"id": 2, "why": "the signed analysis plan",
                                          "name": "Second"}
    ai, scp = report_means(ratings, 2, "ai_assisted"), report_means(ratings, 2, "scp")
    student = result["outcomes"]["quality"]["student"]
    t = sps.ttest_ind(ai, scp)
    diff = ai.mean() - scp.mean()
    se = diff / t.statistic
    q = sps.t.ppf(0.95, len(ai) + len(scp) - 2)  # 90% CI: alpha 0.1
    assert student["difference"] == pytest.approx(diff)
    assert (student["ci_low"], student["ci_high"]) == pytest.approx((diff - q * se,
                                                                      diff + q * se))
    assert student["p"] == pytest.approx(t.pvalue)
    bases = result["outcomes"]["quality"]["basis"]
    assert bases == {"student": PRE_PRIMARY, "welch": EXPLORATORY, "paired": EXPLORATORY,
                     "mixed_model": EXPLORATORY}
    assert result["campaigns"]["1"]["outcomes"]["quality"]["basis"]["student"] == EXPLORATORY
    assert result["positive_rates"]["basis"] == PRE_SECONDARY
    assert result["reading_time"]["basis"]["student"] == PRE_PRIMARY
    assert result["preference"]["basis"] == PRE_PRIMARY
    assert result["confidence"] == pytest.approx(0.9)
    json.dumps(result, allow_nan=False)


def test_pooling_only_where_the_plan_says_so_and_labelled() -> None:
    ratings, readings, cases = two_campaigns()
    result = summarize(ratings, readings, cases, mixed=False, campaigns=CAMPAIGNS,
                       plan=plan(pooled_campaigns=[2]))
    pooled = result["pooled"]
    assert pooled["available"] and pooled["campaigns"] == [1, 2]
    assert "pooled as the analysis plan pre-specifies" in pooled["label"]
    # Pooled: a report's score is the mean over both campaigns' raters.
    for arm in ("ai_assisted", "scp"):
        got = pooled["outcomes"]["quality"]["per_arm"][arm]["mean"]
        assert got == pytest.approx(report_means(ratings, [1, 2], arm).mean())
    assert pooled["outcomes"]["quality"]["basis"]["student"].endswith("(pooled as planned)")
    # The primary numbers stay campaign 1's.
    assert result["outcomes"]["quality"]["per_arm"]["scp"]["mean"] == pytest.approx(
        report_means(ratings, 1, "scp").mean())


def test_complete_reports_rule_leaves_out_reports_with_missing_ratings() -> None:
    ratings, readings, cases = make_frames(20, seed=5)
    # One rater skipped the quality rating of three AI-arm reports.
    skipped = ratings[(ratings.instrument == "likert") & (ratings.arm == "ai_assisted")
                      & (ratings.rater == "r1") & ratings.case.isin(["C000", "C001", "C002"])]
    ratings = ratings.drop(skipped.index)
    available = summarize(ratings, readings, cases, mixed=False, plan=plan())
    complete = summarize(ratings, readings, cases, mixed=False,
                         plan=plan(missing_ratings="complete"))
    assert available["outcomes"]["quality"]["per_arm"]["ai_assisted"]["n"] == 20
    assert complete["outcomes"]["quality"]["per_arm"]["ai_assisted"]["n"] == 17
    kept = report_means(ratings, 1, "ai_assisted").drop(["C000", "C001", "C002"])
    assert complete["outcomes"]["quality"]["per_arm"]["ai_assisted"]["mean"] == pytest.approx(
        kept.mean())
    assert any("3 report(s)" in n for n in complete["outcomes"]["quality"]["notes"])


def test_plan_hash_is_sha256_of_its_canonical_json() -> None:
    """The hash a reader can recompute from the plan's published content."""
    from analysis.plans import plan_hash

    class Fake:
        def content(self) -> dict:
            return {"b": 1, "a": [2, 3]}

    expected = hashlib.sha256(b'{"a":[2,3],"b":1}').hexdigest()
    assert plan_hash(Fake()) == expected
