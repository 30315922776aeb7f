"""P5.2 and C5.7: the one-step gap between true backprop and decoupled backward weights.

Two depth-µP networks (Eq. 1) share U, W_ℓ, v, the data and the seed and differ only in the
backward weights: ``reused`` (B_ℓ = W_ℓ) and ``decoupled`` (B_ℓ = W̃_ℓ + ΔW_ℓ, see the book's mathematical notes).
Each takes one SGD step (Eq. 2, η = η_c n, MSE, one sample (ξ, y)) on the groups of
``train`` and is evaluated again. Per seed:

    gap_f(ξ)   = [f'_reused(ξ) - f(ξ)] - [f'_decoupled(ξ) - f(ξ)]   (and at a fresh ξ')
    change_f   = f'_reused(ξ) - f(ξ)

together with gaps in law of the second pass (second moments q'_ℓ = |h'_ℓ|²/n, the cross
kernel C'(ξ, ξ') of the last layer, the second backward moment G'_0 = |g'_0|²/n, and 1-D
Wasserstein distances between the coordinates of h'_ℓ), the same gap at a small η_c
divided by η_c, and the first-order prediction (derived in the book's mathematical notes) from the run's own kernels:

    gap/η_c ≈ -χ [ (ξ·ξ'/d) (G_0 - G̃_0) + (1/L) Σ_ℓ C_ℓ(ξ, ξ') (G_ℓ - G̃_ℓ) ]

with G_ℓ = g_ℓ(ξ')·g_ℓ(ξ)/n (true gradients) and G̃_ℓ = g_ℓ(ξ')·g̃_ℓ(ξ)/n (decoupled
backward at ξ), the U term only when U is trained; ``pred_mf`` replaces G̃_ℓ by its
infinite-width limit |v|²/n. The diagnostic of Appendix E's argument is the coefficient

    b_ℓ = (h'_{ℓ-1} - h_{ℓ-1}) · w_ℓ / |w_ℓ|²,   w_ℓ = g_{ℓ-1} - g_ℓ = m φ'(h_{ℓ-1}) ⊙ W_ℓᵀ g_ℓ

of the reused-weight direction in the second-pass input of layer ℓ. To first order in η_c
it is -η_c χ β_{ℓ-1}, where

    β_0 = [U trained],   β_ℓ = β_{ℓ-1} (1 + κ_ℓ/L) + C_ℓ/L,   κ_ℓ = |φ'(h_{ℓ-1})|²/n

(our derivation: ΔU and the drift of every layer k < ℓ carry g_k ∋ w_ℓ with weight 1, and
the coupling m² W_k (φ'² ⊙ W_kᵀ g_k) ≈ (κ_k/L) g_k created at each lower layer compounds).
So W_ℓ meets W_ℓᵀ g_ℓ with an O(1) weight and the coupling it adds to h'_ℓ,
≈ -η_c χ β_{ℓ-1} (κ_ℓ/L) g_ℓ, is O(1/L) per layer: the order of the drift, not one below.
Appendix E's count keeps only the adjacent drift, β_{ℓ-1} ≈ C_{ℓ-1}/L (``adjacent``).

Parameters and grid: :mod:`.p52_params`; computation: :mod:`.p52_compute`; check:
:mod:`.p52_check`; figure: :mod:`.p52_plot`. This module is the experiment's face.
"""
from __future__ import annotations

from . import Experiment
from .p52_check import (CLAIMED_EXPONENT, appendix_e_diagnostic, c57_verdict, check, depth_fit,
                        eq17_check,
                        p52_verdict, width_fits)
from .p52_compute import SCALARS, compute_point, inputs, limited_threads, linear_first_order, run
from .p52_params import TRAIN_GROUPS, GapParams
from .p52_plot import plot

__all__ = ["CLAIMED_EXPONENT", "EXPERIMENT", "SCALARS", "TRAIN_GROUPS", "GapParams",
           "appendix_e_diagnostic", "c57_verdict", "check", "compute_point", "depth_fit", "inputs",
           "limited_threads", "linear_first_order", "p52_verdict", "plot", "run", "width_fits"]

EXPERIMENT = Experiment("p52_one_step_gap",
                        "P5.2/C5.7: one-step gap, reused vs decoupled backward weights",
                        GapParams, run, check, plot)
