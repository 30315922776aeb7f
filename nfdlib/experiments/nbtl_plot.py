"""The figure of NB-TW, NB-TD, NB-TG (:mod:`.nb_true_limit_scaling`), in the layout of the
paper's Fig. 1 (error against width, error against depth), saved as
``fig1_true_limit.pdf``/``.png``."""
from __future__ import annotations

import numpy as np

from . import save_figure
from .nbtl_params import NBTLParams


def plot(data: dict, params: NBTLParams, path=None):
    """Top row, the paper's Fig. 1 layout: (a) width: true networks vs the true limit (solid),
    decoupled networks vs NFD (dashed) and true networks vs NFD (dotted) at each depth;
    (b) depth: weak and strong errors of the true-limit recursion to its fine-path solution,
    NFD's, and the one-step depth-limit equation integrated directly; (c) the gap true limit -
    NFD (RMS over the steps) against L with its L = ∞ extrapolation. Bottom row: (d) the gap per
    step at the largest depth; (e) the one-step gap over η_c (L = ∞) and the first-order
    formula; (f) the reuse coefficient Γ_t and A_t of the one-step depth limit."""
    import matplotlib.pyplot as plt
    fig, axs = plt.subplots(2, 3, figsize=(15, 8.2))
    ax = axs.ravel()
    w, dep, gap = data["width"], data["depth"], data["gap"]
    styles = (("true", "-", "o", "true net vs true limit"), ("nfd", "--", "s", "decoupled vs NFD"),
              ("true_vs_nfd", ":", "^", "true net vs NFD"))
    for i, L in enumerate(w["net_depths"]):
        col = f"C{i}"
        for tag, ls, mk, lab in styles:
            r = w[f"{tag}_L{L}"]
            ax[0].errorbar(r["widths"], r["f_err"], r["f_se"], color=col, ls=ls, marker=mk, ms=4,
                           mfc=col if tag == "true" else "none", label=f"L={L}: {lab}")
    n = np.array(w["widths"], float)
    e0 = w[f"true_L{w['net_depths'][0]}"]["f_err"][0]
    ax[0].plot(n, e0 * (n / n[0]) ** -0.5, "k:", lw=1, label="$n^{-1/2}$")
    ax[0].set(xscale="log", yscale="log", xlabel="width $n$", ylabel="RMS error of $f_s$ over the steps",
              title="(a) width, at fixed depth")
    Ls = np.array(dep["depths"], float)
    series = (("true_weak", "C3", "-", "o", "true limit: weak ($\\max_s|\\Delta f_s|$)"),
              ("true_strong", "C3", ":", "^", "true limit: strong ($h_L$ particles)"),
              ("nfd_weak", "0.5", "-", "o", "NFD: weak"),
              ("nfd_strong", "0.5", ":", "^", "NFD: strong"),
              ("cont_weak", "C2", "-", "D", "one step, direct: weak"),
              ("stein_weak", "C4", "--", "v", "one step, Stein recursion vs direct"))
    for k, col, ls, mk, lab in series:
        ax[1].errorbar(Ls, np.clip(dep[k], 1e-12, None), dep[f"{k}_se"], color=col, ls=ls, marker=mk, ms=4, label=lab)
    ax[1].plot(Ls, dep["true_weak"][0] * Ls[0] / Ls, "k:", lw=1, label="$L^{-1}$")
    ax[1].set(xscale="log", yscale="log", xlabel="depth $L$",
              title=f"(b) depth, on shared paths (ref. $L$={dep['ref_depth']})")
    Lg = np.array(gap["depths"], float)
    for i, row in enumerate(gap["by_eta"]):
        col = f"C{i}"
        ax[2].errorbar(Lg, row["rms"], row["rms_se"], color=col, marker="o", label=f"$\\eta_c$={row['eta_c']:g}")
        ax[2].errorbar([Lg[-1] * 2.5], [row["rms_extrap"]], [row["rms_extrap_se"]], color=col, marker="*", ms=10,
                       ls="none")
    ax[2].set(xscale="log", ylim=(0, None), xlabel="depth $L$ (star: $L\\to\\infty$, extrapolated)",
              ylabel="RMS$_s$ of $f^{true}_s-f^{NFD}_s$", title="(c) gap true limit − NFD")
    for i, row in enumerate(gap["by_eta"]):
        g = np.array(row["gap"], float)[-1]
        gs = np.array(row["gap_se"], float)[-1]
        ax[3].errorbar(np.arange(len(g)), g, gs, color=f"C{i}", marker="o", ms=3, label=f"$\\eta_c$={row['eta_c']:g}")
    ax[3].axhline(0, color="k", lw=0.6)
    ax[3].set(xlabel="step $s$", ylabel="$f^{true}_s-f^{NFD}_s$", title=f"(d) gap per step, $L$={int(Lg[-1])}")
    et = np.array([r["eta_c"] for r in gap["by_eta"]], float)
    for key, mk, lab in (("gap1_direct_extrap", "o", "direct (exact coefficient)"),
                         ("gap1_extrap", "s", "Stein recursion")):
        g1 = np.array([r[key] for r in gap["by_eta"]], float)
        g1s = np.array([r[f"{key}_se"] for r in gap["by_eta"]], float)
        ax[4].errorbar(et, g1 / et, g1s / et, marker=mk, mfc="none" if mk == "s" else None,
                       label=f"one-step gap / $\\eta_c$, $L\\to\\infty$: {lab}")
    p1 = np.array([r["pred1"][-1] for r in gap["by_eta"]], float)
    ax[4].plot(et, p1 / et, "x--", ms=9, label=f"first-order formula / $\\eta_c$ ($L$={int(Lg[-1])})")
    ax[4].set(xscale="log", xlabel="$\\eta_c$", title="(e) one step on $\\xi_0$, evaluated at $\\xi_0$")
    t = np.linspace(0, 1, len(dep["cont_A"]))
    ax[5].plot(t, dep["cont_A"], label="$A_t$")
    ax[5].plot(t[:len(dep["cont_Gamma"])], dep["cont_Gamma"], label="$\\Gamma_t = K_t A_t$")
    ax[5].axhline(0, color="k", lw=0.6)
    ax[5].set(xlabel="$t$", title="(f) one-step depth limit: reuse coefficient")
    for a in ax:
        a.legend(fontsize=6)
    for a, ticks in ((ax[0], n), (ax[1], Ls)):
        a.set_xticks(ticks, [f"{v:g}" for v in ticks])
        a.minorticks_off()
    fig.tight_layout()
    save_figure(fig, path, "fig1_true_limit")
    return fig
