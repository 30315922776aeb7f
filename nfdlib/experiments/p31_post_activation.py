"""P3.1 and Fig. 4: pre- vs post-activation ResNets at initialisation and in training.

At initialisation, for the post-activation design (Eq. 29, ``post_act``) and the paper's
pre-activation design (Eq. 1, ``depth_mup``) with the same weights, the coordinate mean
``m_ℓ`` and second moment ``q_ℓ = |h_ℓ|²/n`` of every layer, over a grid of widths, depths
and seeds (inputs: digits test images, |ξ|² = d); the same for a contrast activation
(default tanh, which fails positive dominance) and for the classic block
``h_ℓ = φ(h_{ℓ-1} + W_ℓ h_{ℓ-1}/√(nL))`` (:mod:`.p31_classic`). Then mini-batch SGD
(Eq. 2, η = η_c·n, cross-entropy, batch 128) of both designs on digits (Fig. 4 b, c).

The check compares the runs with the bounds of :mod:`.p31_theory`: (B.1) the drift bound
with the run's own σ's, the proposition's recursion from layer 1, (B.2) the uniform bound of
the pre-activation design, and fits the candidate growth laws of E[h_L] and |h_L|²/n.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy import stats

from .. import claims
from ..backends import get_backend
from ..data import load
from ..executor import check_executor, run_grid
from ..metrics import mean_se
from ..model import ACTIVATIONS, BACKENDS, DEVICES, DTYPES, NetworkSpec, init_weights
from ..network import Network
from ..params import ParamError, Params, require_memory, spec
from ..training import train
from . import Experiment
from .p31_classic import classic_forward
from .p31_theory import fit_growth, lipschitz, mean_field, positive_dominance

NAME = "p31_post_activation"
ARCHS = ("post_act", "depth_mup")
LEVEL = 0.05  # family-wise level of the one-sided bound tests (Bonferroni over depths)


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


# ---------------------------------------------------------------------------- the check
def _arr(cell, name):
    return np.asarray(cell[name], dtype=float)  # widths × depths × seeds (None → nan)


def _holds(diff: np.ndarray) -> np.ndarray:
    """One-sided t-tests, per depth, of H0 'E diff ≥ 0' (``diff``: widths × depths × seeds;
    the samples of all widths pooled, each width obeying the bound), Bonferroni over the
    depths at family level LEVEL: False where the mean is significantly negative."""
    per_depth = np.moveaxis(diff, 1, 0).reshape(diff.shape[1], -1)
    mean, se = mean_se(per_depth, axis=-1)
    t = stats.t.ppf(1 - LEVEL / diff.shape[1], per_depth.shape[-1] - 1)
    return np.isfinite(mean) & (mean + t * se >= 0)


def bounds(data: dict, key: str, act: str) -> dict:
    """(B.1) m_L ≥ m_0 + (a Σ_{ℓ<L} σ_ℓ + bL)/√L and the proposition's recursion from layer
    1, m_L ≥ (1 + a/√L)^{L-1} m_1 + (b/a)((1 + a/√L)^{L-1} - 1), per (width, depth) cell,
    with a, b computed for ``act`` over the σ's of the run."""
    c = data["cells"][key]
    L = np.asarray(data["depths"], float)[None, :, None]
    sig_max = float(np.nanmax(_arr(c, "sig_max")))
    pd = positive_dominance(act, sig_max if np.isfinite(sig_max) else 1e6)
    a, b = pd["a"], pd["b"]
    mL, m0, m1 = _arr(c, "mL"), _arr(c, "m0"), _arr(c, "m1")
    drift = m0 + (a * _arr(c, "sig_sum") + b * L) / np.sqrt(L)
    grow = (1 + a / np.sqrt(L)) ** (L - 1)
    recur = grow * m1 + ((b / a) * (grow - 1) if a > 0 else b * (L - 1) / np.sqrt(L))
    ok_drift, ok_recur = _holds(mL - drift), _holds(mL - recur)
    return {"a": a, "b": b, "positive_dominance": pd["holds"],
            "drift_ok": bool(ok_drift.all()), "recursion_ok": bool(ok_recur.all()),
            "drift_ratio": (mL.mean(-1) / drift.mean(-1)).tolist(),
            "recursion_ratio": (mL.mean(-1) / recur.mean(-1)).tolist(),
            "closed_form_at_Lmax": _closed_form(a, b, float(L.max()))}


