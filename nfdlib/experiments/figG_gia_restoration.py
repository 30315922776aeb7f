"""Appendix G, Fig. 2 (width 128) and Fig. 5 (width 256): GIA restoration in training.

For each architecture of MATH.md §1 (``vanilla``, ``mup_resnet``, ``depth_mup``), each
depth L and each seed, two networks are trained by mini-batch SGD (Eq. 2, η = η_c·n,
batch 128, softmax cross-entropy on K = 10 classes) on the same batches in the same order:

- *reused* (standard backprop): the backward pass (Eq. 3) uses B_ℓ = W_ℓ;
- *decoupled*: it uses B_ℓ = W̃_ℓ + ΔW_ℓ with W̃_ℓ an independent copy (MATH.md §2).

The same seed gives both networks the same U, W_ℓ, V (only W̃ is extra), so the two loss
curves differ only through the forward–backward weight coupling that the Gradient
Independence Assumption (GIA) drops. The *alignment gap* of a pair is

    gap = (1/T) Σ_{t} |ℓ_reused(t) − ℓ_decoupled(t)|

over the T evaluation points (every ``eval_every`` steps) of the training-loss curve
(``gap_train``, the running mean of the last ``eval_every`` batch losses) and of the test-loss
curve (``gap_test``), plus the final test-loss difference. A control (``baseline``) trains a
second decoupled network whose copy W̃ is drawn afresh: the gap between the two decoupled
runs (``noise_train``) is the finite-width fluctuation that the backward weights cause even
when GIA holds exactly, the floor below which no gap can fall at width n. The paper's reading (App. G;
Thm. 5.6 / Cor. 5.7: the omitted coupling is of higher order in 1/L under depth-µP) is that
the gap shrinks with depth under depth-µP and not for the other two architectures; the
check fits ``gap_train ≈ c·L^s`` over depths and seeds and classifies each architecture.
"""
from __future__ import annotations

import contextlib
import functools
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import numpy as np

from .. import claims
from ..data import load
from ..executor import check_executor, run_grid
from ..metrics import mean_se, power_law_fit
from ..model import BACKENDS, DEVICES, DTYPES, NetworkSpec, init_weights
from ..network import Network
from ..params import ParamError, Params, require_memory, spec
from ..training import train
from . import Experiment, save_figure

NAME = "figG_gia_restoration"
ARCHS = ("vanilla", "mup_resnet", "depth_mup")
MODES = ("reused", "decoupled")
BASELINE = "decoupled_alt"  # a second decoupled network with an independent copy W̃
DATASETS = ("digits", "cifar10", "mnist")
ARCH_TITLES = {"vanilla": "vanilla DNN", "mup_resnet": "ResNet, µP",
               "depth_mup": "ResNet, depth-µP"}
FIGURE_OF_WIDTH = {128: ("F2", "fig2"), 256: ("F5", "fig5")}
FLAT_BOUND = -0.5  # a gap ∝ L^s with s ≤ -1/2 (half of Cor. 5.7's rate) would count as shrinking


