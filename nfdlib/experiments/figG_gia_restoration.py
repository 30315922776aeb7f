"""Appendix G, Fig. 2 (width 128) and Fig. 5 (width 256): GIA restoration in training.

For each architecture (``vanilla``, ``mup_resnet``, ``depth_mup``), each depth L and each
seed, two networks are trained by mini-batch SGD (Eq. 2, η = η_c·n, batch 128, softmax
cross-entropy on K = 10 classes) on the same batches in the same order:

- *reused* (standard backprop): the backward pass (Eq. 3) uses B_ℓ = W_ℓ;
- *decoupled*: it uses B_ℓ = W̃_ℓ + ΔW_ℓ with W̃_ℓ an independent copy that receives the
  same updates (the book's notes on the model).

The same seed gives both networks the same U, W_ℓ, V (only W̃ is extra), so the two loss
curves differ only through the forward–backward weight coupling that the Gradient
Independence Assumption (GIA) drops. The *alignment gap* of a pair is

    gap = (1/T) Σ_{t} |ℓ_reused(t) − ℓ_decoupled(t)|

over the T evaluation points (every ``eval_every`` steps) of the training-loss curve
(``gap_train``, the running mean of the last ``eval_every`` batch losses) and of the test-loss
curve (``gap_test``), plus the final test-loss difference. A control (``baseline``) trains a
second decoupled network whose copy W̃ is drawn afresh: the gap between the two decoupled
runs (``noise_train``) is the finite-width fluctuation that the backward weights cause even
when GIA holds exactly. Beside each reused run a twin whose initial weights differ by one ulp
measures how much the run amplifies rounding (``sensitivity``; ``figG_train``).

The paper's reading (App. G; Thm. 5.6 / Cor. 5.7: the omitted coupling is of higher order in
1/L under depth-µP) is that the gap shrinks with depth under depth-µP (checked as F2, F5),
and that vanilla networks and µP ResNets become unstable with depth while depth-µP does not
(checked as G-stab). The module layout: ``figG_grid`` (parameters and grid), ``figG_train``
(one run), ``figG_check`` (tables and checks), ``figG_plot`` (figures); this module runs the
sweep and re-exports what chapters and tests use.
"""
from __future__ import annotations

from ..executor import run_grid
from ..model import init_weights  # noqa: F401  (re-exported for the tests)
from ..params import ParamError
from . import Experiment
from .figG_check import (INSENSITIVE, SENSITIVE, alignment, check, classify,  # noqa: F401
                         stability_by_depth, verdict_of)
from .figG_grid import (ARCHS, BASELINE, FIGURE_OF_WIDTH, MODES, NAME, GIAParams,  # noqa: F401
                        grid, point_name)
from .figG_plot import plot, plot_alignment, plot_losses, plot_sensitivity  # noqa: F401
from .figG_train import _data, train_pair_member, ulp_perturbed  # noqa: F401


def run(p: GIAParams, store) -> dict:
    """Train every (architecture, backward mode, width, depth, seed) of the grid, one stored
    point per run (resumable); returns the runs and their alignment table."""
    data = _data(p.dataset, p.seed, p.data_folder, p.n_train, p.n_test)  # ParamErrors first
    if data.n_classes != 10:
        raise ParamError(f"parameter 'dataset' = {p.dataset!r} has {data.n_classes} classes; "
                         "the readout has K = 10")
    runs = run_grid(store, grid(p), train_pair_member, executor=p.executor, desc="training runs")
    out = {"runs": runs, "n_train": int(len(data.X_train)), "n_test": int(len(data.X_test)),
           "steps_per_epoch": max(1, len(data.X_train) // p.batch)}
    out["alignment"] = alignment(out, p)
    return out


EXPERIMENT = Experiment(NAME, "App. G, Figs. 2 and 5: standard vs decoupled-backward training "
                        "across depth (GIA restoration) and its rounding sensitivity",
                        GIAParams, run, check, plot)
