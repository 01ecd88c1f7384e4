"""The trial's statistics as pure functions: plain arrays or DataFrames in, small results out.

No Django here: everything takes numbers (NumPy arrays, lists, pandas objects) and returns a
frozen dataclass with self-explaining fields and ``as_dict()`` (or a tidy DataFrame), so the
same code serves the results tables, the exports and a statistician's notebook, and every
function can be checked against an independent implementation (``tests/analysis``).

Conventions, the same in every function:

* **Missing values** (NaN/None) are dropped explicitly and the count used (and dropped) is
  reported in the result; nothing is imputed.
* **Multi-rater data** (Kendall's W, Fleiss' kappa, Krippendorff's alpha, majority preference)
  is a matrix with **one row per rater and one column per item** (case or report); a long
  table converts with :func:`ratings_matrix`.
* **Errors**: a statistic that the data cannot define (too few observations, zero variance,
  one rater, every rating identical, empty input) raises :class:`StatsError` with a message
  saying why, rather than returning NaN that could be mistaken for a result.
* Tests are two-sided; confidence intervals are 95% unless ``confidence`` says otherwise.

The protocol (``PROTOCOL.md``) fixes the comparable-to-publication analysis (t-tests, one-way
ANOVA, Kendall's W with its chi-square and agreement bands, the exact paired sample size); the
mixed model with reader, case and rater effects is the clustered analysis the statistician's
remarks there call the sound primary one.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field, replace
from typing import Any, Literal

import numpy as np
import pandas as pd
from scipy import optimize, stats

__all__ = [
    "AGREEMENT_BANDS", "Anova", "Comparison", "Description", "FleissKappa", "Kappa",
    "KendallW", "KrippendorffAlpha", "MajorityPreference", "MixedModelResult",
    "ProportionCI", "ProportionComparison", "SampleSize", "StatsError", "agreement_band",
    "binomial_test", "cohens_kappa", "compare_groups", "compare_groups_from_summary",
    "compare_proportions", "describe", "fisher_exact_test", "fleiss_kappa", "kendalls_w",
    "krippendorffs_alpha", "majority_preference", "mixed_model",
    "mixed_model_statsmodels", "one_way_anova",
    "power_curve", "proportion_ci", "ratings_matrix", "sample_size", "t_test_power",
]

#: PROTOCOL.md's bands for Kendall's W: (lower bound inclusive, label).
AGREEMENT_BANDS: tuple[tuple[float, str], ...] = (
    (0.8, "very strong"), (0.6, "strong"), (0.4, "moderate"), (0.2, "fair"), (0.0, "poor"),
)
# Relative tolerance for "as likely as the observed table" in exact tests (R's and scipy's).
_EXACT_RTOL = 1 + 1e-7


class StatsError(ValueError):
    """A statistic these data cannot define; the message says which and why."""


class _Result:
    """Mixin: ``as_dict()`` for every result dataclass (JSON-friendly plain values)."""

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)  # type: ignore[call-overload]


# --------------------------------------------------------------------------------------------
# Input helpers
# --------------------------------------------------------------------------------------------

def _floats(x: Any, name: str) -> np.ndarray:
    """1-D float array with NaN where a value is missing; non-numbers are an error."""
    series = pd.Series(np.ravel(np.asarray(x, dtype=object)), dtype=object)
    try:
        arr = pd.to_numeric(series, errors="raise").to_numpy(dtype=float)
    except (TypeError, ValueError) as exc:
        raise StatsError(f"{name}: values must be numbers ({exc})") from None
    if np.isinf(arr).any():
        raise StatsError(f"{name}: infinite values are not observations")
    return arr


def _values(x: Any, name: str) -> tuple[np.ndarray, int]:
    """1-D float array without NaN, and how many missing values were dropped."""
    arr = _floats(x, name)
    keep = ~np.isnan(arr)
    return arr[keep], int((~keep).sum())


def _need(n: int, minimum: int, what: str) -> None:
    if n == 0:
        raise StatsError(f"{what}: no observations (empty input, or every value missing)")
    if n < minimum:
        raise StatsError(f"{what}: needs at least {minimum} observations, got {n}")


def _z(confidence: float) -> float:
    if not 0 < confidence < 1:
        raise StatsError(f"confidence must be between 0 and 1, got {confidence}")
    return float(stats.norm.ppf(0.5 + confidence / 2))


def _matrix(ratings: Any, name: str) -> pd.DataFrame:
    """Raters x items as a DataFrame (object values kept; None/NaN = not rated)."""
    if isinstance(ratings, pd.DataFrame):
        frame = ratings
    else:
        arr = np.asarray(ratings, dtype=object)
        if arr.ndim != 2:
            raise StatsError(f"{name}: needs a matrix, one row per rater and one column per "
                             f"item (got {arr.ndim} dimension(s))")
        frame = pd.DataFrame(arr)
    if frame.size == 0:
        raise StatsError(f"{name}: needs a non-empty matrix, one row per rater and one column "
                         "per item")
    if frame.shape[0] < 2:
        raise StatsError(f"{name}: only one rater; agreement needs at least two raters "
                         "(rows are raters, columns are items)")
    return frame


def _numeric_matrix(frame: pd.DataFrame, name: str) -> np.ndarray:
    try:
        if all(pd.api.types.is_numeric_dtype(t) for t in frame.dtypes):
            arr = frame.to_numpy(dtype=float)  # already numbers: no per-column conversion
        else:
            arr = frame.apply(pd.to_numeric, errors="raise").to_numpy(dtype=float)
    except (TypeError, ValueError) as exc:
        raise StatsError(f"{name}: ratings must be numbers ({exc})") from None
    if np.isinf(arr).any():
        raise StatsError(f"{name}: infinite ratings")
    return arr


def ratings_matrix(df: pd.DataFrame, *, rater: str = "rater", item: str | Sequence[str] = "case",
                   value: str = "value") -> pd.DataFrame:
    """Pivot a long table (one row per rating) to the raters x items matrix used here.

    Cells a rater did not rate are NaN. Two ratings of the same item by the same rater are an
    error (the pivot would have to invent an average).
    """
    items = [item] if isinstance(item, str) else list(item)
    missing = [c for c in (rater, *items, value) if c not in df.columns]
    if missing:
        raise StatsError(f"ratings_matrix: column(s) {missing} not in the table")
    if df.duplicated([rater, *items]).any():
        raise StatsError("ratings_matrix: a rater rated the same item more than once")
    return df.pivot(index=rater, columns=items, values=value)


# --------------------------------------------------------------------------------------------
# Description and comparison of means
# --------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Description(_Result):
    """n, mean, SD (n-1 denominator), median and quartiles of one variable."""

    n: int
    n_missing: int
    mean: float
    sd: float
    median: float
    q1: float
    q3: float
    iqr: float
    minimum: float
    maximum: float


def describe(x: Any) -> Description:
    """Summary of one variable: mean ± SD for the tables, median and IQR for skewed ones.

    SD = sqrt(Σ(x − x̄)² / (n − 1)) (the sample SD, as the published tables report);
    quartiles by linear interpolation between order statistics (R's default, type 7), so
    IQR = Q3 − Q1 matches R, in which the reference trial was analysed. Needs n ≥ 2 (an SD of
    one value is undefined).
    """
    v, n_missing = _values(x, "describe")
    _need(v.size, 2, "describe (the SD needs two values)")
    q1, median, q3 = np.quantile(v, [0.25, 0.5, 0.75])
    return Description(
        n=int(v.size), n_missing=n_missing, mean=float(v.mean()), sd=float(v.std(ddof=1)),
        median=float(median), q1=float(q1), q3=float(q3), iqr=float(q3 - q1),
        minimum=float(v.min()), maximum=float(v.max()),
    )


@dataclass(frozen=True)
class Comparison(_Result):
    """Difference of two means (a − b) with its CI, t-test and Cohen's d.

    ``test`` is "Student", "Welch" or "paired". For the paired test ``n_a == n_b`` is the
    number of complete pairs, the means are over those pairs and ``sd_difference`` is the SD
    of the within-pair differences (None for independent groups).
    """

    test: str
    n_a: int
    n_b: int
    mean_a: float
    mean_b: float
    sd_a: float
    sd_b: float
    difference: float
    se: float
    ci_low: float
    ci_high: float
    confidence: float
    t: float
    df: float
    p: float
    cohens_d: float
    effect_size: str
    sd_difference: float | None = None
    n_dropped: int = 0


def _t_ci(difference: float, se: float, df: float, confidence: float) -> tuple[float, float,
                                                                               float, float]:
    t = difference / se
    p = float(2 * stats.t.sf(abs(t), df))
    half = float(stats.t.ppf(0.5 + confidence / 2, df)) * se
    return t, p, difference - half, difference + half


def compare_groups_from_summary(mean_a: float, sd_a: float, n_a: int, mean_b: float,
                                sd_b: float, n_b: int, *, equal_var: bool = True,
                                confidence: float = 0.95) -> Comparison:
    """Student's or Welch's t-test from means, SDs and sizes (to check published tables).

    Difference D = x̄_a − x̄_b.
    Student (``equal_var=True``): pooled s_p² = ((n_a−1)s_a² + (n_b−1)s_b²)/(n_a+n_b−2),
    SE = s_p·sqrt(1/n_a + 1/n_b), df = n_a + n_b − 2.
    Welch: SE = sqrt(s_a²/n_a + s_b²/n_b), df = SE⁴ / ((s_a²/n_a)²/(n_a−1) + (s_b²/n_b)²/(n_b−1))
    (Welch–Satterthwaite). t = D/SE; CI = D ± t_{df, 1−α/2}·SE; P two-sided.
    Cohen's d = D / s_p with the pooled SD for both tests (d_s), so the effect size does not
    change with the choice of test.
    """
    _z(confidence)
    for n, label in ((n_a, "a"), (n_b, "b")):
        if n != int(n):
            raise StatsError(f"n_{label} must be a whole number, got {n}")
        _need(int(n), 2, f"group {label}")
    if sd_a < 0 or sd_b < 0 or not all(map(math.isfinite, (mean_a, mean_b, sd_a, sd_b))):
        raise StatsError("means must be finite and SDs finite and non-negative")
    n_a, n_b = int(n_a), int(n_b)
    va, vb = sd_a**2, sd_b**2
    pooled_var = ((n_a - 1) * va + (n_b - 1) * vb) / (n_a + n_b - 2)
    if pooled_var == 0:
        raise StatsError("both groups are constant (SD 0): the t statistic and Cohen's d are "
                         "undefined")
    difference = mean_a - mean_b
    if equal_var:
        se = math.sqrt(pooled_var * (1 / n_a + 1 / n_b))
        df = float(n_a + n_b - 2)
        test = "Student"
    else:
        wa, wb = va / n_a, vb / n_b
        se = math.sqrt(wa + wb)
        df = (wa + wb) ** 2 / (wa**2 / (n_a - 1) + wb**2 / (n_b - 1))
        test = "Welch"
    t, p, low, high = _t_ci(difference, se, df, confidence)
    return Comparison(
        test=test, n_a=n_a, n_b=n_b, mean_a=float(mean_a), mean_b=float(mean_b),
        sd_a=float(sd_a), sd_b=float(sd_b), difference=float(difference), se=se,
        ci_low=low, ci_high=high, confidence=confidence, t=t, df=df, p=p,
        cohens_d=difference / math.sqrt(pooled_var), effect_size="d_s (pooled SD)",
    )


def compare_groups(a: Any, b: Any, *, paired: bool = False, equal_var: bool = True,
                   confidence: float = 0.95) -> Comparison:
    """Difference of means a − b with its CI, t, df, P and Cohen's d.

    Independent groups: Student's (``equal_var=True``, the reference trial's test) or Welch's
    t-test, formulas in :func:`compare_groups_from_summary`; NaN dropped in each group.

    Paired (``paired=True``, each case read in both arms): d_i = a_i − b_i over complete pairs
    (a pair with either value missing is dropped and counted in ``n_dropped``);
    D = mean(d), SE = SD(d)/sqrt(n), df = n − 1, CI = D ± t_{n−1, 1−α/2}·SE. Cohen's d is
    d_z = D / SD(d), the standardised effect that drives a paired test's power (and the one
    the sample size uses); note that pingouin's ``ttest(paired=True)`` reports d_av instead.
    """
    if paired:
        va_all, vb_all = _floats(a, "a"), _floats(b, "b")
        if va_all.size != vb_all.size:
            raise StatsError(f"paired comparison needs equal lengths, got {va_all.size} and "
                             f"{vb_all.size}")
        keep = ~(np.isnan(va_all) | np.isnan(vb_all))
        va, vb = va_all[keep], vb_all[keep]
        _need(int(keep.sum()), 2, "paired comparison (pairs)")
        d = va - vb
        sd_d = float(d.std(ddof=1))
        if sd_d == 0:
            raise StatsError("every pair has the same difference (SD of differences 0): the "
                             "paired t statistic and d_z are undefined")
        n = int(d.size)
        difference = float(d.mean())
        se = sd_d / math.sqrt(n)
        t, p, low, high = _t_ci(difference, se, n - 1, confidence)
        return Comparison(
            test="paired", n_a=n, n_b=n, mean_a=float(va.mean()), mean_b=float(vb.mean()),
            sd_a=float(va.std(ddof=1)), sd_b=float(vb.std(ddof=1)), difference=difference,
            se=se, ci_low=low, ci_high=high, confidence=confidence, t=t, df=float(n - 1), p=p,
            cohens_d=difference / sd_d, effect_size="d_z (SD of the differences)",
            sd_difference=sd_d, n_dropped=int((~keep).sum()),
        )
    va, miss_a = _values(a, "a")
    vb, miss_b = _values(b, "b")
    _need(va.size, 2, "group a")
    _need(vb.size, 2, "group b")
    result = compare_groups_from_summary(
        float(va.mean()), float(va.std(ddof=1)), va.size, float(vb.mean()),
        float(vb.std(ddof=1)), vb.size, equal_var=equal_var, confidence=confidence)
    return replace(result, n_dropped=miss_a + miss_b)


# --------------------------------------------------------------------------------------------
# One-way ANOVA
# --------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Anova(_Result):
    """One-way ANOVA across k groups: F, its degrees of freedom, P and eta squared.

    ``test`` is "Fisher" (classic, equal variances) or "Welch" (unequal variances; then
    ``df_within`` is Welch's fractional denominator df). eta² = SS_between/SS_total is the
    descriptive effect size in both cases.
    """

    test: str
    k: int
    n_total: int
    group_n: tuple[int, ...]
    group_means: tuple[float, ...]
    f: float
    df_between: float
    df_within: float
    p: float
    eta_squared: float
    n_dropped: int = 0


def one_way_anova(*groups: Any, welch: bool = False) -> Anova:
    """One-way ANOVA of k ≥ 2 groups (the reference trial's test across > 2 groups).

    Classic (Fisher): SS_b = Σ n_i(x̄_i − x̄)², SS_w = Σ Σ (x_ij − x̄_i)²,
    F = (SS_b/(k−1)) / (SS_w/(N−k)), df = (k−1, N−k).

    Welch (``welch=True``, variances may differ): w_i = n_i/s_i², x̄_w = Σ w_i x̄_i / Σ w_i,
    A = Σ w_i (x̄_i − x̄_w)² / (k−1), λ = Σ (1 − w_i/Σw)² / (n_i − 1),
    F = A / (1 + 2(k−2)λ/(k²−1)), df = (k−1, (k²−1)/(3λ)). Each group then needs n ≥ 2 and a
    non-zero SD (its weight is n/s²).
    """
    if len(groups) < 2:
        raise StatsError(f"one-way ANOVA needs at least two groups, got {len(groups)}")
    values, dropped = [], 0
    for i, g in enumerate(groups):
        v, miss = _values(g, f"group {i + 1}")
        _need(v.size, 2 if welch else 1, f"group {i + 1}")
        values.append(v)
        dropped += miss
    k = len(values)
    n = np.array([v.size for v in values], dtype=float)
    means = np.array([v.mean() for v in values])
    grand = np.concatenate(values).mean()
    ss_between = float((n * (means - grand) ** 2).sum())
    ss_within = float(sum(((v - v.mean()) ** 2).sum() for v in values))
    n_total = int(n.sum())
    if n_total - k < 1:
        raise StatsError("one-way ANOVA: no within-group degrees of freedom (every group has "
                         "one value)")
    if ss_within == 0:
        raise StatsError("one-way ANOVA: every group is constant (within-group variance 0), "
                         "so F is undefined")
    eta2 = ss_between / (ss_between + ss_within)
    if welch:
        var = np.array([v.var(ddof=1) for v in values])
        if (var == 0).any():
            constant = [i + 1 for i in np.flatnonzero(var == 0)]
            raise StatsError(f"Welch ANOVA: group(s) {constant} are constant (SD 0), so their "
                             "weight n/s² is infinite")
        w = n / var
        mean_w = (w * means).sum() / w.sum()
        a = (w * (means - mean_w) ** 2).sum() / (k - 1)
        lam = ((1 - w / w.sum()) ** 2 / (n - 1)).sum()
        f = a / (1 + 2 * (k - 2) * lam / (k**2 - 1))
        df1, df2 = float(k - 1), float((k**2 - 1) / (3 * lam))
        test = "Welch"
    else:
        df1, df2 = float(k - 1), float(n_total - k)
        f = (ss_between / df1) / (ss_within / df2)
        test = "Fisher"
    return Anova(
        test=test, k=k, n_total=n_total, group_n=tuple(int(x) for x in n),
        group_means=tuple(float(x) for x in means), f=float(f), df_between=df1,
        df_within=df2, p=float(stats.f.sf(f, df1, df2)), eta_squared=eta2, n_dropped=dropped,
    )


# --------------------------------------------------------------------------------------------
# Kendall's W
# --------------------------------------------------------------------------------------------

def agreement_band(w: float) -> str:
    """PROTOCOL.md's label for Kendall's W: poor < 0.2 ≤ fair < 0.4 ≤ moderate < 0.6 ≤ strong
    < 0.8 ≤ very strong (a value on a boundary takes the higher band)."""
    if not math.isfinite(w):
        raise StatsError(f"agreement band of a non-finite W ({w})")
    for lower, label in AGREEMENT_BANDS:
        if w >= lower:
            return label
    return "poor"


@dataclass(frozen=True)
class KendallW(_Result):
    """Kendall's coefficient of concordance and its chi-square test, with the protocol's band.

    ``n_items`` is the number of items used; ``n_items_dropped`` those left out because a
    rater had not rated them.
    """

    w: float
    chi2: float
    df: int
    p: float
    band: str
    n_raters: int
    n_items: int
    n_items_dropped: int
    tie_corrected: bool


def kendalls_w(ratings: Any, *, tie_correction: bool = True,
               missing: Literal["drop", "raise"] = "drop") -> KendallW:
    """Kendall's W for m raters (rows) rating n items (columns), as the reference trial did.

    Each rater's ratings are ranked across the items (average ranks for ties); R_i is item
    i's rank sum over raters, S = Σ (R_i − R̄)² with R̄ = m(n+1)/2.

    Tie-corrected (the default here, as in pingouin and SPSS; R's ``irr::kendall`` needs
    ``correct=TRUE`` for it, its default being uncorrected, so say which a comparison with a
    published W used). Likert scores are full of ties:
    W = 12 S / (m²(n³ − n) − m Σ_j T_j), T_j = Σ (t³ − t) over the groups of t tied ratings
    of rater j. Uncorrected (``tie_correction=False``): W = 12 S / (m²(n³ − n)), which cannot
    reach 1 when raters tie.

    Test: χ² = m(n − 1) W on n − 1 df (this equals Friedman's tie-corrected statistic with
    the raters as blocks).

    Missing ratings: W's rank sums assume every rater ranks the same items, so an item that
    any rater skipped is dropped (complete items only) and counted in ``n_items_dropped``;
    ``missing="raise"`` refuses incomplete data instead. A rater who rated nothing drops
    every item; remove such a rater first.

    Raises :class:`StatsError` for one rater, fewer than two complete items, or when every
    rater gave every item the same rating: there is then no ranking to agree on and W is
    undefined (0/0), not 0 or 1.
    """
    if missing not in ("drop", "raise"):
        raise StatsError(f"missing must be 'drop' or 'raise', got {missing!r}")
    frame = _matrix(ratings, "Kendall's W")
    x = _numeric_matrix(frame, "Kendall's W")
    m = x.shape[0]
    complete = ~np.isnan(x).any(axis=0)
    dropped = int((~complete).sum())
    if dropped and missing == "raise":
        raise StatsError(f"Kendall's W: {dropped} item(s) not rated by every rater")
    x = x[:, complete]
    n = x.shape[1]
    if n < 2:
        raise StatsError(f"Kendall's W needs at least two items rated by every rater; "
                         f"{n} left after dropping {dropped} incomplete item(s)")
    if (x == x[:, :1]).all():
        raise StatsError("Kendall's W is undefined: every rater gave every item the same "
                         "rating, so there is no ranking to agree on")
    ranks = stats.rankdata(x, axis=1)
    rank_sums = ranks.sum(axis=0)
    s = float(((rank_sums - rank_sums.mean()) ** 2).sum())
    denominator = m**2 * (n**3 - n)
    if tie_correction:
        ties = 0.0
        for row in x:
            _, counts = np.unique(row, return_counts=True)
            ties += float((counts**3 - counts).sum())
        denominator -= m * ties
    w = 12 * s / denominator
    chi2 = m * (n - 1) * w
    return KendallW(
        w=w, chi2=chi2, df=n - 1, p=float(stats.chi2.sf(chi2, n - 1)), band=agreement_band(w),
        n_raters=m, n_items=n, n_items_dropped=dropped, tie_corrected=tie_correction,
    )


# --------------------------------------------------------------------------------------------
# Kappas and Krippendorff's alpha
# --------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Kappa(_Result):
    """Cohen's kappa (unweighted or weighted) with its large-sample SE, CI and z-test.

    ``observed_agreement`` and ``expected_agreement`` are the (weighted) p_o and p_e;
    ``z``/``p`` test κ = 0 with the SE under that null; they are None when that SE is 0
    (one rater used a single category: κ is then exactly 0 and there is nothing to test).
    The SE is the large-sample one; with perfect agreement it is 0 and the CI collapses
    to [1, 1], as in statsmodels and SAS.
    """

    kappa: float
    se: float
    ci_low: float
    ci_high: float
    confidence: float
    z: float | None
    p: float | None
    n: int
    n_dropped: int
    categories: tuple[Any, ...]
    weights: str
    observed_agreement: float
    expected_agreement: float


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float | np.integer | np.floating) and not isinstance(
        value, bool)


def cohens_kappa(a: Any, b: Any, *, weights: Literal["linear", "quadratic"] | None = None,
                 categories: Sequence[Any] | None = None,
                 confidence: float = 0.95) -> Kappa:
    """Cohen's kappa between two raters (e.g. model labels vs the gold standard).

    From the k×k table of proportions p_ij (rows a, columns b; margins p_i., p_.j) and
    agreement weights w_ij: p_o = Σ w_ij p_ij, p_e = Σ w_ij p_i. p_.j,
    κ = (p_o − p_e)/(1 − p_e).
    Unweighted: w = identity. Weighted (ordinal scores), with the category scores c_i:
    linear w_ij = 1 − |c_i − c_j|/(c_max − c_min), quadratic w_ij = 1 − (c_i − c_j)²/(c_max −
    c_min)². Scores are the category values when they are numbers, else their positions in
    ``categories`` (which weighted kappa on text labels requires); for a Likert scale with
    every point used this is the same as sklearn's and statsmodels' position weights.

    ``categories`` fixes the scale (e.g. 1..5 even if no one used 2); by default the sorted
    values seen. Pairs with either value missing are dropped (``n_dropped``).

    SE (Fleiss, Cohen & Everitt 1969), with w̄_i. = Σ_j p_.j w_ij, w̄_.j = Σ_i p_i. w_ij:
    Var(κ) = [Σ p_ij (w_ij − (w̄_i. + w̄_.j)(1 − κ))² − (κ − p_e(1 − κ))²] / (n(1 − p_e)²);
    under κ = 0: Var₀ = [Σ p_i. p_.j (w_ij − (w̄_i. + w̄_.j))² − p_e²] / (n(1 − p_e)²).
    CI = κ ± z·SE; z = κ/SE₀. Undefined (error) when p_e = 1, e.g. both raters used one
    category only.
    """
    sa = pd.Series(np.ravel(np.asarray(a, dtype=object)))
    sb = pd.Series(np.ravel(np.asarray(b, dtype=object)))
    if len(sa) != len(sb):
        raise StatsError(f"Cohen's kappa: the raters have {len(sa)} and {len(sb)} ratings; "
                         "they must rate the same items")
    keep = ~(sa.isna() | sb.isna()).to_numpy()
    sa, sb = sa[keep].tolist(), sb[keep].tolist()
    n = len(sa)
    _need(n, 2, "Cohen's kappa (items rated by both raters)")
    seen = set(sa) | set(sb)
    if categories is None:
        try:
            cats = sorted(seen)
        except TypeError:
            raise StatsError("Cohen's kappa: labels of mixed types; pass categories=") from None
    else:
        cats = list(categories)
        unknown = seen - set(cats)
        if unknown:
            raise StatsError(f"Cohen's kappa: value(s) {sorted(map(str, unknown))} not in "
                             "categories")
    k = len(cats)
    index = {c: i for i, c in enumerate(cats)}
    table = np.zeros((k, k))
    np.add.at(table, ([index[v] for v in sa], [index[v] for v in sb]), 1)
    p = table / n
    if weights is None:
        w = np.eye(k)
    else:
        if weights not in ("linear", "quadratic"):
            raise StatsError(f"weights must be None, 'linear' or 'quadratic', got {weights!r}")
        if k < 2:
            raise StatsError("weighted kappa needs at least two categories")
        if categories is None and not all(_is_number(c) for c in cats):
            raise StatsError("weighted kappa on text labels needs their order: pass categories=")
        scores = np.array(cats if all(_is_number(c) for c in cats) else range(k), dtype=float)
        dist = np.abs(scores[:, None] - scores[None, :]) / (scores.max() - scores.min())
        w = 1 - (dist if weights == "linear" else dist**2)
    row, col = p.sum(axis=1), p.sum(axis=0)
    p_o = float((w * p).sum())
    p_e = float((w * np.outer(row, col)).sum())
    if math.isclose(p_e, 1.0, rel_tol=0, abs_tol=1e-12):
        raise StatsError("Cohen's kappa is undefined: chance agreement is 1 (both raters used "
                         "a single category)")
    kappa = (p_o - p_e) / (1 - p_e)
    w_row = w @ col  # w̄_i.
    w_col = row @ w  # w̄_.j
    spread = w_row[:, None] + w_col[None, :]
    var = ((p * (w - spread * (1 - kappa)) ** 2).sum()
           - (kappa - p_e * (1 - kappa)) ** 2) / (n * (1 - p_e) ** 2)
    var0 = ((np.outer(row, col) * (w - spread) ** 2).sum() - p_e**2) / (n * (1 - p_e) ** 2)
    se = math.sqrt(max(float(var), 0.0))
    se0 = math.sqrt(max(float(var0), 0.0))
    zc = _z(confidence)
    z = kappa / se0 if se0 > 0 else None
    return Kappa(
        kappa=kappa, se=se, ci_low=kappa - zc * se, ci_high=kappa + zc * se,
        confidence=confidence, z=z, p=None if z is None else float(2 * stats.norm.sf(abs(z))),
        n=n, n_dropped=int((~keep).sum()), categories=tuple(cats),
        weights=weights or "none", observed_agreement=p_o, expected_agreement=p_e,
    )


def _category_counts(frame: pd.DataFrame, categories: Sequence[Any] | None,
                     name: str) -> tuple[np.ndarray, list[Any]]:
    """Items x categories count table from a raters x items matrix (NaN = not rated)."""
    values = frame.to_numpy(dtype=object)
    rated = ~pd.isna(values)
    seen = set(values[rated].tolist())
    if categories is None:
        try:
            cats = sorted(seen)
        except TypeError:
            raise StatsError(f"{name}: labels of mixed types; pass categories=") from None
    else:
        cats = list(categories)
        unknown = seen - set(cats)
        if unknown:
            raise StatsError(f"{name}: value(s) {sorted(map(str, unknown))} not in categories")
    index = {c: i for i, c in enumerate(cats)}
    counts = np.zeros((values.shape[1], len(cats)))
    rater_idx, item_idx = np.nonzero(rated)
    np.add.at(counts, (item_idx, [index[v] for v in values[rater_idx, item_idx]]), 1)
    return counts, cats


@dataclass(frozen=True)
class FleissKappa(_Result):
    """Fleiss' kappa for m raters assigning n items to categories."""

    kappa: float
    n_raters: int
    n_items: int
    n_items_dropped: int
    n_categories: int
    categories: tuple[Any, ...]
    observed_agreement: float
    expected_agreement: float


def fleiss_kappa(ratings: Any, *, categories: Sequence[Any] | None = None) -> FleissKappa:
    """Fleiss' kappa (1971): chance-corrected agreement of m raters on nominal categories.

    With n_ij the number of raters putting item i in category j (m per item, N items):
    P_i = (Σ_j n_ij² − m)/(m(m − 1)), P̄ = mean P_i, p_j = Σ_i n_ij/(N m), P_e = Σ p_j²,
    κ = (P̄ − P_e)/(1 − P_e).

    The formula needs the same m raters for every item, so items with a missing rating are
    dropped (``n_items_dropped``; Krippendorff's alpha is the measure that uses them).
    Undefined (error) if every rating is the same category (P_e = 1).
    """
    frame = _matrix(ratings, "Fleiss' kappa")
    complete = ~frame.isna().any(axis=0).to_numpy()
    dropped = int((~complete).sum())
    frame = frame.loc[:, complete]
    if frame.shape[1] == 0:
        raise StatsError("Fleiss' kappa: no item rated by every rater")
    counts, cats = _category_counts(frame, categories, "Fleiss' kappa")
    m, n_items = frame.shape
    p_i = ((counts**2).sum(axis=1) - m) / (m * (m - 1))
    p_bar = float(p_i.mean())
    p_j = counts.sum(axis=0) / (n_items * m)
    p_e = float((p_j**2).sum())
    if math.isclose(p_e, 1.0, rel_tol=0, abs_tol=1e-12):
        raise StatsError("Fleiss' kappa is undefined: every rating is the same category")
    return FleissKappa(
        kappa=(p_bar - p_e) / (1 - p_e), n_raters=m, n_items=n_items, n_items_dropped=dropped,
        n_categories=len(cats), categories=tuple(cats), observed_agreement=p_bar,
        expected_agreement=p_e,
    )


@dataclass(frozen=True)
class KrippendorffAlpha(_Result):
    """Krippendorff's alpha. ``n_items`` counts items with ≥ 2 ratings (pairable);
    ``n_items_unpairable`` those with fewer, which carry no information on agreement;
    ``n_values`` is the number of pairable ratings (Krippendorff's n)."""

    alpha: float
    level: str
    n_raters: int
    n_items: int
    n_items_unpairable: int
    n_values: int
    observed_disagreement: float
    expected_disagreement: float


def krippendorffs_alpha(ratings: Any, *,
                        level: Literal["ordinal", "nominal", "interval", "ratio"] = "ordinal",
                        categories: Sequence[Any] | None = None) -> KrippendorffAlpha:
    """Krippendorff's alpha for m raters (rows) and n items (columns), missing ratings allowed.

    Coincidence matrix (Krippendorff 2011): every item u with m_u ≥ 2 ratings contributes,
    for each ordered pair of its ratings by different raters, 1/(m_u − 1) to o_ck;
    n_c = Σ_k o_ck, n = Σ_c n_c. Then α = 1 − D_o/D_e with
    D_o = Σ_ck o_ck δ²_ck / n and D_e = Σ_ck n_c n_k δ²_ck / (n(n − 1)).

    Metric δ²: nominal 1[c ≠ k]; ordinal (the default, for Likert and RADPEER scores)
    (Σ_{g=c..k} n_g − (n_c + n_k)/2)², which uses only the order of the values; interval
    (c − k)²; ratio ((c − k)/(c + k))². Unlike Kendall's W and Fleiss' kappa it uses items
    with missing ratings (any item with ≥ 2 ratings). For ordinal text labels, pass their
    order in ``categories``.

    Raises :class:`StatsError` for one rater, no item with two ratings, or when all pairable
    values are identical (D_e = 0: alpha undefined).
    """
    if level not in ("ordinal", "nominal", "interval", "ratio"):
        raise StatsError(f"level must be ordinal, nominal, interval or ratio, got {level!r}")
    frame = _matrix(ratings, "Krippendorff's alpha")
    counts, cats = _category_counts(frame, categories, "Krippendorff's alpha")
    per_item = counts.sum(axis=1)
    pairable = per_item >= 2
    if not pairable.any():
        raise StatsError("Krippendorff's alpha: no item was rated by two raters")
    c = counts[pairable]
    weight = 1 / (per_item[pairable] - 1)
    o = (c * weight[:, None]).T @ c - np.diag((c * weight[:, None]).sum(axis=0))
    n_c = o.sum(axis=1)
    n = float(n_c.sum())
    if level == "nominal":
        delta2 = 1 - np.eye(len(cats))
    elif level == "ordinal":
        if categories is None and not all(_is_number(x) for x in cats):
            raise StatsError("ordinal alpha on text labels needs their order: pass categories=")
        cum = np.cumsum(n_c)
        idx = np.arange(len(cats))
        lo, hi = np.minimum.outer(idx, idx), np.maximum.outer(idx, idx)
        between = cum[hi] - cum[lo] + n_c[lo]  # Σ_{g = lo..hi} n_g
        delta2 = (between - (n_c[:, None] + n_c[None, :]) / 2) ** 2
    else:
        if not all(_is_number(x) for x in cats):
            raise StatsError(f"{level} alpha needs numeric ratings")
        v = np.asarray(cats, dtype=float)
        diff = v[:, None] - v[None, :]
        if level == "interval":
            delta2 = diff**2
        else:
            total = v[:, None] + v[None, :]
            with np.errstate(invalid="ignore", divide="ignore"):
                delta2 = np.where(total == 0, 0.0, (diff / total) ** 2)
    d_o = float((o * delta2).sum()) / n
    d_e = float((np.outer(n_c, n_c) * delta2).sum()) / (n * (n - 1))
    if d_e <= 0:
        raise StatsError("Krippendorff's alpha is undefined: every pairable rating has the "
                         "same value (no expected disagreement)")
    return KrippendorffAlpha(
        alpha=1 - d_o / d_e, level=level, n_raters=frame.shape[0], n_items=int(pairable.sum()),
        n_items_unpairable=int((~pairable).sum()), n_values=int(round(n)),
        observed_disagreement=d_o, expected_disagreement=d_e,
    )


# --------------------------------------------------------------------------------------------
# Proportions
# --------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class ProportionCI(_Result):
    """A proportion x/n with its Wilson score interval."""

    successes: int
    n: int
    proportion: float
    ci_low: float
    ci_high: float
    confidence: float
    method: str = "Wilson score"


def _counts(x: Any, n: Any, what: str) -> tuple[int, int]:
    if x != int(x) or n != int(n):
        raise StatsError(f"{what}: counts must be whole numbers, got {x}/{n}")
    x, n = int(x), int(n)
    if n <= 0:
        raise StatsError(f"{what}: no observations (n = {n})")
    if not 0 <= x <= n:
        raise StatsError(f"{what}: successes {x} outside 0..{n}")
    return x, n


def _wilson(x: int, n: int, z: float) -> tuple[float, float]:
    p = x / n
    denom = 1 + z**2 / n
    centre = (p + z**2 / (2 * n)) / denom
    half = z / denom * math.sqrt(p * (1 - p) / n + z**2 / (4 * n**2))
    low = 0.0 if x == 0 else max(0.0, centre - half)
    high = 1.0 if x == n else min(1.0, centre + half)
    return low, high


def proportion_ci(successes: int, n: int, *, confidence: float = 0.95) -> ProportionCI:
    """Proportion p = x/n with the Wilson score interval.

    CI = [p + z²/(2n) ± z·sqrt(p(1 − p)/n + z²/(4n²))] / (1 + z²/n). Chosen over the Wald
    interval p ± z·sqrt(p(1−p)/n) because it keeps its coverage near 0 and 1 and never leaves
    [0, 1] (shares such as "preferred by ≥ 3 of 5 raters" or rare findings' positive rates).
    """
    x, n = _counts(successes, n, "proportion")
    low, high = _wilson(x, n, _z(confidence))
    return ProportionCI(successes=x, n=n, proportion=x / n, ci_low=low, ci_high=high,
                        confidence=confidence)


def binomial_test(successes: int, n: int, p0: float = 0.5) -> float:
    """Exact two-sided binomial P: Σ P(X = k) over every k no more likely than the observed.

    X ~ Bin(n, p0); the outcomes counted are those with P(X = k) ≤ P(X = x)·(1 + 10⁻⁷) (the
    relative tolerance R's ``binom.test`` uses so that equally likely outcomes are not lost
    to rounding).
    """
    x, n = _counts(successes, n, "binomial test")
    if not 0 < p0 < 1:
        raise StatsError(f"binomial test: p0 must be between 0 and 1, got {p0}")
    pmf = stats.binom.pmf(np.arange(n + 1), n, p0)
    return float(min(1.0, pmf[pmf <= pmf[x] * _EXACT_RTOL].sum()))


@dataclass(frozen=True)
class MajorityPreference(_Result):
    """Share of cases where ≥ ``threshold`` raters preferred A, and the tests of it.

    The per-case fields are the analysis: one outcome per case. A case is "A preferred" when
    at least ``threshold`` raters picked A, "B preferred" when at least ``threshold`` picked B,
    and a tie (``n_ties``: no majority either way, as 2 of 4) otherwise; a tie counts for
    neither. ``share`` (and ``share_b``) is over every case, ties included, with its Wilson CI;
    ``p`` is the sign test: the exact binomial test of the A-preferred cases out of the cases
    with a majority either way (``n_decided``; ties left out) against ``p0``. The ``vote_*``
    fields pool every rater's vote as if independent; they ignore that votes on a case (and by
    a rater) are correlated and overstate precision (``vote_note`` says so wherever they are
    shown).
    """

    n_cases: int
    n_raters: int
    threshold: int
    n_cases_dropped: int
    n_cases_preferred: int
    share: float
    ci_low: float
    ci_high: float
    confidence: float
    p0: float
    p: float | None
    votes_a: int
    votes_total: int
    vote_share: float
    vote_ci_low: float
    vote_ci_high: float
    vote_p: float
    n_cases_preferred_b: int = 0
    n_ties: int = 0
    n_decided: int = 0
    share_b: float = 0.0
    ci_b_low: float = 0.0
    ci_b_high: float = 0.0
    p_note: str = ""
    vote_note: str = ("pooled votes treated as independent: ignores clustering within cases "
                      "and raters, so its CI is too narrow and P too small")


def majority_preference(votes: Any, *, threshold: int | None = None, p0: float = 0.5,
                        confidence: float = 0.95) -> MajorityPreference:
    """Pairwise preference: share of cases preferred by a majority of at least ``threshold``.

    ``votes`` is raters x cases with 1 (or True) = the rater preferred A, 0 = preferred B,
    NaN = no vote. For each case a_c raters prefer A and b_c = m − a_c prefer B; the case
    counts as "A preferred" when a_c ≥ threshold (the reference trial: ≥ 3 of 5), "B
    preferred" when b_c ≥ threshold, and as a tie otherwise (with an even panel, m/2 each).
    ``threshold`` must be a strict majority (more than m/2, so a case cannot count for both);
    the default is m // 2 + 1. Ties count for neither report.

    Share = #A-preferred / N (every case, ties included) with the Wilson CI
    (:func:`proportion_ci`), and the same for B. P is the sign test on the per-case majorities:
    the exact binomial test (:func:`binomial_test`) of the A-preferred cases out of the cases
    preferred either way (ties left out, as the sign test drops zero differences) against
    ``p0``; None when every case is a tie. With m odd and threshold (m + 1)/2 there are no
    ties, every case has a majority one way or the other, and this is the binomial test of the
    share against ``p0``.

    "≥ 3 of 5" is defined for a full panel, so cases with a missing vote are dropped
    (``n_cases_dropped``). Also reported, labelled: the pooled-vote share and binomial test
    (Σ votes for A out of all votes), which ignores clustering.
    """
    frame = _matrix(votes, "majority preference")
    x = _numeric_matrix(frame.astype(object).map(
        lambda v: float(v) if isinstance(v, bool | np.bool_) else v), "majority preference")
    observed = x[~np.isnan(x)]
    if not np.isin(observed, (0.0, 1.0)).all():
        raise StatsError("majority preference: votes must be 1 (A preferred), 0 (B preferred) "
                         "or missing")
    m = x.shape[0]
    if threshold is None:
        threshold = m // 2 + 1
    if not m / 2 < threshold <= m:
        raise StatsError(f"threshold must be a strict majority of the {m} raters (more than "
                         f"{m / 2:g}, at most {m}), got {threshold}")
    complete = ~np.isnan(x).any(axis=0)
    x = x[:, complete]
    n_cases = x.shape[1]
    _need(n_cases, 1, "majority preference (cases with every rater's vote)")
    a_votes = x.sum(axis=0)
    b_votes = m - a_votes
    preferred = int((a_votes >= threshold).sum())
    preferred_b = int((b_votes >= threshold).sum())
    decided = preferred + preferred_b
    z = _z(confidence)
    low, high = _wilson(preferred, n_cases, z)
    b_low, b_high = _wilson(preferred_b, n_cases, z)
    votes_a, votes_total = int(a_votes.sum()), int(x.size)
    v_low, v_high = _wilson(votes_a, votes_total, z)
    return MajorityPreference(
        n_cases=n_cases, n_raters=m, threshold=threshold,
        n_cases_dropped=int((~complete).sum()), n_cases_preferred=preferred,
        share=preferred / n_cases, ci_low=low, ci_high=high, confidence=confidence, p0=p0,
        p=binomial_test(preferred, decided, p0) if decided else None,
        votes_a=votes_a, votes_total=votes_total,
        vote_share=votes_a / votes_total, vote_ci_low=v_low, vote_ci_high=v_high,
        vote_p=binomial_test(votes_a, votes_total, p0),
        n_cases_preferred_b=preferred_b, n_ties=n_cases - decided, n_decided=decided,
        share_b=preferred_b / n_cases, ci_b_low=b_low, ci_b_high=b_high,
        p_note=("" if decided else "every case is a tie: no case has a majority either way, "
                "so the sign test is undefined"),
    )


def fisher_exact_test(table: Any) -> float:
    """Fisher's exact test of a 2×2 table, two-sided.

    Given the margins, the top-left cell X is hypergeometric; P = Σ P(X = k) over every k no
    more likely than the observed (scipy's ``fisher_exact``, with a relative tolerance as R's
    ``fisher.test``).
    """
    t = np.asarray(table, dtype=float)
    if t.shape != (2, 2) or (t < 0).any() or (t != np.round(t)).any():
        raise StatsError("Fisher's exact test needs a 2x2 table of non-negative counts")
    t = t.astype(int)
    if int(t.sum()) == 0:
        raise StatsError("Fisher's exact test: empty table")
    # scipy's implementation (the same definition) is far faster than summing the pmf here
    return float(stats.fisher_exact(t, alternative="two-sided").pvalue)


@dataclass(frozen=True)
class ProportionComparison(_Result):
    """Two proportions (e.g. a finding's positive rate per arm): difference, CI and tests.

    ``chi2*`` fields are None when a margin of the table is zero (no successes or no failures
    at all, so expected counts of zero); ``notes`` then says so. ``min_expected`` is the
    smallest expected count, for the usual "use Fisher below 5" judgement.
    """

    x_a: int
    n_a: int
    x_b: int
    n_b: int
    p_a: float
    p_b: float
    difference: float
    ci_low: float
    ci_high: float
    confidence: float
    ci_method: str
    chi2: float | None
    chi2_p: float | None
    chi2_corrected: float | None
    chi2_corrected_p: float | None
    fisher_p: float
    min_expected: float
    notes: tuple[str, ...] = field(default_factory=tuple)


def compare_proportions(x_a: int, n_a: int, x_b: int, n_b: int, *,
                        confidence: float = 0.95) -> ProportionComparison:
    """Compare x_a/n_a with x_b/n_b: difference p_a − p_b with CI, chi-square and Fisher.

    Difference CI: Newcombe's hybrid score interval (1998, method 10), built from the two
    Wilson intervals [l_a, u_a], [l_b, u_b]:
    L = D − sqrt((p_a − l_a)² + (u_b − p_b)²), U = D + sqrt((u_a − p_a)² + (p_b − l_b)²).
    Chosen over Wald (D ± z·sqrt(p_a q_a/n_a + p_b q_b/n_b)) for its coverage with small
    counts and rates near 0 or 1.

    Pearson χ² on the 2×2 table (1 df): Σ (O − E)²/E with E = row total × column total / N;
    with Yates' continuity correction: Σ (max(0, |O − E| − 0.5))²/E (R's ``chisq.test`` and
    scipy's rule, which never corrects past E). Fisher's exact test: :func:`fisher_exact_test`.
    """
    x_a, n_a = _counts(x_a, n_a, "group a")
    x_b, n_b = _counts(x_b, n_b, "group b")
    z = _z(confidence)
    p_a, p_b = x_a / n_a, x_b / n_b
    la, ua = _wilson(x_a, n_a, z)
    lb, ub = _wilson(x_b, n_b, z)
    d = p_a - p_b
    low = d - math.sqrt((p_a - la) ** 2 + (ub - p_b) ** 2)
    high = d + math.sqrt((ua - p_a) ** 2 + (p_b - lb) ** 2)
    table = np.array([[x_a, n_a - x_a], [x_b, n_b - x_b]], dtype=float)
    expected = np.outer(table.sum(axis=1), table.sum(axis=0)) / table.sum()
    notes: list[str] = []
    chi2 = chi2_p = chi2_c = chi2_c_p = None
    if (expected == 0).any():
        notes.append("chi-square undefined: no successes or no failures in either group "
                     "(an expected count is 0); see Fisher's exact test")
    else:
        dev = np.abs(table - expected)
        chi2 = float((dev**2 / expected).sum())
        chi2_c = float((np.maximum(0.0, dev - 0.5) ** 2 / expected).sum())
        chi2_p = float(stats.chi2.sf(chi2, 1))
        chi2_c_p = float(stats.chi2.sf(chi2_c, 1))
        if expected.min() < 5:
            notes.append("an expected count is below 5: prefer Fisher's exact test")
    return ProportionComparison(
        x_a=x_a, n_a=n_a, x_b=x_b, n_b=n_b, p_a=p_a, p_b=p_b, difference=d,
        ci_low=max(-1.0, low), ci_high=min(1.0, high), confidence=confidence,
        ci_method="Newcombe hybrid score (method 10)", chi2=chi2, chi2_p=chi2_p,
        chi2_corrected=chi2_c, chi2_corrected_p=chi2_c_p, fisher_p=fisher_exact_test(table),
        min_expected=float(expected.min()), notes=tuple(notes),
    )


# --------------------------------------------------------------------------------------------
# Sample size and power
# --------------------------------------------------------------------------------------------

Design = Literal["paired", "independent"]


def _check_design(design: str) -> None:
    if design not in ("paired", "independent"):
        raise StatsError(f"design must be 'paired' or 'independent', got {design!r}")


def _effect(delta: float, sd: float) -> float:
    if not (math.isfinite(delta) and math.isfinite(sd)) or sd <= 0:
        raise StatsError(f"sd must be a positive number and delta finite (got delta={delta}, "
                         f"sd={sd})")
    if delta == 0:
        raise StatsError("delta is 0: no sample size detects a zero difference")
    return abs(delta) / sd


def _power(n: Any, d: float, alpha: float, design: str) -> np.ndarray:
    n = np.asarray(n, dtype=float)
    if design == "paired":
        df, ncp = n - 1, d * np.sqrt(n)
    else:
        df, ncp = 2 * n - 2, d * np.sqrt(n / 2)
    crit = stats.t.ppf(1 - alpha / 2, df)
    return stats.nct.sf(crit, df, ncp) + stats.nct.cdf(-crit, df, ncp)


def t_test_power(n: Any, delta: float, sd: float, *, alpha: float = 0.05,
                 design: Design = "paired") -> np.ndarray | float:
    """Exact power of the two-sided t-test with n pairs (paired) or n per group (independent).

    With d = |δ|/σ and T ~ noncentral t(df, λ):
    paired (one-sample t on the differences, σ = SD of the differences): df = n − 1,
    λ = d·sqrt(n); independent (σ = the common SD, n per group): df = 2n − 2, λ = d·sqrt(n/2).
    Power = P(T > t_{df, 1−α/2}) + P(T < −t_{df, 1−α/2}).
    """
    _check_design(design)
    if not 0 < alpha < 1:
        raise StatsError(f"alpha must be between 0 and 1, got {alpha}")
    n_arr = np.asarray(n, dtype=float)
    if (n_arr < 2).any():
        raise StatsError("power needs n ≥ 2 (pairs or per group)")
    result = _power(n_arr, _effect(delta, sd), alpha, design)
    return float(result) if np.ndim(result) == 0 else result


@dataclass(frozen=True)
class SampleSize(_Result):
    """Required sample size for a two-sided t-test, before and after dropout.

    ``n_exact`` is the continuous solution of power(n) = target (188.39 for the reference
    trial), ``n_evaluable`` the smallest whole n reaching the target (189), ``n_required``
    what to recruit, n_evaluable/(1 − dropout) rounded up (270). ``unit`` says what n
    counts: "pairs" (cases read in both arms) or "cases per group"; ``n_total`` is the total
    number of subjects to recruit (2 × n_required for independent groups).
    """

    design: str
    unit: str
    delta: float
    sd: float
    effect_size: float
    alpha: float
    power: float
    dropout: float
    n_exact: float
    n_evaluable: int
    achieved_power: float
    n_required: int
    n_total: int


def sample_size(delta: float, sd: float, *, alpha: float = 0.05, power: float = 0.9,
                dropout: float = 0.0, design: Design = "paired") -> SampleSize:
    """Smallest n whose exact t-test power (:func:`t_test_power`) reaches ``power``.

    Exact, not the normal approximation n = ((z_{1−α/2} + z_{1−β})·σ/δ)² (+ z²/2), which
    gives 267-268 in the reference trial instead of the protocol's 270: the t distribution's
    heavier tails need a few more cases. Procedure: solve power(n) = target for real n
    (``n_exact``, Brent's method), take the smallest whole n with power ≥ target
    (``n_evaluable``), then inflate for dropout: n_required = ⌈n_evaluable / (1 − dropout)⌉
    (the quotient is rounded to 9 decimals first, so 189/0.7 = 270 exactly is not pushed to
    271 by binary floating point). Reference inputs (δ 0.207, SD of the differences 0.872,
    α 0.05, power 0.90, 30% dropout, paired) give 188.39 → 189 → 270.
    """
    _check_design(design)
    d = _effect(delta, sd)
    if not 0 < alpha < 1:
        raise StatsError(f"alpha must be between 0 and 1, got {alpha}")
    if not alpha < power < 1:
        raise StatsError(f"power must be between alpha ({alpha}) and 1, got {power}")
    if not 0 <= dropout < 1:
        raise StatsError(f"dropout must be in [0, 1), got {dropout}")

    def gap(n: float) -> float:
        return float(_power(n, d, alpha, design)) - power

    low = 2.0
    if gap(low) >= 0:
        n_exact = low
    else:
        z = stats.norm.ppf(1 - alpha / 2) + stats.norm.ppf(power)
        high = max(4.0, (2 if design == "independent" else 1) * (z / d) ** 2 * 2 + 10)
        while gap(high) < 0:
            high *= 2
        n_exact = float(optimize.brentq(gap, low, high, xtol=1e-12, rtol=1e-14))
    n_evaluable = max(2, math.ceil(n_exact))
    while n_evaluable > 2 and gap(n_evaluable - 1) >= 0:
        n_evaluable -= 1
    while gap(n_evaluable) < 0:
        n_evaluable += 1
    n_required = math.ceil(round(n_evaluable / (1 - dropout), 9))
    return SampleSize(
        design=design, unit="pairs" if design == "paired" else "cases per group", delta=delta,
        sd=sd, effect_size=d, alpha=alpha, power=power, dropout=dropout, n_exact=n_exact,
        n_evaluable=n_evaluable, achieved_power=float(_power(n_evaluable, d, alpha, design)),
        n_required=n_required,
        n_total=n_required if design == "paired" else 2 * n_required,
    )


def power_curve(delta: float, sd: float, n: Iterable[int] | None = None, *,
                alpha: float = 0.05, design: Design = "paired") -> pd.DataFrame:
    """Tidy power curve: one row per n with columns ``n``, ``power``, ``design``.

    Power from :func:`t_test_power`. By default about 60 values of n from 2 to twice the
    n needed for 90% power, enough for a smooth plot.
    """
    _check_design(design)
    if n is None:
        top = sample_size(delta, sd, alpha=alpha, power=0.9, design=design).n_evaluable
        grid = np.unique(np.linspace(2, max(10, 2 * top), 60).round().astype(int))
    else:
        grid = np.asarray(list(n), dtype=int)
        if grid.size == 0:
            raise StatsError("power_curve: no values of n given")
    return pd.DataFrame({
        "n": grid,
        "power": np.atleast_1d(t_test_power(grid, delta, sd, alpha=alpha, design=design)),
        "design": design,
    })


# --------------------------------------------------------------------------------------------
# Mixed model
# --------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class MixedModelResult(_Result):
    """The arm effect from a linear mixed model with crossed random effects.

    ``effect`` = mean(level) − mean(reference) adjusted for reader, case and rater effects;
    ``variance_components`` maps each random factor used to its variance,
    ``residual_variance`` is σ²; ``notes`` lists dropped factors and fitting warnings.
    """

    outcome: str
    arm: str
    level: str
    reference: str
    effect: float
    se: float
    ci_low: float
    ci_high: float
    confidence: float
    z: float
    p: float
    variance_components: dict[str, float]
    residual_variance: float
    n_levels: dict[str, int]
    n_obs: int
    n_dropped: int
    converged: bool
    method: str
    formula: str
    notes: tuple[str, ...] = field(default_factory=tuple)


@dataclass(frozen=True)
class _MixedData:
    """The rows and codes both mixed-model fitters use, checked the same way."""

    y: np.ndarray
    treat: np.ndarray
    data: pd.DataFrame
    used: list[str]
    codes: list[np.ndarray]
    n_levels: dict[str, int]
    n_dropped: int
    level: Any
    reference: Any
    notes: list[str]


def _mixed_data(df: pd.DataFrame, outcome: str, arm: str, groups: Sequence[str],
                reference: Any) -> _MixedData:
    """Complete rows, the two arms, the grouping factors with two levels or more (or why not)."""
    groups = list(groups)
    missing_cols = [c for c in (outcome, arm, *groups) if c not in df.columns]
    if missing_cols:
        raise StatsError(f"mixed model: column(s) {missing_cols} not in the data")
    data = df[[outcome, arm, *groups]].copy()
    try:
        data[outcome] = pd.to_numeric(data[outcome], errors="raise").astype(float)
    except (TypeError, ValueError):
        raise StatsError(f"mixed model: outcome {outcome!r} must be numeric") from None
    complete = data.notna().all(axis=1)
    data = data[complete]
    arms = sorted(data[arm].unique(), key=str)
    if len(arms) != 2:
        raise StatsError(f"mixed model: {arm!r} needs exactly two levels, found {len(arms)}: "
                         f"{arms}")
    if reference is None:
        reference = arms[0]
    if reference not in arms:
        raise StatsError(f"mixed model: reference {reference!r} is not a level of {arm!r} "
                         f"({arms})")
    level = arms[1] if reference == arms[0] else arms[0]
    notes: list[str] = []
    factorized = {g: pd.factorize(data[g])[0] for g in dict.fromkeys(groups)}
    n_levels = {g: int(factorized[g].max(initial=-1)) + 1 for g in groups}
    used = []
    for g in groups:
        if n_levels[g] < 2:
            notes.append(f"random effect {g!r} dropped: only one level")
        else:
            used.append(g)
    _need(len(data), 3, "mixed model (complete rows)")
    if not used:
        raise StatsError("mixed model: no grouping factor has two levels; use compare_groups")
    y = data[outcome].to_numpy(float)
    if y.std() == 0:
        raise StatsError(f"mixed model: {outcome!r} is constant; no variance to model")
    return _MixedData(y=y, treat=(data[arm] == level).to_numpy(float), data=data, used=used,
                      codes=[factorized[g] for g in used], n_levels=n_levels,
                      n_dropped=int((~complete).sum()), level=level, reference=reference,
                      notes=notes)


def _mixed_result(prepared: _MixedData, outcome: str, arm: str, confidence: float,
                  effect: float, se: float, components: dict[str, float], residual: float,
                  converged: bool, method: str) -> MixedModelResult:
    if not (math.isfinite(effect) and math.isfinite(se) and se > 0):
        raise StatsError("mixed model: the arm effect's standard error could not be estimated "
                         "(singular fit); check that both arms have several readers")
    zc = _z(confidence)
    z = effect / se
    used = prepared.used
    return MixedModelResult(
        outcome=outcome, arm=arm, level=str(prepared.level), reference=str(prepared.reference),
        effect=effect, se=se, ci_low=effect - zc * se, ci_high=effect + zc * se,
        confidence=confidence, z=z, p=float(2 * stats.norm.sf(abs(z))),
        variance_components={g: components[g] for g in used}, residual_variance=residual,
        n_levels=prepared.n_levels, n_obs=len(prepared.y), n_dropped=prepared.n_dropped,
        converged=converged, method=method,
        formula=(f"{outcome} ~ {arm} + " + " + ".join(f"(1|{g})" for g in used)),
        notes=tuple(prepared.notes),
    )


def mixed_model(df: pd.DataFrame, outcome: str, *, arm: str = "arm",
                groups: Sequence[str] = ("reader", "case", "rater"),
                reference: Any = None, confidence: float = 0.95) -> MixedModelResult:
    """Arm effect from y = β₀ + β·[arm = level] + u_reader + u_case + u_rater + ε (REML).

    Each random factor is a variance component, u_g ~ N(0, σ²_g) independently, ε ~ N(0, σ²).
    The factors are crossed (every case is read in both arms and rated by every rater). This
    respects the clustering that the t-test ignores: readers are nested in arms, so the arm
    effect is judged against reader-to-reader variation; ratings of one case or by one rater
    are correlated. Wald z = β/SE with SE from σ̂²·(X'(V/σ²)⁻¹X)⁻¹ at the REML estimate,
    CI = β ± z·SE (normal), as statsmodels reports.

    Fitted by :func:`analysis.mixed.fit_reml` (REML profiled over σ² and β, the variance
    ratios optimised with an analytic gradient, the case factor eliminated analytically):
    the model of statsmodels' crossed-effects formulation (:func:`mixed_model_statsmodels`,
    kept as the reference), in milliseconds instead of seconds and linear in the number of
    ratings. It is solved to a gradient of ~1e-10, so it differs from statsmodels' default
    L-BFGS by that fit's own imprecision (~1e-5 on the SE; far more when a variance is 0,
    where statsmodels stalls); with statsmodels tightened they agree to ~1e-10. A variance
    component estimated on the boundary is reported as exactly 0 with a note; ``converged``
    is False (with a note) unless the optimiser stopped normally at a vanishing gradient.

    ``reference`` is the baseline arm (default: the first in sorted order); ``effect`` is the
    other arm minus it. Rows with a missing outcome, arm or grouping value are dropped
    (``n_dropped``). A missing column or an arm without exactly two levels is an error; a
    grouping factor with a single level carries no variance and is dropped with a note.
    """
    from analysis.mixed import REMLError, fit_reml

    _z(confidence)
    prepared = _mixed_data(df, outcome, arm, groups, reference)
    X = np.column_stack([np.ones(len(prepared.y)), prepared.treat])
    try:
        fit = fit_reml(prepared.y, X, prepared.codes)
    except REMLError as exc:
        raise StatsError(f"mixed model: it could not be fitted ({exc})") from None
    components = {g: float(v) for g, v in zip(prepared.used, fit.variances, strict=True)}
    for g, v in components.items():
        if v == 0:
            prepared.notes.append(f"variance of {g!r} estimated at 0 (boundary of the "
                                  "parameter space)")
    if not fit.converged:
        prepared.notes.append(f"REML optimisation did not converge ({fit.message}; gradient "
                              f"{np.array2string(fit.gradient, precision=3)})")
    return _mixed_result(prepared, outcome, arm, confidence, float(fit.beta[1]),
                         float(math.sqrt(fit.cov_beta[1, 1])) if fit.cov_beta[1, 1] > 0
                         else math.nan, components, float(fit.residual_variance),
                         bool(fit.converged), "REML")


def mixed_model_statsmodels(df: pd.DataFrame, outcome: str, *, arm: str = "arm",
                            groups: Sequence[str] = ("reader", "case", "rater"),
                            reference: Any = None, confidence: float = 0.95,
                            **fit_kwargs: Any) -> MixedModelResult:
    """:func:`mixed_model` fitted by statsmodels MixedLM: the reference for tests and benchmarks.

    The crossed factors are fitted the way statsmodels documents for crossed effects: one
    all-encompassing group with a variance component per factor,
    ``mixedlm("y ~ C(arm)", df, groups=np.ones(n), vc_formula={"reader": "0 + C(reader)",
    ...})``, REML, L-BFGS (``fit_kwargs`` go to ``MixedLM.fit``, e.g. a tighter ``method``).
    Seconds at the trial's size (it works with the n x n covariance of the single group).
    """
    import statsmodels.formula.api as smf
    from statsmodels.tools.sm_exceptions import ConvergenceWarning

    _z(confidence)
    prepared = _mixed_data(df, outcome, arm, groups, reference)
    used = prepared.used
    model_data = pd.DataFrame({
        "_y": prepared.y,
        "_treat": prepared.treat,
        **{f"_g{i}": prepared.data[g].astype(str).to_numpy() for i, g in enumerate(used)},
    })
    vc = {f"_g{i}": f"0 + C(_g{i})" for i in range(len(used))}
    fit_kwargs = {"method": "lbfgs", **fit_kwargs}
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ConvergenceWarning)
        model = smf.mixedlm("_y ~ _treat", model_data, groups=np.ones(len(model_data)),
                            vc_formula=vc)
        try:
            # L-BFGS: on data where a variance is near zero (few readers or raters) statsmodels'
            # default BFGS took 3x longer here and stopped at a lower REML likelihood.
            fit = model.fit(reml=True, **fit_kwargs)
        except (np.linalg.LinAlgError, ValueError) as exc:
            raise StatsError(f"mixed model: statsmodels could not fit it ({exc})") from None
    for w in caught:
        if issubclass(w.category, ConvergenceWarning):
            prepared.notes.append(f"statsmodels: {w.message}")
    names = {f"_g{i}": g for i, g in enumerate(used)}
    components = {names[name]: float(v) for name, v in zip(model.exog_vc.names, fit.vcomp,
                                                           strict=True)}
    return _mixed_result(prepared, outcome, arm, confidence, float(fit.fe_params["_treat"]),
                         float(fit.bse_fe["_treat"]), components, float(fit.scale),
                         bool(fit.converged), "REML (statsmodels MixedLM)")