@dataclass(frozen=True)
class GIAParams(Params):
    profile: str = spec("book")
    backend: str = spec("numba", choices=BACKENDS)
    device: str = spec("auto", choices=DEVICES)
    dtype: str = spec("float32", choices=DTYPES)
    seed: int = spec(0, min=0, doc="first seed; run i uses seed + i; also fixes the data split")
    n_seeds: int = spec(2, min=1)
    archs: list[str] = spec(list(ARCHS), choices=ARCHS, nonempty=True)
    widths: list[int] = spec([128, 256], min=1, nonempty=True)
    depths: list[int] = spec([2, 8, 32], min=1, nonempty=True)
    eta_c: float = spec(1.0, gt=0, doc="effective learning rate, η = η_c·n")
    epochs: int = spec(3, min=1)
    batch: int = spec(128, min=1)
    eval_every: int = spec(4, min=1, doc="steps between evaluations on the test split")
    activation: str = spec("tanh", choices=("tanh", "relu", "linear"))
    dataset: str = spec("digits", choices=DATASETS)
    data_folder: Optional[str] = spec(None, doc="folder of the CIFAR-10 / MNIST binary files")
    n_train: Optional[int] = spec(None, min=1, doc="training subset (None: all)")
    n_test: Optional[int] = spec(None, min=1, doc="test subset (None: all)")
    baseline: bool = spec(True, doc="also train a second decoupled copy (the noise floor)")
    executor: str = spec("serial")
    threads: int = spec(1, min=1, doc="CPU threads per training run (BLAS, numba, torch)")
    blowup: float = spec(1e3, gt=0, doc="an evaluated loss above this counts as divergence")

    PROFILE_DEFAULTS = {
        "smoke": {"widths": [128, 256], "depths": [2, 4, 8], "n_seeds": 1, "epochs": 1,
                  "n_train": 512, "n_test": 128, "eval_every": 2},
        "book": {},
        "paper": {"depths": [2, 8, 32, 128, 512], "n_seeds": 3, "epochs": 20, "eval_every": 10},
    }

    def check(self) -> None:
        check_executor(self.executor)
        if self.dataset == "digits" and self.data_folder is not None:
            raise ParamError("parameter 'data_folder' is only used with dataset 'cifar10' or "
                             "'mnist'; allowed with 'digits': None")
        if self.dataset != "digits":
            if self.data_folder is None:
                raise ParamError(f"parameter 'data_folder' must name the folder of the "
                                 f"{self.dataset} files for dataset {self.dataset!r}")
            if not Path(self.data_folder).is_dir():
                raise ParamError(f"parameter 'data_folder' = {self.data_folder!r} is not an "
                                 "existing folder")
        if len(set(self.depths)) != len(self.depths) or len(set(self.widths)) != len(self.widths):
            raise ParamError("parameters 'depths' and 'widths' must not repeat values")
        d = 64 if self.dataset == "digits" else (3072 if self.dataset == "cifar10" else 784)
        for width in self.widths:  # validates sizes and the weights' memory
            self.spec_for("depth_mup", "decoupled", width, max(self.depths), d)
        itemsize = 4 if self.dtype == "float32" else 8
        # forward/backward activations of one batch (h, x, g, δ) and of a 512-row test batch
        acts = itemsize * (max(self.depths) + 1) * max(self.widths) * 4 * max(self.batch, 512)
        require_memory(acts, f"activations of depth {max(self.depths)} and width {max(self.widths)}")

    def spec_for(self, arch: str, backward: str, width: int, depth: int, d: int) -> NetworkSpec:
        return NetworkSpec.build(arch=arch, width=width, depth=depth, activation=self.activation,
                                 d=d, n_out=10, backward=backward, backend=self.backend,
                                 dtype=self.dtype, device=self.device)


@contextlib.contextmanager
def limited_threads(threads: int, backend: str):
    """Run with at most ``threads`` CPU threads in BLAS, numba and torch (restored after).
    On a shared CPU, one thread per run is far faster than oversubscribed pools; parallel
    runs come from ``executor='processes'``."""
    from threadpoolctl import threadpool_limits
    restore = []
    if backend == "numba":
        import numba
        old = numba.get_num_threads()
        numba.set_num_threads(min(threads, numba.config.NUMBA_NUM_THREADS))
        restore.append(lambda: numba.set_num_threads(old))
    if backend == "torch":
        import torch
        old_t = torch.get_num_threads()
        torch.set_num_threads(threads)
        restore.append(lambda: torch.set_num_threads(old_t))
    try:
        with threadpool_limits(limits=threads):
            yield
    finally:
        for undo in restore:
            undo()


@functools.lru_cache(maxsize=2)
def _data(dataset: str, seed: int, folder, n_train, n_test):
    return load(dataset, seed=seed, folder=folder, n_train=n_train, n_test=n_test)


