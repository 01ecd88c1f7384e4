"""Golden tests of ``analysis.stats`` against independent computations.

Every statistic is compared, to 1e-6 unless a published value is only given to fewer
decimals, with something that does not share its code: scipy, statsmodels, pingouin,
scikit-learn, a brute-force implementation written here from the definition, or a
hand-worked value (the arithmetic is in the comments). Edge cases must raise ``StatsError``
with a message, never return NaN.
"""

from __future__ import annotations

import itertools
import math
import os
import subprocess
import sys
from fractions import Fraction
from pathlib import Path

import numpy as np
import pandas as pd
import pingouin as pg
import pytest
import statsmodels.formula.api as smf
from scipy import stats as sps
from sklearn.metrics import cohen_kappa_score
from statsmodels.stats.inter_rater import aggregate_raters
from statsmodels.stats.inter_rater import cohens_kappa as sm_cohens_kappa
from statsmodels.stats.inter_rater import fleiss_kappa as sm_fleiss_kappa
from statsmodels.stats.oneway import anova_oneway
from statsmodels.stats.power import TTestIndPower, TTestPower
from statsmodels.stats.proportion import confint_proportions_2indep, proportion_confint
from statsmodels.stats.weightstats import CompareMeans, DescrStatsW

from analysis import stats as S
from analysis.stats import StatsError

TOL = 1e-6
ROOT = Path(__file__).resolve().parents[2]


def close(actual: float, expected: float, tol: float = TOL) -> bool:
    return math.isclose(actual, expected, rel_tol=tol, abs_tol=tol)


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(20240607)


def likert(rng: np.random.Generator, raters: int, items: int, noise: float = 0.8) -> np.ndarray:
    """Correlated 1-5 ratings: a latent item quality plus rater noise, rounded and clipped."""
    quality = rng.normal(3.5, 1.0, items)
    return np.clip(np.round(quality + rng.normal(0, noise, (raters, items))), 1, 5)


# ------------------------------------------------------------------------------------ describe

def test_describe_matches_numpy_and_pandas(rng):
    x = rng.normal(4, 0.8, 57)
    d = S.describe(x)
    s = pd.Series(x)
    assert d.n == 57 and d.n_missing == 0
    assert close(d.mean, s.mean()) and close(d.sd, s.std(ddof=1))
    assert close(d.median, float(np.median(x)))
    assert close(d.q1, s.quantile(0.25)) and close(d.q3, s.quantile(0.75))
    assert close(d.iqr, sps.iqr(x))
    assert d.minimum == x.min() and d.maximum == x.max()


def test_describe_hand_worked_and_drops_missing():
    # 1, 2, 3, 4, 10: mean 4, SD sqrt((9+4+1+0+36)/4) = sqrt(12.5); R type-7 quartiles 2 and 4
    d = S.describe([1, None, 2, 3, np.nan, 4, 10])
    assert (d.n, d.n_missing) == (5, 2)
    assert close(d.mean, 4) and close(d.sd, math.sqrt(12.5))
    assert (d.median, d.q1, d.q3, d.iqr) == (3, 2, 4, 2)
    assert d.as_dict()["iqr"] == 2


@pytest.mark.parametrize("values, message", [
    ([], "no observations"), ([np.nan, None], "no observations"), ([3.0], "at least 2"),
    (["a", "b"], "numbers"), ([1, np.inf], "infinite"),
])
def test_describe_errors(values, message):
    with pytest.raises(StatsError, match=message):
        S.describe(values)


# ------------------------------------------------------------------------------ compare_groups

def test_student_matches_scipy_statsmodels_and_pingouin(rng):
    a, b = rng.normal(4.37, 0.5, 40), rng.normal(4.11, 0.81, 35)
    r = S.compare_groups(a, b)
    ref = sps.ttest_ind(a, b)
    ci = ref.confidence_interval(0.95)
    sm_low, sm_high = CompareMeans(DescrStatsW(a), DescrStatsW(b)).tconfint_diff(
        usevar="pooled")
    assert r.test == "Student" and r.df == 73
    assert close(r.t, ref.statistic) and close(r.p, ref.pvalue) and close(r.df, ref.df)
    assert close(r.difference, a.mean() - b.mean())
    assert close(r.ci_low, ci.low) and close(r.ci_high, ci.high)
    assert close(r.ci_low, sm_low) and close(r.ci_high, sm_high)
    assert close(r.cohens_d, pg.compute_effsize(a, b, paired=False, eftype="cohen"))


def test_welch_matches_scipy_and_statsmodels(rng):
    a, b = rng.normal(146.6, 49.8, 30), rng.normal(119.4, 25.0, 50)
    r = S.compare_groups(a, b, equal_var=False)
    ref = sps.ttest_ind(a, b, equal_var=False)
    ci = ref.confidence_interval(0.95)
    sm_low, sm_high = CompareMeans(DescrStatsW(a), DescrStatsW(b)).tconfint_diff(
        usevar="unequal")
    assert r.test == "Welch"
    assert close(r.t, ref.statistic) and close(r.p, ref.pvalue) and close(r.df, ref.df)
    assert close(r.ci_low, ci.low) and close(r.ci_high, ci.high)
    assert close(r.ci_low, sm_low) and close(r.ci_high, sm_high)
    # pingouin's Welch t-test: same t, df and p (its CI is rounded to 2 decimals)
    pg_row = pg.ttest(a, b, correction=True).iloc[0]
    assert close(r.t, pg_row["T"]) and close(r.df, pg_row["dof"]) and close(r.p, pg_row["p_val"])


def test_paired_matches_scipy_and_pingouin_dz(rng):
    scp = rng.normal(4.1, 0.8, 60)
    ai = scp + rng.normal(0.24, 0.6, 60)
    r = S.compare_groups(ai, scp, paired=True)
    ref = sps.ttest_rel(ai, scp)
    ci = ref.confidence_interval(0.95)
    assert r.test == "paired" and r.n_a == r.n_b == 60 and r.df == 59
    assert close(r.t, ref.statistic) and close(r.p, ref.pvalue)
    assert close(r.ci_low, ci.low) and close(r.ci_high, ci.high)
    assert close(r.sd_difference, np.std(ai - scp, ddof=1))
    assert close(r.cohens_d, pg.compute_effsize(ai, scp, paired=True, eftype="cohen_dz"))
    assert r.effect_size.startswith("d_z")


