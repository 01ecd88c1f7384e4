"""Finding-label scores (metrics.classification) against scikit-learn on hand-written labels."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from sklearn.metrics import cohen_kappa_score, precision_recall_fscore_support

from metrics import classification as cl
from trial.findings import FINDINGS

# 10 cases x 5 findings. Column 3 is positive nowhere (reference or prediction): F1 0, kappa
# undefined. Column 4 is predicted positive everywhere the reference is negative and vice versa.
Y_TRUE = np.array([
    [1, 0, 1, 0, 1],
    [1, 1, 0, 0, 0],
    [0, 1, 0, 0, 1],
    [0, 0, 1, 0, 0],
    [1, 0, 0, 0, 1],
    [0, 0, 0, 0, 0],
    [1, 1, 1, 0, 0],
    [0, 0, 0, 0, 1],
    [0, 1, 0, 0, 0],
    [1, 0, 1, 0, 1],
])
Y_PRED = np.array([
    [1, 0, 0, 0, 0],
    [1, 0, 0, 0, 1],
    [1, 1, 0, 0, 0],
    [0, 0, 1, 0, 1],
    [1, 0, 1, 0, 0],
    [0, 0, 0, 0, 1],
    [0, 1, 1, 0, 1],
    [0, 0, 0, 0, 0],
    [0, 0, 1, 0, 1],
    [1, 0, 1, 0, 0],
])


def sklearn_scores(y_true: np.ndarray, y_pred: np.ndarray) -> dict[str, object]:
    """The same scores from scikit-learn (kappa per column, warnings of undefined ones off)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        p, r, f, s = precision_recall_fscore_support(y_true, y_pred, average=None,
                                                     zero_division=0)
        micro = precision_recall_fscore_support(y_true, y_pred, average="micro",
                                                zero_division=0)[2]
        macro = precision_recall_fscore_support(y_true, y_pred, average="macro",
                                                zero_division=0)[2]
        kappa = [cohen_kappa_score(y_true[:, j], y_pred[:, j]) for j in range(y_true.shape[1])]
    return {"precision": p, "recall": r, "f1": f, "support": s, "kappa": np.array(kappa),
            "micro_f1": micro, "macro_f1": macro}


def assert_matches_sklearn(ours: dict[str, np.ndarray], y_true: np.ndarray,
                           y_pred: np.ndarray) -> None:
    expected = sklearn_scores(y_true, y_pred)
    for key in ("precision", "recall", "f1", "support", "kappa"):
        np.testing.assert_allclose(ours[key], expected[key], rtol=0, atol=1e-12, err_msg=key)
    assert ours["micro_f1"] == pytest.approx(expected["micro_f1"], abs=1e-12)
    assert ours["macro_f1"] == pytest.approx(expected["macro_f1"], abs=1e-12)


def test_counts_are_one_hot_per_case_and_finding() -> None:
    x = cl.counts(Y_TRUE, Y_PRED)
    assert x.shape == (10, 4, 5)
    np.testing.assert_array_equal(x.sum(axis=1), np.ones((10, 5)))
    # Case 0, finding 2: reference 1, prediction 0 -> a false negative.
    assert x[0, :, 2].tolist() == [0, 0, 1, 0]
    assert cl.CELLS == ("tp", "fp", "fn", "tn")


def test_scores_equal_sklearn() -> None:
    totals = cl.counts(Y_TRUE, Y_PRED).sum(axis=0)
    ours = cl.scores(totals)
    assert_matches_sklearn(ours, Y_TRUE, Y_PRED)
    # The finding positive nowhere: F1 0 (zero_division=0), kappa undefined (NaN) in both.
    assert ours["f1"][3] == 0 and np.isnan(ours["kappa"][3])
    assert np.isnan(sklearn_scores(Y_TRUE, Y_PRED)["kappa"][3])
    # Positive rates by hand: column 0 has 5 of 10 reference and 5 of 10 predicted positives.
    assert ours["positive_rate_true"][0] == 0.5 and ours["positive_rate_pred"][0] == 0.5
    np.testing.assert_allclose(ours["positive_rate_true"], Y_TRUE.mean(axis=0))
    np.testing.assert_allclose(ours["positive_rate_pred"], Y_PRED.mean(axis=0))


def test_kappa_edge_cases_equal_sklearn() -> None:
    # Reference all negative but some predicted positive: kappa is defined (0) in both.
    y_true = np.array([[0], [0], [0], [0]])
    y_pred = np.array([[0], [1], [0], [0]])
    totals = cl.counts(y_true, y_pred).sum(axis=0)
    assert cl.scores(totals)["kappa"][0] == pytest.approx(cohen_kappa_score(y_true[:, 0],
                                                                            y_pred[:, 0]))
    # All positive in both: perfect agreement, but expected agreement 1 -> NaN.
    both = np.ones((4, 1), dtype=int)
    assert np.isnan(cl.scores(cl.counts(both, both).sum(axis=0))["kappa"][0])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert np.isnan(cohen_kappa_score(both[:, 0], both[:, 0]))
    # Perfect disagreement.
    flip = cl.scores(cl.counts(Y_TRUE[:, :1], 1 - Y_TRUE[:, :1]).sum(axis=0))
    assert flip["kappa"][0] == pytest.approx(-1.0) and flip["f1"][0] == 0.0


