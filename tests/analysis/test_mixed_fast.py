"""The fast REML fitter (``analysis.mixed``, behind ``stats.mixed_model``) against statsmodels.

Agreement is to 1e-4 (absolute) on the arm effect, its SE, every variance component and the
residual variance, with the statsmodels fit of the code this replaced
(:func:`analysis.stats.mixed_model_statsmodels`) as the reference. Where statsmodels is the
less precise of the two the reference is tightened, and the test says so:

* statsmodels' default L-BFGS stops early: on interior optima it is typically 1e-5 off (its
  stopping rule is on the likelihood per observation); that still meets 1e-4.
* On the boundary (a variance truly 0) its L-BFGS and BFGS stall 0.005-0.04 away, sometimes
  reporting convergence; derivative-free Powell gets within 1e-4, so the boundary test uses
  ``method="powell"``.
* At the trial's size (297 cases) one statsmodels fit takes 5-10 s, so the trial-shaped test
  starts statsmodels at the fast estimate and checks that statsmodels' own REML score is 0
  there and its optimiser stays (to 1e-6); full statsmodels fits are on smaller designs.

The hand-checkable cases are balanced one-factor designs, where REML equals the ANOVA
(mean-square) estimates in closed form.
"""

from __future__ import annotations

import contextlib
import math
import warnings
from collections.abc import Iterator

import numpy as np
import pandas as pd
import pytest
import statsmodels.formula.api as smf

from analysis import mixed as M
from analysis import stats as S
from analysis.stats import StatsError

TOL = 1e-4
SD = {"reader": 0.15, "case": 0.5, "rater": 0.2, "resid": 0.45}


@pytest.fixture(autouse=True)
def one_blas_thread() -> Iterator[None]:
    """statsmodels' fits with one BLAS thread: on a busy machine OpenBLAS' threads made them
    3-5x slower (analysis.mixed limits itself the same way)."""
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:  # pragma: no cover
        limit: contextlib.AbstractContextManager = contextlib.nullcontext()
    else:
        limit = threadpool_limits(1, user_api="blas")
    with limit:
        yield


def simulate(rng: np.random.Generator, cases: int, *, readers_per_arm: int = 3,
             raters: int = 5, sd: dict[str, float] | None = None,
             effect: float = 0.25) -> pd.DataFrame:
    """The trial's shape: every case read once per arm (readers nested in arms, in turn) and
    every report rated by every rater; random reader, case and rater effects with SDs ``sd``."""
    sd = {**SD, **(sd or {})}
    readers = {"AI": [f"r{i}" for i in range(readers_per_arm)],
               "SCP": [f"r{i + readers_per_arm}" for i in range(readers_per_arm)]}
    reader_u = {r: rng.normal(0, sd["reader"]) for rs in readers.values() for r in rs}
    rater_u = rng.normal(0, sd["rater"], raters)
    case_u = rng.normal(0, sd["case"], cases)
    parts = []
    for arm, names in readers.items():
        reader = np.array(names)[np.arange(cases) % readers_per_arm]
        base = 4 + effect * (arm == "AI") + case_u + np.array([reader_u[r] for r in reader])
        for e in range(raters):
            parts.append(pd.DataFrame({
                "case": [f"c{c}" for c in range(cases)], "arm": arm, "reader": reader,
                "rater": f"e{e}", "y": base + rater_u[e] + rng.normal(0, sd["resid"], cases)}))
    return pd.concat(parts, ignore_index=True)


def statsmodels_fit(df: pd.DataFrame, **fit_kwargs) -> S.MixedModelResult:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return S.mixed_model_statsmodels(df, "y", reference="SCP", **fit_kwargs)


def differences(fast: S.MixedModelResult, ref: S.MixedModelResult) -> dict[str, float]:
    assert fast.variance_components.keys() == ref.variance_components.keys()
    assert (fast.level, fast.reference, fast.n_obs, fast.n_dropped, fast.n_levels) == (
        ref.level, ref.reference, ref.n_obs, ref.n_dropped, ref.n_levels)
    out = {"effect": abs(fast.effect - ref.effect), "se": abs(fast.se - ref.se),
           "residual": abs(fast.residual_variance - ref.residual_variance)}
    out.update({g: abs(v - ref.variance_components[g])
                for g, v in fast.variance_components.items()})
    return out


