"""Statistics used by the claim checks: means with standard errors, 1-D Wasserstein
distances between samples, and least-squares fits (slopes, power laws) with confidence
intervals from Student's t distribution."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import stats


def mean_se(samples, axis: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Sample mean and its standard error ``std(ddof=1)/sqrt(k)`` along ``axis``
    (standard error 0 for a single sample)."""
    x = np.asarray(samples, dtype=float)
    k = x.shape[axis]
    mean = x.mean(axis=axis)
    se = x.std(axis=axis, ddof=1) / np.sqrt(k) if k > 1 else np.zeros_like(mean)
    return mean, se


def wasserstein1(a, b) -> float:
    """1-D Wasserstein-1 distance between the empirical laws of samples ``a`` and ``b``."""
    return float(stats.wasserstein_distance(np.ravel(a), np.ravel(b)))


def wasserstein2(a, b) -> float:
    """1-D Wasserstein-2 distance between two samples of equal size (sorted coupling)."""
    a, b = np.sort(np.ravel(a)), np.sort(np.ravel(b))
    if a.size != b.size:
        q = np.linspace(0, 1, max(a.size, b.size))
        a, b = np.quantile(a, q), np.quantile(b, q)
    return float(np.sqrt(np.mean((a - b) ** 2)))


@dataclass(frozen=True)
class LinearFit:
    """``y ≈ intercept + slope·x`` by (weighted) least squares, with ``level`` confidence
    intervals."""
    slope: float
    intercept: float
    slope_ci: tuple[float, float]
    intercept_ci: tuple[float, float]
    slope_se: float
    intercept_se: float
    r2: float
    n: int
    level: float = 0.95

    def slope_within(self, target: float) -> bool:
        """Whether ``target`` lies inside the slope's confidence interval."""
        return self.slope_ci[0] <= target <= self.slope_ci[1]

    def as_dict(self) -> dict:
        return {"slope": self.slope, "slope_ci": list(self.slope_ci), "slope_se": self.slope_se,
                "intercept": self.intercept, "intercept_ci": list(self.intercept_ci),
                "intercept_se": self.intercept_se, "r2": self.r2, "n": self.n, "level": self.level}


def linear_fit(x, y, sigma=None, level: float = 0.95) -> LinearFit:
    """Least-squares line through ``(x, y)``; ``sigma`` (standard errors of y) gives weights
    1/σ². Needs at least three points (one degree of freedom for the CI)."""
    x = np.asarray(x, dtype=float)
    y = np.asarray(y, dtype=float)
    keep = np.isfinite(x) & np.isfinite(y)
    w = np.ones_like(x) if sigma is None else 1.0 / np.maximum(np.asarray(sigma, float), 1e-300) ** 2
    x, y, w = x[keep], y[keep], w[keep]
    n = x.size
    if n < 3:
        raise ValueError(f"a fit with a confidence interval needs >= 3 finite points, got {n}")
    A = np.stack([np.ones_like(x), x], axis=1)
    sw = np.sqrt(w / w.mean())
    coef, *_ = np.linalg.lstsq(A * sw[:, None], y * sw, rcond=None)
    resid = (y - A @ coef) * sw
    dof = n - 2
    s2 = float(resid @ resid) / dof
    cov = s2 * np.linalg.inv((A * sw[:, None]).T @ (A * sw[:, None]))
    se = np.sqrt(np.diag(cov))
    t = stats.t.ppf(0.5 + level / 2, dof)
    ybar = np.average(y, weights=sw**2)
    ss_tot = float(np.sum(sw**2 * (y - ybar) ** 2))
    r2 = 1 - float(resid @ resid) / ss_tot if ss_tot > 0 else 1.0
    b0, b1 = float(coef[0]), float(coef[1])
    return LinearFit(slope=b1, intercept=b0, slope_ci=(b1 - t * se[1], b1 + t * se[1]),
                     intercept_ci=(b0 - t * se[0], b0 + t * se[0]), slope_se=float(se[1]),
                     intercept_se=float(se[0]), r2=r2, n=n, level=level)


def power_law_fit(x, y, y_se=None, level: float = 0.95) -> LinearFit:
    """Fit ``y ≈ c·x^slope`` as a line in log–log coordinates (``y_se`` → σ of log y ≈ se/y).
    Non-positive ``y`` are dropped."""
    x = np.asarray(x, dtype=float)
    y = np.asarray(y, dtype=float)
    keep = (x > 0) & (y > 0)
    sigma = None
    if y_se is not None:
        sigma = np.maximum(np.asarray(y_se, float)[keep] / y[keep], 1e-12)
    return linear_fit(np.log(x[keep]), np.log(y[keep]), sigma=sigma, level=level)