def train_pair_member(arch: str, backward: str, width: int, depth: int, seed: int, *,
                      data_seed: int, dataset: str, data_folder, n_train, n_test, eta_c: float,
                      epochs: int, batch: int, eval_every: int, activation: str, backend: str,
                      dtype: str, device: str, threads: int, blowup: float = 1e3) -> dict:
    """One training run (a grid point): the network of ``seed`` (weights drawn by
    :func:`nfdlib.model.init_weights`, so both backward modes share U, W, V) trained by
    mini-batch SGD on batches ordered by the generator of ``(seed, 1)`` (the same order for
    both modes). ``backward`` is ``reused``, ``decoupled`` or ``decoupled_alt`` (W̃ drawn
    from the generator of ``(seed, 2)``). A non-finite loss, or an evaluated loss above
    ``blowup``, is a divergence: the curves stop before it and (step, reason) is recorded.
    Returns the loss curves and the divergence record."""
    data = _data(dataset, data_seed, data_folder, n_train, n_test)
    mode = "reused" if backward == "reused" else "decoupled"
    spec_ = NetworkSpec.build(arch=arch, width=width, depth=depth, activation=activation,
                              d=data.d, n_out=10, backward=mode, backend=backend,
                              dtype=dtype, device=device)
    with limited_threads(threads, backend):
        weights = None
        if backward == BASELINE:
            weights = init_weights(spec_, np.random.default_rng(seed))
            weights["B"] = init_weights(spec_, np.random.default_rng([seed, 2]))["B"]
        net = Network(spec_, rng=np.random.default_rng(seed), weights=weights)
        hist = train(net, data.X_train, data.y_train, eta_c=eta_c, epochs=epochs, batch=batch,
                     loss="cross_entropy", X_test=data.X_test, Y_test=data.y_test,
                     eval_every=eval_every, rng=np.random.default_rng([seed, 1]))
    rec = _blowup(hist.as_dict(), blowup)
    ok = rec["diverged_at"] is None
    rec["final_train_loss"] = rec["train_loss"][-1] if ok and rec["train_loss"] else None
    rec["final_test_loss"] = rec["test_loss"][-1] if ok and rec["test_loss"] else None
    return rec


def _blowup(rec: dict, blowup: float) -> dict:
    """Cut the curves at the first evaluation whose training or test loss exceeds
    ``blowup`` (cross-entropy starts at ln 10 ≈ 2.3; tanh keeps a blown-up loss finite)."""
    for i, (a, b) in enumerate(zip(rec["train_loss"], rec["test_loss"])):
        if max(a, b) > blowup:
            step = rec["steps"][i]
            for key in ("steps", "train_loss", "test_loss", "test_accuracy"):
                rec[key] = rec[key][:i]
            rec["diverged_at"], rec["reason"] = step, f"loss above {blowup:g}"
            break
    return rec


def point_name(arch: str, backward: str, width: int, depth: int, seed: int) -> str:
    return f"{arch}_{backward}_n{width}_L{depth}_s{seed}"


def grid(p: GIAParams) -> list[tuple[str, dict]]:
    """The sweep, cheapest runs first: (name, keyword arguments) per training run."""
    common = dict(data_seed=p.seed, dataset=p.dataset, data_folder=p.data_folder,
                  n_train=p.n_train, n_test=p.n_test, eta_c=p.eta_c, epochs=p.epochs,
                  batch=p.batch, eval_every=p.eval_every, activation=p.activation,
                  backend=p.backend, dtype=p.dtype, device=p.device, threads=p.threads,
                  blowup=p.blowup)
    points = []
    for width in sorted(p.widths):
        for depth in sorted(p.depths):
            for arch in p.archs:
                for i in range(p.n_seeds):
                    for mode in MODES + ((BASELINE,) if p.baseline else ()):
                        kw = dict(arch=arch, backward=mode, width=width, depth=depth,
                                  seed=p.seed + i, **common)
                        points.append((point_name(arch, mode, width, depth, p.seed + i), kw))
    return points


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


def _gap(a, b) -> float:
    a, b = np.asarray(a, float), np.asarray(b, float)
    return float(np.mean(np.abs(a - b))) if a.size and a.size == b.size else float("nan")


