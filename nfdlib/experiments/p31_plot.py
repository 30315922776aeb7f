"""Figures of the P3.1 chapter: Fig. 4 (feature norms vs depth; training and test loss of
pre- vs post-activation) and the per-layer profiles with the growth-law fit."""
from __future__ import annotations

import numpy as np

from ..metrics import mean_se
from . import save_figure
from .p31_check import divergence

STYLE = {"depth_mup": ("C0", "-", "pre-activation (Eq. 1)"),
         "post_act": ("C3", "--", "post-activation (Eq. 29)")}


def _save(fig, path, name):
    save_figure(fig, path, name, dpi=150)


def _norms(data, key):
    """√(|h_L|²/n) per depth at the largest width: mean and SE over seeds."""
    q = np.asarray(data["cells"][key]["qL"], dtype=float)[-1]
    return mean_se(np.sqrt(q), axis=-1)


def _cap(runs_by_arch, what) -> float:
    """10 × the largest loss of the runs that did not diverge: the top of panels (b), (c)."""
    finite = [v for by_depth in runs_by_arch.values() for runs in by_depth.values()
              for r in runs if r["diverged_at"] is None for v in r[what]]
    return 10 * max(finite) if finite else np.inf


def _curves(ax, runs, what, colour, ls, label, cap):
    """Mean ± SE over the seeds still running at each evaluation. A diverged run ends at its
    last finite evaluation, marked ×; when that value lies above ``cap`` (or the run diverged
    before its first evaluation) the × sits at the top edge of the panel."""
    steps = np.asarray(max(runs, key=lambda r: len(r["steps"]))["steps"])
    vals = np.full((len(runs), len(steps)), np.nan)
    for i, r in enumerate(runs):
        vals[i, :len(r[what])] = r[what]
    vals[vals > cap] = np.nan
    alive = np.sum(np.isfinite(vals), axis=0)
    keep = alive > 0
    cols = vals[:, keep]
    mean = np.array([np.mean(c[np.isfinite(c)]) for c in cols.T])
    se = np.array([mean_se(c[np.isfinite(c)])[1] for c in cols.T])
    diverged = sum(r["diverged_at"] is not None for r in runs)
    ax.plot(steps[keep], mean, ls, color=colour,
            label=label + (f" ({diverged}/{len(runs)} diverged)" if diverged else ""))
    ax.fill_between(steps[keep], mean - se, mean + se, color=colour, alpha=0.2)
    for r in runs:
        if r["diverged_at"] is None:
            continue
        if r[what] and r[what][-1] <= cap:
            ax.plot([r["steps"][len(r[what]) - 1]], [r[what][-1]], "x", color=colour, ms=9, mew=2)
        else:
            x = r["steps"][len(r[what]) - 1] if r[what] else r["diverged_at"]
            ax.plot([x], [0.97], "x", color=colour, ms=9, mew=2,
                    transform=ax.get_xaxis_transform(), clip_on=False)


def plot(data, params, path=None):
    """Fig. 4: (a) feature norm √(|h_L|²/n) vs depth at init (largest width; contrasts in
    grey), (b) training loss and (c) test loss during SGD, pre vs post."""
    import matplotlib.pyplot as plt
    act = params.activation
    fig, axes = plt.subplots(1, 3, figsize=(15, 4.2))
    ax = axes[0]
    L = np.asarray(data["depths"])
    for arch in ("depth_mup", "post_act"):
        colour, ls, label = STYLE[arch]
        m, se = _norms(data, f"{arch}/{act}")
        ax.errorbar(L, m, yerr=se, fmt="o" + ls, color=colour, label=f"{label}, {act}")
    dv = divergence(data, f"post_act/{act}", act)
    ax.plot(L, dv["mL"], "^:", color="C3", label=f"post-activation E[h_L], {act}")
    ax.plot(L, dv["mean_field_mL"], "-", color="k", lw=0.8, label="mean-field E[h_L] (n → ∞)")
    for key, (colour, marker) in {f"post_act/{params.contrast_activation}": ("0.45", "s"),
                                  f"classic/{act}": ("C2", "d")}.items():
        if key in data["cells"]:
            m, se = _norms(data, key)
            name = "classic φ(h + branch)" if key.startswith("classic") else "post-activation"
            ax.errorbar(L, m, yerr=se, fmt=marker + ":", color=colour, ms=4,
                        label=f"{name}, {key.split('/')[1]} (contrast)")
    ax.set(xscale="log", yscale="log", xlabel="depth L", ylabel="|h_L|/√n at initialisation",
           title=f"(a) feature norms, width {data['widths'][-1]}")
    ax.legend(fontsize=7)
    depths = sorted(data["train"]["post_act"], key=int)
    shades = np.linspace(0.45, 1.0, len(depths))
    for ax, what, title in ((axes[1], "train_loss", "(b) training loss"),
                            (axes[2], "test_loss", "(c) test loss")):
        for arch in ("depth_mup", "post_act"):
            base, ls, label = STYLE[arch]
            cmap = plt.get_cmap("Blues" if arch == "depth_mup" else "Reds")
            for shade, Ld in zip(shades, depths):
                _curves(ax, data["train"][arch][Ld], what, cmap(shade), ls,
                        f"{label.split(' ')[0]}, L = {Ld}", _cap(data["train"], what))
        ax.set(yscale="log", xlabel="SGD step", ylabel="cross-entropy",
               title=f"{title} (η_c = {params.eta_c:g}, width {params.train_width})")
    axes[1].legend(fontsize=7, ncol=1, loc="upper right", title="× diverged (at the top: off scale)",
                   title_fontsize=7)
    fig.tight_layout()
    _save(fig, path, "fig4")
    return fig


def plot_profiles(data, params, path=None):
    """Per-layer E[h_ℓ] against ℓ/L (largest width, seed mean) for both designs, and
    log E[h_L] against √L with the stretched-exponential fit and the mean-field recursion."""
    import matplotlib.pyplot as plt
    act = params.activation
    fig, axes = plt.subplots(1, 3, figsize=(15, 4))
    cmap = plt.get_cmap("viridis")
    depths = data["depths"]
    for ax, arch in zip(axes[:2], ("post_act", "depth_mup")):
        for i, L in enumerate(depths):
            m = np.asarray(data["profiles"][f"{arch}/{act}"][str(L)]["m"])
            ax.plot(np.arange(L + 1) / L, m, color=cmap(i / max(1, len(depths) - 1)), label=f"L = {L}")
        ax.set(xlabel="ℓ / L", ylabel="E[h_ℓ] (coordinate mean)", title=STYLE[arch][2])
        if arch == "post_act":
            ax.set_yscale("symlog", linthresh=1e-2)
        ax.legend(fontsize=6, ncol=2)
    ax = axes[2]
    dv = divergence(data, f"post_act/{act}", act)
    x = np.sqrt(depths)
    ax.errorbar(x, dv["mL"], yerr=dv["mL_se"], fmt="o", color="C3", label="measured E[h_L]")
    ax.plot(x, dv["mean_field_mL"], "-", color="k", lw=0.8, label="mean-field recursion")
    fit = dv["fits"]["mean"]["stretched_exp"]
    if fit is not None:
        f = fit["all"]
        ax.plot(x, np.exp(f["intercept"] + f["slope"] * x), "--", color="C1",
                label=f"fit log E[h_L] = c + s√L, s = {f['slope']:.3f}")
    ax.set(yscale="log", xlabel="√L", ylabel="E[h_L]", title="growth law (post-activation)")
    ax.legend(fontsize=7)
    fig.tight_layout()
    _save(fig, path, "fig4_profiles")
    return fig