def power_law_fit_dict(x, y, y_se=None, level: float = 0.95) -> dict | None:
    """:func:`power_law_fit` as a JSON-able dict, or None when there are fewer than three
    usable points (the fit is then reported as missing rather than raising)."""
    try:
        return power_law_fit(x, y, y_se, level).as_dict()
    except ValueError:
        return None


# ----------------------------------------------------------------------------- estimators without a floor

def _sorted_equal(*samples) -> list[np.ndarray]:
    arrs = [np.sort(np.ravel(np.asarray(s, dtype=float))) for s in samples]
    if len({a.size for a in arrs}) != 1 or arrs[0].size < 2:
        raise ValueError(f"the four samples need one common size >= 2, got {[a.size for a in arrs]}")
    return arrs


def w2_squared_debiased(x1, x2, y1, y2) -> float:
    """Squared 1-D Wasserstein-2 distance between the laws μ (of ``x1``, ``x2``) and ν (of
    ``y1``, ``y2``), with the Monte-Carlo floor removed. The four samples are independent of
    each other and have one size m (samples may be dependent *within* themselves).

    With sorted samples, W₂²(x, y) = (1/m) Σ_k (x_(k) - y_(k))² (the quantile coupling). The
    estimator is

        D = ¼ Σ_{i,j∈{1,2}} W₂²(x_i, y_j) - ½ [W₂²(x_1, x_2) + W₂²(y_1, y_2)].

    Bias. Write x_(k) = a_k + α_k, y_(k) = b_k + β_k with a_k = E x_(k), b_k = E y_(k), so α, β
    are centred. By independence of the four samples,
    E W₂²(x_i, y_j) = (1/m) Σ_k [(a_k - b_k)² + Var x_(k) + Var y_(k)],
    E W₂²(x_1, x_2) = (2/m) Σ_k Var x_(k), and the same for y, hence exactly

        E D = (1/m) Σ_k (E x_(k) - E y_(k))²,

    the squared distance between the *expected* empirical quantile functions. It is 0 when
    μ = ν (no floor: the naive W₂²(x, y) has mean (1/m) Σ_k [Var x_(k) + Var y_(k)] > 0 then),
    equals (δ)² exactly for a shift y = x + δ, and differs from W₂²(μ, ν) only through the
    bias of the expected order statistics, E x_(k) - F_μ^{-1}(k/(m+1)): O(1/m) in the bulk and
    more in the tails, so that for Gaussian tails m·|E D - W₂²(μ, ν)| grows slowly with m (the
    statistics note works N(0, 1) against a uniform law of the same variance). D can be
    negative; its spread over independent replicates gives its standard error."""
    a1, a2, b1, b2 = _sorted_equal(x1, x2, y1, y2)
    cross = sum(np.mean((a - b) ** 2) for a in (a1, a2) for b in (b1, b2)) / 4.0
    return float(cross - 0.5 * (np.mean((a1 - a2) ** 2) + np.mean((b1 - b2) ** 2)))


def w2_squared_naive(x, y) -> float:
    """The plug-in W₂²(x, y) of two equal-size samples (sorted coupling); its mean is
    W₂²(μ, ν) plus the floor (1/m) Σ_k [Var x_(k) + Var y_(k)] (see :func:`w2_squared_debiased`)."""
    a, b = _sorted_equal(x, y)
    return float(np.mean((a - b) ** 2))


def power_law_fit_nls(x, y, y_se, level: float = 0.95) -> dict | None:
    """Fit ``y ≈ A·x^slope`` by weighted least squares *in linear space* (weights 1/se²), so
    that estimates at or below zero (a debiased distance at the noise level) keep their
    weight instead of being dropped as a log–log fit must. The CI of the slope is
    slope ± t_{n-2}·se from the Gauss–Newton covariance scaled by the reduced χ² (as
    :func:`linear_fit`). Starting point: the log–log fit of the positive points. Returns a
    dict (slope, slope_ci, slope_se, prefactor, chi2_red, n) or None with < 3 points or no
    convergence."""
    from scipy.optimize import curve_fit

    x, y, se = (np.asarray(v, dtype=float) for v in (x, y, y_se))
    keep = np.isfinite(x) & np.isfinite(y) & np.isfinite(se) & (x > 0)
    x, y, se = x[keep], y[keep], np.maximum(se[keep], 1e-300)
    pos = y > 0
    if x.size < 3 or pos.sum() < 2:
        return None
    b0 = np.polyfit(np.log(x[pos]), np.log(y[pos]), 1)
    x0 = float(np.exp(np.mean(np.log(x))))
    model = lambda xx, lnA, b: np.exp(lnA) * (xx / x0) ** b  # noqa: E731
    try:
        (lnA, b), cov = curve_fit(model, x, y, p0=[b0[1] + b0[0] * np.log(x0), b0[0]], sigma=se,
                                  absolute_sigma=False, maxfev=20000)
    except (RuntimeError, ValueError):
        return None
    dof = x.size - 2
    sb = float(np.sqrt(cov[1, 1])) if np.isfinite(cov[1, 1]) else float("inf")
    t = float(stats.t.ppf(0.5 + level / 2, dof)) if dof > 0 else float("inf")
    chi2 = float(np.sum(((y - model(x, lnA, b)) / se) ** 2) / max(dof, 1))
    return {"slope": float(b), "slope_ci": [float(b - t * sb), float(b + t * sb)], "slope_se": sb,
            "prefactor": float(np.exp(lnA) * x0 ** (-b)), "chi2_red": chi2, "n": int(x.size), "level": level}


