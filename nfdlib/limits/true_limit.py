"""The infinite-width limit of TRUE backprop at finite depth: NFD plus reuse corrections
(Prop. E.1; the ZMatMul rule of Tensor Programs IV, Yang & Hu 2021).

In the true network the backward pass multiplies by the transpose of the forward weights.
At infinite width, for each initial matrix W_ℓ (entries N(0,1), products W x/√n), the
Tensor-Program rule writes every product as a Gaussian part plus a correction:

    Z^{W_ℓ x}/√n  = Ẑ^{W_ℓ x}  + Σ_r Z^{g_ℓ^{(r)}} E[∂Z^{x}/∂Ẑ^{W_ℓᵀ g_ℓ^{(r)}}]   (r over earlier backward products)
    Z^{W_ℓᵀ g}/√n = Ẑ^{W_ℓᵀ g} + Σ_r Z^{x_ℓ^{(r)}} E[∂Z^{g}/∂Ẑ^{W_ℓ x_ℓ^{(r)}}]   (r over earlier forward products)

with x_ℓ^{(s)} = φ(h_{ℓ-1}^{(s)}). The Gaussian parts are NFD's z_ℓ^{(s)} (covariance C_ℓ) and
ẑ_ℓ^{(s)} (covariance G_ℓ). Hence the true-limit recursion is Def. 5.3 (the
docstring of :mod:`nfdlib.limits.nfd`) with

    h_ℓ^{(s)}     = h_{ℓ-1}^{(s)} + (z_ℓ^{(s)} + ż_ℓ^{(s)})/√L - (η_c/L) Σ_{r<s} χ_r g_ℓ^{(r)} C_ℓ^{(r,s)}
    g_{ℓ-1}^{(s)} = g_ℓ^{(s)} + φ'(h_{ℓ-1}^{(s)}) [(ẑ_ℓ^{(s)} + ẑ̇_ℓ^{(s)})/√L - (η_c/L) Σ_{r<s} χ_r φ(h_{ℓ-1}^{(r)}) G_ℓ^{(r,s)}]
    ż_ℓ^{(s)}  = Σ_{r<s}  g_ℓ^{(r)}            E[∂φ(h_{ℓ-1}^{(s)})/∂ẑ_ℓ^{(r)}]       (forward correction)
    ẑ̇_ℓ^{(s)} = Σ_{r≤s} φ(h_{ℓ-1}^{(r)})      E[∂g_ℓ^{(s)}/∂z_ℓ^{(r)}]               (backward correction)

(the forward product of step s comes before the backward product of step s, hence r < s and
r ≤ s). The expected derivatives are estimated from the particles by Gaussian integration by
parts (Stein's lemma). With z_ℓ^{(r)} = Σ_k R_ℓ[r,k] ε_ℓ^{(k)} (R_ℓ the Cholesky factor of C_ℓ,
ε standard normals) and F a function of the particles,

    E[F ε_ℓ^{(k)}] = E[∂F/∂ε_ℓ^{(k)}] = Σ_r R_ℓ[r,k] E[∂F/∂z_ℓ^{(r)}],   i.e.   D = R_ℓ^{-T} E[F ε_ℓ],

one triangular solve of size ≤ T per layer and step (directions whose Cholesky pivot was
dropped get D = 0: their vector lies in the span of the others). The cost stays
O(P·L·T²), like NFD; forward-mode tangents would need one tangent per (layer, step) and cost
O(P·L²·T²). ``corrections=False`` drops ż, ẑ̇ and is exactly NFD.

The recursion, with the corrections on or off, runs in :mod:`nfdlib.limits.particles` (kernels
with one signature: numpy reference, numba, torch); :func:`solve` is its entry point. The
kernels also return the mean squares E[ż²], E[ẑ̇²] per layer and step (the corrections' size,
layer by layer). This module adds :func:`linear_exact`, the exact (P = ∞) recursion for
φ = id, where every quantity is a linear functional of the Gaussians.
"""
from __future__ import annotations

import math

import numpy as np

from ..params import ParamError
from .particles import (ACTIVATIONS, BACKENDS, KERNELS, PARALLEL_MIN_P, Noise, TrueResult,
                        check_activation_and_rate, chol_row, coarsen, draw_noise, noise_bytes, solve,
                        solve_numba, solve_numpy, solve_torch, solver_bytes, stein_solve, synthetic_task)