def assert_agree(fast: S.MixedModelResult, ref: S.MixedModelResult, tol: float = TOL) -> None:
    diff = differences(fast, ref)
    assert max(diff.values()) <= tol, diff


# ------------------------------------------------------------------------ against statsmodels

def test_trial_shaped_design_is_statsmodels_optimum():
    """297 cases x 2 arms x 5 raters, 6 readers: statsmodels' own REML score vanishes at the
    fast estimate and its optimiser, started there, stays (one fit from scratch takes 5-10 s
    here: see the small-design test for that)."""
    df = simulate(np.random.default_rng(5), 297)
    fast = S.mixed_model(df, "y", reference="SCP")
    assert fast.converged and fast.n_obs == 2970 and fast.method == "REML"
    assert fast.n_levels == {"reader": 6, "case": 297, "rater": 5}
    data = df.assign(treat=(df["arm"] == "AI").astype(float))
    model = smf.mixedlm("y ~ treat", data, groups=np.ones(len(data)),
                        vc_formula={g: f"0 + C({g})" for g in ("reader", "case", "rater")})
    # statsmodels' parameters: the square roots of the variance ratios, names sorted
    start = np.array([math.sqrt(fast.variance_components[g] / fast.residual_variance)
                      for g in model.exog_vc.names])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fit = model.fit(reml=True, method="lbfgs", start_params=start)
    score = model.score(start, profile_fe=True)
    assert np.max(np.abs(score)) < 1e-6, score  # d(REML log-likelihood) at the fast estimate
    assert abs(fit.fe_params["treat"] - fast.effect) < 1e-6
    assert abs(fit.bse_fe["treat"] - fast.se) < 1e-6
    assert abs(fit.scale - fast.residual_variance) < 1e-6
    for name, v in zip(model.exog_vc.names, fit.vcomp, strict=True):
        assert abs(v - fast.variance_components[name]) < 1e-6


def test_small_trial_agrees_with_a_full_statsmodels_fit():
    df = simulate(np.random.default_rng(11), 60)
    fast = S.mixed_model(df, "y", reference="SCP")
    assert fast.converged and all(v > 0 for v in fast.variance_components.values())
    assert_agree(fast, statsmodels_fit(df))  # the replaced code: default L-BFGS
    # statsmodels tightened (BFGS to a gradient of 1e-9): the same optimum to ~1e-10
    assert_agree(fast, statsmodels_fit(df, method="bfgs", gtol=1e-9), tol=1e-8)


def test_unbalanced_data_with_missing_rows():
    rng = np.random.default_rng(3)
    df = simulate(rng, 70)
    df = df.sample(frac=0.85, random_state=4).reset_index(drop=True)  # ratings missing
    df["reader"] = np.where((df["arm"] == "SCP") & (df["case"].str.len() == 2), "r5",
                            df["reader"])  # one reader reads more than the others
    df.loc[rng.choice(len(df), 12, replace=False), "y"] = np.nan
    df.loc[[3, 8], "rater"] = None
    fast = S.mixed_model(df, "y", reference="SCP")
    ref = statsmodels_fit(df)
    assert fast.n_dropped == 14 and fast.converged
    assert_agree(fast, ref)


@pytest.mark.parametrize("seed, zero", [(1, ("reader", "rater")), (2, ("reader",))])
def test_variance_component_on_the_boundary(seed, zero):
    """Components truly 0: reported as exactly 0 with a note. The reference is statsmodels with
    Powell: its L-BFGS (the replaced code's) stops 0.005-0.03 away here."""
    sd = {"reader": 0.0, "rater": 0.0 if "rater" in zero else 0.2}
    df = simulate(np.random.default_rng(seed), 60, sd=sd)
    fast = S.mixed_model(df, "y", reference="SCP")
    assert fast.converged
    for g in zero:
        assert fast.variance_components[g] == 0.0
        assert any(f"{g!r} estimated at 0" in note for note in fast.notes)
    assert_agree(fast, statsmodels_fit(df, method="powell"))


def test_two_factors_only():
    df = simulate(np.random.default_rng(7), 40)
    for groups in (("case", "rater"), ("reader", "case")):
        fast = S.mixed_model(df, "y", groups=groups, reference="SCP")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            ref = S.mixed_model_statsmodels(df, "y", groups=groups, reference="SCP")
        assert list(fast.variance_components) == list(groups)
        assert fast.formula == f"y ~ arm + (1|{groups[0]}) + (1|{groups[1]})"
        assert_agree(fast, ref)