def test_micro_and_macro_over_a_subset_of_findings() -> None:
    totals = cl.counts(Y_TRUE, Y_PRED).sum(axis=0)
    columns = [0, 2, 4]
    ours = cl.scores(cl.subset(totals, columns))
    assert_matches_sklearn(ours, Y_TRUE[:, columns], Y_PRED[:, columns])
    # Micro F1 by hand: TP 4 + 3 + 0 = 7; FP 1 + 2 + 5 = 8; FN 1 + 1 + 5 = 7 -> 14 / 29.
    assert ours["micro_f1"] == pytest.approx(14 / 29, abs=1e-15)


def test_all_empty_totals_score_zero() -> None:
    nothing = np.zeros((6, 3), dtype=int)
    ours = cl.scores(cl.counts(nothing, nothing).sum(axis=0))
    assert ours["micro_f1"] == 0 and ours["macro_f1"] == 0
    assert np.isnan(ours["kappa"]).all()
    assert_matches_sklearn(ours, nothing, nothing)


def test_weighted_totals_equal_explicitly_resampled_labels() -> None:
    rng = np.random.default_rng(3)
    x = cl.counts(Y_TRUE, Y_PRED)
    weights = rng.multinomial(10, np.full(10, 0.1), size=25)
    batch = cl.scores(np.einsum("bn,nck->bck", weights, x))
    assert batch["f1"].shape == (25, 5) and batch["micro_f1"].shape == (25,)
    for b in range(25):
        index = np.repeat(np.arange(10), weights[b])
        expected = sklearn_scores(Y_TRUE[index], Y_PRED[index])
        for key in ("precision", "recall", "f1", "support", "kappa"):
            np.testing.assert_allclose(batch[key][b], expected[key], rtol=0, atol=1e-12,
                                       err_msg=f"{key} resample {b}")
        assert batch["micro_f1"][b] == pytest.approx(expected["micro_f1"], abs=1e-12)
        assert batch["macro_f1"][b] == pytest.approx(expected["macro_f1"], abs=1e-12)
        single = cl.scores(np.tensordot(weights[b], x, axes=1))  # one resample, (4, k)
        np.testing.assert_allclose(single["f1"], batch["f1"][b])


def test_subset_keeps_leading_dims() -> None:
    totals = np.arange(2 * 4 * 14).reshape(2, 4, 14)
    assert cl.subset(totals, [1, 5, 7]).shape == (2, 4, 3)
    np.testing.assert_array_equal(cl.subset(totals, [5])[..., 0], totals[..., 5])
    # No findings at all (e.g. none occurs in the reference): no average, not 0.
    empty = cl.scores(cl.subset(totals, []))
    assert empty["f1"].shape == (2, 0) and np.isnan(empty["micro_f1"]).all()
    assert empty["macro_f1"].shape == (2,) and np.isnan(empty["macro_f1"]).all()


def test_top_findings_breaks_ties_by_name_order_and_skips_no_finding() -> None:
    names = list(FINDINGS)
    y = np.zeros((20, 14), dtype=int)
    frequency = {"No Finding": 12, "Cardiomegaly": 6, "Edema": 4, "Atelectasis": 6,
                 "Pleural Effusion": 9, "Consolidation": 4, "Pneumonia": 4, "Fracture": 1}
    for name, count in frequency.items():
        y[:count, names.index(name)] = 1
    # Pleural Effusion 9; Cardiomegaly and Atelectasis tie at 6 (Cardiomegaly comes first in
    # FINDINGS); Edema, Consolidation, Pneumonia tie at 4 (Edema, then Consolidation).
    assert cl.top_findings(y, names) == ["Pleural Effusion", "Cardiomegaly", "Atelectasis",
                                         "Edema", "Consolidation"]
    assert cl.top_findings(y, names, k=2, exclude=()) == ["No Finding", "Pleural Effusion"]
    # Findings never positive are not padded in.
    assert cl.top_findings(y[:, :3], names[:3], k=5) == ["Cardiomegaly"]


def test_bad_labels_are_refused() -> None:
    with pytest.raises(ValueError, match="only 0 and 1"):
        cl.counts(np.array([[1, -1]]), np.array([[1, 0]]))
    with pytest.raises(ValueError, match="same shape"):
        cl.counts(np.zeros((3, 2)), np.zeros((3, 3)))
    with pytest.raises(ValueError, match="totals"):
        cl.scores(np.zeros((3, 5)))
    with pytest.raises(ValueError, match="names"):
        cl.top_findings(np.zeros((3, 2)), ["a"])
