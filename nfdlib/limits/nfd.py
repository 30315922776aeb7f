"""Neural Feature Dynamics (Def. 5.3): the particle solver of the finite-L recursion.

For stream SGD (one sample per step, loss ½(f - y)², learning rate η_c) on inputs
ξ_0..ξ_{T-1}, each particle is one coordinate of the infinite-width decoupled network
(MATH.md §5, D5.3):

    h_0^{(s)}     = u·ξ_s/√d - η_c Σ_{r<s} χ_r g_0^{(r)} (ξ_r·ξ_s)/d                 (U boundary)
    h_ℓ^{(s)}     = h_{ℓ-1}^{(s)} + z_ℓ^{(s)}/√L - (η_c/L) Σ_{r<s} χ_r g_ℓ^{(r)} C_ℓ^{(r,s)}
    g_L^{(s)}     = v - η_c Σ_{r<s} χ_r h_L^{(r)}                                    (v boundary)
    g_{ℓ-1}^{(s)} = g_ℓ^{(s)} + φ'(h_{ℓ-1}^{(s)}) [ẑ_ℓ^{(s)}/√L
                    - (η_c/L) Σ_{r<s} χ_r φ(h_{ℓ-1}^{(r)}) G_ℓ^{(r,s)}]
    f_s = E[g_L^{(s)} h_L^{(s)}],   χ_s = f_s - y_s,
    C_ℓ^{(r,s)} = E[φ(h_{ℓ-1}^{(r)}) φ(h_{ℓ-1}^{(s)})],   G_ℓ^{(r,s)} = E[g_ℓ^{(r)} g_ℓ^{(s)}]

with expectations replaced by particle means (an interacting particle system). The Gaussian
families are built step by step from the rows of the Cholesky factors of the kernels,
``z_ℓ^{(s)} = Σ_{r≤s} R_ℓ[s,r] ε_ℓ^{(r)}`` (and ẑ from Ĝ's factor with ε̂), with the standard
normals ε, ε̂ drawn once (:func:`draw_noise`) and stored, so a coarser depth grid driven by
:func:`coarsen` (block sums of the fine normals divided by √m) follows the same Brownian path:
as L → ∞ the recursion is the Euler–Maruyama scheme of the SDEs of Eqs. 20–25 (Remark 5.5).
The cost is O(P·L·T²) and the memory O(P·L·T).

This module holds what defines the recursion's randomness and inputs (:func:`draw_noise`,
:func:`coarsen`, :func:`synthetic_task`), the Cholesky row update and the eigenvalue table of
A5.4. The recursion itself runs in :mod:`nfdlib.limits.true_limit`, whose kernels (numpy
reference, numba, torch) are NFD when their reuse corrections are switched off: :func:`solve`
calls them so, and one code path serves NFD and the true limit.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from numba import njit

from ..params import ParamError, require_memory

ACTIVATIONS = ("tanh", "relu", "linear")
BACKENDS = ("numba", "torch", "numpy")
_ACT = {"tanh": 0, "relu": 1, "linear": 2}
_DEGENERATE = 1e-12  # relative pivot below which a Cholesky direction counts as absent


@dataclass(frozen=True)
class Noise:
    """The randomness of one NFD solve: U-rows ``u`` (P×d), readout ``v`` (P), forward
    normals ``eps`` and backward normals ``epsb`` (L×T×P; index ℓ-1 drives layer ℓ)."""
    u: np.ndarray
    v: np.ndarray
    eps: np.ndarray
    epsb: np.ndarray

    @property
    def shape(self) -> tuple[int, int, int]:
        """(P, L, T)."""
        L, T, P = self.eps.shape
        return P, L, T


@dataclass(frozen=True)
class NFDResult:
    """Output of :func:`solve`: f (T), loss (T), chi (T), C and G (L×T×T, index ℓ-1 holds
    C_ℓ, G_ℓ), the particles h, g at the layers ``keep`` (K×T×P) and ``diverged_at``, the
    first step whose f is not finite (None: the run did not diverge)."""
    f: np.ndarray
    loss: np.ndarray
    chi: np.ndarray
    C: np.ndarray
    G: np.ndarray
    keep: tuple
    h: np.ndarray
    g: np.ndarray
    diverged_at: int | None

    @property
    def diverged(self) -> bool:
        return self.diverged_at is not None


def divergence_step(f) -> int | None:
    """The first step s whose f_s is not finite (the run diverged there), or None."""
    bad = np.flatnonzero(~np.isfinite(np.array(f, dtype=float)))
    return int(bad[0]) if bad.size else None


def noise_bytes(P: int, L: int, T: int, d: int) -> int:
    return 8 * (2 * L * T * P + P * (d + 1))


def solver_bytes(P: int, L: int, T: int, n_keep: int) -> int:
    """Working memory of one solve (float64): φ(h) and g for all layers and steps, h_L and
    the kept particles."""
    return 8 * P * T * (L + (L + 1) + 1 + 2 * n_keep)


def draw_noise(rng: np.random.Generator, P: int, L: int, T: int, d: int) -> Noise:
    """Draw u, v, ε, ε̂ (in this order) from ``rng`` after checking they fit in memory."""
    for name, val in (("P", P), ("L", L), ("T", T), ("d", d)):
        if not isinstance(val, (int, np.integer)) or val < 1:
            raise ParamError(f"parameter '{name}' = {val!r} is not allowed; allowed: integer >= 1")
    require_memory(noise_bytes(P, L, T, d), f"NFD noise for P={P}, L={L}, T={T}")
    u = rng.standard_normal((P, d))
    v = rng.standard_normal(P)
    eps = rng.standard_normal((L, T, P))
    epsb = rng.standard_normal((L, T, P))
    return Noise(u, v, eps, epsb)


def coarsen(noise: Noise, factor: int) -> Noise:
    """The same Brownian path on a grid ``factor`` times coarser: each coarse layer's normal
    is the sum of its ``factor`` fine normals divided by √factor (App. F)."""
    P, L, T = noise.shape
    if factor < 1 or L % factor:
        raise ParamError(f"parameter 'factor' = {factor!r} is not allowed; allowed: a divisor of L = {L}")
    shape = (L // factor, factor, T, P)
    scale = 1.0 / math.sqrt(factor)
    return Noise(noise.u, noise.v, noise.eps.reshape(shape).sum(1) * scale,
                 noise.epsb.reshape(shape).sum(1) * scale)


def chol_row(R, K, s):
    """Row s of the lower Cholesky factor of K[:s+1, :s+1], rows 0..s-1 of R given:
    R[s,r] = (K[s,r] - Σ_{k<r} R[s,k] R[r,k]) / R[r,r], R[s,s] = √(K[s,s] - Σ_k R[s,k]²).
    Directions with a pivot below 1e-12·K[s,s] are dropped (semidefinite kernels)."""
    for r in range(s):
        if R[r, r] > 0.0:
            acc = K[s, r]
            for k in range(r):
                acc -= R[s, k] * R[r, k]
            R[s, r] = acc / R[r, r]
        else:
            R[s, r] = 0.0
    acc = K[s, s]
    for k in range(s):
        acc -= R[s, k] * R[s, k]
    R[s, s] = math.sqrt(acc) if acc > _DEGENERATE * K[s, s] and acc > 0.0 else 0.0


_chol_row_nb = njit(cache=True)(chol_row)


def _phi_np(x, act):
    return np.tanh(x) if act == 0 else (np.maximum(x, 0.0) if act == 1 else x)


def _dphi_from_phi_np(p, act):
    """φ'(h) written through φ(h): tanh 1 - φ², ReLU 1{φ > 0}, linear 1."""
    return 1.0 - p * p if act == 0 else ((p > 0).astype(p.dtype) if act == 1 else np.ones_like(p))


