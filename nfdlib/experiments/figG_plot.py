"""App. G figures: the paper's Fig. 2 / Fig. 5 layout (losses against steps), the gap
against depth, and the rounding sensitivity (one-ulp twins) against steps."""
from __future__ import annotations

import math

import numpy as np

from . import save_figure
from .figG_check import INSENSITIVE, SENSITIVE, alignment
from .figG_grid import ARCH_TITLES, FIGURE_OF_WIDTH, GIAParams, point_name


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


def plot_sensitivity(data: dict, p: GIAParams):
    """Relative distance between each reused run and its one-ulp twin against the SGD step
    (step 0: initialisation), one panel per architecture, a colour per depth, every width
    and seed drawn; dashed lines: the stable and unstable thresholds of the G-stab check."""
    import matplotlib.pyplot as plt
    depths = sorted(p.depths)
    colours = plt.cm.viridis(np.linspace(0.0, 0.9, len(depths)))
    fig, axes = plt.subplots(1, len(p.archs), figsize=(4.2 * len(p.archs), 3.6), squeeze=False,
                             sharey=True)
    for ax, arch in zip(axes[0], p.archs):
        for colour, depth in zip(colours, depths):
            first = True
            for width in sorted(p.widths):
                for i in range(p.n_seeds):
                    rec = data["runs"][point_name(arch, "reused", width, depth, p.seed + i)]
                    dist = rec.get("twin_distance")
                    if not dist:
                        continue
                    steps = [0] + list(rec["steps"])[:len(dist) - 1]
                    y = [np.nan if d is None else max(d, 1e-12) for d in dist]
                    ax.plot(steps, y, "-" if width == min(p.widths) else "--", color=colour,
                            lw=1.1, label=f"L = {depth}" if first else None)
                    first = False
        for level in (INSENSITIVE, SENSITIVE):
            ax.axhline(level, color="0.5", ls=":", lw=1)
        ax.set_yscale("log")
        ax.set_xlabel("SGD step")
        ax.set_title(ARCH_TITLES[arch])
    axes[0, 0].set_ylabel("‖f − f_twin‖ / ‖f‖ (test set)")
    axes[0, 0].legend(fontsize=8, title=f"solid n = {min(p.widths)}, dashed wider",
                      title_fontsize=7)
    fig.tight_layout()
    return fig


def plot(data: dict, p: GIAParams, path=None):
    """The loss figure of the first width (Fig. 2 at n = 128); with ``path``, save every
    width's loss figure (fig2 for n = 128, fig5 for n = 256, figG_n<width> otherwise) and
    the alignment figure (figG_alignment) and, with twins, the sensitivity figure
    (figG_sensitivity), as .pdf and .png."""
    figs = {FIGURE_OF_WIDTH.get(w, (None, f"figG_n{w}"))[1]: plot_losses(data, p, w)
            for w in sorted(p.widths)}
    figs["figG_alignment"] = plot_alignment(data, p)
    if p.sensitivity:
        figs["figG_sensitivity"] = plot_sensitivity(data, p)
    for name, fig in figs.items():
        save_figure(fig, path, name)
    import matplotlib.pyplot as plt
    first = next(iter(figs))
    for name, fig in figs.items():
        if name != first:
            plt.close(fig)
    return figs[first]
