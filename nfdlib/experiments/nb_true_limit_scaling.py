"""NB-TW, NB-TD, NB-TG (the book's own claims): the limit that true networks follow, in width
and in depth, and its distance to NFD.

True (reused) networks are trained by stream SGD (batch 1, ½(f-y)², η = η_c n) on ``inputs``
distinct inputs visited in turn (:func:`.nbtl_params.task`). Their infinite-width limit at
depth L is the true-limit recursion, NFD plus the reuse corrections
(:mod:`nfdlib.limits.true_limit`). Three studies:

(1) width (NB-TW): at each L of ``net_depths``, networks of width n ∈ ``widths`` against the
    true limit at the same L (``limit_reps`` solves averaged): RMS error of f_0..f_{T-1} and
    the W₂ distance of the laws of h_L before the last step; decoupled networks against NFD
    alike. Fitted exponent in n per depth, and the depth exponent of the constant.
(2) depth (NB-TD): the recursion on one fine path (``ref_depth`` layers) per repetition and on
    its coarsenings to ``depths``: weak error max_s |f_s^{(L)} - f_s^{(ref)}| and strong error of
    the h_L particles. The one-step depth-limit equation (book/notes/true_depth_limit.md,
    :mod:`nfdlib.limits.true_depth_limit`) integrated directly with its exact coefficient, on a
    second fine path: its own error at L, and the Stein recursion's error to it.
(3) gap (NB-TG): f_s^{true} - f_s^{NFD} on one input visited ``gap_steps`` times, at
    L = gap_depth/4, /2, gap_depth on one path per repetition, for each η_c of ``gap_etas``,
    extrapolated to L = ∞; the first-order one-step formula from the NFD solve's kernels.

Parameters :mod:`.nbtl_params`, computation :mod:`.nbtl_compute`, checks :mod:`.nbtl_check`,
figure :mod:`.nbtl_plot`; this module is the experiment's face.
"""
from __future__ import annotations

from . import Experiment
from .nbtl_check import add_fits, check, joint_fit
from .nbtl_compute import depth_point, first_order_gap, gap_point, limit_point, net_point, run
from .nbtl_params import NBTLParams, task
from .nbtl_plot import plot

__all__ = ["EXPERIMENT", "NAME", "NBTLParams", "add_fits", "check", "depth_point", "first_order_gap",
           "gap_point", "joint_fit", "limit_point", "net_point", "plot", "run", "task"]

NAME = "nb_true_limit_scaling"

EXPERIMENT = Experiment(NAME, "NB-TW/TD/TG: true networks -> true limit in width (uniformly in L), its depth "
                        "limit, and its O(1) gap to NFD", NBTLParams, run, check, plot)