def test_hand_worked_student():
    # a = 1,2,3; b = 4,5,6: D = -3, s_p = 1, SE = sqrt(2/3), t = -3/sqrt(2/3) = -3.674235,
    # df 4, CI = -3 ± 2.776445 * 0.816497, d = -3
    r = S.compare_groups([1, 2, 3], [4, 5, 6])
    assert close(r.t, -3 / math.sqrt(2 / 3)) and r.df == 4 and close(r.cohens_d, -3)
    assert close(r.ci_low, -3 - 2.7764451051977987 * math.sqrt(2 / 3))
    assert close(r.ci_high, -3 + 2.7764451051977987 * math.sqrt(2 / 3))


def test_missing_values_are_dropped_and_counted(rng):
    a = rng.normal(0, 1, 20)
    b = rng.normal(0.5, 1, 20)
    a_nan, b_nan = a.copy(), b.copy()
    a_nan[[1, 5]] = np.nan
    b_nan[[5, 9]] = np.nan
    r = S.compare_groups(a_nan, b_nan)
    assert (r.n_a, r.n_b, r.n_dropped) == (18, 18, 4)
    assert close(r.t, sps.ttest_ind(a_nan, b_nan, nan_policy="omit").statistic)
    rp = S.compare_groups(a_nan, b_nan, paired=True)
    keep = ~(np.isnan(a_nan) | np.isnan(b_nan))
    assert (rp.n_a, rp.n_dropped) == (17, 3)
    assert close(rp.t, sps.ttest_rel(a[keep], b[keep]).statistic)


def test_from_summary_matches_scipy_and_raw_data(rng):
    a, b = rng.normal(4.37, 0.5, 297), rng.normal(4.11, 0.81, 297)
    for equal_var in (True, False):
        raw = S.compare_groups(a, b, equal_var=equal_var)
        summ = S.compare_groups_from_summary(a.mean(), a.std(ddof=1), 297, b.mean(),
                                             b.std(ddof=1), 297, equal_var=equal_var)
        ref = sps.ttest_ind_from_stats(a.mean(), a.std(ddof=1), 297, b.mean(),
                                       b.std(ddof=1), 297, equal_var=equal_var)
        assert close(summ.t, ref.statistic) and close(summ.p, ref.pvalue)
        for name in ("t", "df", "p", "ci_low", "ci_high", "cohens_d", "se"):
            assert close(getattr(summ, name), getattr(raw, name))


def test_published_reading_time_ci_is_reproduced_from_the_table():
    # PROTOCOL.md: 146.6 ± 49.8 vs 119.4 ± 45.3 (297 cases), difference 27.2 s,
    # 95% CI 19.47-34.83 (half-width 7.68 around the unrounded 27.15). Student's t on the
    # rounded table gives the same half-width to 0.01 s.
    r = S.compare_groups_from_summary(146.6, 49.8, 297, 119.4, 45.3, 297)
    assert abs((r.ci_high - r.ci_low) / 2 - (34.83 - 19.47) / 2) < 0.01
    assert r.p < 0.001


@pytest.mark.filterwarnings("ignore:Precision loss:RuntimeWarning")  # scipy, on the constant
def test_welch_with_one_constant_group_is_defined():
    r = S.compare_groups([5, 5, 5, 5], [3, 4, 5, 4.5], equal_var=False)
    ref = sps.ttest_ind([5, 5, 5, 5], [3, 4, 5, 4.5], equal_var=False)
    assert close(r.t, ref.statistic) and close(r.df, 3)


@pytest.mark.parametrize("kwargs, a, b, message", [
    ({}, [1, 1, 1], [2, 2, 2], "constant"),
    ({"equal_var": False}, [1, 1, 1], [2, 2, 2], "constant"),
    ({}, [1], [2, 3], "at least 2"),
    ({}, [], [2, 3], "no observations"),
    ({"paired": True}, [1, 2, 3], [1, 2], "equal lengths"),
    ({"paired": True}, [1, 2, 3], [0, 1, 2], "same difference"),
    ({"paired": True}, [1, np.nan, 3], [np.nan, 2, 2], "at least 2"),
])
def test_compare_groups_errors(kwargs, a, b, message):
    with pytest.raises(StatsError, match=message):
        S.compare_groups(a, b, **kwargs)


# ------------------------------------------------------------------------------------- ANOVA

def _three_groups(rng):
    return [rng.normal(0, 1, 10), rng.normal(1, 2, 12), rng.normal(0.5, 3, 8)]


@pytest.mark.filterwarnings("ignore:The inplace keyword")  # pingouin on pandas 3
def test_anova_matches_scipy_and_pingouin(rng):
    groups = _three_groups(rng)
    r = S.one_way_anova(*groups)
    ref = sps.f_oneway(*groups)
    df = pd.DataFrame({"y": np.concatenate(groups), "g": np.repeat(list("abc"), [10, 12, 8])})
    aov = pg.anova(data=df, dv="y", between="g").iloc[0]
    assert r.test == "Fisher" and (r.df_between, r.df_within) == (2, 27)
    assert close(r.f, ref.statistic) and close(r.p, ref.pvalue)
    assert close(r.eta_squared, aov["np2"])
    assert r.group_n == (10, 12, 8)


def test_welch_anova_matches_pingouin_and_statsmodels(rng):
    groups = _three_groups(rng)
    r = S.one_way_anova(*groups, welch=True)
    df = pd.DataFrame({"y": np.concatenate(groups), "g": np.repeat(list("abc"), [10, 12, 8])})
    ref = pg.welch_anova(data=df, dv="y", between="g").iloc[0]
    sm = anova_oneway(df["y"], df["g"], use_var="unequal")
    assert r.test == "Welch"
    assert close(r.f, ref["F"]) and close(r.df_within, ref["ddof2"]) and close(r.p, ref["p_unc"])
    assert close(r.f, sm.statistic) and close(r.p, sm.pvalue) and close(r.df_within, sm.df[1])


def test_anova_of_two_groups_is_students_t_squared(rng):
    a, b = rng.normal(0, 1, 15), rng.normal(0.7, 1, 11)
    r = S.one_way_anova(a, b)
    assert close(r.f, sps.ttest_ind(a, b).statistic ** 2)
    assert close(r.p, sps.ttest_ind(a, b).pvalue)


def test_anova_drops_missing(rng):
    a, b = rng.normal(0, 1, 15), rng.normal(0.7, 1, 11)
    r = S.one_way_anova(np.append(a, np.nan), b)
    assert r.n_dropped == 1 and r.n_total == 26
    assert close(r.f, sps.f_oneway(a, b).statistic)


