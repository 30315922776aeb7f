"""The figure of NB-E1 (:mod:`.e1_true_limit`), saved as ``true_limit.pdf``/``.png``."""
from __future__ import annotations

import math

import numpy as np

from .e1_params import E1Params


def plot(data: dict, params: E1Params, path=None):
    """(b) network errors against width, (c) the linear one-step correction against depth,
    (d) the accumulated correction against depth, (e) the linear forward-correction profile."""
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots(1, 4, figsize=(17, 3.8))
    w, lin, dep = data["width"], data["linear"], data["depth"]
    n = np.array(w["widths"], float)
    for act, mk in (("tanh", "o"), ("linear", "s")):
        for tag, ls in (("true", "-"), ("nfd", ":")):
            e = w[f"{act}_{tag}"]
            ax[0].errorbar(n, e["f_err"], e["f_se"], marker=mk, ls=ls,
                           label=f"{act}: vs {'true limit' if tag == 'true' else 'NFD'}")
    e0 = w["tanh_true"]["f_err"][0]
    ax[0].plot(n, e0 * (n / n[0]) ** -0.5, "k--", lw=1, label="$n^{-1/2}$")
    ax[0].set(xscale="log", yscale="log", xlabel="width $n$", ylabel="RMS error of $f_s$",
              title="(b) reused networks vs limits")
    ax[0].set_xticks(n, [str(int(v)) for v in n], minor=False)
    ax[0].xaxis.set_minor_formatter(plt.NullFormatter())
    Ls = np.array(dep["depths"], float)
    Lf = np.geomspace(Ls[0], Ls[-1], 200)
    one = np.array(lin["one_step_closed"]) / (1 + 1 / Ls) ** (Ls - 1)  # -η_c χ_0 ξ_0·ξ_1/d
    ax[1].plot(Ls, lin["one_step_exact"], "o", label="exact recursion")
    ax[1].plot(Ls, lin["one_step_closed"], "x", ms=9, label="closed form")
    ax[1].plot(Lf, one[0] * (1 + 1 / Lf) ** (Lf - 1), "k-", lw=0.8)
    ax[1].axhline(one[0] * math.e, color="grey", ls="--", lw=0.8, label="$L\\to\\infty$")
    ax[1].set(xscale="log", xlabel="depth $L$", ylabel="$f_1^{true}-f_1^{NFD}$", title="(c) linear, one step, exact")
    for k, lab in (("df", "$\\max_s|\\Delta f_s|$"), ("dK", "rel. $\\Delta(C,G)$"), ("dW", "$W_2$ of $h_L$ laws")):
        ax[2].errorbar(Ls, dep[k], 2 * np.asarray(dep[f"{k}_se"], float), marker="o", capsize=2, label=lab)
    i0 = int(np.argmax(Ls >= params.fit_min_depth))
    ax[2].plot(Ls[i0:], dep["df"][i0] * (Ls[i0:] / Ls[i0]) ** -1.0, "k--", lw=1, label="$L^{-1}$ (Cor. 5.7)")
    ax[2].set(xscale="log", yscale="log", xlabel="depth $L$",
              title=f"(d) true limit − NFD ({params.depth_activation}), {params.depth_reps} paths, ±2 SE")
    prof = lin["corr_fwd_profile"]
    for L in dep["depths"]:
        if L >= 4:
            pr = np.array(prof[str(L)])[:, 1]
            ax[3].plot((np.arange(L) + 1) / L, pr * math.sqrt(L), label=f"L={L}")
    ax[3].set(xlabel="$t=\\ell/L$", ylabel="$\\sqrt{L}\\,\\|\\dot z_\\ell^{(1)}\\|$",
              title="(e) linear exact: forward correction ×L")
    for a in ax:
        a.legend(fontsize=7)
    fig.tight_layout()
    if path is not None:
        from pathlib import Path
        Path(path).mkdir(parents=True, exist_ok=True)
        for ext in ("pdf", "png"):
            fig.savefig(Path(path) / f"true_limit.{ext}", dpi=120)
    return fig