def offset_power_law_fit(x, reps, n_boot: int = 400, seed: int = 0, level: float = 0.95,
                         alpha_min: float = 0.5, alpha_max: float = 2.0) -> dict | None:
    """Fit ``y(x) = y∞ + c·x^(-α)`` (α in [alpha_min, alpha_max]) to replicate measurements
    ``reps[i]`` (a 1-D array of independent replicates at ``x[i]``) by weighted least squares
    on the replicate means (weights 1/se²), and give a ``level`` confidence interval for y∞ by
    the bootstrap: the replicates are resampled with replacement *within* each x, the means and
    standard errors recomputed and the model refitted ``n_boot`` times (fixed ``seed``); the
    interval holds the central ``level`` of the refitted y∞ (percentile bootstrap). The
    bootstrap is used because y∞, c and α are strongly correlated and the model is nonlinear,
    so a linearised (Wald) interval would be unreliable, and because it makes no assumption on
    the law of the replicates (λ_min estimates are skewed at small x). Returns y_inf,
    y_inf_ci, c, alpha, the bootstrap's failure count and sample size, or None (< 4 x values
    or no fit). α must be bounded away from 0: as α → 0, y∞ and c trade off
    (y∞ + c·x^(-α) ≈ y∞ + c - cα·log x) and y∞ is not identified. The default range [1/2, 2] is
    that of Monte-Carlo errors: for x = P particles, the bias of a smooth functional of the
    empirical law is O(1/P) and its fluctuation O(P^(-1/2))."""
    from scipy.optimize import curve_fit

    x = np.asarray(x, dtype=float)
    reps = [np.asarray(r, dtype=float)[np.isfinite(r)] for r in reps]
    if x.size < 4 or any(r.size < 2 for r in reps):
        return None
    x0 = float(np.exp(np.mean(np.log(x))))

    def model(xx, a, c, alpha):
        return a + c * (xx / x0) ** (-alpha)

    def fit(means, ses):
        ses = np.maximum(ses, 1e-12 * np.max(np.abs(means)) + 1e-300)
        p0 = [means[-1], means[0] - means[-1], float(np.clip(0.75, alpha_min, alpha_max))]
        try:
            p, _ = curve_fit(model, x, means, p0=p0, sigma=ses, absolute_sigma=False,
                             bounds=([-np.inf, -np.inf, alpha_min], [np.inf, np.inf, alpha_max]), maxfev=20000)
        except (RuntimeError, ValueError):
            return None
        return p

    def stats_of(rs):
        m = np.array([r.mean() for r in rs])
        s = np.array([r.std(ddof=1) / np.sqrt(r.size) for r in rs])
        return m, s

    m, s = stats_of(reps)
    best = fit(m, s)
    if best is None:
        return None
    rng = np.random.default_rng(seed)
    boot, fails = [], 0
    for _ in range(n_boot):
        rs = [r[rng.integers(0, r.size, r.size)] for r in reps]
        mb, sb = stats_of(rs)
        if np.any(sb == 0):
            sb = np.where(sb == 0, s, sb)
        p = fit(mb, sb)
        if p is None:
            fails += 1
        else:
            boot.append(p[0])
    if len(boot) < n_boot // 2:
        return None
    lo, hi = np.quantile(boot, [0.5 - level / 2, 0.5 + level / 2])
    return {"y_inf": float(best[0]), "y_inf_ci": [float(lo), float(hi)], "c": float(best[1] * x0 ** best[2]),
            "alpha": float(best[2]), "n_boot": n_boot, "boot_failures": fails, "level": level,
            "means": m.tolist(), "ses": s.tolist()}
