"""ROC, AUC and DeLong (metrics.roc) against scikit-learn, a slow pairwise DeLong written here
from the definitions, and Hanley & McNeil's published worked example."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy.stats import norm
from sklearn.metrics import roc_auc_score
from sklearn.metrics import roc_curve as sk_roc_curve

from metrics import roc

# Hanley & McNeil (1982), Radiology 143:29, Table 1: 109 CT images rated 1 (definitely normal)
# to 5 (definitely abnormal) by one reader; 58 truly normal, 51 truly abnormal.
HM_NORMAL = [33, 6, 6, 11, 2]
HM_ABNORMAL = [3, 2, 2, 11, 33]


def hanley_mcneil() -> tuple[np.ndarray, np.ndarray]:
    ratings = np.arange(1, 6)
    y = np.r_[np.zeros(sum(HM_NORMAL), dtype=int), np.ones(sum(HM_ABNORMAL), dtype=int)]
    p = np.r_[np.repeat(ratings, HM_NORMAL), np.repeat(ratings, HM_ABNORMAL)].astype(float)
    return y, p


def psi(x: float, z: float) -> float:
    return 1.0 if x > z else 0.5 if x == z else 0.0


def slow_components(y: np.ndarray, p: np.ndarray) -> tuple[float, list[float], list[float]]:
    """AUC, V10 and V01 by explicit double loops over positive x negative pairs."""
    xs = [p[i] for i in range(len(y)) if y[i] == 1]
    zs = [p[j] for j in range(len(y)) if y[j] == 0]
    v10 = [sum(psi(x, z) for z in zs) / len(zs) for x in xs]
    v01 = [sum(psi(x, z) for x in xs) / len(xs) for z in zs]
    auc = sum(psi(x, z) for x in xs for z in zs) / (len(xs) * len(zs))
    return auc, v10, v01


def sample_cov(a: list[float], b: list[float]) -> float:
    mean_a, mean_b = sum(a) / len(a), sum(b) / len(b)
    return sum((u - mean_a) * (v - mean_b) for u, v in zip(a, b, strict=True)) / (len(a) - 1)


def slow_delong(y: np.ndarray, p: np.ndarray) -> tuple[float, float]:
    """var = S10/m + S01/n from the definitions."""
    auc, v10, v01 = slow_components(y, p)
    return auc, sample_cov(v10, v10) / len(v10) + sample_cov(v01, v01) / len(v01)


def slow_paired_p(y: np.ndarray, p1: np.ndarray, p2: np.ndarray) -> tuple[float, float, float]:
    """Difference, its SE and two-sided P with S_12 = S10_12/m + S01_12/n, from the loops."""
    auc1, a10, a01 = slow_components(y, p1)
    auc2, b10, b01 = slow_components(y, p2)
    m, n = len(a10), len(a01)
    var1 = sample_cov(a10, a10) / m + sample_cov(a01, a01) / n
    var2 = sample_cov(b10, b10) / m + sample_cov(b01, b01) / n
    cov12 = sample_cov(a10, b10) / m + sample_cov(a01, b01) / n
    se = math.sqrt(var1 + var2 - 2 * cov12)
    return auc1 - auc2, se, 2 * norm.sf(abs(auc1 - auc2) / se)


def tied_data(seed: int, n: int = 80) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Labels and two correlated, heavily tied score sets (rounded to 1 decimal)."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, n)
    y[:2] = [0, 1]
    latent = y * 1.0 + rng.normal(size=n)
    p1 = np.round(latent + 0.5 * rng.normal(size=n), 1)
    p2 = np.round(0.6 * latent + rng.normal(size=n), 1)
    return y, p1, p2


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_roc_curve_equals_sklearn(seed: int) -> None:
    y, p, _ = tied_data(seed)
    fpr, tpr, thresholds = roc.roc_curve(y, p)
    sk_fpr, sk_tpr, sk_thresholds = sk_roc_curve(y, p, drop_intermediate=False)
    np.testing.assert_allclose(fpr, sk_fpr, rtol=0, atol=1e-15)
    np.testing.assert_allclose(tpr, sk_tpr, rtol=0, atol=1e-15)
    np.testing.assert_array_equal(thresholds[1:], sk_thresholds[1:])
    assert thresholds[0] == np.inf and sk_thresholds[0] == np.inf
    # The trapezoid under these points is the AUC.
    assert np.trapezoid(tpr, fpr) == pytest.approx(roc_auc_score(y, p), abs=1e-12)


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_auc_and_variance_equal_the_slow_definitions(seed: int) -> None:
    y, p, _ = tied_data(seed, n=60 + 7 * seed)
    auc, variance = roc.delong(y, p)
    assert auc == pytest.approx(roc_auc_score(y, p), abs=1e-12)
    slow_auc, slow_variance = slow_delong(y, p)
    assert auc == pytest.approx(slow_auc, abs=1e-12)
    assert variance == pytest.approx(slow_variance, rel=1e-10, abs=1e-15)


def test_hanley_mcneil_worked_example() -> None:
    y, p = hanley_mcneil()
    result = roc.auc_ci(y, p)
    assert (result["n_pos"], result["n_neg"]) == (51, 58)
    # Published: AUC 0.893. By hand, pairs won by the abnormal image (ties 1/2), per abnormal
    # rating: 3 x 16.5 + 2 x 36 + 2 x 42 + 11 x 50.5 + 33 x 57 = 2642 of 51 x 58 = 2958 pairs.
    assert round(result["auc"], 3) == 0.893
    assert result["auc"] == pytest.approx(2642 / 2958, abs=1e-15)
    assert result["auc"] == pytest.approx(roc_auc_score(y, p), abs=1e-12)
    # Published SE 0.032 is Hanley-McNeil's exponential approximation (it gives 0.03249 here);
    # DeLong's nonparametric SE for these data is 0.03072, 0.0018 below it.
    assert abs(result["se"] - 0.032) < 0.003
    assert result["se"] == pytest.approx(0.030724408, abs=1e-8)
    assert result["se"] == pytest.approx(math.sqrt(slow_delong(y, p)[1]), rel=1e-10)
    z = norm.ppf(0.975)
    assert result["ci_low"] == pytest.approx(result["auc"] - z * result["se"])
    assert result["ci_high"] == pytest.approx(result["auc"] + z * result["se"])
    assert "reason" not in result


def test_ci_is_clipped_to_the_unit_interval() -> None:
    y = np.array([0, 0, 0, 1, 0, 1, 1, 1])
    p = np.array([0.1, 0.2, 0.3, 0.35, 0.4, 0.8, 0.9, 0.95])
    result = roc.auc_ci(y, p)
    assert result["auc"] == pytest.approx(15 / 16)
    assert result["ci_high"] == 1.0 and result["ci_low"] < result["auc"]
    perfect = roc.auc_ci(y, y * 1.0)
    assert perfect["auc"] == 1.0 and perfect["se"] == 0.0
    assert perfect["ci_low"] == perfect["ci_high"] == 1.0


def test_paired_test_equals_the_slow_definitions() -> None:
    for seed in (4, 5, 6):
        y, p1, p2 = tied_data(seed, n=70)
        result = roc.delong_paired(y, p1, p2)
        difference, se, p_value = slow_paired_p(y, p1, p2)
        assert result["auc1"] == pytest.approx(roc_auc_score(y, p1), abs=1e-12)
        assert result["auc2"] == pytest.approx(roc_auc_score(y, p2), abs=1e-12)
        assert result["difference"] == pytest.approx(difference, abs=1e-12)
        assert result["se"] == pytest.approx(se, rel=1e-9)
        assert result["z"] == pytest.approx(difference / se, rel=1e-9)
        assert result["p"] == pytest.approx(p_value, rel=1e-8, abs=1e-15)
        # Each AUC's own variance is the single-predictor DeLong one.
        assert roc.delong(y, p1)[1] == pytest.approx(slow_delong(y, p1)[1], rel=1e-10)


def test_paired_test_of_identical_scores_has_no_p() -> None:
    y, p1, _ = tied_data(9)
    result = roc.delong_paired(y, p1, p1.copy())
    assert result["difference"] == 0.0 and result["p"] is None and result["z"] is None
    assert "identically" in result["reason"]


def test_no_positive_or_negative_cases() -> None:
    p = np.array([0.1, 0.4, 0.35, 0.8])
    none_pos = roc.auc_ci(np.zeros(4, dtype=int), p)
    assert none_pos["reason"] == "no positive cases"
    assert none_pos["auc"] is None and none_pos["se"] is None and none_pos["ci_low"] is None
    assert (none_pos["n_pos"], none_pos["n_neg"]) == (0, 4)
    none_neg = roc.auc_ci(np.ones(4, dtype=int), p)
    assert none_neg["reason"] == "no negative cases" and none_neg["auc"] is None
    assert roc.delong_paired(np.zeros(4, dtype=int), p, p)["reason"] == "no positive cases"
    with pytest.raises(ValueError, match="no positive cases"):
        roc.delong(np.zeros(4, dtype=int), p)
    # One positive: the AUC exists, DeLong's variance does not (a sample variance of one).
    one = roc.auc_ci(np.array([0, 0, 1, 0]), p)
    assert one["auc"] == pytest.approx(roc_auc_score([0, 0, 1, 0], p))
    assert one["se"] is None and "fewer than two" in one["reason"]
    assert math.isnan(roc.delong(np.array([0, 0, 1, 0]), p)[1])


def test_bad_inputs_are_refused() -> None:
    with pytest.raises(ValueError, match="only 0 and 1"):
        roc.auc_ci(np.array([0, 2, 1]), np.array([0.1, 0.2, 0.3]))
    with pytest.raises(ValueError, match="same shape"):
        roc.auc_ci(np.array([0, 1, 1]), np.array([0.1, 0.2]))
    with pytest.raises(ValueError, match="finite"):
        roc.auc_ci(np.array([0, 1, 1]), np.array([0.1, np.nan, 0.3]))


def test_large_inputs_are_fast_and_match_sklearn() -> None:
    rng = np.random.default_rng(1)
    y = rng.integers(0, 2, 20_000)
    p = np.round(y + rng.normal(size=y.size), 2)
    result = roc.auc_ci(y, p)
    assert result["auc"] == pytest.approx(roc_auc_score(y, p), abs=1e-12)
    assert 0 < result["se"] < 0.01