def alignment(data: dict, p: GIAParams) -> list[dict]:
    """Per (width, architecture, depth): the reused/decoupled gaps of each seed (left out
    where a run of the pair diverged), the signed mean difference ℓ_decoupled − ℓ_reused of
    the training curves, the noise floor, their means and standard errors, and the
    divergences."""
    rows = []
    for width in sorted(p.widths):
        for arch in p.archs:
            for depth in sorted(p.depths):
                gtr, gte, gfin, sgn, noise, diverged = [], [], [], [], [], []
                for i in range(p.n_seeds):
                    s = p.seed + i
                    r = data["runs"][point_name(arch, "reused", width, depth, s)]
                    dcp = data["runs"][point_name(arch, "decoupled", width, depth, s)]
                    alt = data["runs"].get(point_name(arch, BASELINE, width, depth, s))
                    for mode, rec in (("reused", r), ("decoupled", dcp), (BASELINE, alt)):
                        if rec is not None and rec["diverged_at"] is not None:
                            diverged.append({"seed": s, "backward": mode,
                                             "step": rec["diverged_at"], "reason": rec["reason"]})
                    if r["diverged_at"] is None and dcp["diverged_at"] is None:
                        gtr.append(_gap(r["train_loss"], dcp["train_loss"]))
                        gte.append(_gap(r["test_loss"], dcp["test_loss"]))
                        gfin.append(abs(r["final_test_loss"] - dcp["final_test_loss"]))
                        sgn.append(float(np.mean(np.subtract(dcp["train_loss"], r["train_loss"]))))
                    if alt is not None and alt["diverged_at"] is None and dcp["diverged_at"] is None:
                        noise.append(_gap(alt["train_loss"], dcp["train_loss"]))
                row = {"width": width, "arch": arch, "depth": depth, "gap_train": gtr,
                       "gap_test": gte, "final_test_gap": gfin, "signed_train": sgn,
                       "noise_train": noise, "diverged": diverged}
                for key in ("gap_train", "gap_test", "final_test_gap", "signed_train", "noise_train"):
                    m, se = mean_se(row[key]) if row[key] else (np.nan, np.nan)
                    row[key + "_mean"], row[key + "_se"] = float(m), float(se)
                rows.append(row)
    return rows


def classify(rows: list[dict], key: str = "gap_train") -> dict:
    """How the gap of one (width, architecture) moves with depth: ``unstable`` if any run
    diverged; else a fit log gap = a + s·log L over all (depth, seed) pairs with a 95% CI on
    s: ``shrinks`` (CI < 0), ``grows`` (CI > 0), ``flat`` (CI contains 0 and excludes
    s ≤ FLAT_BOUND: no shrinking at any rate near Cor. 5.7's, under which the omitted coupling
    is O(1/L) in root mean square, s = -1), ``unclear`` (CI contains both 0 and FLAT_BOUND);
    ``too few`` with fewer than three points or two depths."""
    div = [d for r in rows for d in r["diverged"]]
    x = [r["depth"] for r in rows for _ in r[key]]
    y = [g for r in rows for g in r[key]]
    out = {"diverged_runs": len(div),
           "diverged_depths": sorted({r["depth"] for r in rows if r["diverged"]})}
    if div:
        out["trend"] = "unstable"
    pos = [(a, b) for a, b in zip(x, y) if b > 0]
    if len(pos) < 3 or len({a for a, _ in pos}) < 2:
        out.setdefault("trend", "too few")
        return out
    fit = power_law_fit([a for a, _ in pos], [b for _, b in pos])
    out.update(slope=fit.slope, slope_ci=list(fit.slope_ci), r2=fit.r2, points=fit.n)
    if "trend" not in out:
        lo, hi = fit.slope_ci
        out["trend"] = ("shrinks" if hi < 0 else "grows" if lo > 0
                        else "flat" if lo > FLAT_BOUND else "unclear")
    return out


