"""The checks of NB-TW, NB-TD, NB-TG (:mod:`.nb_true_limit_scaling`): power-law fits with
confidence intervals and the three verdicts. Each criterion is fixed here, before the data:

NB-TW (width, uniformly in depth). For every depth L the RMS error of f_0..f_{T-1} of the true
    (reused) network to the true limit at the same L decays at least like n^{-1/2}: the 95% CI
    of the slope in n lies below 0 and reaches -1/2 (the criterion of E.1: n^{-1/2}
    fluctuations plus O(1/n) terms that steepen small widths). The constant does not grow with
    depth: in the joint fit log e = a + b log n + c log L over all (n, L) the 95% CI of c lies
    below 1/4 (over L = 4..64, less than a factor 2).
NB-TD (depth limit). On shared paths the true-limit recursion at depth L approaches the one at
    ``ref_depth``: the slopes in L of the weak error (max_s |Δf_s|) and of the strong error
    (RMS of Δh_L particle by particle) have 95% CIs below 0; and so does the error of the
    one-step depth-limit equation, integrated directly at L, to its fine-grid solution. The
    recursion with Stein estimates approaching the directly integrated limit (f_1) is the
    fourth slope. All four: reproduced; the first two only: partly; otherwise not reproduced.
NB-TG (the O(1) gap). For every η_c, the RMS over the steps of f_s^{true} - f_s^{NFD},
    extrapolated to L = ∞ (order-1 Richardson, 2 G(L) - G(L/2), path by path), has a 95% CI
    that excludes 0 and keeps at least half of the value at the largest depth (a gap decaying
    like L^{-a} keeps 2 - 2^a of it: the criterion rejects a > 0.58, and 1/L decay extrapolates
    to 0). A first version measured the gap at the last step of one input visited every step;
    there both dynamics converge to the target, so that number measured convergence, not the
    distance between the dynamics.
"""
from __future__ import annotations

import numpy as np
from scipy import stats

from .. import claims
from ..metrics import power_law_fit_dict
from .nbtl_params import NBTLParams

DEPTH_SERIES = ("true_weak", "true_strong", "nfd_weak", "nfd_strong", "cont_weak", "cont_strong", "stein_weak",
                "stein_mc")


def joint_fit(n, L, e, se=None, level: float = 0.95) -> dict | None:
    """Weighted least squares log e = a + b log n + c log L (weights (e/se)²): b, c with CIs."""
    n, L, e = (np.asarray(x, float) for x in (n, L, e))
    keep = (e > 0) & np.isfinite(e)
    if se is not None:
        se = np.asarray(se, float)
        keep &= np.isfinite(se) & (se > 0)
    n, L, e = n[keep], L[keep], e[keep]
    if e.size < 4 or np.unique(L).size < 2:
        return None
    A = np.stack([np.ones_like(n), np.log(n), np.log(L)], axis=1)
    w = np.ones_like(e) if se is None else (e / se[keep]) ** 2
    sw = np.sqrt(w / w.mean())
    coef, *_ = np.linalg.lstsq(A * sw[:, None], np.log(e) * sw, rcond=None)
    resid = (np.log(e) - A @ coef) * sw
    dof = e.size - 3
    cov = float(resid @ resid) / dof * np.linalg.inv((A * sw[:, None]).T @ (A * sw[:, None]))
    t = stats.t.ppf(0.5 + level / 2, dof)
    s = np.sqrt(np.diag(cov))
    return {"b": float(coef[1]), "b_ci": [float(coef[1] - t * s[1]), float(coef[1] + t * s[1])],
            "c": float(coef[2]), "c_ci": [float(coef[2] - t * s[2]), float(coef[2] + t * s[2])], "n": int(e.size)}


def add_fits(data: dict, params: NBTLParams) -> None:
    """Fits added to the data of :func:`run`: per depth the width slopes (f, W₂) of true→true
    limit and decoupled→NFD, the joint fit of the true errors, the depth slopes of every
    series of the depth study."""
    w, dep = data["width"], data["depth"]
    ns, Ls, es, ses = [], [], [], []
    for L in w["net_depths"]:
        for tag in ("true", "nfd", "true_vs_nfd"):
            row = w[f"{tag}_L{L}"]
            row["fit_f"] = power_law_fit_dict(row["widths"], row["f_err"], row["f_se"])
            row["fit_w2"] = power_law_fit_dict(row["widths"], row["w2"], row["w2_se"])
        row = w[f"true_L{L}"]
        ns += list(row["widths"])
        Ls += [L] * len(row["widths"])
        es += list(row["f_err"])
        ses += list(row["f_se"])
    w["joint_true"] = joint_fit(ns, Ls, es, ses)
    for k in DEPTH_SERIES:
        dep[f"fit_{k}"] = power_law_fit_dict(dep["depths"], dep[k], dep[f"{k}_se"])


def _slope(fit) -> dict | None:
    return None if fit is None else {"slope": round(fit["slope"], 3), "ci": [round(c, 3) for c in fit["slope_ci"]]}


def _below0(fit) -> bool:
    return fit is not None and fit["slope_ci"][1] < 0


def _t(k: int) -> float:
    return float(stats.t.ppf(0.975, max(k - 1, 1)))


