"""The mathematics of Proposition 3.1 (the paper's §3 and App. B) evaluated numerically.

For the post-activation block of Eq. 29, ``h_ℓ = h_{ℓ-1} + (1/√L) φ(W_ℓ h_{ℓ-1}/√n)``, each
coordinate of ``u = W_ℓ h_{ℓ-1}/√n`` is exactly ``N(0, σ²)`` given ``h_{ℓ-1}``, with
``σ = |h_{ℓ-1}|/√n``. Hence, for the coordinate mean ``m_ℓ``,

    E[m_ℓ - m_{ℓ-1} | h_{ℓ-1}] = E φ(σZ)/√L ≥ (aσ + b)/√L                      (B.1)

under positive dominance ``E φ(σZ) ≥ aσ + b`` (σ ≥ 0), and, with ``σ ≥ |m|``, the
proposition's recursion ``m_ℓ ≥ (1 + a/√L) m_{ℓ-1} + b/√L``. For the pre-activation block
of Eq. 1 the branch has mean zero and ``E|h_ℓ|²/n = E|h_{ℓ-1}|²/n + E|φ(h_{ℓ-1})|²/(nL)``,
so with ``φ(0) = 0`` and Lipschitz constant ``K``:  ``E|h_L|²/n ≤ e^{K²} E|h_0|²/n`` for
every L (B.2). This module computes ``a``, ``b`` and ``K`` by quadrature (never typed in),
the infinite-width mean-field recursions of both designs and the candidate growth-law fits.
"""
from __future__ import annotations

import math

import numpy as np
from scipy import integrate

from ..backends.numpy_ref import dphi, phi
from ..metrics import linear_fit

QUAD_ZERO = 1e-9  # |E φ(σZ)| below the quadrature's accuracy counts as 0


def gauss_moment(act: str, sigma: float, power: int = 1) -> float:
    """E φ(σZ)^power for Z ~ N(0, 1), by adaptive quadrature (break point at 0)."""
    if sigma == 0:
        return float(phi(np.float64(0.0), act)) ** power
    dens = lambda z: math.exp(-z * z / 2) / math.sqrt(2 * math.pi)  # noqa: E731
    f = lambda z: float(phi(np.float64(sigma * z), act)) ** power * dens(z)  # noqa: E731
    lo, _ = integrate.quad(f, -40, 0, epsabs=1e-13, limit=200)
    hi, _ = integrate.quad(f, 0, 40, epsabs=1e-13, limit=200)
    return lo + hi


def positive_dominance(act: str, sigma_max: float) -> dict:
    """The largest constants of the condition ``E φ(σZ) ≥ aσ + b`` on ``0 ≤ σ ≤ sigma_max``:
    ``b = max(0, min_σ E φ(σZ))`` then ``a = max(0, min_{σ>0} (E φ(σZ) - b)/σ)``, evaluated on
    a log grid of σ by quadrature. ``holds`` is whether a or b is positive."""
    grid = np.concatenate([[0.0], np.geomspace(1e-3, max(sigma_max, 1e-2), 60)])
    means = np.array([gauss_moment(act, s) for s in grid])
    means[np.abs(means) < QUAD_ZERO * np.maximum(grid, 1)] = 0.0
    b = max(0.0, float(means.min()))
    a = max(0.0, float(np.min((means[1:] - b) / grid[1:])))
    return {"a": a, "b": b, "holds": a > 0 or b > 0, "sigma_max": float(grid[-1])}


def lipschitz(act: str) -> float:
    """sup |φ'| on [-20, 20] (grid of 4001 points)."""
    return float(np.max(np.abs(dphi(np.linspace(-20, 20, 4001), act))))


def mean_field(act: str, arch: str, depth: int, q0: float = 1.0, m0: float = 0.0):
    """Infinite-width recursions of the coordinate mean m_ℓ and second moment q_ℓ.

    post_act (Eq. 29): u ~ N(0, q_{ℓ-1}) independent of the coordinate, so
        m_ℓ = m_{ℓ-1} + E φ(√q Z)/√L,  q_ℓ = q_{ℓ-1} + 2 m_{ℓ-1} E φ(√q Z)/√L + E φ(√q Z)²/L;
    depth_mup (Eq. 1, m0 = 0): m_ℓ = 0, q_ℓ = q_{ℓ-1} + E φ(√q Z)²/L.
    Returns arrays m, q of length L + 1."""
    m, q = np.empty(depth + 1), np.empty(depth + 1)
    m[0], q[0] = m0, q0
    rL = math.sqrt(depth)
    for layer in range(1, depth + 1):
        s = math.sqrt(max(q[layer - 1], 0.0))
        e2 = gauss_moment(act, s, 2)
        if arch == "post_act":
            e1 = gauss_moment(act, s, 1)
            m[layer] = m[layer - 1] + e1 / rL
            q[layer] = q[layer - 1] + 2 * m[layer - 1] * e1 / rL + e2 / depth
        else:
            m[layer] = m[layer - 1]
            q[layer] = q[layer - 1] + e2 / depth
    return m, q


GROWTH_FORMS = {
    # name: (x transform of L, meaning of the slope)
    "power": (np.log, "y ∝ L^slope (√L growth: slope 0.5)"),
    "stretched_exp": (np.sqrt, "log y linear in √L (slope a for the mean, 2a for |h|²/n)"),
}


def fit_growth(depths, y, y_se) -> dict:
    """Fit log y against log L and against √L over the whole depth grid and over its lower
    and upper halves (each half needs ≥ 3 depths). A form describes the data when its two
    half-grid slopes have overlapping 95% CIs (one law across the grid)."""
    L = np.asarray(depths, float)
    y, se = np.asarray(y, float), np.asarray(y_se, float)
    keep = np.isfinite(y) & (y > 0)
    L, y, se = L[keep], y[keep], se[keep]
    sig = np.maximum(se / y, 1e-12)
    out = {}
    half = (len(L) + 1) // 2
    for name, (tx, meaning) in GROWTH_FORMS.items():
        if len(L) < 3:
            out[name] = None
            continue
        res = {"meaning": meaning, "all": linear_fit(tx(L), np.log(y), sigma=sig).as_dict()}
        if half >= 3:
            lo = linear_fit(tx(L[:half]), np.log(y[:half]), sigma=sig[:half])
            hi = linear_fit(tx(L[-half:]), np.log(y[-half:]), sigma=sig[-half:])
            res["lower"], res["upper"] = lo.as_dict(), hi.as_dict()
            res["one_law"] = bool(lo.slope_ci[1] >= hi.slope_ci[0] and hi.slope_ci[1] >= lo.slope_ci[0])
        else:
            res["one_law"] = None
        out[name] = res
    return out
