"""ROC curves, the AUC with DeLong's standard error, and DeLong's paired test of two AUCs.

The AUC is the Mann-Whitney probability that a positive case scores above a negative one
(ties count 1/2). Its variance is DeLong, DeLong & Clarke-Pearson's (1988, Biometrics 44:837)
from the structural components, computed with Sun & Xu's (2014, IEEE SPL 21:1389) midrank
algorithm in O(n log n), so it stays instant for 10,000 cases. Higher scores mean "more
likely positive" (no direction is guessed, unlike pROC's default).

A case set without positives or without negatives has no AUC: the results then say why and
carry ``None``, never a number that was not computed.

No Django here: NumPy arrays in, plain numbers and dicts out.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from scipy.stats import norm, rankdata

__all__ = ["auc_ci", "delong", "delong_paired", "roc_curve"]


def _inputs(y: np.ndarray, *scores: np.ndarray) -> tuple[np.ndarray, list[np.ndarray]]:
    """Labels as a boolean array and scores as float arrays of the same length, checked."""
    y = np.asarray(y)
    if y.ndim != 1:
        raise ValueError(f"labels must be one-dimensional, not shape {y.shape}")
    if y.size and not np.isin(y, (0, 1)).all():
        raise ValueError("labels must hold only 0 and 1")
    out = []
    for p in scores:
        p = np.asarray(p, dtype=float)
        if p.shape != y.shape:
            raise ValueError(f"scores {p.shape} and labels {y.shape} must have the same shape")
        if not np.isfinite(p).all():
            raise ValueError("scores must be finite (drop or impute missing ones first)")
        out.append(p)
    return y.astype(bool), out


def _missing_class(y: np.ndarray) -> str | None:
    if not y.any():
        return "no positive cases"
    if y.all():
        return "no negative cases"
    return None


def roc_curve(y: np.ndarray, p: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """False- and true-positive rates at every distinct threshold, highest first.

    The same points as scikit-learn's ``roc_curve(drop_intermediate=False)``: a leading (0, 0)
    at threshold +inf, then one point per distinct score (a case is called positive when its
    score >= the threshold). A rate whose class is absent is NaN.
    """
    y, (p,) = _inputs(y, p)
    order = np.argsort(p, kind="mergesort")[::-1]
    p_sorted, y_sorted = p[order], y[order]
    last_of_value = np.r_[np.flatnonzero(np.diff(p_sorted)), y.size - 1] if y.size else (
        np.array([], dtype=int))
    tps = np.cumsum(y_sorted)[last_of_value].astype(float)
    fps = (last_of_value + 1) - tps
    tps, fps = np.r_[0.0, tps], np.r_[0.0, fps]
    with np.errstate(divide="ignore", invalid="ignore"):
        fpr = fps / fps[-1] if fps[-1] > 0 else np.full(fps.shape, np.nan)
        tpr = tps / tps[-1] if tps[-1] > 0 else np.full(tps.shape, np.nan)
    return fpr, tpr, np.r_[np.inf, p_sorted[last_of_value]]


def _components(y: np.ndarray, scores: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """AUCs (k,) and DeLong's structural components V10 (k, m) and V01 (k, n) by midranks.

    ``scores`` is (k, N). V10_i is the share of negatives that positive i outranks (ties 1/2),
    V01_j the share of positives that outrank negative j: Sun & Xu's midrank differences.
    """
    x, z = scores[:, y], scores[:, ~y]
    m, n = x.shape[1], z.shape[1]
    rank_all = rankdata(np.concatenate([x, z], axis=1), axis=1)
    rank_x, rank_z = rankdata(x, axis=1), rankdata(z, axis=1)
    v10 = (rank_all[:, :m] - rank_x) / n
    v01 = 1.0 - (rank_all[:, m:] - rank_z) / m
    auc = (rank_all[:, :m].sum(axis=1) - m * (m + 1) / 2) / (m * n)
    return auc, v10, v01


def _covariance(v10: np.ndarray, v01: np.ndarray) -> np.ndarray:
    """DeLong's covariance matrix of the k AUCs: S10 / m + S01 / n (sample covariances)."""
    m, n = v10.shape[1], v01.shape[1]
    s10 = np.atleast_2d(np.cov(v10, ddof=1))
    s01 = np.atleast_2d(np.cov(v01, ddof=1))
    return s10 / m + s01 / n