def _closed_form(a: float, b: float, L: float) -> float:
    """The proposition's bound from E h_0 = 0: (b/a)((1 + a/√L)^L - 1) (b√L when a = 0)."""
    return b * math.sqrt(L) if a == 0 else b / a * ((1 + a / math.sqrt(L)) ** L - 1)


def pre_bound(data: dict, key: str, act: str) -> dict:
    """(B.2) E[q_L | h_0] ≤ e^{K²} q_0 for every L (φ(0) = 0, K = Lipschitz constant of φ),
    hence E log(q_L/q_0) ≤ K²: tested per depth on log(q_L/q_0) (Jensen keeps the test valid)."""
    c = data["cells"][key]
    K = lipschitz(act)
    qL, q0 = _arr(c, "qL"), _arr(c, "q0")
    with np.errstate(divide="ignore", invalid="ignore"):
        ok = _holds(K * K - np.log(qL / q0))
    return {"K": K, "ok": bool(ok.all()), "max_ratio": float(np.nanmax(qL.mean(-1) / q0.mean(-1))),
            "bound_ratio": math.exp(K * K)}


def divergence(data: dict, key: str, act: str) -> dict:
    """Growth of m_L and q_L with L at the largest width: growth-law fits (log y against
    log L and against √L) and the test 'm_L grows (stretched-exp slope CI > 0) and leaves the
    uniform pre-activation bound √(e^{K²} q_0)'."""
    c = data["cells"][key]
    depths = data["depths"]
    mL, qL, q0 = _arr(c, "mL")[-1], _arr(c, "qL")[-1], _arr(c, "q0")[-1]
    m, m_se = mean_se(mL, axis=-1)
    q, q_se = mean_se(qL, axis=-1)
    fits = {"mean": fit_growth(depths, m, m_se), "sq_norm": fit_growth(depths, q, q_se)}
    se = fits["mean"]["stretched_exp"]
    escapes = bool(m[-1] > math.sqrt(math.exp(lipschitz(act) ** 2) * np.nanmean(q0)))
    grows = bool(se is not None and se["all"]["n"] == len(depths) and se["all"]["slope_ci"][0] > 0)
    mf = np.array([mean_field(act, "post_act", L, q0=float(np.nanmean(q0[i])))[0][-1]
                   for i, L in enumerate(depths)])
    return {"diverges": grows and escapes, "grows": grows, "escapes_pre_bound": escapes,
            "mL": m.tolist(), "mL_se": m_se.tolist(), "qL": q.tolist(), "fits": fits,
            "mean_field_mL": mf.tolist(), "ratio_to_mean_field": [x / y if y != 0 else None for x, y in zip(m, mf)]}


def _supported(fits: dict) -> list[str]:
    return [name for name, f in fits.items() if f is not None and f.get("one_law")]


def _rates(fits: dict, a: float) -> dict:
    """Upper-half slopes of log E[h_L] and log(|h_L|²/n) against √L, and whether their CIs
    contain a and 2a (the rate e^{a√L} that MATH.md's argument gives when (B.1) is tight)."""
    out = {}
    for name, target in (("mean", a), ("sq_norm", 2 * a)):
        upper = (fits[name]["stretched_exp"] or {}).get("upper")
        out[name] = None if upper is None else {
            "slope": upper["slope"], "ci": upper["slope_ci"], "predicted": target,
            "consistent": upper["slope_ci"][0] <= target <= upper["slope_ci"][1]}
    return out


def training_summary(data: dict) -> dict:
    """Final test loss (mean ± SE over seeds; a diverged run counts as +inf) and the number
    of diverged runs, per design and training depth."""
    out = {}
    for arch, by_depth in data["train"].items():
        out[arch] = {}
        for L, runs in by_depth.items():
            final = np.array([r["test_loss"][-1] if r["diverged_at"] is None and r["test_loss"]
                              else np.inf for r in runs])
            ok = final[np.isfinite(final)]
            out[arch][L] = {"diverged": int(np.sum(~np.isfinite(final))), "runs": len(runs),
                            "final_test": float(ok.mean()) if ok.size else None,
                            "final_test_se": float(mean_se(ok)[1]) if ok.size > 1 else None}
    return out


