"""P3.1 and Fig. 4: pre- vs post-activation ResNets at initialisation and in training.

At initialisation, for the post-activation design (Eq. 29, ``post_act``) and the paper's
pre-activation design (Eq. 1, ``depth_mup``) with the same weights, the coordinate mean
``m_ℓ`` and second moment ``q_ℓ = |h_ℓ|²/n`` of every layer, over a grid of widths, depths
and seeds (inputs: digits test images, |ξ|² = d); the same for a contrast activation
(default tanh, which fails positive dominance) and for the classic block
``h_ℓ = φ(h_{ℓ-1} + W_ℓ h_{ℓ-1}/√(nL))`` (:mod:`.p31_classic`). Then mini-batch SGD
(Eq. 2, η = η_c·n, cross-entropy, batch 128) of both designs on digits (Fig. 4 b, c).

The check (:mod:`.p31_check`) compares the runs with the bounds of :mod:`.p31_theory`: (B.1) the drift bound
with the run's own σ's, the proposition's recursion from layer 1, (B.2) the uniform bound of
the pre-activation design, and fits the candidate growth laws of E[h_L] and |h_L|²/n; the
figures are drawn by :mod:`.p31_plot`.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..backends import get_backend
from ..data import load
from ..executor import check_executor, run_grid
from ..model import ACTIVATIONS, BACKENDS, DEVICES, DTYPES, NetworkSpec, init_weights
from ..network import Network
from ..params import ParamError, Params, require_memory, spec
from ..training import train
from . import Experiment
from .p31_classic import classic_forward
from .p31_check import bounds, check, divergence, pre_bound, training_summary
from .p31_plot import plot

__all__ = ["ARCHS", "EXPERIMENT", "NAME", "P31Params", "bounds", "check", "compute_init", "compute_train",
           "divergence", "plot", "pre_bound", "run", "training_summary"]

NAME = "p31_post_activation"
ARCHS = ("post_act", "depth_mup")


@dataclass(frozen=True)
class P31Params(Params):
    profile: str = spec("book")
    backend: str = spec("numba", choices=BACKENDS)
    device: str = spec("auto", choices=DEVICES)
    seed: int = spec(0, min=0)
    widths: list[int] = spec([32, 64, 128], min=2, nonempty=True)
    depths: list[int] = spec([2, 4, 8, 16, 32, 64, 128, 256, 512], min=1, nonempty=True)
    seeds: int = spec(4, min=2, doc="independent initialisations per (width, depth)")
    n_inputs: int = spec(8, min=1, max=256, doc="digits test images fed at initialisation")
    activation: str = spec("relu", choices=ACTIVATIONS)
    contrast_activation: str = spec("tanh", choices=ACTIVATIONS + ("none",))
    classic: bool = spec(True, doc="also run the classic block φ(h + branch)")
    dtype: str = spec("float32", choices=DTYPES)
    train_width: int = spec(64, min=2)
    train_depths: list[int] = spec([4, 16, 64, 256], min=1, nonempty=True)
    train_seeds: int = spec(3, min=1)
    eta_c: float = spec(0.5, gt=0, doc="effective learning rate (η = η_c·n)")
    epochs: int = spec(10, min=1)
    batch: int = spec(128, min=1)
    eval_every: int = spec(4, min=1)
    executor: str = spec("serial")

    PROFILE_DEFAULTS = {
        "smoke": {"widths": [16, 32], "depths": [2, 4, 8, 16], "seeds": 2, "n_inputs": 4,
                  "train_width": 16, "train_depths": [2, 8], "train_seeds": 2, "epochs": 1,
                  "eval_every": 2},
        "book": {},
        "paper": {"widths": [128, 256, 512], "depths": [2 ** k for k in range(1, 11)],
                  "seeds": 8, "n_inputs": 16, "train_width": 256,
                  "train_depths": [4, 16, 64, 256], "train_seeds": 5, "epochs": 30},
    }

    def check(self) -> None:
        check_executor(self.executor)
        if len(set(self.depths)) < 3:
            raise ParamError("parameter 'depths' needs at least 3 different depths (growth-law "
                             f"fits with confidence intervals); got {self.depths}")
        if self.contrast_activation == self.activation:
            raise ParamError("parameter 'contrast_activation' must differ from 'activation' "
                             f"({self.activation!r}); allowed: another activation or 'none'")
        for width, depth in ((max(self.widths), max(self.depths)),
                             (self.train_width, max(self.train_depths))):
            NetworkSpec.build(arch="post_act", width=width, depth=depth, d=64, n_out=10,
                              backend=self.backend, dtype=self.dtype, device=self.device)
        itemsize = 4 if self.dtype == "float32" else 8
        require_memory(3 * itemsize * max(self.depths) * max(self.widths) ** 2,
                       f"three copies of the weights at width {max(self.widths)}, depth {max(self.depths)}")

    @property
    def activations(self) -> list[str]:
        return [self.activation] + ([] if self.contrast_activation == "none" else [self.contrast_activation])


def _stats(hs) -> dict:
    """Per layer: coordinate mean m, mean over inputs of σ = |h|/√n, and q = mean |h|²/n."""
    h = np.asarray(hs, dtype=np.float64)
    qb = np.mean(h * h, axis=2)
    return {"m": h.mean(axis=(1, 2)), "sig": np.sqrt(qb).mean(axis=1), "q": qb.mean(axis=1)}


def compute_init(width: int, depth: int, seed: tuple, X: np.ndarray, acts: list, classic: bool,
                 backend: str, device: str, dtype: str) -> dict:
    """One grid point: both designs (and the classic block) on the same draws of U, W."""
    spec0 = NetworkSpec.build(arch="post_act", width=width, depth=depth, d=X.shape[1],
                              backend=backend, dtype=dtype, device=device)
    w = init_weights(spec0, np.random.default_rng(list(seed)))
    rec = {}
    with np.errstate(over="ignore", invalid="ignore"):
        for act in acts:
            for arch in ARCHS:
                net = Network(spec0.replace(arch=arch, activation=act), weights=w)
                rec[f"{arch}/{act}"] = _stats(net.forward(X).numpy("hs"))
            if classic:
                be = get_backend(backend)
                U, W, Xb = (be.asarray(a, dtype, device) for a in (w["U"], w["W"], X))
                rec[f"classic/{act}"] = _stats(be.to_numpy(classic_forward(backend, U, W, Xb, act)))
    return rec


def compute_train(arch: str, act: str, width: int, depth: int, seed: int, data_seed: int,
                  eta_c: float, epochs: int, batch: int, eval_every: int, backend: str,
                  device: str, dtype: str) -> dict:
    """One training run (Fig. 4 b, c); pre and post with the same seed share U, W, V."""
    data = load("digits", seed=data_seed)
    spec_ = NetworkSpec.build(arch=arch, width=width, depth=depth, activation=act, d=data.d,
                              n_out=data.n_classes, backend=backend, dtype=dtype, device=device)
    net = Network(spec_, rng=np.random.default_rng([data_seed, seed, width, depth]))
    hist = train(net, data.X_train, data.y_train, eta_c=eta_c, epochs=epochs, batch=batch,
                 loss="cross_entropy", X_test=data.X_test, Y_test=data.y_test,
                 eval_every=eval_every, rng=seed)
    return hist.as_dict()


def run(p: P31Params, store) -> dict:
    """The initialisation grid (widths × depths × seeds) and the training runs, each point
    stored as it finishes; returns per-cell end statistics (m_L, q_L, m_0, m_1, q_0, Σσ_ℓ,
    max σ_ℓ per seed), the per-layer profiles at the largest width, and the loss curves."""
    X = load("digits", seed=p.seed).X_test[:p.n_inputs]
    widths, depths = sorted(set(p.widths)), sorted(set(p.depths))
    common = dict(X=X, acts=p.activations, classic=p.classic, backend=p.backend,
                  device=p.device, dtype=p.dtype)
    points = [(f"init_w{w}_L{L}_s{s}", dict(width=w, depth=L, seed=(p.seed, s, w, L), **common))
              for w in widths for L in depths for s in range(p.seeds)]
    recs = run_grid(store, points, compute_init, executor=p.executor, desc="P3.1 init")
    keys = list(recs[points[0][0]])
    cells, profiles = {}, {}
    for key in keys:
        grid = [[[recs[f"init_w{w}_L{L}_s{s}"][key] for s in range(p.seeds)] for L in depths]
                for w in widths]
        cells[key] = {name: [[[f(r) for r in seeds] for seeds in row] for row in grid]
                      for name, f in (("mL", lambda r: r["m"][-1]), ("qL", lambda r: r["q"][-1]),
                                      ("m0", lambda r: r["m"][0]), ("m1", lambda r: r["m"][1]),
                                      ("q0", lambda r: r["q"][0]),
                                      ("sig_sum", lambda r: float(np.sum(r["sig"][:-1]))),
                                      ("sig_max", lambda r: float(np.nanmax(r["sig"]))))}
        profiles[key] = {str(L): {s: np.mean([r[s] for r in grid[-1][i]], axis=0).tolist()
                                  for s in ("m", "q")} for i, L in enumerate(depths)}
    tpoints = [(f"train_{arch}_L{L}_s{s}",
                dict(arch=arch, act=p.activation, width=p.train_width, depth=L, seed=s,
                     data_seed=p.seed, eta_c=p.eta_c, epochs=p.epochs, batch=p.batch,
                     eval_every=p.eval_every, backend=p.backend, device=p.device, dtype=p.dtype))
               for arch in ARCHS for L in sorted(set(p.train_depths)) for s in range(p.train_seeds)]
    trecs = run_grid(store, tpoints, compute_train, executor=p.executor, desc="Fig. 4 training")
    train_data = {arch: {str(L): [trecs[f"train_{arch}_L{L}_s{s}"] for s in range(p.train_seeds)]
                         for L in sorted(set(p.train_depths))} for arch in ARCHS}
    return {"widths": widths, "depths": depths, "keys": keys, "cells": cells,
            "profiles": profiles, "train": train_data}


EXPERIMENT = Experiment(NAME, "P3.1 / Fig. 4: post- vs pre-activation ResNets, feature growth "
                        "with depth at init and SGD training", P31Params, run, check, plot)