def _undefined_variance(y: np.ndarray) -> str | None:
    """Why DeLong's variance cannot be computed: a sample variance needs two of each class."""
    if y.sum() < 2 or (~y).sum() < 2:
        return "fewer than two positive or negative cases: DeLong's variance is undefined"
    return None


def delong(y: np.ndarray, p: np.ndarray) -> tuple[float, float]:
    """(AUC, DeLong variance) of scores ``p`` for 0/1 labels ``y``.

    Raises ValueError when a class is absent (no AUC exists); the variance is NaN with fewer
    than two cases of a class. :func:`auc_ci` is the form that reports why instead.
    """
    y, (p,) = _inputs(y, p)
    reason = _missing_class(y)
    if reason:
        raise ValueError(f"AUC undefined: {reason}")
    auc, v10, v01 = _components(y, p[None, :])
    if _undefined_variance(y):
        return float(auc[0]), math.nan
    return float(auc[0]), float(_covariance(v10, v01)[0, 0])


def auc_ci(y: np.ndarray, p: np.ndarray, alpha: float = 0.05) -> dict[str, Any]:
    """AUC with DeLong SE and its (1 - alpha) Wald interval, clipped to [0, 1] as pROC's.

    Keys ``auc``, ``se``, ``ci_low``, ``ci_high``, ``n_pos``, ``n_neg``; with ``reason`` (and
    None for what could not be computed) when a class is absent or too small for a variance.
    """
    y, (p,) = _inputs(y, p)
    out: dict[str, Any] = {"auc": None, "se": None, "ci_low": None, "ci_high": None,
                           "n_pos": int(y.sum()), "n_neg": int((~y).sum())}
    reason = _missing_class(y)
    if reason:
        return {**out, "reason": reason}
    auc, v10, v01 = _components(y, p[None, :])
    out["auc"] = float(auc[0])
    reason = _undefined_variance(y)
    if reason:
        return {**out, "reason": reason}
    se = math.sqrt(max(float(_covariance(v10, v01)[0, 0]), 0.0))
    half = float(norm.ppf(1 - alpha / 2)) * se
    return {**out, "se": se, "ci_low": max(0.0, out["auc"] - half),
            "ci_high": min(1.0, out["auc"] + half)}


def delong_paired(y: np.ndarray, p1: np.ndarray, p2: np.ndarray) -> dict[str, Any]:
    """DeLong's test of two correlated AUCs (two score sets on the same cases), two-sided.

    ``difference`` = auc1 - auc2; its variance is var1 + var2 - 2 cov12 from the shared
    structural components; z = difference / se, p from the normal. Where a value cannot be
    computed (a class absent, too few cases, or a difference with zero variance, as when the
    two rank the cases identically) it is None and ``reason`` says why.
    """
    y, (p1, p2) = _inputs(y, p1, p2)
    out: dict[str, Any] = {"auc1": None, "auc2": None, "difference": None, "se": None,
                           "z": None, "p": None, "n_pos": int(y.sum()), "n_neg": int((~y).sum())}
    reason = _missing_class(y)
    if reason:
        return {**out, "reason": reason}
    auc, v10, v01 = _components(y, np.stack([p1, p2]))
    out.update(auc1=float(auc[0]), auc2=float(auc[1]), difference=float(auc[0] - auc[1]))
    reason = _undefined_variance(y)
    if reason:
        return {**out, "reason": reason}
    s = _covariance(v10, v01)
    variance = float(s[0, 0] + s[1, 1] - 2 * s[0, 1])
    if not variance > 0:
        return {**out, "se": 0.0, "reason": (
            "the difference has zero variance (the two score sets rank the cases identically, "
            "or both separate the classes perfectly)")}
    se = math.sqrt(variance)
    z = out["difference"] / se
    return {**out, "se": se, "z": z, "p": float(2 * norm.sf(abs(z)))}