def check(data: dict, params: P31Params) -> list:
    act = params.activation
    post, pre = f"post_act/{act}", f"depth_mup/{act}"
    bd = bounds(data, post, act)
    pb = pre_bound(data, pre, act)
    dv = divergence(data, post, act)
    laws = {k: _supported(v) for k, v in dv["fits"].items()}
    mfits = dv["fits"]["mean"]["stretched_exp"]
    measured = {"a": bd["a"], "b": bd["b"], "drift_bound_holds": bd["drift_ok"],
                "recursion_bound_holds": bd["recursion_ok"],
                "post_mL_at_Lmax": dv["mL"][-1], "post_grows": dv["grows"],
                "post_leaves_pre_bound": dv["escapes_pre_bound"],
                "pre_bounded": pb["ok"], "pre_max_qL_over_q0": pb["max_ratio"],
                "stretched_slope_mean": mfits["all"]["slope"] if mfits else None,
                "stretched_slope_mean_ci": mfits["all"]["slope_ci"] if mfits else None,
                "laws_supported": laws, "asymptotic_rate": _rates(dv["fits"], bd["a"])}
    expected = ("post-act: E[h_L] ≥ bound from the run's σ's and grows ~ e^{a√L}; "
                f"pre-act: |h_L|²/n ≤ e^(K²)|h_0|²/n = {pb['bound_ratio']:.3g}·q0 for all L")
    if not bd["positive_dominance"]:
        verdict = "inconclusive"
        note = f"{act} fails positive dominance (a = b = 0): the proposition says nothing"
    elif not (bd["drift_ok"] and bd["recursion_ok"]) or not dv["diverges"]:
        verdict, note = "not reproduced", "a bound is violated or the post-act mean does not diverge"
    elif not pb["ok"]:
        verdict, note = "partly reproduced", "post-act diverges but pre-act exceeds its uniform bound"
    else:
        verdict, note = "reproduced", "post-act diverges above the proposition's bound; pre-act bounded"
    recs = [claims.record("P3.1", verdict, measured, expected, note=note, activation=act,
                          bounds=bd, pre=pb, divergence=dv)]
    tr = training_summary(data)
    deepest = str(max(int(L) for L in tr["post_act"]))
    post_t, pre_t = tr["post_act"][deepest], tr["depth_mup"][deepest]
    post_worse = post_t["diverged"] > pre_t["diverged"] or (
        pre_t["final_test"] is not None and post_t["final_test"] is not None
        and post_t["final_test"] - (post_t["final_test_se"] or 0)
        > pre_t["final_test"] + (pre_t["final_test_se"] or 0))
    fv = ("reproduced" if dv["diverges"] and post_worse else
          "partly reproduced" if dv["diverges"] or post_worse else "not reproduced")
    fnote = (f"features {'diverge' if dv['diverges'] else 'do not diverge'}; at L = {deepest} "
             f"post-act {'is' if post_worse else 'is not'} less stable in training "
             f"({post_t['diverged']}/{post_t['runs']} vs {pre_t['diverged']}/{pre_t['runs']} diverged)")
    recs.append(claims.record("F4", fv, {"features_diverge": dv["diverges"],
                                         "post_less_stable_at_L": {deepest: bool(post_worse)},
                                         "training": tr},
                              "post-act feature norms diverge with depth; pre-act trains more stably",
                              note=fnote))
    return recs


def plot(data, params, path=None):
    """Fig. 4 (see :mod:`.p31_plot`)."""
    from .p31_plot import plot as _plot
    return _plot(data, params, path)


EXPERIMENT = Experiment(NAME, "P3.1 / Fig. 4: post- vs pre-activation ResNets, feature growth "
                        "with depth at init and SGD training", P31Params, run, check, plot)