@pytest.mark.parametrize("groups, welch, message", [
    (([1, 2, 3],), False, "at least two groups"),
    (([1, 1], [2, 2]), False, "constant"),
    (([1], [2]), False, "degrees of freedom"),
    (([1, 2, 3], []), False, "no observations"),
    (([1, 2, 3], [2, 2, 2]), True, "constant"),
    (([1, 2, 3], [2]), True, "at least 2"),
])
def test_anova_errors(groups, welch, message):
    with pytest.raises(StatsError, match=message):
        S.one_way_anova(*groups, welch=welch)


# ----------------------------------------------------------------------------- Kendall's W

def test_kendalls_w_hand_worked_without_ties():
    # Rank sums R = 4, 6, 8, 12, mean 7.5: S = 12.25 + 2.25 + 0.25 + 20.25 = 35;
    # W = 12·35 / (3²·(4³ − 4)) = 420/540 = 7/9; χ² = 3·3·7/9 = 7 on 3 df.
    r = S.kendalls_w([[1, 2, 3, 4], [1, 3, 2, 4], [2, 1, 3, 4]])
    assert close(r.w, 7 / 9) and close(r.chi2, 7) and r.df == 3
    assert close(r.p, sps.chi2.sf(7, 3)) and r.band == "strong"


def test_kendalls_w_hand_worked_with_ties():
    # Ranks: (1.5, 1.5, 3, 4), (1, 2.5, 2.5, 4), (1, 2, 3.5, 3.5); R = 3.5, 6, 9, 11.5;
    # S = 16 + 2.25 + 2.25 + 16 = 36.5; one tied pair per rater: T_j = 2³ − 2 = 6.
    # Corrected W = 438 / (540 − 3·18) = 73/81; uncorrected 438/540 = 73/90.
    ratings = [[1, 1, 2, 3], [1, 2, 2, 3], [1, 2, 3, 3]]
    assert close(S.kendalls_w(ratings).w, 73 / 81)
    assert close(S.kendalls_w(ratings, tie_correction=False).w, 73 / 90)


def test_kendalls_w_matches_friedman_in_scipy_and_pingouin(rng):
    x = likert(rng, 5, 120)  # Likert: heavy ties
    r = S.kendalls_w(x)
    m, n = x.shape
    # Friedman with raters as blocks and items as treatments: one sample per item.
    fried = sps.friedmanchisquare(*x.T)
    assert close(r.chi2, fried.statistic) and close(r.p, fried.pvalue)
    assert close(r.w, fried.statistic / (m * (n - 1)))
    long = pd.DataFrame({"rater": np.repeat(np.arange(m), n), "item": np.tile(np.arange(n), m),
                         "score": x.ravel()})
    pg_w = pg.friedman(data=long, dv="score", within="item", subject="rater")["W"].iloc[0]
    assert close(r.w, pg_w)
    assert r.band == S.agreement_band(r.w) and r.n_raters == 5 and r.n_items == 120


def test_kendalls_w_uncorrected_matches_its_formula(rng):
    x = likert(rng, 4, 30)
    ranks = sps.rankdata(x, axis=1)
    s = ((ranks.sum(0) - ranks.sum(0).mean()) ** 2).sum()
    assert close(S.kendalls_w(x, tie_correction=False).w, 12 * s / (16 * (30**3 - 30)))
    assert S.kendalls_w(x, tie_correction=False).w < S.kendalls_w(x).w


def test_kendalls_w_missing_rating_drops_the_item(rng):
    x = likert(rng, 5, 40)
    skipped = x.copy()
    skipped[2, 7] = np.nan  # rater 3 skipped item 8
    skipped[4, 30] = np.nan
    r = S.kendalls_w(pd.DataFrame(skipped))
    complete = S.kendalls_w(np.delete(x, [7, 30], axis=1))
    assert r.n_items == 38 and r.n_items_dropped == 2
    assert close(r.w, complete.w) and close(r.chi2, complete.chi2)
    with pytest.raises(StatsError, match="not rated by every rater"):
        S.kendalls_w(skipped, missing="raise")


def test_kendalls_w_perfect_agreement_and_bands():
    r = S.kendalls_w([[1, 2, 3, 4, 5]] * 4)
    assert close(r.w, 1) and r.band == "very strong"
    assert [S.agreement_band(w) for w in (0, 0.19, 0.2, 0.4, 0.599, 0.6, 0.8, 1)] == [
        "poor", "poor", "fair", "moderate", "moderate", "strong", "very strong", "very strong"]


def test_published_kendall_bands():
    # PROTOCOL.md: quality 0.736 / 0.774 strong; agreement 0.631 strong / 0.574 moderate.
    assert [S.agreement_band(w) for w in (0.736, 0.774, 0.631, 0.574)] == [
        "strong", "strong", "strong", "moderate"]


@pytest.mark.parametrize("ratings, kwargs, message", [
    ([[1, 2, 3]], {}, "one rater"),
    ([[3, 3, 3], [3, 3, 3]], {}, "same rating"),
    ([[3, 3, 3], [3, 3, 3]], {"tie_correction": False}, "same rating"),
    ([[1, 2], [2, np.nan]], {}, "at least two items"),
    ([[1, "x"], [1, 2]], {}, "numbers"),
    ([], {}, "matrix"),
    ([1, 2, 3], {}, "matrix"),
    ([[1, 2], [2, 1]], {"missing": "impute"}, "missing must be"),
])
def test_kendalls_w_errors(ratings, kwargs, message):
    with pytest.raises(StatsError, match=message):
        S.kendalls_w(ratings, **kwargs)


def test_kendalls_w_one_constant_rater_is_still_defined():
    # A rater who gives every item 4 contributes only ties; the others still rank.
    r = S.kendalls_w([[4, 4, 4, 4], [1, 2, 3, 4], [1, 2, 3, 4]])
    assert close(r.chi2, sps.friedmanchisquare([4, 1, 1], [4, 2, 2], [4, 3, 3],
                                               [4, 4, 4]).statistic)


# -------------------------------------------------------------------------------- Cohen's kappa

def test_cohens_kappa_hand_worked():
    # 50 items: both yes 20, a yes/b no 5, a no/b yes 10, both no 15.
    # p_o = 35/50 = 0.7; p_e = 0.5·0.6 + 0.5·0.4 = 0.5; κ = 0.2/0.5 = 0.4.
    a = ["yes"] * 25 + ["no"] * 25
    b = ["yes"] * 20 + ["no"] * 5 + ["yes"] * 10 + ["no"] * 15
    r = S.cohens_kappa(a, b)
    assert close(r.kappa, 0.4) and close(r.observed_agreement, 0.7)
    assert close(r.expected_agreement, 0.5) and r.categories == ("no", "yes")


