"""Fast REML for linear mixed models with crossed random intercepts (variance components).

The model is y = Xβ + Σ_g Z_g u_g + ε with u_g ~ N(0, σ²θ_g I) independently per factor g and
ε ~ N(0, σ²I): one random intercept per level of each grouping factor, the factors crossed or
nested in any pattern (the trial's readers, cases and raters). It is what statsmodels fits with
``mixedlm(..., groups=np.ones(n), vc_formula=...)``, but statsmodels builds the covariance
matrix of one all-encompassing group (n x n in effect), which takes seconds at a few thousand
ratings and is out of reach at a few hundred thousand. Here the fit costs one pass over the
rows plus a small dense problem per likelihood evaluation:

* **Profiled REML.** σ² and β are profiled out, so the optimiser only sees the variance ratios
  θ_g = σ²_g/σ² (one per factor, bounded below by 0, so a component can be estimated as
  exactly 0 on the boundary). With Z̃ = Z·Λ^½ and Λ = diag(θ), the REML deviance is
  log|C| + (n − p)·log(PWRSS), where C = [[Z̃'Z̃ + I, Z̃'X], [X'Z̃, X'X]] is the matrix of
  Henderson's mixed-model equations in the scaled (lme4) form and PWRSS = y'Py the penalised
  residual sum of squares; log|C| = log|V/σ²| + log|X'(V/σ²)⁻¹X|. It has an analytic gradient,
  ∂/∂θ_g = tr(Z_g'PZ_g) − (n − p)·‖Z_g'Py‖²/PWRSS, computed without dividing by θ_g, so it is
  exact on the boundary too. L-BFGS-B (bounds θ ≥ 0, each ratio scaled by its natural size
  and restarted at the scale of its result) finds the optimum and a few Newton steps on the
  free ratios (Hessian by differences of the analytic gradient) polish it to near machine
  precision: the gradient at the estimate is ~1e-10, where statsmodels' L-BFGS stops at
  ~1e-3 and, with a variance on the boundary, can stall far from the optimum.
* **Cross-products once.** Everything C needs is a cross-product of the one-hot factor codes,
  X and y, accumulated once with ``np.bincount``; a likelihood evaluation never touches the
  rows again.
* **The largest factor eliminated analytically.** Each observation has exactly one level of a
  factor, so that factor's block of Z'Z is diagonal (its level counts); a Schur complement
  removes it in O(its levels) and leaves a dense matrix of the other factors' levels plus the
  fixed effects (11 + 2 in the trial) to factorise. Per evaluation the cost is linear in the
  number of cases whatever their number. The other factors may have any number of levels; the
  dense matrix grows with them (a design with two large factors works, only slower, up to
  ``_MAX_DENSE`` levels), and the cross-products with the eliminated factor switch to sparse
  storage when they would be large. When the eliminated factor's levels fall into a few
  patterns (in a balanced trial every case is read by one of three reader pairs and rated by
  all raters) its Schur complement is summed over the patterns, not the levels.

The fixed effects' covariance is σ̂²·(X'(V/σ²)⁻¹X)⁻¹ at the REML estimate, the block of C⁻¹
(what statsmodels reports as ``bse_fe``). Pure NumPy/SciPy, no Django; BLAS is held to one
thread during a fit (see :func:`_one_blas_thread`).
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
from scipy import linalg, optimize, sparse

__all__ = ["REMLError", "REMLFit", "fit_reml", "reml_deviance"]

# Cross-products with the eliminated factor are kept dense up to this many entries.
_DENSE_ENTRIES = 20_000_000
# Levels outside the eliminated factor (plus fixed effects) factorised densely, at most.
_MAX_DENSE = 4000
# Convergence: the projected gradient of the deviance times each ratio's natural size
# (Problem.scale) below this, in deviance units (after the Newton polish it is ~1e-10).
_GRADIENT_TOL = 1e-5


class REMLError(ValueError):
    """The model cannot be fitted to these data (the message says why)."""


@dataclass(frozen=True)
class REMLFit:
    """A REML fit: fixed effects, their covariance, the variance components.

    ``theta`` are the variance ratios σ²_g/σ², ``variances`` the components σ²_g (in the order
    of the factors given), ``residual_variance`` σ̂². ``deviance`` is −2 × the REML
    log-likelihood (the usual constants included), ``gradient`` its derivative in θ at the
    estimate; ``converged`` means the optimiser stopped normally and the projected gradient is
    below the tolerance. ``path`` names the factor eliminated analytically.
    """

    beta: np.ndarray
    cov_beta: np.ndarray
    theta: np.ndarray
    variances: np.ndarray
    residual_variance: float
    deviance: float
    gradient: np.ndarray
    converged: bool
    n_iterations: int
    n_evaluations: int
    message: str
    path: str


def _codes(values: np.ndarray, n: int, which: int) -> tuple[np.ndarray, int]:
    """Integer codes 0..q-1 of one factor (re-coded so no level is empty)."""
    codes = np.asarray(values)
    if codes.shape != (n,):
        raise REMLError(f"factor {which}: expected {n} codes, got shape {codes.shape}")
    if codes.dtype.kind in "iu" and n and codes.min() >= 0:
        counts = np.bincount(codes)
        if counts.all():  # already 0..q-1 with every level used (pandas.factorize)
            return codes.astype(np.intp, copy=False), len(counts)
    try:
        uniques, inverse = np.unique(codes, return_inverse=True)
    except TypeError:  # values that do not sort together (mixed types): first-seen order
        index: dict = {}
        inverse = np.array([index.setdefault(v, len(index)) for v in codes.tolist()])
        return inverse.astype(np.intp), len(index)
    return inverse.astype(np.intp), len(uniques)


def _wcross(K: np.ndarray | sparse.csr_matrix, w: np.ndarray) -> np.ndarray:
    """K' diag(w) K as a dense matrix, for K dense or sparse."""
    if sparse.issparse(K):
        return np.asarray((K.T @ K.multiply(w[:, None]).tocsr()).toarray())
    return K.T @ (K * w[:, None])


