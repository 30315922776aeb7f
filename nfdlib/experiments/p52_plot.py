"""The figure of P5.2 and C5.7 (:mod:`.p52_one_step_gap`)."""
from __future__ import annotations

import numpy as np

from . import save_figure
from .p52_check import width_fits
from .p52_params import GapParams


def _plain_ticks(ax, values) -> None:
    from matplotlib.ticker import NullLocator

    ax.set_xticks(values, [str(v) for v in values])
    ax.xaxis.set_minor_locator(NullLocator())


def plot(data: dict, p: GapParams, path=None):
    """Panels present in the data: gap vs width (a + b/√n fits), gap vs depth with L⁻¹ and
    L⁻² guides, and the two diagnostics of Appendix E's argument at the largest width."""
    import matplotlib.pyplot as plt

    rows = data["rows"]
    widths = sorted({r["width"] for r in rows})
    depths = sorted({r["depth"] for r in rows})
    panels = (["width"] if len(widths) >= 2 else []) + (["depth", "b", "layers"] if len(depths) >= 3 else [])
    fig, axes = plt.subplots(1, len(panels), figsize=(4.2 * len(panels), 3.6), squeeze=False)
    title = f"{p.activation}, train={p.train}, η_c={p.eta_c:g}"
    for ax, panel in zip(axes[0], panels):
        if panel == "width":
            fits = width_fits(rows)
            for i, L in enumerate(depths):
                sub = [r for r in rows if r["depth"] == L]
                x = [r["width"] for r in sub]
                ax.errorbar(x, [r["gap_f_mean"] for r in sub], [r["gap_f_se"] for r in sub],
                            fmt="o-", color=f"C{i}", label=f"L={L}, η_c={p.eta_c:g}")
                ax.errorbar(x, [r["gap_small_mean"] for r in sub], [r["gap_small_se"] for r in sub],
                            fmt="s--", color=f"C{i}", alpha=0.6, label=f"L={L}, gap/η at η={p.eta_small:g}")
                if L in fits:
                    xs = np.geomspace(min(x), max(x) * 8, 30)
                    ax.plot(xs, fits[L]["intercept"] + fits[L]["slope"] / np.sqrt(xs), ":", color=f"C{i}")
            ax.axhline(0, color="k", lw=0.5)
            ax.set(xscale="log", xlabel="width n", ylabel="gap_f = f'_reused − f'_decoupled",
                   title="(a) gap vs width")
            _plain_ticks(ax, widths)
        elif panel == "depth":
            n = max(widths)
            sub = [r for r in rows if r["width"] == n]
            L = np.array([r["depth"] for r in sub], float)
            for key, fmt, lab in (("gap_f", "o-", f"|gap_f|, η_c={p.eta_c:g}"),
                                  ("gap_small", "s--", f"|gap|/η at η={p.eta_small:g}"),
                                  ("pred1", "x:", "first-order prediction (kernels)"),
                                  ("w1_h_L", "^-", "W1(h'_L reused, h'_L decoupled)")):
                ax.errorbar(L, [abs(r[f"{key}_mean"]) for r in sub], [r[f"{key}_se"] for r in sub],
                            fmt=fmt, label=lab)
            if data.get("linear_exact"):
                ax.plot(L, [e["gap_over_eta"] for e in data["linear_exact"]], "k-", lw=0.8,
                        label="exact n→∞ first order (linear)")
            ref = abs(sub[0]["gap_f_mean"]) or 1.0
            ax.plot(L, ref * (L / L[0]) ** -1.0, "k--", lw=0.8, label="∝ L⁻¹")
            ax.plot(L, ref * (L / L[0]) ** -2.0, "k-.", lw=0.8, label="∝ L⁻²")
            ax.set(xscale="log", yscale="log", xlabel="depth L", title=f"(b) gap vs depth, n={n}")
            _plain_ticks(ax, depths)
        elif panel == "b":
            n = max(widths)
            for i, r in enumerate(r for r in rows if r["width"] == n and r["depth"] >= 4):
                t = np.arange(1, r["depth"] + 1) / r["depth"]
                ax.plot(t, r["b_r"], ".", color=f"C{i}", ms=3, label=f"reused, L={r['depth']}")
                ax.plot(t, r["b_d"], "x", color=f"C{i}", ms=3, alpha=0.4)
                ax.plot(t, r["beta"], "-", color=f"C{i}", lw=0.8)
                ax.plot(t, r["adjacent"], ":", color=f"C{i}", lw=0.8)
            ax.plot([], [], "k-", lw=0.8, label="β_(ℓ−1) (our count)")
            ax.plot([], [], "k:", lw=0.8, label="C_(ℓ−1)/L (App. E's count)")
            ax.plot([], [], "kx", ms=3, alpha=0.4, label="decoupled network")
            ax.set(xlabel="t = ℓ/L", ylabel="b_ℓ / (−η χ)",
                   title="(c) weight of W_ℓᵀg_ℓ in h'_(ℓ−1)")
        else:
            n = max(widths)
            for i, r in enumerate(r for r in rows if r["width"] == n and r["depth"] >= 4):
                Lr = r["depth"]
                t = np.arange(1, Lr + 1) / Lr
                ax.plot(t, Lr * np.asarray(r["pred1_layers"][1:]) / p.eta_c, "-", color=f"C{i}",
                        label=f"L={Lr}")
            ax.set(xlabel="t = ℓ/L", ylabel="L × per-layer first-order gap / η_c",
                   title="(d) per-layer gap × L")
        ax.legend(fontsize=6)
    fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    tag = "width" if panels[0] == "width" else "depth"
    save_figure(fig, path, f"fig_p52_{p.activation}_{p.train}_{tag}")
    return fig