@pytest.mark.parametrize("weights", [None, "linear", "quadratic"])
def test_cohens_kappa_matches_sklearn_and_statsmodels(rng, weights):
    x = likert(rng, 2, 150)
    a, b = x[0], x[1]
    r = S.cohens_kappa(a, b, weights=weights)
    assert close(r.kappa, cohen_kappa_score(a, b, weights=weights))
    table = pd.crosstab(a, b).reindex(index=[1.0, 2, 3, 4, 5], columns=[1.0, 2, 3, 4, 5],
                                      fill_value=0).to_numpy()
    sm = sm_cohens_kappa(table, wt=weights)
    assert close(r.kappa, sm.kappa)
    assert close(r.se, sm.std_kappa) and close(r.z, sm.z_value)
    assert close(r.p, sm.pvalue_two_sided)
    assert close(r.ci_low, sm.kappa_low) and close(r.ci_high, sm.kappa_upp)


def test_weighted_kappa_uses_scores_when_a_scale_point_is_unused():
    # Nobody used 2 on the 1-5 scale: with categories=1..5 the distances are |i − j| on the
    # full scale, as statsmodels with scores 0..4 and sklearn with labels=1..5 compute them.
    a = [1, 3, 3, 4, 5, 5, 4, 3, 1, 5]
    b = [1, 3, 4, 4, 5, 4, 4, 1, 3, 5]
    for weights in ("linear", "quadratic"):
        r = S.cohens_kappa(a, b, weights=weights, categories=[1, 2, 3, 4, 5])
        assert close(r.kappa, cohen_kappa_score(a, b, weights=weights,
                                                labels=[1, 2, 3, 4, 5]))
        table = pd.crosstab(pd.Categorical(a, categories=range(1, 6)),
                            pd.Categorical(b, categories=range(1, 6)), dropna=False)
        assert close(r.kappa, sm_cohens_kappa(table.to_numpy(), wt=weights).kappa)


def test_cohens_kappa_drops_missing_pairs():
    a = [1, 2, None, 2, 1, 2, 1, np.nan]
    b = [1, 2, 2, 1, 1, 2, np.nan, 1]
    r = S.cohens_kappa(a, b)
    assert (r.n, r.n_dropped) == (5, 3)
    assert close(r.kappa, cohen_kappa_score([1, 2, 2, 1, 2], [1, 2, 1, 1, 2]))


@pytest.mark.filterwarnings("ignore::RuntimeWarning")  # statsmodels divides by its zero SE
def test_cohens_kappa_one_constant_rater_is_zero_without_a_test():
    # Rater a always says 1: p_o = p_e = P(b = 1), so κ = 0 exactly; the null SE is 0.
    a, b = [1] * 6, [1, 2, 1, 2, 1, 1]
    r = S.cohens_kappa(a, b)
    sm = sm_cohens_kappa(np.array([[4, 2], [0, 0]]))
    assert r.kappa == 0 and close(sm.kappa, 0) and close(sm.std_kappa0, 0)
    assert r.z is None and r.p is None


@pytest.mark.parametrize("a, b, kwargs, message", [
    ([1, 1, 1], [1, 1, 1], {}, "undefined"),
    ([1, 2], [1, 2, 3], {}, "same items"),
    (["x", "y"], ["x", "y"], {"weights": "linear"}, "pass categories"),
    ([1, 2], [1, 3], {"categories": [1, 2]}, "not in categories"),
    ([1], [1], {}, "at least 2"),
    ([1, 2], [1, 2], {"weights": "cubic"}, "weights must be"),
])
def test_cohens_kappa_errors(a, b, kwargs, message):
    with pytest.raises(StatsError, match=message):
        S.cohens_kappa(a, b, **kwargs)


# -------------------------------------------------------------------------------- Fleiss' kappa

WIKIPEDIA_FLEISS = np.array([  # 10 subjects, 14 raters, 5 categories; κ = 0.210
    [0, 0, 0, 0, 14], [0, 2, 6, 4, 2], [0, 0, 3, 5, 6], [0, 3, 9, 2, 0], [2, 2, 8, 1, 1],
    [7, 7, 0, 0, 0], [3, 2, 6, 3, 0], [2, 5, 3, 2, 2], [6, 5, 2, 1, 0], [0, 2, 2, 3, 7],
])


def counts_to_raters(counts: np.ndarray) -> np.ndarray:
    """Raters x items labels from an items x categories count table."""
    return np.array([np.repeat(np.arange(1, counts.shape[1] + 1), row) for row in counts]).T


def test_fleiss_kappa_wikipedia_example():
    r = S.fleiss_kappa(counts_to_raters(WIKIPEDIA_FLEISS))
    assert round(r.kappa, 3) == 0.210  # published
    assert round(r.observed_agreement, 3) == 0.378 and round(r.expected_agreement, 3) == 0.213
    assert close(r.kappa, sm_fleiss_kappa(WIKIPEDIA_FLEISS, method="fleiss"))
    assert (r.n_raters, r.n_items) == (14, 10)


def test_fleiss_kappa_matches_statsmodels_on_likert(rng):
    x = likert(rng, 5, 200)
    table, _ = aggregate_raters(x.T)
    assert close(S.fleiss_kappa(x).kappa, sm_fleiss_kappa(table, method="fleiss"))


def test_fleiss_kappa_drops_incomplete_items(rng):
    x = likert(rng, 5, 50)
    y = x.copy()
    y[1, 3] = np.nan
    r = S.fleiss_kappa(y)
    assert r.n_items == 49 and r.n_items_dropped == 1
    assert close(r.kappa, S.fleiss_kappa(np.delete(x, 3, axis=1)).kappa)


def test_fleiss_kappa_errors():
    with pytest.raises(StatsError, match="one rater"):
        S.fleiss_kappa([[1, 2, 3]])
    with pytest.raises(StatsError, match="same category"):
        S.fleiss_kappa([[2, 2, 2], [2, 2, 2]])
    with pytest.raises(StatsError, match="no item rated by every rater"):
        S.fleiss_kappa([[1, np.nan], [np.nan, 2]])


# ----------------------------------------------------------------------- Krippendorff's alpha

