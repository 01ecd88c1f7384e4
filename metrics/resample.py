"""Seeded case bootstrap and paired permutation tests over per-case sufficient statistics.

Every metric of ``metrics`` (F1, kappa, corpus BLEU, mean ROUGE-L) is a function of sums of
per-case statistics. So a bootstrap resample is a vector of case counts W (how often each case
was drawn) and the resampled metric is ``stat(W @ X)``; a permutation of a paired comparison
swaps the two sources' statistics case by case and is again a matrix product. Nothing here
copies labels or texts, and B = 1,000 resamples of 10,000 cases take a fraction of a second.

Everything is driven by ``np.random.default_rng(seed)``, so a reported interval or P value is
reproducible from its seed.

No Django here: NumPy arrays in, NumPy arrays and floats out.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from typing import Any

import numpy as np

__all__ = ["bootstrap_weights", "paired_bootstrap_ci", "paired_permutation", "percentile_ci",
           "weighted_sum"]

# Rows of a (rows, n) float block per matrix product: ~32 MB at most, whatever n and B are.
_BLOCK_ELEMENTS = 1 << 22
# Slack for "at least as extreme": float sums of the same numbers in another order differ by
# rounding, and a permutation equal to the observed split must count.
_TIE = 1e-12


def _rows_per_block(n: int, total: int) -> int:
    return max(1, min(total, _BLOCK_ELEMENTS // max(n, 1)))


def bootstrap_weights(n: int, resamples: int, seed: int) -> np.ndarray:
    """Case counts of ``resamples`` bootstrap samples of ``n`` cases, shape (resamples, n).

    Row b counts how often each case was drawn in n draws with replacement (a multinomial with
    equal probabilities): the case counts of the b-th ``rng.integers(0, n, n)`` of
    ``np.random.default_rng(seed)``. Same seed, same rows; the first rows do not depend on
    how many resamples follow. Each row sums to n.
    """
    if n < 0 or resamples < 0:
        raise ValueError("n and resamples must be non-negative")
    rng = np.random.default_rng(seed)
    out = np.zeros((resamples, n), dtype=np.int32)
    for b in range(resamples if n else 0):
        out[b] = np.bincount(rng.integers(0, n, size=n), minlength=n)
    return out


def weighted_sum(weights: np.ndarray, values: np.ndarray) -> np.ndarray:
    """``weights`` (B, n) times per-case ``values`` (n, ...) summed over cases: (B, ...) floats.

    One BLAS product per block of resamples, so memory stays bounded (values are reshaped to
    (n, m) once; each block of weights is converted to float on its own).
    """
    weights = np.asarray(weights)
    values = np.asarray(values)
    if weights.ndim != 2 or values.ndim < 1 or weights.shape[1] != values.shape[0]:
        raise ValueError(
            f"weights (B, n) and values (n, ...) do not match: {weights.shape}, {values.shape}")
    flat = values.reshape(values.shape[0], -1).astype(float, copy=False)
    out = np.empty((weights.shape[0], flat.shape[1]), dtype=float)
    step = _rows_per_block(weights.shape[1], weights.shape[0])
    for start in range(0, weights.shape[0], step):
        out[start:start + step] = weights[start:start + step].astype(float) @ flat
    return out.reshape(weights.shape[0], *values.shape[1:])


def percentile_ci(samples: np.ndarray, alpha: float = 0.05) -> tuple[Any, Any]:
    """Percentile interval (alpha/2, 1 - alpha/2) of bootstrap ``samples`` over axis 0.

    NaN resamples (a metric undefined in that resample) are left out; when more than half are
    NaN the interval is (nan, nan): it would describe a minority of resamples. 1-D samples
    give two floats; (B, ...) samples give two arrays of shape (...).
    """
    samples = np.asarray(samples, dtype=float)
    if samples.ndim == 0 or samples.shape[0] == 0:
        raise ValueError("percentile_ci needs at least one resample")
    q = [100 * alpha / 2, 100 * (1 - alpha / 2)]
    with warnings.catch_warnings():  # all-NaN columns: their answer is NaN, said below
        warnings.simplefilter("ignore", RuntimeWarning)
        low, high = np.nanpercentile(samples, q, axis=0)
    too_many = np.isnan(samples).mean(axis=0) > 0.5
    low, high = np.where(too_many, np.nan, low), np.where(too_many, np.nan, high)
    if samples.ndim == 1:
        return float(low), float(high)
    return low, high


def _paired(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    if a.shape != b.shape or a.ndim < 1:
        raise ValueError(f"paired statistics must have the same (n, ...) shape: "
                         f"{a.shape}, {b.shape}")
    return a, b


def paired_permutation(
    stat: Callable[[np.ndarray], np.ndarray],
    a: np.ndarray,
    b: np.ndarray,
    *,
    permutations: int,
    seed: int,
) -> dict[str, Any]:
    """Approximate randomisation test of stat(sum a) - stat(sum b) on the same cases.

    ``a`` and ``b`` are the two sources' per-case statistics, shape (n, ...); ``stat`` maps a
    sum (shape (...)) or stacked sums (R, ...) to the metric (a number, or (R,)). Under the
    null the two sources are exchangeable within a case, so each permutation swaps a case's
    pair with probability 1/2: permutation r keeps case i where the i-th value of the r-th
    ``rng.random(n)`` is < 0.5 (``rng = np.random.default_rng(seed)``). Two-sided
    P = (1 + #{|d_perm| >= |d_obs|}) / (permutations + 1), never 0; a NaN permuted
    difference counts as extreme (conservative). Returns ``difference``, ``p``,
    ``permutations``.
    """
    a, b = _paired(a, b)
    if permutations < 1:
        raise ValueError("permutations must be at least 1")
    n, shape = a.shape[0], a.shape[1:]
    sum_a, sum_b = a.sum(axis=0), b.sum(axis=0)
    observed = np.asarray(stat(sum_a), dtype=float) - np.asarray(stat(sum_b), dtype=float)
    flat_b, total = sum_b.reshape(-1), (sum_a + sum_b).reshape(-1)
    delta = (a - b).reshape(n, -1)
    rng = np.random.default_rng(seed)
    extreme = np.zeros(observed.shape, dtype=np.int64)
    step = _rows_per_block(n, permutations)
    for start in range(0, permutations, step):
        rows = min(step, permutations - start)
        keep = (rng.random((rows, n)) < 0.5).astype(float)
        side_a = flat_b + keep @ delta  # kept cases give a, swapped ones b
        side_b = total - side_a
        permuted = (np.asarray(stat(side_a.reshape(rows, *shape)), dtype=float)
                    - np.asarray(stat(side_b.reshape(rows, *shape)), dtype=float))
        with np.errstate(invalid="ignore"):
            hit = (np.abs(permuted) >= np.abs(observed) - _TIE) | np.isnan(permuted)
        extreme += hit.sum(axis=0)
    p = (1 + extreme) / (permutations + 1)
    p = np.where(np.isnan(observed), np.nan, p)
    if observed.ndim == 0:
        return {"difference": float(observed), "p": float(p), "permutations": permutations}
    return {"difference": observed, "p": p, "permutations": permutations}


def paired_bootstrap_ci(
    stat: Callable[[np.ndarray], np.ndarray],
    a: np.ndarray,
    b: np.ndarray,
    weights: np.ndarray,
    alpha: float = 0.05,
) -> tuple[Any, Any]:
    """Percentile interval of stat(a) - stat(b) with the same resampled cases for both.

    Resampling cases, not sources, keeps the pairing: each row of ``weights`` (from
    :func:`bootstrap_weights`) is applied to both sources' per-case statistics.
    """
    a, b = _paired(a, b)
    differences = (np.asarray(stat(weighted_sum(weights, a)), dtype=float)
                   - np.asarray(stat(weighted_sum(weights, b)), dtype=float))
    return percentile_ci(differences, alpha)