def test_single_level_factor_is_dropped_with_a_note():
    df = simulate(np.random.default_rng(8), 40).assign(site="H1")
    groups = ("reader", "case", "rater", "site")
    fast = S.mixed_model(df, "y", groups=groups, reference="SCP")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ref = S.mixed_model_statsmodels(df, "y", groups=groups, reference="SCP")
    assert "site" not in fast.variance_components and fast.n_levels["site"] == 1
    assert any("'site' dropped" in note for note in fast.notes)
    assert_agree(fast, ref)


# ----------------------------------------------------------------------------- by hand (ANOVA)

@pytest.mark.parametrize("noise", [0.5, 1e-3])
def test_one_factor_crossed_with_arm_matches_anova_by_hand(noise):
    """Every case rated J times in each arm, one random factor (case): REML = ANOVA.

    σ̂² = MS_residual of the additive case + arm fit (df N − a − 1), σ̂²_case =
    (MS_case − MS_residual)/(2J); the case effects cancel in the arm difference, so
    effect = ȳ_AI − ȳ_SCP with SE² = σ̂²·2/(aJ). With ``noise`` 1e-3 the variance ratio is
    ~5e5: the optimiser's scaling has to cope.
    """
    rng = np.random.default_rng(21)
    a, J = 12, 3
    case = np.repeat(np.arange(a), 2 * J)
    arm = np.tile(np.repeat(["AI", "SCP"], J), a)
    y = (3 + 0.4 * (arm == "AI") + rng.normal(0, 0.7, a)[case]
         + rng.normal(0, noise, 2 * a * J))
    df = pd.DataFrame({"case": case, "arm": arm, "y": y})
    N = len(y)
    case_mean = df.groupby("case")["y"].transform("mean")
    arm_mean = df.groupby("arm")["y"].transform("mean")
    resid = y - case_mean - arm_mean + y.mean()
    ms_res = float(resid @ resid) / (N - a - 1)
    ms_case = 2 * J * float(((df.groupby("case")["y"].mean() - y.mean()) ** 2).sum()) / (a - 1)
    means = df.groupby("arm")["y"].mean()
    r = S.mixed_model(df, "y", groups=("case",), reference="SCP")
    assert r.converged and ms_case > ms_res
    assert r.effect == pytest.approx(means["AI"] - means["SCP"], abs=1e-12)
    assert r.residual_variance == pytest.approx(ms_res, rel=1e-9)
    assert r.variance_components["case"] == pytest.approx((ms_case - ms_res) / (2 * J), rel=1e-7)
    assert r.se == pytest.approx(math.sqrt(ms_res * 2 / (a * J)), rel=1e-9)


def test_readers_nested_in_arms_match_anova_by_hand():
    """k readers per arm, n ratings each, one random factor (reader): the nested ANOVA.

    σ̂² = MS_within, σ̂²_reader = (MS_between − MS_within)/n with MS_between over readers
    within arms (df 2(k − 1)); effect = difference of the arm means, SE² = 2·MS_between/(k n).
    """
    rng = np.random.default_rng(22)
    k, n = 4, 10
    reader = np.repeat(np.arange(2 * k), n)
    arm = np.where(reader < k, "AI", "SCP")
    y = 4 + 0.3 * (arm == "AI") + rng.normal(0, 0.4, 2 * k)[reader] + rng.normal(0, 0.5, 2 * k * n)
    df = pd.DataFrame({"reader": reader, "arm": arm, "y": y})
    reader_mean = df.groupby("reader")["y"].transform("mean")
    arm_mean = df.groupby("arm")["y"].transform("mean")
    ms_within = float(((y - reader_mean) ** 2).sum()) / (2 * k * (n - 1))
    ms_between = n * float(((reader_mean - arm_mean) ** 2).sum()) / n / (2 * (k - 1))
    means = df.groupby("arm")["y"].mean()
    r = S.mixed_model(df, "y", groups=("reader",), reference="SCP")
    assert r.converged and ms_between > ms_within
    assert r.effect == pytest.approx(means["AI"] - means["SCP"], abs=1e-12)
    assert r.residual_variance == pytest.approx(ms_within, rel=1e-9)
    assert r.variance_components["reader"] == pytest.approx((ms_between - ms_within) / n,
                                                            rel=1e-7)
    assert r.se == pytest.approx(math.sqrt(2 * ms_between / (k * n)), rel=1e-8)