# Krippendorff (2011), "Computing Krippendorff's alpha-reliability": 4 observers, 12 units.
# Published: nominal 0.743, ordinal 0.815, interval 0.849, ratio 0.797.
K2011 = [
    [1, 2, 3, 3, 2, 1, 4, 1, 2, np.nan, np.nan, np.nan],
    [1, 2, 3, 3, 2, 2, 4, 1, 2, 5, np.nan, 3],
    [np.nan, 3, 3, 3, 2, 3, 4, 2, 2, 5, 1, np.nan],
    [1, 2, 3, 3, 2, 4, 4, 1, 2, 5, 1, np.nan],
]
# Wikipedia's computational example: 3 coders, 15 units; nominal 0.691358, interval 0.810845.
WIKIPEDIA_ALPHA = [
    [np.nan] * 5 + [3, 4, 1, 2, 1, 1, 3, 3, np.nan, 3],
    [1, np.nan, 2, 1, 3, 3, 4, 3] + [np.nan] * 7,
    [np.nan, np.nan, 2, 1, 3, 4, 4, np.nan, 2, 1, 1, 3, 3, np.nan, 4],
]


@pytest.mark.parametrize("level, published", [
    ("nominal", 0.743), ("ordinal", 0.815), ("interval", 0.849), ("ratio", 0.797),
])
def test_krippendorff_2011_example(level, published):
    r = S.krippendorffs_alpha(K2011, level=level)
    assert round(r.alpha, 3) == published
    assert r.n_items == 11 and r.n_items_unpairable == 1 and r.n_values == 40
    assert close(r.alpha, brute_force_alpha(np.array(K2011, float), level), 1e-9)


def test_krippendorff_wikipedia_example():
    assert close(S.krippendorffs_alpha(WIKIPEDIA_ALPHA, level="nominal").alpha, 0.691358)
    assert close(S.krippendorffs_alpha(WIKIPEDIA_ALPHA, level="interval").alpha, 0.810845)


def brute_force_alpha(x: np.ndarray, level: str) -> float:
    """α = 1 − D_o/D_e straight from the definition, over explicit pairs of values.

    D_o: mean disagreement of pairs within a unit (each unit's pairs weighted 1/(m_u − 1));
    D_e: mean disagreement of all pairs of pairable values regardless of unit.
    """
    units = [col[~np.isnan(col)] for col in x.T]
    units = [u for u in units if u.size >= 2]
    pooled = np.concatenate(units)
    values, counts = np.unique(pooled, return_counts=True)
    freq = dict(zip(values, counts, strict=True))

    def delta2(c: float, k: float) -> float:
        if level == "nominal":
            return float(c != k)
        if level == "interval":
            return (c - k) ** 2
        if level == "ratio":
            return 0.0 if c + k == 0 else ((c - k) / (c + k)) ** 2
        lo, hi = min(c, k), max(c, k)
        between = sum(freq[g] for g in values if lo <= g <= hi)
        return (between - (freq[c] + freq[k]) / 2) ** 2

    n = pooled.size
    d_o = sum(delta2(u[i], u[j]) / (u.size - 1)
              for u in units for i, j in itertools.permutations(range(u.size), 2)) / n
    d_e = sum(delta2(pooled[i], pooled[j])
              for i, j in itertools.permutations(range(n), 2)) / (n * (n - 1))
    return 1 - d_o / d_e


@pytest.mark.parametrize("level", ["nominal", "ordinal", "interval", "ratio"])
def test_krippendorff_matches_brute_force_with_missing_ratings(rng, level):
    x = likert(rng, 4, 25)
    x[rng.random(x.shape) < 0.2] = np.nan  # raters who skipped items
    x[:3, 0] = np.nan  # one unpairable item
    r = S.krippendorffs_alpha(x, level=level)
    assert close(r.alpha, brute_force_alpha(x, level), 1e-9)
    assert r.n_items_unpairable >= 1


def test_krippendorff_two_raters_nominal_complete_is_scotts_pi_corrected():
    # With 2 raters, no missing data: α_nominal = 1 − (2N − 1)(1 − p_o)/(2N(1 − p_e)),
    # Scott's p_e from the pooled marginals (Krippendorff 2004, §11.3.1).
    a = [1, 1, 2, 2, 3, 3, 1, 2]
    b = [1, 2, 2, 2, 3, 1, 1, 2]
    n = len(a)
    p_o = np.mean(np.array(a) == np.array(b))
    pooled = np.array(a + b)
    p_e = sum((pooled == c).mean() ** 2 for c in (1, 2, 3))
    expected = 1 - (2 * n - 1) * (1 - p_o) / (2 * n * (1 - p_e))
    assert close(S.krippendorffs_alpha([a, b], level="nominal").alpha, expected)


def test_krippendorff_text_labels_need_their_order():
    labels = [["low", "mid", "high", "mid"], ["low", "high", "high", "mid"]]
    with pytest.raises(StatsError, match="pass categories"):
        S.krippendorffs_alpha(labels)
    ordered = S.krippendorffs_alpha(labels, categories=["low", "mid", "high"])
    assert close(ordered.alpha, S.krippendorffs_alpha([[1, 2, 3, 2], [1, 3, 3, 2]]).alpha)


@pytest.mark.parametrize("ratings, message", [
    ([[1, 2, 3]], "one rater"),
    ([[2, 2, 2], [2, 2, np.nan]], "same value"),
    ([[1, np.nan], [np.nan, 2]], "no item was rated by two raters"),
])
def test_krippendorff_errors(ratings, message):
    with pytest.raises(StatsError, match=message):
        S.krippendorffs_alpha(ratings)


# -------------------------------------------------------------------------------- proportions

@pytest.mark.parametrize("x, n", [(0, 10), (3, 10), (10, 10), (157, 297), (1, 1)])
def test_wilson_matches_statsmodels(x, n):
    r = S.proportion_ci(x, n)
    low, high = proportion_confint(x, n, method="wilson")
    assert close(r.ci_low, low) and close(r.ci_high, high) and close(r.proportion, x / n)


def test_wilson_hand_worked():
    # 5/10, z = 1.959964: centre 0.5; half = z/(1 + z²/10)·sqrt(0.025 + z²/400)
    z = sps.norm.ppf(0.975)
    half = z / (1 + z**2 / 10) * math.sqrt(0.025 + z**2 / 400)
    r = S.proportion_ci(5, 10)
    assert close(r.ci_low, 0.5 - half) and close(r.ci_high, 0.5 + half)


@pytest.mark.parametrize("x, n", [(1, 0), (11, 10), (-1, 5), (2.5, 10)])
def test_proportion_errors(x, n):
    with pytest.raises(StatsError):
        S.proportion_ci(x, n)


@pytest.mark.parametrize("x, n, p0", [(9, 10, 0.5), (157, 297, 0.5), (3, 20, 0.3), (0, 7, 0.5),
                                      (50, 100, 0.5), (7, 40, 0.1)])