def solve(Xi, y, eta_c: float, noise: Noise, activation: str = "tanh", backend: str = "numba",
          device: str = "auto", keep=(0,)) -> NFDResult:
    """Run the NFD recursion (module docstring) for T = len(Xi) steps of stream SGD on the
    rows of ``Xi`` (T×d) with targets ``y`` (T) and the randomness ``noise``; keep the
    particles of the layers ``keep`` (indices 0..L). A non-finite f is recorded as
    ``diverged_at`` (its step; never raised). The validation and the kernels are those of
    :func:`nfdlib.limits.true_limit.solve` with ``corrections=False`` (its result is an
    NFDResult whose correction fields are zero)."""
    from . import true_limit
    return true_limit.solve(Xi, y, eta_c, noise, activation, False, backend, device, keep)


def min_eigenvalues(K: np.ndarray) -> np.ndarray:
    """λ_min of the leading blocks K_ℓ^{[0..s]} for every layer and step (L×T), A5.4."""
    L, T, _ = K.shape
    out = np.full((L, T), np.nan)
    for s in range(T):
        block = K[:, :s + 1, :s + 1]
        ok = np.all(np.isfinite(block), axis=(1, 2))
        if ok.any():
            out[ok, s] = np.linalg.eigvalsh(block[ok])[:, 0]
    return out


def synthetic_task(T: int, d: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """A stream of T inputs with |ξ|² = d (Gaussian directions) and targets
    y = tanh(w·ξ/√d) of a random teacher w: the inputs every NFD experiment uses."""
    rng = np.random.default_rng([seed, 5003])
    X = rng.standard_normal((T, d))
    X *= math.sqrt(d) / np.linalg.norm(X, axis=1, keepdims=True)
    w = rng.standard_normal(d)
    return X, np.tanh(X @ w / math.sqrt(d))
