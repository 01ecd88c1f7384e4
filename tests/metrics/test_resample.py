"""Bootstrap weights, weighted sums, percentile intervals and the paired permutation test
(metrics.resample) against naive loops, NumPy's percentile and SciPy's permutation test."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.stats import permutation_test

from metrics import classification, resample


def micro_f1(totals: np.ndarray) -> np.ndarray:
    """A ratio statistic of summed confusion counts (n, 4, k) -> the kind the platform tests."""
    return classification.scores(totals)["micro_f1"]


def labelled_sources(seed: int, n: int = 40, k: int = 3, flip_b: float = 0.35):
    """Reference labels and two predictions; source b is noisier than source a."""
    rng = np.random.default_rng(seed)
    truth = rng.integers(0, 2, (n, k))
    pred_a = np.where(rng.random((n, k)) < 0.1, 1 - truth, truth)
    pred_b = np.where(rng.random((n, k)) < flip_b, 1 - truth, truth)
    return classification.counts(truth, pred_a), classification.counts(truth, pred_b)


def test_bootstrap_weights_are_seeded_counts_of_n_draws() -> None:
    w = resample.bootstrap_weights(50, 200, seed=7)
    assert w.shape == (200, 50) and np.issubdtype(w.dtype, np.integer)
    np.testing.assert_array_equal(w.sum(axis=1), np.full(200, 50))
    assert (w >= 0).all()
    np.testing.assert_array_equal(w, resample.bootstrap_weights(50, 200, seed=7))
    assert not np.array_equal(w, resample.bootstrap_weights(50, 200, seed=8))
    # The documented convention, and first rows independent of how many follow.
    rng = np.random.default_rng(7)
    for b in range(5):
        np.testing.assert_array_equal(w[b], np.bincount(rng.integers(0, 50, 50), minlength=50))
    np.testing.assert_array_equal(resample.bootstrap_weights(50, 20, seed=7), w[:20])
    # Each case is drawn once on average (binomial(50, 1/50) counts).
    assert w.mean() == 1.0 and 0.8 < w.var() < 1.2
    assert resample.bootstrap_weights(0, 3, seed=1).shape == (3, 0)


def test_weighted_sum_equals_a_naive_loop(monkeypatch: pytest.MonkeyPatch) -> None:
    rng = np.random.default_rng(0)
    values = rng.integers(0, 5, (30, 4, 3))
    weights = resample.bootstrap_weights(30, 17, seed=1)
    naive = np.zeros((17, 4, 3))
    for b in range(17):
        for i in range(30):
            naive[b] += weights[b, i] * values[i]
    np.testing.assert_array_equal(resample.weighted_sum(weights, values), naive)
    # Blocks of a few resamples at a time give the same numbers.
    monkeypatch.setattr(resample, "_BLOCK_ELEMENTS", 30 * 4)
    np.testing.assert_array_equal(resample.weighted_sum(weights, values), naive)
    # One-dimensional values (one number per case).
    np.testing.assert_allclose(resample.weighted_sum(weights, values[:, 0, 0]),
                               weights @ values[:, 0, 0])
    with pytest.raises(ValueError, match="do not match"):
        resample.weighted_sum(weights, values[:10])


def test_percentile_ci_equals_numpy_and_ignores_a_minority_of_nan() -> None:
    samples = np.random.default_rng(2).normal(size=999)
    low, high = resample.percentile_ci(samples)
    assert (low, high) == tuple(np.percentile(samples, [2.5, 97.5]))
    assert resample.percentile_ci(samples, alpha=0.1) == tuple(np.percentile(samples, [5, 95]))
    assert isinstance(low, float)
    with_nan = samples.copy()
    with_nan[::3] = np.nan  # a third undefined
    assert resample.percentile_ci(with_nan) == tuple(
        np.percentile(samples[np.arange(999) % 3 != 0], [2.5, 97.5]))
    mostly_nan = samples.copy()
    mostly_nan[:600] = np.nan
    assert all(np.isnan(resample.percentile_ci(mostly_nan)))
    # Several metrics at once: one interval per column.
    table = np.column_stack([samples, with_nan, mostly_nan])
    low, high = resample.percentile_ci(table)
    assert low.shape == (3,) and np.isnan(low[2]) and np.isnan(high[2])
    assert (low[0], high[0]) == tuple(np.percentile(samples, [2.5, 97.5]))


def slow_permutation_p(stat, a: np.ndarray, b: np.ndarray, permutations: int,
                       seed: int) -> tuple[float, float]:
    """The same test by brute force: swap the two sources' rows case by case, re-sum, score."""
    observed = float(stat(a.sum(axis=0)) - stat(b.sum(axis=0)))
    rng = np.random.default_rng(seed)
    extreme = 0
    for _ in range(permutations):
        keep = rng.random(a.shape[0]) < 0.5
        side_a = np.where(keep.reshape(-1, *[1] * (a.ndim - 1)), a, b)
        side_b = np.where(keep.reshape(-1, *[1] * (a.ndim - 1)), b, a)
        d = float(stat(side_a.sum(axis=0)) - stat(side_b.sum(axis=0)))
        extreme += abs(d) >= abs(observed) - 1e-12
    return observed, (1 + extreme) / (permutations + 1)