def _patterns(rows: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
    """(distinct rows of K, their counts n0, multiplicity), or None if they are not few.

    Rows are grouped by a random linear hash (a 1-D sort, where ``np.unique(axis=0)`` took
    0.15 s at 30,000 cases) and the grouping is then verified exactly.
    """
    key = rows @ np.random.default_rng(0).uniform(1, 2, rows.shape[1])
    _, first, inverse, count = np.unique(key, return_index=True, return_inverse=True,
                                         return_counts=True)
    if len(first) > len(rows) / 2 or not np.array_equal(rows[first][inverse], rows):
        return None
    distinct = rows[first]
    return distinct[:, :-1], distinct[:, -1], count.astype(float)


class _Problem:
    """The cross-products of one data set and the profiled REML deviance with its gradient."""

    def __init__(self, y: np.ndarray, X: np.ndarray, codes: Sequence[np.ndarray]) -> None:
        n, p = X.shape
        if n <= p:
            raise REMLError(f"{n} observations for {p} fixed effects")
        self.n, self.p = n, p
        # Work with the OLS residuals: P·X = 0, so P·y = P·e, and the cross-products of e are
        # free of the large mean that would cancel in y'y − c'C⁻¹c.
        beta_ols, _, rank, _ = np.linalg.lstsq(X, y, rcond=None)
        if rank < p:
            raise REMLError("the fixed-effect design is rank deficient")
        e = y - X @ beta_ols
        self.beta_ols = beta_ols
        recoded = [_codes(c, n, i) for i, c in enumerate(codes)]
        self.q = np.array([q for _, q in recoded])
        # Eliminate the factor with the most levels (its Z'Z block is diagonal).
        self.i0 = int(np.argmax(self.q))
        self.rest = [i for i in range(len(recoded)) if i != self.i0]
        c0, q0 = recoded[self.i0]
        offsets = np.cumsum([0] + [recoded[i][1] for i in self.rest])
        m = int(offsets[-1])
        k = m + p
        if k > _MAX_DENSE:
            raise REMLError(f"{m} levels outside the largest factor: more than the dense "
                            f"path's {_MAX_DENSE} (two large crossed factors)")
        self.m, self.k, self.q0 = m, k, q0
        # level -> index of its factor in self.rest, for summing traces per factor
        self.level_factor = np.repeat(np.arange(len(self.rest)),
                                      [recoded[i][1] for i in self.rest])
        rest_codes = [recoded[i][0] + offsets[j] for j, i in enumerate(self.rest)]

        self.n0 = np.bincount(c0, minlength=q0).astype(float)
        self.K_patterns: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None
        # K = Z0'[Z_rest, X]
        if q0 * k <= _DENSE_ENTRIES:
            K = np.zeros((q0, k))
            for rc in rest_codes:
                K += np.bincount(c0 * k + rc, minlength=q0 * k).reshape(q0, k)
            for j in range(p):
                K[:, m + j] = np.bincount(c0, weights=X[:, j], minlength=q0)
            self.K: np.ndarray | sparse.csr_matrix = K
            # K'diag(w)K with w a function of the level counts only: levels with the same
            # row of K and the same count (every case of a balanced design read by the same
            # readers) enter once, weighted by how many they are.
            self.K_patterns = _patterns(np.column_stack([K, self.n0]))
        else:
            rows = np.concatenate([c0] * len(rest_codes) + [c0] * p)
            cols = np.concatenate(rest_codes + [np.full(n, m + j) for j in range(p)])
            vals = np.concatenate([np.ones(n * len(rest_codes))] + [X[:, j] for j in range(p)])
            self.K = sparse.csr_matrix((vals, (rows, cols)), shape=(q0, k))
        # G = [Z_rest, X]'[Z_rest, X]
        G = np.zeros((k, k))
        for a, ra in enumerate(rest_codes):
            for rb in rest_codes[a:]:
                block = np.bincount(ra * m + rb, minlength=m * m).reshape(m, m)
                G[:m, :m] += block
                if rb is not ra:
                    G[:m, :m] += block.T
            for j in range(p):
                G[:m, m + j] += np.bincount(ra, weights=X[:, j], minlength=m)
        G[m:, :m] = G[:m, m:].T
        G[m:, m:] = X.T @ X
        self.G = G
        self.z0y = np.bincount(c0, weights=e, minlength=q0)
        gy = np.zeros(k)
        for rc in rest_codes:
            gy[:m] += np.bincount(rc, weights=e, minlength=m)
        gy[m:] = X.T @ e
        self.gy = gy
        self.yy = float(e @ e)
        self.n_factors = len(recoded)
        self.evaluations = 0

    def _kdk(self, weight: Callable[[np.ndarray], np.ndarray]) -> np.ndarray:
        """K' diag(weight(n0)) K, over the distinct rows of K when there are few."""
        if self.K_patterns is not None:
            rows, n0, count = self.K_patterns
            return _wcross(rows, count * weight(n0))
        return _wcross(self.K, weight(self.n0))

    def evaluate(self, theta: np.ndarray, gradient: bool = True) -> dict:
        """Deviance (up to constants), its gradient in θ, and what the estimates need."""
        self.evaluations += 1
        theta = np.maximum(np.asarray(theta, dtype=float), 0.0)
        m, p, k = self.m, self.p, self.k
        th0 = theta[self.i0]
        t = np.ones(k)
        t[:m] = np.sqrt(theta[self.rest])[self.level_factor]
        D = 1.0 + th0 * self.n0
        w1 = th0 / D
        A = self.G - self._kdk(lambda n0: th0 / (1.0 + th0 * n0)) if th0 > 0 else self.G.copy()
        F = t[:, None] * A * t[None, :]
        F[np.arange(m), np.arange(m)] += 1.0
        try:
            chol = linalg.cho_factor(F, lower=True, check_finite=False)
        except linalg.LinAlgError:
            raise REMLError("the mixed-model equations are singular (a fixed effect is "
                            "confounded with the random effects)") from None
        logdet = float(np.log(D).sum() + 2 * np.log(np.diag(chol[0])).sum())
        h = self.gy - self.K.T @ (w1 * self.z0y)
        sol = linalg.cho_solve(chol, t * h, check_finite=False)
        tw = t * sol
        a0 = self.z0y - self.K @ tw
        pwrss = self.yy - th0 * float(np.sum(self.z0y * a0 / D)) - float((t * self.gy) @ sol)
        if not pwrss > 0:
            raise REMLError("the residual sum of squares is not positive (a perfect fit)")
        dof = self.n - p
        dev = logdet + dof * math.log(pwrss)
        out = {"dev": dev, "pwrss": pwrss, "beta": tw[m:], "chol": chol}
        if not gradient:
            return out
        grad = np.zeros(self.n_factors)
        # the eliminated factor: tr(Z0'PZ0) = Σ n0/D − tr(F⁻¹ T K'D⁻²K T)
        M2 = self._kdk(lambda n0: 1.0 / (1.0 + th0 * n0) ** 2)
        tr_inv = np.trace(linalg.cho_solve(chol, t[:, None] * M2 * t[None, :],
                                           check_finite=False))
        zpy0 = a0 / D
        grad[self.i0] = (float(np.sum(self.n0 / D)) - tr_inv
                         - dof * float(zpy0 @ zpy0) / pwrss)
        if m:
            # the others: Z_rest'PZ_rest = A_mm − A_m· T F⁻¹ T A_·m (no division by θ)
            Y = linalg.cho_solve(chol, t[:, None] * A[:, :m], check_finite=False)
            diag = np.diag(A)[:m] - np.einsum("ij,ji->i", A[:m, :] * t[None, :], Y)
            u0 = th0 * a0 / D
            zpy = self.gy[:m] - self.G[:m, :] @ tw - self.K[:, :m].T @ u0
            per_level = diag - dof * zpy**2 / pwrss
            grad[self.rest] = np.bincount(self.level_factor, weights=per_level,
                                          minlength=len(self.rest))
        out["grad"] = grad
        return out

    def scale(self, theta: np.ndarray) -> np.ndarray:
        """Each ratio's natural size: θ_g + 1/(observations per level of g)."""
        return np.maximum(theta, 0.0) + self.q / self.n

    def cov_beta(self, chol: tuple, pwrss: float) -> np.ndarray:
        """σ̂²·(X'(V/σ²)⁻¹X)⁻¹: the fixed-effect block of C⁻¹ times σ̂²."""
        E = np.zeros((self.k, self.p))
        E[self.m:, :] = np.eye(self.p)
        block = linalg.cho_solve(chol, E, check_finite=False)[self.m:, :]
        return pwrss / (self.n - self.p) * (block + block.T) / 2


def _projected(grad: np.ndarray, theta: np.ndarray) -> np.ndarray:
    """The gradient with the components that push against the bound θ = 0 set to 0."""
    return np.where((theta <= 0) & (grad > 0), 0.0, grad)


def _scaled_gradient(problem: _Problem, grad: np.ndarray, theta: np.ndarray) -> float:
    """Largest projected gradient per unit of each ratio's natural scale (deviance units)."""
    return float(np.max(np.abs(_projected(grad, theta)) * problem.scale(theta), initial=0.0))


def _newton_polish(problem: _Problem, theta: np.ndarray, value: dict,
                   steps: int = 4) -> tuple[np.ndarray, dict]:
    """A few Newton steps on the free ratios (θ > 0), Hessian by differences of the gradient.

    L-BFGS-B stops when its relative decrease is ~1e-13, which on this flat likelihood can
    leave θ a few 1e-6 (relative) from the optimum; Newton from there converges
    quadratically. A step that does not lower the deviance is not taken.
    """
    for _ in range(steps):
        free = np.flatnonzero(theta > 0)
        if not free.size or _scaled_gradient(problem, value["grad"], theta) < 1e-11:
            break
        scale = problem.scale(theta)
        hess = np.zeros((free.size, free.size))
        for j, g in enumerate(free):
            h = min(1e-5 * scale[g], theta[g] / 2)
            up, down = theta.copy(), theta.copy()
            up[g] += h
            down[g] -= h
            hess[:, j] = (problem.evaluate(up)["grad"][free]
                          - problem.evaluate(down)["grad"][free]) / (2 * h)
        hess = (hess + hess.T) / 2
        try:
            step = np.linalg.solve(hess, value["grad"][free])
        except np.linalg.LinAlgError:
            break
        if not np.all(np.isfinite(step)):
            break
        candidate = theta.copy()
        candidate[free] = np.maximum(theta[free] - step, 0.0)
        new = problem.evaluate(candidate)
        if new["dev"] > value["dev"] + 1e-13 * abs(value["dev"]):
            break
        theta, value = candidate, new
    return theta, value


_controller: list = []


def _one_blas_thread() -> contextlib.AbstractContextManager:
    """Limit BLAS to one thread while fitting, when threadpoolctl is there (it comes with
    pingouin's scikit-learn).

    Every matrix here is tiny (13 x 13 in the trial); OpenBLAS still spreads some calls over
    its threads, and on a busy machine their spin-waiting made one fit 5-50x slower (scipy's
    L-BFGS-B alone took 50-80 ms instead of 1 ms for three parameters). The limit is
    process-wide for the fit's duration only.
    """
    try:
        from threadpoolctl import ThreadpoolController
    except ImportError:  # pragma: no cover - optional
        return contextlib.nullcontext()
    if not _controller:
        _controller.append(ThreadpoolController())
    return _controller[0].limit(limits=1, user_api="blas")


def fit_reml(y: np.ndarray, X: np.ndarray, codes: Sequence[np.ndarray], *,
             start: Sequence[float] | None = None, maxiter: int = 500) -> REMLFit:
    """REML fit of y = Xβ + Σ_g Z_g u_g + ε, one random intercept per level of each factor.

    ``codes`` gives each factor's level of every row (any hashable values, one array per
    factor, at least one factor); ``X`` must have full column rank. ``start`` are starting
    variance ratios σ²_g/σ² (default 1, as statsmodels). Raises :class:`REMLError` when the
    model cannot be fitted. Why not statsmodels: see the module docstring (same estimates,
    a thousand times faster at the trial's size).
    """
    y = np.asarray(y, dtype=float)
    X = np.asarray(X, dtype=float)
    if X.ndim != 2 or y.ndim != 1 or X.shape[0] != y.shape[0]:
        raise REMLError(f"y {y.shape} and X {X.shape} do not match")
    if not codes:
        raise REMLError("at least one grouping factor is needed")
    if not (np.all(np.isfinite(y)) and np.all(np.isfinite(X))):
        raise REMLError("y and X must be finite (drop missing rows first)")
    with _one_blas_thread():
        return _fit(y, X, codes, start, maxiter)


def _fit(y: np.ndarray, X: np.ndarray, codes: Sequence[np.ndarray],
         start: Sequence[float] | None, maxiter: int) -> REMLFit:
    problem = _Problem(y, X, codes)
    theta = np.ones(problem.n_factors) if start is None else np.asarray(start, dtype=float)
    if theta.shape != (problem.n_factors,) or not np.all(theta >= 0):
        raise REMLError(f"start: {problem.n_factors} variance ratios >= 0 expected")
    cache: dict[bytes, dict] = {}

    def evaluate(theta: np.ndarray) -> dict:
        key = theta.tobytes()
        if key not in cache:
            cache.clear()
            cache[key] = problem.evaluate(theta)
        return cache[key]

    # L-BFGS-B on θ/scale, scale = θ + (levels/observations), the ratio's natural size (the
    # deviance is ~ log(1 + θ·observations per level)); restarted with the scale of its own
    # result until that result stays put, so a ratio of 1e-3 or 1e6 is as well conditioned
    # as one of 1.
    iterations, stopped_normally, message = 0, True, ""
    for _ in range(8):
        scale = problem.scale(theta)

        def objective(x: np.ndarray, scale: np.ndarray = scale) -> tuple[float, np.ndarray]:
            value = evaluate(np.maximum(x * scale, 0.0))
            return value["dev"], value["grad"] * scale

        result = optimize.minimize(
            objective, theta / scale, jac=True, method="L-BFGS-B",
            bounds=[(0.0, None)] * problem.n_factors,
            options={"maxiter": max(maxiter - iterations, 1), "ftol": 1e-15, "gtol": 1e-10,
                     "maxcor": 20})
        iterations += int(result.nit)
        # "ABNORMAL" = the line search found no lower point: at the optimum to machine
        # precision (checked by the gradient below).
        stopped_normally = bool(result.success) or "ABNORMAL" in str(result.message)
        message = str(result.message)
        new = np.maximum(result.x * scale, 0.0)
        moved = float(np.max(np.abs(new - theta) / scale))
        theta = new
        if not stopped_normally or iterations >= maxiter or moved < 1e-3:
            break
    value = evaluate(theta)
    theta, value = _newton_polish(problem, theta, value)
    # Estimates on the boundary are exactly 0 (the bound); tiny positive ones stay.
    converged = (stopped_normally and iterations <= maxiter
                 and _scaled_gradient(problem, value["grad"], theta) < _GRADIENT_TOL)
    pwrss = value["pwrss"]
    dof = problem.n - problem.p
    sigma2 = pwrss / dof
    deviance = value["dev"] + dof * (1 + math.log(2 * math.pi / dof))
    beta = problem.beta_ols + value["beta"]
    return REMLFit(
        beta=beta, cov_beta=problem.cov_beta(value["chol"], pwrss), theta=theta,
        variances=sigma2 * theta, residual_variance=sigma2, deviance=deviance,
        gradient=value["grad"], converged=converged, n_iterations=iterations,
        n_evaluations=problem.evaluations, message=message,
        path=f"factor {problem.i0} ({problem.q0} levels) eliminated; dense {problem.k}x"
             f"{problem.k}",
    )


def reml_deviance(y: np.ndarray, X: np.ndarray, codes: Sequence[np.ndarray],
                  theta: Sequence[float]) -> float:
    """−2 × the REML log-likelihood (σ² profiled out) at variance ratios ``theta``.

    To compare estimates from different fitters on one scale (the higher likelihood is the
    better optimum), e.g. statsmodels' σ²_g/σ² against :func:`fit_reml`'s ``theta``.
    """
    y = np.asarray(y, dtype=float)
    X = np.asarray(X, dtype=float)
    with _one_blas_thread():
        problem = _Problem(y, X, codes)
        value = problem.evaluate(np.asarray(theta, dtype=float), gradient=False)
    dof = problem.n - problem.p
    return value["dev"] + dof * (1 + math.log(2 * math.pi / dof))
