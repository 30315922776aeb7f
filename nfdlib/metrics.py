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