def test_binomial_test_matches_scipy(x, n, p0):
    assert close(S.binomial_test(x, n, p0), sps.binomtest(x, n, p0).pvalue)


def test_binomial_test_hand_worked():
    # 9 of 10 vs 0.5: P = 2·(C(10,9) + C(10,10))/2¹⁰ = 22/1024
    assert close(S.binomial_test(9, 10), 22 / 1024)


def test_fisher_hand_worked_and_scipy():
    # Lady tasting tea, [[3, 1], [1, 3]]: P(X=3) = P(X=1) = 16/70, P(X=4) = P(X=0) = 1/70,
    # two-sided P = 34/70.
    assert close(S.fisher_exact_test([[3, 1], [1, 3]]), 34 / 70)
    for table in ([[12, 5], [3, 9]], [[0, 10], [5, 5]], [[164, 133], [108, 189]],
                  [[1, 0], [0, 1]]):
        assert close(S.fisher_exact_test(table), sps.fisher_exact(table).pvalue)


@pytest.mark.parametrize("xa, na, xb, nb", [(164, 297, 108, 297), (12, 17, 3, 12),
                                            (0, 20, 4, 25), (30, 30, 25, 30)])
def test_compare_proportions_matches_scipy_and_statsmodels(xa, na, xb, nb):
    r = S.compare_proportions(xa, na, xb, nb)
    table = [[xa, na - xa], [xb, nb - xb]]
    plain = sps.chi2_contingency(table, correction=False)
    yates = sps.chi2_contingency(table, correction=True)
    assert close(r.chi2, plain.statistic) and close(r.chi2_p, plain.pvalue)
    assert close(r.chi2_corrected, yates.statistic) and close(r.chi2_corrected_p, yates.pvalue)
    assert close(r.fisher_p, sps.fisher_exact(table).pvalue)
    low, high = confint_proportions_2indep(xa, na, xb, nb, method="newcomb", compare="diff")
    assert close(r.ci_low, low) and close(r.ci_high, high)
    assert close(r.difference, xa / na - xb / nb)
    assert close(r.min_expected, plain.expected_freq.min())


def test_published_pneumonia_positive_rates():
    # PROTOCOL.md: pneumonia 55.2% vs 36.4% of 297, P < 0.001.
    r = S.compare_proportions(164, 297, 108, 297)
    assert round(100 * r.p_a, 1) == 55.2 and round(100 * r.p_b, 1) == 36.4
    assert r.chi2_p < 0.001 and r.fisher_p < 0.001 and r.ci_low > 0


def test_compare_proportions_with_no_successes_anywhere():
    r = S.compare_proportions(0, 40, 0, 35)
    assert r.chi2 is None and r.chi2_corrected_p is None and "undefined" in r.notes[0]
    assert r.fisher_p == 1.0 and r.difference == 0
    low, high = confint_proportions_2indep(0, 40, 0, 35, method="newcomb", compare="diff")
    assert close(r.ci_low, low) and close(r.ci_high, high)


# ----------------------------------------------------------------------- majority preference

def test_majority_preference_hand_built():
    # 5 raters x 8 cases; A votes per case: 5, 4, 3, 2, 1, 0, 3, 4 -> 5 of 8 cases have >= 3.
    a_votes = [5, 4, 3, 2, 1, 0, 3, 4]
    votes = np.array([[1 if r < k else 0 for k in a_votes] for r in range(5)])
    r = S.majority_preference(votes)
    assert (r.n_cases, r.n_raters, r.n_cases_preferred) == (8, 5, 5)
    assert close(r.share, 5 / 8)
    low, high = proportion_confint(5, 8, method="wilson")
    assert close(r.ci_low, low) and close(r.ci_high, high)
    assert close(r.p, sps.binomtest(5, 8, 0.5).pvalue)
    assert (r.votes_a, r.votes_total) == (22, 40)
    assert close(r.vote_p, sps.binomtest(22, 40, 0.5).pvalue)
    assert "ignores clustering" in r.vote_note
    assert S.majority_preference(votes, threshold=4).n_cases_preferred == 3


def test_majority_preference_published_share():
    # PROTOCOL.md's 52.7% is not a share of 297 (156/297 = 52.5%, 157/297 = 52.9%); it is
    # 158 of 300 (all cases planned), which is what we reproduce.
    per_case = np.array([3] * 158 + [2] * 142)
    votes = np.array([[1 if r < k else 0 for k in per_case] for r in range(5)], dtype=bool)
    r = S.majority_preference(votes)
    assert round(100 * r.share, 1) == 52.7
    assert close(r.p, sps.binomtest(158, 300).pvalue)
    # pooling 5 votes per case pretends to have 1500 independent observations
    assert r.votes_total == 1500 and r.vote_ci_high - r.vote_ci_low < r.ci_high - r.ci_low


def test_majority_preference_missing_vote_drops_the_case():
    votes = np.array([[1, 1, 0, 1], [1, np.nan, 0, 1], [1, 1, 0, 0], [0, 1, 1, 0],
                      [1, 0, 0, 1]])
    r = S.majority_preference(votes)
    assert r.n_cases == 3 and r.n_cases_dropped == 1 and r.n_cases_preferred == 2


def test_majority_preference_even_panel_ties_count_for_neither():
    # 4 raters x 10 cases; votes for A per case: 4, 3, 3, 3, 2, 2, 2, 1, 0, 3.
    # Hand count: A has a strict majority (>= 3 of 4) in 5 cases (4, 3, 3, 3, 3), B (A votes
    # <= 1) in 2 cases, and 3 cases are 2-2 ties: no majority either way.
    a_votes = [4, 3, 3, 3, 2, 2, 2, 1, 0, 3]
    votes = np.array([[1 if r < k else 0 for k in a_votes] for r in range(4)])
    r = S.majority_preference(votes)
    assert r.threshold == 3  # the default: a strict majority, 4 // 2 + 1
    assert (r.n_cases, r.n_cases_preferred, r.n_cases_preferred_b, r.n_ties, r.n_decided) == (
        10, 5, 2, 3, 7)
    # shares over every case, ties included, each with its own Wilson interval
    assert close(r.share, 5 / 10) and close(r.share_b, 2 / 10)
    low, high = proportion_confint(5, 10, method="wilson")
    assert close(r.ci_low, low) and close(r.ci_high, high)
    low, high = proportion_confint(2, 10, method="wilson")
    assert close(r.ci_b_low, low) and close(r.ci_b_high, high)
    # the sign test drops the ties: 5 for A out of the 7 cases with a majority
    assert close(r.p, sps.binomtest(5, 7, 0.5).pvalue)
    # a tie is not a case against A: B's count is not n - A's, A's P is not binom(5, 10)
    assert r.n_cases_preferred_b != r.n_cases - r.n_cases_preferred
    assert not close(r.p, sps.binomtest(5, 10, 0.5).pvalue)
    # the pooled votes have no ties: 4+3+3+3+2+2+2+1+0+3 = 23 votes for A of 40
    assert (r.votes_a, r.votes_total) == (23, 40)
    assert close(r.vote_p, sps.binomtest(23, 40, 0.5).pvalue)