__all__ = ["ACTIVATIONS", "BACKENDS", "KERNELS", "PARALLEL_MIN_P", "Noise", "TrueResult", "coarsen",
           "draw_noise", "linear_exact", "noise_bytes", "solve", "solve_numba", "solve_numpy",
           "solve_torch", "solver_bytes", "stein_solve", "synthetic_task"]


def linear_exact(Xi, y, eta_c: float, depth: int, corrections: bool = True) -> dict:
    """The exact infinite-width limit (P = ∞) for φ = id. Every h_ℓ^{(s)}, g_ℓ^{(s)} is then a
    linear functional of the independent standard Gaussians (u ∈ R^d, v, ε_ℓ^{(k)}, ε̂_ℓ^{(k)}),
    stored as its coefficient vector: expectations are inner products and the expected
    derivative E[∂F/∂ε] is F's coefficient, so the Tensor-Program corrections are computed
    without Monte Carlo (D = R^{-T}·coef, the rule of the module docstring).
    Returns {f, chi, C, G, h_L, g_0, corr_fwd, corr_bwd}: h_L, g_0 as coefficient arrays
    (T×dim), corr_fwd/corr_bwd (L×T) the exact E[ż²], E[ẑ̇²]."""
    check_activation_and_rate("linear", eta_c)
    if not isinstance(depth, (int, np.integer)) or depth < 1:
        raise ParamError(f"parameter 'depth' = {depth!r} is not allowed; allowed: integer >= 1")
    Xi = np.atleast_2d(np.asarray(Xi, dtype=np.float64))
    y = np.asarray(y, dtype=np.float64).ravel()
    T, d = Xi.shape
    L = int(depth)
    dim = d + 1 + 2 * L * T
    fw = lambda c: slice(d + 1 + c * T, d + 1 + (c + 1) * T)  # noqa: E731  ε_ℓ, ℓ = c+1
    bw = lambda c: slice(d + 1 + (L + c) * T, d + 1 + (L + c + 1) * T)  # noqa: E731  ε̂_ℓ
    x = np.zeros((L, T, dim))      # x_ℓ^{(s)} = h_{ℓ-1}^{(s)}
    g = np.zeros((L + 1, T, dim))
    hL = np.zeros((T, dim))
    C, G = np.zeros((L, T, T)), np.zeros((L, T, T))
    RC, RG = np.zeros((L, T, T)), np.zeros((L, T, T))
    f, chi = np.zeros(T), np.zeros(T)
    cf, cb = np.zeros((L, T)), np.zeros((L, T))
    gram = Xi @ Xi.T / d
    sq, el = 1.0 / math.sqrt(L), eta_c / L
    for s in range(T):
        h = np.zeros(dim)
        h[:d] = Xi[s] / math.sqrt(d)
        for r in range(s):
            h -= eta_c * chi[r] * gram[r, s] * g[0, r]
        for c in range(L):
            x[c, s] = h
            C[c, :s + 1, s] = C[c, s, :s + 1] = x[c, :s + 1] @ h
            chol_row(RC[c], C[c], s)
            z = np.zeros(dim)
            z[fw(c)][:s + 1] = RC[c, s, :s + 1]
            h = h + sq * z
            for r in range(s):
                h -= el * chi[r] * C[c, r, s] * g[c + 1, r]
            if corrections and s > 0:
                D = stein_solve(RG[c], x[c, s][bw(c)], s)
                zdot = D @ g[c + 1, :s]
                cf[c, s] = zdot @ zdot
                h = h + sq * zdot
        hL[s] = h
        g[L, s, d] = 1.0
        for r in range(s):
            g[L, s] -= eta_c * chi[r] * hL[r]
        f[s] = g[L, s] @ h
        chi[s] = f[s] - y[s]
        for c in range(L - 1, -1, -1):
            G[c, :s + 1, s] = G[c, s, :s + 1] = g[c + 1, :s + 1] @ g[c + 1, s]
            chol_row(RG[c], G[c], s)
            inc = np.zeros(dim)
            inc[bw(c)][:s + 1] = sq * RG[c, s, :s + 1]
            for r in range(s):
                inc -= el * chi[r] * G[c, r, s] * x[c, r]
            if corrections:
                D = stein_solve(RC[c], g[c + 1, s][fw(c)], s + 1)
                zdot = D @ x[c, :s + 1]
                cb[c, s] = zdot @ zdot
                inc += sq * zdot
            g[c, s] = g[c + 1, s] + inc
    return {"f": f, "chi": chi, "C": C, "G": G, "h_L": hL, "g_0": g[0], "corr_fwd": cf, "corr_bwd": cb}
