"""Neural Feature Dynamics (Def. 5.3): the particle solver of the finite-L recursion.

For stream SGD (one sample per step, loss ½(f - y)², learning rate η_c) on inputs
ξ_0..ξ_{T-1}, each particle is one coordinate of the infinite-width decoupled network
(Def. 5.3 of the paper):

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

The particles, their randomness (:func:`draw_noise`, :func:`coarsen`, :func:`synthetic_task`)
and the kernels live in :mod:`nfdlib.limits.particles`, where one recursion serves NFD and the
true limit (:mod:`nfdlib.limits.true_limit`): NFD is that recursion with its reuse corrections
switched off, which is what :func:`solve` runs. This module adds the eigenvalue table of A5.4.
"""
from __future__ import annotations

import numpy as np

from .particles import (ACTIVATIONS, BACKENDS, NFDResult, Noise, TrueResult, chol_row, coarsen,
                        divergence_step, draw_noise, noise_bytes, solver_bytes, synthetic_task)
from .particles import solve as _solve_particles

__all__ = ["ACTIVATIONS", "BACKENDS", "NFDResult", "Noise", "chol_row", "coarsen", "divergence_step",
           "draw_noise", "min_eigenvalues", "noise_bytes", "solve", "solver_bytes", "synthetic_task"]


def solve(Xi, y, eta_c: float, noise: Noise, activation: str = "tanh", backend: str = "numba",
          device: str = "auto", keep=(0,)) -> TrueResult:
    """Run the NFD recursion (module docstring) for T = len(Xi) steps of stream SGD on the
    rows of ``Xi`` (T×d) with targets ``y`` (T) and the randomness ``noise``; keep the
    particles of the layers ``keep`` (indices 0..L). A non-finite f is recorded as
    ``diverged_at`` (its step; never raised). This is :func:`nfdlib.limits.particles.solve`
    with ``corrections=False``: an NFDResult whose correction fields are zero."""
    return _solve_particles(Xi, y, eta_c, noise, activation, False, backend, device, keep)


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