# ------------------------------------------------------------------------------- the fitter

def _problem(df: pd.DataFrame) -> tuple[np.ndarray, np.ndarray, list[np.ndarray]]:
    y = df["y"].to_numpy(float)
    X = np.column_stack([np.ones(len(y)), (df["arm"] == "AI").to_numpy(float)])
    return y, X, [df[g].to_numpy() for g in ("reader", "case", "rater")]


@pytest.mark.parametrize("theta", [[0.3, 1.2, 0.1], [0.0, 1.2, 0.0], [2.0, 0.0, 0.5]])
def test_analytic_gradient_matches_differences(theta):
    y, X, codes = _problem(simulate(np.random.default_rng(9), 25).sample(frac=0.9,
                                                                         random_state=1))
    problem = M._Problem(y, X, codes)
    theta = np.array(theta)
    grad = problem.evaluate(theta)["grad"]
    for g in range(3):
        h = 1e-6
        up, down = theta.copy(), theta.copy()
        up[g] += h
        if theta[g] > 0:  # central difference; one-sided at the boundary
            down[g] -= h
            numeric = (problem.evaluate(up)["dev"] - problem.evaluate(down)["dev"]) / (2 * h)
            assert grad[g] == pytest.approx(numeric, rel=1e-5, abs=1e-5)
        else:
            numeric = (problem.evaluate(up)["dev"] - problem.evaluate(theta)["dev"]) / h
            assert grad[g] == pytest.approx(numeric, rel=1e-3, abs=1e-3)


def test_sparse_and_unpatterned_paths_agree(monkeypatch):
    df = simulate(np.random.default_rng(10), 40).sample(frac=0.9, random_state=2)
    y, X, codes = _problem(df)
    base = M.fit_reml(y, X, codes)
    monkeypatch.setattr(M, "_patterns", lambda rows: None)
    dense = M.fit_reml(y, X, codes)
    monkeypatch.setattr(M, "_DENSE_ENTRIES", 0)
    sparse = M.fit_reml(y, X, codes)
    for other in (dense, sparse):
        assert other.converged
        np.testing.assert_allclose(other.theta, base.theta, rtol=1e-8, atol=1e-10)
        np.testing.assert_allclose(other.cov_beta, base.cov_beta, rtol=1e-8)
        np.testing.assert_allclose(other.beta, base.beta, rtol=1e-10)


def test_converged_is_honest():
    y, X, codes = _problem(simulate(np.random.default_rng(12), 30))
    assert M.fit_reml(y, X, codes).converged
    assert not M.fit_reml(y, X, codes, maxiter=1).converged


def test_fitter_rejects_what_it_cannot_fit():
    y, X, codes = _problem(simulate(np.random.default_rng(13), 10))
    with pytest.raises(M.REMLError, match="rank deficient"):
        M.fit_reml(y, np.column_stack([X, X[:, 1]]), codes)
    with pytest.raises(M.REMLError, match="finite"):
        M.fit_reml(np.where(np.arange(len(y)) == 0, np.nan, y), X, codes)
    with pytest.raises(M.REMLError, match="at least one grouping factor"):
        M.fit_reml(y, X, [])


# ----------------------------------------------------------------------------------- errors

@pytest.mark.parametrize("change, kwargs, message", [
    (lambda d: d.drop(columns="rater"), {}, "not in the data"),
    (lambda d: d.assign(arm=np.where(d.index % 3 == 0, "X", d["arm"])), {},
     "exactly two levels"),
    (lambda d: d.assign(y="good"), {}, "numeric"),
    (lambda d: d.assign(y=3.0), {}, "constant"),
    (lambda d: d, {"reference": "placebo"}, "not a level"),
    (lambda d: d, {"groups": ("site",)}, "no grouping factor has two levels"),
    (lambda d: d.iloc[[0, 50]], {}, "needs at least 3 observations"),
    (lambda d: d.assign(y=np.nan), {}, "exactly two levels"),
    (lambda d: d, {"confidence": 1.5}, "confidence"),
])
def test_errors_as_before(change, kwargs, message):
    df = change(simulate(np.random.default_rng(14), 10).assign(site="H1"))
    for fitter in (S.mixed_model, S.mixed_model_statsmodels):
        with pytest.raises(StatsError, match=message):
            fitter(df, "y", **kwargs)