@pytest.mark.parametrize(("seed", "flip_b"), [(0, 0.35), (1, 0.15), (2, 0.1)])
def test_permutation_p_equals_a_slow_loop(seed: int, flip_b: float) -> None:
    a, b = labelled_sources(seed, flip_b=flip_b)
    result = resample.paired_permutation(micro_f1, a, b, permutations=999, seed=seed)
    observed, p = slow_permutation_p(micro_f1, a, b, 999, seed)
    assert result["difference"] == pytest.approx(observed, abs=1e-12)
    assert result["p"] == p
    assert result["permutations"] == 999


def test_permutation_identical_sources_give_p_1() -> None:
    a, _ = labelled_sources(3)
    result = resample.paired_permutation(micro_f1, a, a.copy(), permutations=500, seed=1)
    assert result == {"difference": 0.0, "p": 1.0, "permutations": 500}


def test_permutation_clearly_different_sources_give_small_p() -> None:
    a, b = labelled_sources(4, n=200, flip_b=0.45)
    result = resample.paired_permutation(micro_f1, a, b, permutations=2000, seed=5)
    assert result["difference"] > 0.2
    assert result["p"] == 1 / 2001  # nothing as extreme: the smallest P the test can give


@pytest.mark.parametrize("seed", [6, 11])
def test_permutation_agrees_with_scipys_exact_paired_test(seed: int) -> None:
    # A mean difference is a statistic of sums, so this is SciPy's paired ("samples")
    # permutation test; with 10 pairs SciPy enumerates all 2^10 sign patterns exactly.
    rng = np.random.default_rng(seed)
    x = rng.normal(size=10)
    y = x - 0.6 + rng.normal(scale=0.8, size=10)
    exact = permutation_test(
        (x, y), lambda u, v, axis: np.mean(u, axis=axis) - np.mean(v, axis=axis),
        permutation_type="samples", vectorized=True, n_resamples=np.inf,
        alternative="two-sided").pvalue
    ours = resample.paired_permutation(lambda s: s / 10, x, y, permutations=40_000, seed=2)
    assert ours["difference"] == pytest.approx(np.mean(x) - np.mean(y), abs=1e-12)
    assert 0.02 < exact < 0.5  # 0.270 and 0.043: P values where the two could disagree
    assert ours["p"] == pytest.approx(exact, abs=0.01)


def test_permutation_with_vector_statistics_gives_one_p_per_finding() -> None:
    a, b = labelled_sources(7, n=60)
    result = resample.paired_permutation(lambda t: classification.scores(t)["f1"], a, b,
                                         permutations=300, seed=3)
    assert result["p"].shape == (3,) and result["difference"].shape == (3,)
    for j in range(3):
        _, p = slow_permutation_p(lambda t, j=j: classification.scores(t)["f1"][j], a, b,
                                  300, 3)
        assert result["p"][j] == p


def test_paired_bootstrap_ci_equals_explicit_resampling() -> None:
    a, b = labelled_sources(8, n=30)
    weights = resample.bootstrap_weights(30, 400, seed=9)
    low, high = resample.paired_bootstrap_ci(micro_f1, a, b, weights)
    differences = []
    for row in weights:
        index = np.repeat(np.arange(30), row)
        differences.append(micro_f1(a[index].sum(axis=0)) - micro_f1(b[index].sum(axis=0)))
    expected = np.percentile(differences, [2.5, 97.5])
    assert low == pytest.approx(expected[0], abs=1e-12)
    assert high == pytest.approx(expected[1], abs=1e-12)
    assert low < micro_f1(a.sum(axis=0)) - micro_f1(b.sum(axis=0)) < high


def test_bad_arguments_are_refused() -> None:
    a, b = labelled_sources(0)
    with pytest.raises(ValueError, match="same"):
        resample.paired_permutation(micro_f1, a, b[:5], permutations=10, seed=0)
    with pytest.raises(ValueError, match="at least 1"):
        resample.paired_permutation(micro_f1, a, b, permutations=0, seed=0)
    with pytest.raises(ValueError, match="at least one"):
        resample.percentile_ci(np.array([]))