def test_majority_preference_ties_are_symmetric():
    # Swapping A and B swaps the counts and keeps the ties: a tie favours neither report.
    a_votes = [4, 3, 2, 2, 1, 0, 2, 3]
    votes = np.array([[1 if r < k else 0 for k in a_votes] for r in range(4)])
    ab, ba = S.majority_preference(votes), S.majority_preference(1 - votes)
    assert (ab.n_cases_preferred, ab.n_cases_preferred_b, ab.n_ties) == (3, 2, 3)
    assert (ba.n_cases_preferred, ba.n_cases_preferred_b, ba.n_ties) == (2, 3, 3)
    assert close(ab.p, ba.p) and close(ab.p, sps.binomtest(3, 5, 0.5).pvalue)


def test_majority_preference_odd_panel_has_no_ties():
    a_votes = [5, 4, 3, 2, 1, 0, 3, 4]
    votes = np.array([[1 if r < k else 0 for k in a_votes] for r in range(5)])
    r = S.majority_preference(votes)
    assert (r.n_cases_preferred, r.n_cases_preferred_b, r.n_ties) == (5, 3, 0)
    assert close(r.share + r.share_b, 1.0)
    assert close(r.p, sps.binomtest(5, 8, 0.5).pvalue)


def test_majority_preference_all_ties_has_no_p():
    votes = np.array([[1, 0, 1], [0, 1, 0], [1, 1, 0], [0, 0, 1]])  # 2-2 in every case
    r = S.majority_preference(votes)
    assert (r.n_ties, r.n_decided, r.share, r.share_b) == (3, 0, 0.0, 0.0)
    assert r.p is None and "tie" in r.p_note


def test_majority_preference_confidence_level():
    # 90% Wilson interval (statsmodels' alpha=0.10) when asked for confidence 0.90
    a_votes = [3, 3, 3, 2, 1, 3, 0, 3, 3]
    votes = np.array([[1 if r < k else 0 for k in a_votes] for r in range(5)])
    r = S.majority_preference(votes, confidence=0.90)
    low, high = proportion_confint(6, 9, alpha=0.10, method="wilson")
    assert r.confidence == 0.90 and close(r.ci_low, low) and close(r.ci_high, high)
    low, high = proportion_confint(3, 9, alpha=0.10, method="wilson")
    assert close(r.ci_b_low, low) and close(r.ci_b_high, high)
    low, high = proportion_confint(int(votes.sum()), votes.size, alpha=0.10, method="wilson")
    assert close(r.vote_ci_low, low) and close(r.vote_ci_high, high)


@pytest.mark.parametrize("votes, kwargs, message", [
    ([[1, 2], [0, 1]], {}, "votes must be 1"),
    ([[1, 0], [0, 1]], {"threshold": 3}, "threshold"),
    # half of 4 raters is not a majority: 2-2 would count for both reports
    ([[1, 0], [0, 1], [1, 1], [0, 0]], {"threshold": 2}, "strict majority"),
    ([[1, 0]], {"threshold": 1}, "one rater"),
    ([[1, np.nan], [np.nan, 0]], {"threshold": 2}, "no observations"),
])
def test_majority_preference_errors(votes, kwargs, message):
    with pytest.raises(StatsError, match=message):
        S.majority_preference(votes, **kwargs)


# ------------------------------------------------------------------------------- sample size

def test_reference_trial_sample_size_is_270():
    r = S.sample_size(0.207, 0.872, alpha=0.05, power=0.90, dropout=0.30, design="paired")
    assert round(r.n_exact, 2) == 188.39
    assert r.n_evaluable == 189 and r.n_required == 270 and r.n_total == 270
    assert r.achieved_power >= 0.9
    assert S.t_test_power(188, 0.207, 0.872) < 0.9 <= S.t_test_power(189, 0.207, 0.872)


def test_sample_size_matches_statsmodels():
    d = 0.207 / 0.872
    paired = S.sample_size(0.207, 0.872)
    assert close(paired.n_exact, TTestPower().solve_power(d, alpha=0.05, power=0.9))
    indep = S.sample_size(0.207, 0.872, dropout=0.3, design="independent")
    assert close(indep.n_exact, TTestIndPower().solve_power(d, alpha=0.05, power=0.9))
    # PROTOCOL.md: "a two-group design ~535 per group" (374 per group before dropout)
    assert (indep.n_evaluable, indep.n_required, indep.n_total) == (374, 535, 1070)
    for n in (10, 50, 189, 400):
        assert close(S.t_test_power(n, 0.207, 0.872), TTestPower().power(d, n, 0.05))
        assert close(S.t_test_power(n, 0.207, 0.872, design="independent"),
                     TTestIndPower().power(d, n, 0.05))


def test_exact_t_needs_more_than_the_normal_approximation():
    z = sps.norm.ppf(0.975) + sps.norm.ppf(0.9)
    normal = math.ceil((z * 0.872 / 0.207) ** 2)  # 187
    assert math.ceil(normal / 0.7) in (267, 268)
    assert S.sample_size(0.207, 0.872, dropout=0.3).n_required == 270


@pytest.mark.parametrize("dropout", ["0", "0.1", "0.2", "0.25", "0.3", "0.35", "0.5"])
def test_dropout_inflation_is_exact(dropout):
    r = S.sample_size(0.3, 1.0, dropout=float(dropout))
    # smallest N with N·(1 − dropout) ≥ n, in exact decimal arithmetic
    keep = 1 - Fraction(dropout)
    assert r.n_required == math.ceil(Fraction(r.n_evaluable) / keep)


def test_power_curve_is_tidy_and_monotone():
    curve = S.power_curve(0.207, 0.872, [50, 100, 150, 189, 250, 300])
    assert list(curve.columns) == ["n", "power", "design"]
    assert curve["power"].is_monotonic_increasing
    assert curve.set_index("n").loc[189, "power"] >= 0.9 > curve.set_index("n").loc[150, "power"]
    for n, p in zip(curve["n"], curve["power"], strict=True):
        assert close(p, TTestPower().power(0.207 / 0.872, n, 0.05))
    default = S.power_curve(0.207, 0.872)
    assert default["n"].min() == 2 and default["n"].max() >= 378