def verdict_of(trends: dict) -> str:
    """The paper's reading, per figure: the gap of depth-µP ``shrinks``; those of vanilla and
    µP ResNet do not (``unstable``, ``flat``, ``grows`` or ``unclear``). Reproduced: both
    parts; partly: depth-µP shrinks but another one too (or no other architecture ran);
    not reproduced: depth-µP flat, growing or unstable; inconclusive: too little data or
    an unclear depth-µP trend."""
    main = trends.get("depth_mup")
    others = [t for a, t in trends.items() if a != "depth_mup"]
    if main in (None, "too few", "unclear") or "too few" in others:
        return "inconclusive"
    if main == "shrinks":
        contrast = all(t != "shrinks" for t in others)
        return "reproduced" if contrast and others else "partly reproduced"
    return "not reproduced"


def check(data: dict, p: GIAParams) -> list[dict]:
    """Claims F2 (width 128) and F5 (width 256; other widths: F2's statement at that width)."""
    rows = alignment(data, p)
    records = []
    for width in sorted(p.widths):
        claim_id = FIGURE_OF_WIDTH.get(width, ("F2",))[0]
        per_arch = {a: classify([r for r in rows if r["width"] == width and r["arch"] == a])
                    for a in p.archs}
        per_arch_test = {a: classify([r for r in rows if r["width"] == width and r["arch"] == a],
                                     key="gap_test") for a in p.archs}
        trends = {a: c["trend"] for a, c in per_arch.items()}
        measured = {a: (f"{c['trend']}, s = {c['slope']:.2f} "
                        f"[{c['slope_ci'][0]:.2f}, {c['slope_ci'][1]:.2f}]" if "slope" in c
                        else c["trend"]) for a, c in per_arch.items()}
        records.append(claims.record(
            claim_id, verdict_of(trends), measured,
            "gap ∝ L^s: s < 0 for depth-µP; not shrinking (or unstable) for vanilla and µP ResNet",
            width=width, fits_train=per_arch, fits_test=per_arch_test,
            test_verdict=verdict_of({a: c["trend"] for a, c in per_arch_test.items()})))
    return records


# ---------------------------------------------------------------- figures

def _curves(data, p, arch, mode, width, depth, key):
    """Seed-mean curve of ``key``; it stops at the first evaluation any seed lacks
    (divergence), and ``diverged`` says whether one did."""
    recs = [data["runs"][point_name(arch, mode, width, depth, p.seed + i)] for i in range(p.n_seeds)]
    longest = max(recs, key=lambda r: len(r["steps"]))["steps"]
    ys = np.full((len(recs), len(longest)), np.nan)
    for i, r in enumerate(recs):
        ys[i, :len(r[key])] = r[key]
    mean = ys.mean(axis=0)
    ok = np.isfinite(mean)
    stop = int(np.argmin(ok)) if not ok.all() else len(mean)
    return np.asarray(longest[:stop]), mean[:stop], any(r["diverged_at"] is not None for r in recs)


def plot_losses(data: dict, p: GIAParams, width: int):
    """The paper's Fig. 2 (Fig. 5) layout: one column per architecture, training loss (top)
    and test loss (bottom) against the step; a colour per depth, solid reused, dashed
    decoupled; × marks where a run diverged (the curve stops there)."""
    import matplotlib.pyplot as plt
    depths = sorted(p.depths)
    colours = plt.cm.viridis(np.linspace(0.0, 0.9, len(depths)))
    fig, axes = plt.subplots(2, len(p.archs), figsize=(4.2 * len(p.archs), 6.4), squeeze=False,
                             sharex=True)
    for col, arch in enumerate(p.archs):
        for row, key in enumerate(("train_loss", "test_loss")):
            ax = axes[row, col]
            for colour, depth in zip(colours, depths):
                for mode, style in (("reused", "-"), ("decoupled", "--")):
                    x, y, div = _curves(data, p, arch, mode, width, depth, key)
                    label = f"L = {depth}" if mode == "reused" else None
                    if len(x):
                        ax.plot(x, y, style, color=colour, lw=1.4, label=label)
                    if div:
                        ax.plot(x[-1:] if len(x) else [0], y[-1:] if len(y) else [math.log(10)],
                                "x", color=colour, ms=9, mew=2)
            ax.set_yscale("log")
            ax.set_title(f"({'abc'[col]}) {ARCH_TITLES[arch]}" if row == 0 else "")
            ax.set_ylabel(("training" if row == 0 else "test") + " loss")
            if row == 1:
                ax.set_xlabel("SGD step")
    axes[0, 0].plot([], [], "k-", label="reused (standard)")
    axes[0, 0].plot([], [], "k--", label="decoupled")
    axes[0, 0].plot([], [], "kx", label="diverged")
    axes[0, 0].legend(fontsize=8)
    fig.suptitle(f"width n = {width}: standard vs decoupled backward ({p.dataset}, η_c = {p.eta_c:g})")
    fig.tight_layout()
    return fig