def check_width(data: dict) -> dict:
    w = data["width"]
    rate = {}
    for L in w["net_depths"]:
        f = w[f"true_L{L}"]["fit_f"]
        rate[L] = f is not None and f["slope_ci"][0] <= -0.5 and f["slope_ci"][1] < 0
    jf = w["joint_true"]
    const_ok = jf is not None and jf["c_ci"][1] < 0.25
    if data.get("diverged_width"):
        verdict = "inconclusive"
    elif all(rate.values()) and const_ok:
        verdict = "reproduced"
    elif not any(rate.values()):
        verdict = "not reproduced"
    else:
        verdict = "partly reproduced"
    measured = {f"slope_L{L}": _slope(w[f"true_L{L}"]["fit_f"]) for L in w["net_depths"]}
    measured["depth_exponent_c"] = None if jf is None else {"c": round(jf["c"], 3), "ci": [round(x, 3) for x in jf["c_ci"]]}
    details = {"passed": {"rate": {str(k): v for k, v in rate.items()}, "constant": const_ok},
               "decoupled_vs_nfd": {f"slope_L{L}": _slope(w[f"nfd_L{L}"]["fit_f"]) for L in w["net_depths"]},
               "true_vs_nfd": {f"slope_L{L}": _slope(w[f"true_vs_nfd_L{L}"]["fit_f"]) for L in w["net_depths"]},
               "w2_true": {f"slope_L{L}": _slope(w[f"true_L{L}"]["fit_w2"]) for L in w["net_depths"]},
               "skipped_pairs": w.get("skipped", [])}
    return claims.record("NB-TW", verdict, measured,
                         "error of f to the true limit at the same L <= C n^-1/2 with C and the exponent uniform in L",
                         **details)


def check_depth(data: dict) -> dict:
    dep = data["depth"]
    ok = {k: _below0(dep[f"fit_{k}"]) for k in ("true_weak", "true_strong", "cont_weak", "stein_weak")}
    if data.get("diverged_depth"):
        verdict = "inconclusive"
    elif all(ok.values()):
        verdict = "reproduced"
    elif ok["true_weak"] and ok["true_strong"]:
        verdict = "partly reproduced"
    else:
        verdict = "not reproduced"
    measured = {k: _slope(dep[f"fit_{k}"]) for k in ("true_weak", "true_strong", "cont_weak", "stein_weak")}
    return claims.record("NB-TD", verdict, measured,
                         "the true-limit recursion converges as L -> infinity (weak and strong errors decay in L) "
                         "to the depth-limit equation with the reuse drift",
                         passed=ok, nfd={k: _slope(dep[f"fit_nfd_{k}"]) for k in ("weak", "strong")},
                         cont_strong=_slope(dep["fit_cont_strong"]), stein_mc=_slope(dep["fit_stein_mc"]),
                         ref_depth=dep["ref_depth"])


def check_gap(data: dict) -> dict:
    g = data["gap"]
    k = g["reps"]
    rows, ok = [], []
    for row in g["by_eta"]:
        ext, se = float(row["rms_extrap"]), float(row["rms_extrap_se"])
        lo, hi = ext - _t(k) * se, ext + _t(k) * se
        last = float(row["rms"][2])
        passed = (lo > 0 or hi < 0) and abs(ext) >= 0.5 * abs(last)
        ok.append(passed)
        rows.append({"eta_c": row["eta_c"], "rms_Lmax": float(f"{last:.3g}"), "extrap": float(f"{ext:.3g}"),
                     "ci": [float(f"{lo:.3g}"), float(f"{hi:.3g}")]})
    if data.get("diverged_gap"):
        verdict = "inconclusive"
    elif all(ok):
        verdict = "reproduced"
    elif not any(ok):
        verdict = "not reproduced"
    else:
        verdict = "partly reproduced"
    one = [{"eta_c": r["eta_c"], "direct_extrap": round(float(r["gap1_direct_extrap"]), 4),
            "se": round(float(r["gap1_direct_extrap_se"]), 4),
            "ratio_to_first_order": round(float(r["ratio1"]), 3), "ratio_se": round(float(r["ratio1_se"]), 3),
            "stein_ratio_to_first_order": round(float(r["ratio1_stein"]), 3)} for r in g["by_eta"]]
    return claims.record("NB-TG", verdict, rows,
                         "RMS over the steps of f^true - f^NFD has a non-zero L -> infinity limit (O(1) gap)",
                         passed=ok, depths=g["depths"], steps=g["steps"], one_step=one)


def split_divergence(data: dict) -> None:
    """Sort the names of diverged points by study (width, depth, gap)."""
    names = data.get("diverged", [])
    data["diverged_width"] = [k for k in names if k.startswith(("lim_", "net_"))]
    data["diverged_depth"] = [k for k in names if k.startswith("depth_")]
    data["diverged_gap"] = [k for k in names if k.startswith("gap_")]


def check(data: dict, params: NBTLParams) -> list[dict]:
    """The three records NB-TW, NB-TD, NB-TG (criteria in the module docstring); a study with a
    diverged point is 'inconclusive'."""
    add_fits(data, params)
    split_divergence(data)
    return [check_width(data), check_depth(data), check_gap(data)]
