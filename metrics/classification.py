"""Finding labels of generated reports against reference labels: F1, kappa, positive rates.

Labels are 0/1 arrays of shape (n_cases, k), one column per finding (usually the 14 of
``trial.findings.FINDINGS``, in that order). Every score here is a function of the four
confusion totals per finding, and those totals are sums over cases. So :func:`counts` keeps
per-case indicators once, and a bootstrap resample is a weighted sum of them (``W @ X``, see
``metrics.resample.weighted_sum``) scored by :func:`scores`, never a copy of the labels.

Zero-division follows scikit-learn's ``zero_division=0``; Cohen's kappa is NaN where it is
undefined (both raters constant and agreeing), as scikit-learn's ``cohen_kappa_score``.

No Django here: NumPy arrays in, NumPy arrays out.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

__all__ = ["CELLS", "counts", "scores", "subset", "top_findings"]

#: The order of the confusion cells on axis 1 of :func:`counts` (axis -2 of totals).
CELLS = ("tp", "fp", "fn", "tn")


def _labels(y: np.ndarray, name: str) -> np.ndarray:
    """``y`` as a 2-D 0/1 integer array, refusing anything else (e.g. CheXpert's -1)."""
    y = np.asarray(y)
    if y.ndim == 1:
        y = y[:, None]
    if y.ndim != 2:
        raise ValueError(f"{name} must be (n_cases, k) labels, not shape {y.shape}")
    if y.size and not np.isin(y, (0, 1)).all():
        raise ValueError(f"{name} must hold only 0 and 1 (map uncertain labels first)")
    return y.astype(np.int64)


def counts(y_true: np.ndarray, y_pred: np.ndarray) -> np.ndarray:
    """Per-case confusion indicators, shape (n_cases, 4, k): axis 1 is tp, fp, fn, tn.

    Exactly one of the four is 1 for each case and finding. Cases come first so that a sum
    over axis 0 gives the (4, k) totals, and bootstrap weights W (B, n) give (B, 4, k) by one
    matrix product.
    """
    t, p = _labels(y_true, "y_true"), _labels(y_pred, "y_pred")
    if t.shape != p.shape:
        raise ValueError(f"y_true {t.shape} and y_pred {p.shape} must have the same shape")
    return np.stack([t & p, (1 - t) & p, t & (1 - p), (1 - t) & (1 - p)], axis=1)


def _divide(num: np.ndarray, den: np.ndarray, empty: float) -> np.ndarray:
    """num / den, with ``empty`` where den is 0 (no warnings)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(den > 0, num / np.where(den > 0, den, 1), empty)


def scores(totals: np.ndarray) -> dict[str, np.ndarray]:
    """Per-finding and averaged scores from confusion totals (4, k), or (B, 4, k) resamples.

    Per finding (shape (k,) or (B, k)): ``precision``, ``recall``, ``f1`` (0 where undefined,
    as scikit-learn's ``zero_division=0``), ``kappa`` (Cohen's, from the 2x2 table; NaN when
    the expected agreement is 1), ``positive_rate_true``, ``positive_rate_pred`` and
    ``support`` (tp + fn). Averaged over the given findings (shape () or (B,)): ``micro_f1``
    = 2TP / (2TP + FP + FN) of the pooled totals (0 if that is 0/0) and ``macro_f1``, the
    mean of the per-finding F1 (undefined ones counting 0, as scikit-learn); both NaN when
    no findings are given (k = 0).
    """
    totals = np.asarray(totals, dtype=float)
    if totals.ndim < 2 or totals.shape[-2] != 4:
        raise ValueError(f"totals must be (4, k) or (B, 4, k), not shape {totals.shape}")
    tp, fp, fn, tn = (totals[..., i, :] for i in range(4))
    n = tp + fp + fn + tn
    true_pos, pred_pos = tp + fn, tp + fp
    # Kappa's 2x2 closed form: 2(tp.tn - fp.fn) / (p1(n - q1) + q1(n - p1)), exactly
    # (p_o - p_e) / (1 - p_e) scaled by n^2; the denominator is 0 iff p_e = 1.
    kappa_den = pred_pos * (n - true_pos) + true_pos * (n - pred_pos)
    f1 = _divide(2 * tp, 2 * tp + fp + fn, 0.0)
    sum_tp, sum_fp, sum_fn = tp.sum(axis=-1), fp.sum(axis=-1), fn.sum(axis=-1)
    k, none = totals.shape[-1], np.full(totals.shape[:-2], np.nan)  # no findings: no average
    return {
        "precision": _divide(tp, pred_pos, 0.0),
        "recall": _divide(tp, true_pos, 0.0),
        "f1": f1,
        "kappa": _divide(2 * (tp * tn - fp * fn), kappa_den, np.nan),
        "positive_rate_true": _divide(true_pos, n, np.nan),
        "positive_rate_pred": _divide(pred_pos, n, np.nan),
        "support": true_pos,
        "micro_f1": _divide(2 * sum_tp, 2 * sum_tp + sum_fp + sum_fn, 0.0) if k else none,
        "macro_f1": f1.mean(axis=-1) if k else none,
    }


def subset(totals: np.ndarray, columns: Sequence[int]) -> np.ndarray:
    """Totals of some findings only (e.g. the five most common, for F1-5), any leading dims."""
    return np.asarray(totals)[..., list(columns)]


def top_findings(
    y_reference: np.ndarray,
    names: Sequence[str],
    k: int = 5,
    exclude: Sequence[str] = ("No Finding",),
) -> list[str]:
    """The ``k`` findings most often positive in the reference labels, most frequent first.

    Ties go to the earlier name in ``names``. "No Finding" is left out by default because the
    "5 most common findings" of the report-generation literature are pathologies (on MIMIC-CXR:
    Atelectasis, Cardiomegaly, Consolidation, Edema, Pleural Effusion); an F1 that a model can
    earn by calling every study normal says little. A finding never positive in the reference
    is not listed, so fewer than ``k`` names come back when fewer than ``k`` occur.
    """
    y = _labels(y_reference, "y_reference")
    if len(names) != y.shape[1]:
        raise ValueError(f"{len(names)} names for {y.shape[1]} label columns")
    frequency = y.sum(axis=0)
    skip = set(exclude)
    ranked = sorted(
        (i for i, name in enumerate(names) if name not in skip and frequency[i] > 0),
        key=lambda i: (-frequency[i], i))
    return [names[i] for i in ranked[:k]]