def plot_alignment(data: dict, p: GIAParams):
    """Gap between the reused and decoupled training-loss curves against depth (seed mean ±
    standard error), one line per architecture, one panel per width; dotted: the noise floor
    (gap between two decoupled copies); depths where a run diverged are marked on the top
    axis."""
    import matplotlib.pyplot as plt
    rows = alignment(data, p)
    widths = sorted(p.widths)
    fig, axes = plt.subplots(1, len(widths), figsize=(4.6 * len(widths), 3.8), squeeze=False)
    markers = {"vanilla": "s", "mup_resnet": "^", "depth_mup": "o"}
    for ax, width in zip(axes[0], widths):
        for arch in p.archs:
            rs = [r for r in rows if r["width"] == width and r["arch"] == arch]
            x = np.array([r["depth"] for r in rs], float)
            m = np.array([r["gap_train_mean"] for r in rs])
            se = np.array([r["gap_train_se"] for r in rs])
            line = ax.errorbar(x, m, yerr=se, marker=markers[arch], capsize=3, label=ARCH_TITLES[arch])
            floor = np.array([r["noise_train_mean"] for r in rs])
            if np.isfinite(floor).any():
                ax.plot(x, floor, ":", color=line[0].get_color(), lw=1.2)
            for r in rs:
                if r["diverged"]:
                    ax.plot([r["depth"]], [1.0], marker="x", color=line[0].get_color(), ms=10,
                            mew=2, transform=ax.get_xaxis_transform(), clip_on=False)
        ax.set_xscale("log", base=2)
        if any(v > 0 for r in rows if r["width"] == width for v in r["gap_train"]):
            ax.set_yscale("log")
        ax.set_xlabel("depth L")
        ax.set_title(f"width n = {width}")
    axes[0, 0].set_ylabel("mean |ℓ_reused − ℓ_decoupled| (training loss)")
    axes[0, 0].legend(fontsize=8, title="dotted: two decoupled copies\n× at top: a run diverged",
                      title_fontsize=7)
    fig.tight_layout()
    return fig


def plot(data: dict, p: GIAParams, path=None):
    """The loss figure of the first width (Fig. 2 at n = 128); with ``path``, save every
    width's loss figure (fig2 for n = 128, fig5 for n = 256, figG_n<width> otherwise) and
    the alignment figure (figG_alignment), as .pdf and .png."""
    figs = {FIGURE_OF_WIDTH.get(w, (None, f"figG_n{w}"))[1]: plot_losses(data, p, w)
            for w in sorted(p.widths)}
    figs["figG_alignment"] = plot_alignment(data, p)
    for name, fig in figs.items():
        save_figure(fig, path, name)
    import matplotlib.pyplot as plt
    first = next(iter(figs))
    for name, fig in figs.items():
        if name != first:
            plt.close(fig)
    return figs[first]


EXPERIMENT = Experiment(NAME, "App. G, Figs. 2 and 5: standard vs decoupled-backward training "
                        "across depth (GIA restoration)", GIAParams, run, check, plot)