@pytest.mark.parametrize("kwargs, message", [
    ({"delta": 0, "sd": 1}, "zero difference"),
    ({"delta": 0.2, "sd": 0}, "positive"),
    ({"delta": 0.2, "sd": 1, "power": 0.04}, "power must be"),
    ({"delta": 0.2, "sd": 1, "dropout": 1.0}, "dropout"),
    ({"delta": 0.2, "sd": 1, "alpha": 0}, "alpha"),
    ({"delta": 0.2, "sd": 1, "design": "crossover"}, "design"),
])
def test_sample_size_errors(kwargs, message):
    with pytest.raises(StatsError, match=message):
        S.sample_size(**kwargs)


# -------------------------------------------------------------------------------- mixed model

def simulate_trial(rng: np.random.Generator, cases: int = 60, effect: float = 0.3,
                   ) -> pd.DataFrame:
    """Readers nested in arms (3 each), every case read once per arm, rated by 5 raters.

    Reader effects are fixed and centred within each arm: with readers nested in arms, the
    realised arm difference of one simulated trial includes the mean of its 3 + 3 random
    reader effects, which no model can separate from the arm effect; centring them makes the
    true effect of this data set exactly ``effect``.
    """
    readers = {"AI-assisted": ["r1", "r2", "r3"], "SCP": ["r4", "r5", "r6"]}
    reader_u = dict(zip(["r1", "r2", "r3", "r4", "r5", "r6"],
                        [-0.15, 0.0, 0.15, 0.1, -0.2, 0.1], strict=True))
    rater_u = {f"e{i}": rng.normal(0, 0.2) for i in range(5)}
    case_u = rng.normal(0, 0.5, cases)
    rows = []
    for c in range(cases):
        for arm, rs in readers.items():
            reader = rs[c % 3]
            for rater, ru in rater_u.items():
                y = (4.0 + effect * (arm == "AI-assisted") + case_u[c] + reader_u[reader] + ru
                     + rng.normal(0, 0.4))
                rows.append({"case": f"c{c}", "arm": arm, "reader": reader, "rater": rater,
                             "quality": y})
    return pd.DataFrame(rows)


def test_mixed_model_recovers_the_arm_effect_and_matches_statsmodels(rng):
    df = simulate_trial(rng)
    r = S.mixed_model(df, "quality", reference="SCP")
    assert (r.level, r.reference) == ("AI-assisted", "SCP")
    assert abs(r.effect - 0.3) < 0.1 and r.ci_low < 0.3 < r.ci_high
    assert r.n_obs == 600 and r.n_dropped == 0 and r.method == "REML"
    assert set(r.variance_components) == {"reader", "case", "rater"}
    # the same model fitted independently, with the formula statsmodels documents; BFGS with a
    # tight gradient tolerance (its default L-BFGS stops ~1e-5 short of the REML optimum here)
    fit = smf.mixedlm('quality ~ C(arm, Treatment("SCP"))', df, groups=np.ones(len(df)),
                      vc_formula={"reader": "0 + C(reader)", "case": "0 + C(case)",
                                  "rater": "0 + C(rater)"}).fit(reml=True, method="bfgs",
                                                                gtol=1e-10)
    name = 'C(arm, Treatment("SCP"))[T.AI-assisted]'
    assert close(r.effect, fit.fe_params[name]) and close(r.se, fit.bse_fe[name])
    assert close(r.p, fit.pvalues[name])
    ci = fit.conf_int().loc[name]
    assert close(r.ci_low, ci[0]) and close(r.ci_high, ci[1])
    assert close(r.residual_variance, fit.scale)
    assert close(r.variance_components["case"], 0.25, 0.1)  # true case variance 0.5² (±0.1)


def test_mixed_model_drops_missing_rows_and_single_level_factors(rng):
    df = simulate_trial(rng, cases=30)
    df.loc[[0, 7], "quality"] = np.nan
    df["site"] = "H1"
    r = S.mixed_model(df, "quality", groups=("reader", "case", "rater", "site"))
    assert r.n_dropped == 2 and r.n_obs == 298
    assert "site" not in r.variance_components
    assert any("'site' dropped" in note for note in r.notes)
    assert r.reference == "AI-assisted"  # default: first in sorted order


@pytest.mark.parametrize("change, message", [
    (lambda d: d.drop(columns="rater"), "not in the data"),
    (lambda d: d.assign(arm=np.where(d.index % 3 == 0, "X", d["arm"])), "exactly two levels"),
    (lambda d: d.assign(quality="good"), "numeric"),
    (lambda d: d.assign(quality=3.0), "constant"),
])
def test_mixed_model_errors(rng, change, message):
    df = change(simulate_trial(rng, cases=10))
    with pytest.raises(StatsError, match=message):
        S.mixed_model(df, "quality")


# ------------------------------------------------------------------------------------ results

def test_results_are_frozen_and_serialisable():
    r = S.kendalls_w([[1, 2, 3], [1, 3, 2]])
    with pytest.raises(AttributeError):
        r.w = 0.5  # type: ignore[misc]
    assert set(r.as_dict()) >= {"w", "chi2", "df", "p", "band", "n_items_dropped"}


def test_ratings_matrix_pivots_long_tables():
    long = pd.DataFrame({"rater": ["e1", "e1", "e2", "e2", "e3"],
                         "case": ["c1", "c2", "c1", "c2", "c1"], "value": [4, 5, 3, 5, 4]})
    m = S.ratings_matrix(long)
    assert m.shape == (3, 2) and np.isnan(m.loc["e3", "c2"])
    assert S.krippendorffs_alpha(m).n_values == 5
    with pytest.raises(StatsError, match="at least two items"):
        S.kendalls_w(m)  # c2 was skipped by e3, leaving one complete item
    with pytest.raises(StatsError, match="more than once"):
        S.ratings_matrix(pd.concat([long, long.iloc[:1]]))


@pytest.mark.parametrize("module", ["analysis.stats", "analysis.summary"])
def test_pure_modules_do_not_import_django(module):
    code = (f"import sys, {module}; "
            "found = [m for m in sys.modules if m.startswith('django')]; assert not found, found")
    env = {k: v for k, v in os.environ.items() if k != "DJANGO_SETTINGS_MODULE"}
    subprocess.run([sys.executable, "-c", code], check=True, cwd=ROOT, env=env)
