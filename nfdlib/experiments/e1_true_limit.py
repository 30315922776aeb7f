"""NB-E1: the infinite-width limit of true backprop (NFD + reuse corrections) and its depth.
NB-E1 is the book's own claim (from Cor. 5.7); the paper's Prop. E.1 is another statement.

Solver: :mod:`nfdlib.limits.true_limit` (stream SGD, loss ½(f-y)², η_c, inputs of
:func:`nfdlib.limits.nfd.synthetic_task`). Four measurements:

(a) ``corrections=False`` reproduces the NFD solver (:func:`nfdlib.limits.nfd.solve`) on one
    shared path: maximum absolute difference of f, C, G, h, g.
(b) Width: wide REUSED networks (:class:`nfdlib.network.Network`, batch 1, same task) at
    widths ``widths`` and ``net_seeds`` seeds, against the true limit (corrections on) and
    against NFD (off): RMS error of f_0..f_{T-1} and relative error of the kernels C, G.
    For tanh the limit is the particle solver (``limit_particles``), for linear the exact
    recursion :func:`nfdlib.limits.true_limit.linear_exact`. Expected: the error to the true
    limit ∝ n^{-1/2}; the error to NFD levels off at the corrections' size (tested paired over
    seeds: MSE to NFD minus MSE to the true limit > 0 at the largest width); the same paired
    test for tanh at the larger depth ``deep_depth`` and width ``deep_width``.
(c) Linear activation, exact: the one-step correction has the closed form (derived in the
    chapter) f_1^{true} - f_1^{NFD} = -η_c χ_0 (ξ_0·ξ_1/d) (1 + 1/L)^{L-1}; checked against the
    exact recursion at every depth, and the particle solver's error to the exact recursion ∝ P^{-1/2}.
(d) Depth: the accumulated correction, true limit minus NFD on one shared Brownian path
    (coarsened from ``max(depths)``): max_s |Δf_s|, relative change of the kernels, the W₂
    distance between the laws of h_L^{(T-1)}; ``depth_reps`` independent paths; power-law fits
    over depths ≥ ``fit_min_depth``; plus the exact linear Δf at the same depths (the one-step
    |Δf_1| enters the fit). Cor. 5.7
    predicts that the corrections vanish as L → ∞ with second moment O(L^{-2}): slope -1.

Parameters: :mod:`.e1_params`; computation: :mod:`.e1_compute`; fits and check:
:mod:`.e1_check`; figure: :mod:`.e1_plot`. This module is the experiment's face.
"""
from __future__ import annotations

from . import Experiment
from .e1_check import add_fits, check
from .e1_compute import (depth_point, limit_point, mc_point, net_point, nfd_match_point,
                         one_step_closed_form, run)
from .e1_params import WIDTH_ACTS, E1Params
from .e1_plot import plot

__all__ = ["EXPERIMENT", "NAME", "WIDTH_ACTS", "E1Params", "add_fits", "check", "depth_point",
           "limit_point", "mc_point", "net_point", "nfd_match_point", "one_step_closed_form", "plot",
           "run"]

NAME = "e1_true_limit"

EXPERIMENT = Experiment(NAME, "NB-E1: true-backprop limit (NFD + reuse corrections), validation and depth",
                        E1Params, run, check, plot)
