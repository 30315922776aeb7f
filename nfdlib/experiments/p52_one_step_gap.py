"""P5.2 and C5.7: the one-step gap between true backprop and decoupled backward weights.

Two depth-µP networks (Eq. 1) share U, W_ℓ, v, the data and the seed and differ only in the
backward weights: ``reused`` (B_ℓ = W_ℓ) and ``decoupled`` (B_ℓ = W̃_ℓ + ΔW_ℓ, MATH.md §2).
Each takes one SGD step (Eq. 2, η = η_c n, MSE, one sample (ξ, y)) on the groups of
``train`` and is evaluated again. Per seed:

    gap_f(ξ)   = [f'_reused(ξ) - f(ξ)] - [f'_decoupled(ξ) - f(ξ)]   (and at a fresh ξ')
    change_f   = f'_reused(ξ) - f(ξ)

together with gaps in law of the second pass (second moments q'_ℓ = |h'_ℓ|²/n, the cross
kernel C'(ξ, ξ') of the last layer, the second backward moment G'_0 = |g'_0|²/n, and 1-D
Wasserstein distances between the coordinates of h'_ℓ), the same gap at a small η_c
divided by η_c, and the first-order prediction (MATH.md §5) from the run's own kernels:

    gap/η_c ≈ -χ [ (ξ·ξ'/d) (G_0 - G̃_0) + (1/L) Σ_ℓ C_ℓ(ξ, ξ') (G_ℓ - G̃_ℓ) ]

with G_ℓ = g_ℓ(ξ')·g_ℓ(ξ)/n (true gradients) and G̃_ℓ = g_ℓ(ξ')·g̃_ℓ(ξ)/n (decoupled
backward at ξ), the U term only when U is trained; ``pred_mf`` replaces G̃_ℓ by its
infinite-width limit |v|²/n. The diagnostic of Appendix E's argument is the coefficient

    b_ℓ = (h'_{ℓ-1} - h_{ℓ-1}) · w_ℓ / |w_ℓ|²,   w_ℓ = g_{ℓ-1} - g_ℓ = m φ'(h_{ℓ-1}) ⊙ W_ℓᵀ g_ℓ

of the reused-weight direction in the second-pass input of layer ℓ. To first order in η_c
it is -η_c χ β_{ℓ-1}, where

    β_0 = [U trained],   β_ℓ = β_{ℓ-1} (1 + κ_ℓ/L) + C_ℓ/L,   κ_ℓ = |φ'(h_{ℓ-1})|²/n

(our derivation: ΔU and the drift of every layer k < ℓ carry g_k ∋ w_ℓ with weight 1, and
the coupling m² W_k (φ'² ⊙ W_kᵀ g_k) ≈ (κ_k/L) g_k created at each lower layer compounds).
So W_ℓ meets W_ℓᵀ g_ℓ with an O(1) weight and the coupling it adds to h'_ℓ,
≈ -η_c χ β_{ℓ-1} (κ_ℓ/L) g_ℓ, is O(1/L) per layer: the order of the drift, not one below.
Appendix E's count keeps only the adjacent drift, β_{ℓ-1} ≈ C_{ℓ-1}/L (``adjacent``).
"""
from __future__ import annotations

import math
from contextlib import contextmanager
from dataclasses import dataclass

import numpy as np

from .. import claims
from ..executor import check_executor, run_grid
from ..metrics import linear_fit, mean_se, power_law_fit, wasserstein1
from ..model import DEVICES, NetworkSpec, init_weights
from ..network import Network
from ..params import ParamError, Params, require_memory, spec
from . import Experiment, save_figure

TRAIN_GROUPS = {"all": ("U", "W", "v"), "hidden": ("W",)}
CLAIMED_EXPONENT = -1.0  # C5.7: second moment O(L^-2), so the accumulated gap is O(1/L)
SCALARS = ("gap_f", "gap_f_fresh", "change_f", "change_f_dec", "gap_small", "gap_small_fresh",
           "pred1", "pred1_fresh", "pred_mf", "chi", "dq_L", "dC_L", "dG_0", "w1_h_L",
           "w1_g_0")


@dataclass(frozen=True)
class GapParams(Params):
    profile: str = spec("book")
    backend: str = spec("numba", choices=("numba", "torch", "numpy"))
    device: str = spec("auto", choices=DEVICES)
    seed: int = spec(0, min=0)
    widths: list[int] = spec([1024], min=2, nonempty=True)
    depths: list[int] = spec([1, 2, 8, 32], min=1, nonempty=True)
    activation: str = spec("tanh", choices=("tanh", "linear"))
    train: str = spec("all", choices=tuple(TRAIN_GROUPS), doc="all: U, W, v; hidden: W only")
    seeds: int = spec(4, min=2, doc="number of weight draws per grid point")
    eta_c: float = spec(1.0, gt=0)
    eta_small: float = spec(0.01, gt=0, doc="the first-order regime")
    y: float = spec(1.0)
    d: int = spec(64, min=2)
    overlap: float = spec(0.5, min=-1.0, max=1.0, doc="ξ·ξ'/d of the fresh input")
    comparison: str = spec("decoupled", choices=("decoupled", "reused"),
                           doc="backward of the second network; 'reused' is the null experiment")
    dtype: str = spec("float32", choices=("float32", "float64"))
    fit_min_depth: int = spec(4, min=1, doc="smallest depth in the depth-exponent fit")
    executor: str = spec("serial")
    threads: int = spec(1, min=0, doc="threads per process for BLAS/numba/torch (0: their default); "
                                      "one is fastest for these two-row passes on a shared CPU")

    PROFILE_DEFAULTS = {
        "smoke": {"widths": [64, 128], "depths": [1, 4], "seeds": 2},
        "book": {},
        "paper": {"widths": [256, 512, 1024, 2048, 4096], "depths": [4, 16], "seeds": 16},
    }

    def check(self) -> None:
        check_executor(self.executor)
        if self.eta_small >= self.eta_c:
            raise ParamError(f"parameter 'eta_small' = {self.eta_small} must be smaller than "
                             f"eta_c = {self.eta_c}; allowed: 0 < eta_small < eta_c")
        # the largest point holds the draws (W, W̃) and one network's copy of them
        n, L = max(self.widths), max(self.depths)
        self.spec(n, L, "decoupled")
        item = 4 if self.dtype == "float32" else 8
        require_memory(4 * item * L * n**2, f"the one-step gap at width {n} and depth {L}")

    def spec(self, width: int, depth: int, backward: str) -> NetworkSpec:
        return NetworkSpec.build(width=width, depth=depth, activation=self.activation, d=self.d,
                                 backward=backward, backend=self.backend, dtype=self.dtype,
                                 device=self.device if self.backend == "torch" else "auto")


def inputs(seed: int, d: int, overlap: float) -> np.ndarray:
    """ξ and ξ' (rows) with |ξ|² = |ξ'|² = d and ξ·ξ'/d = overlap, fixed by ``seed``."""
    rng = np.random.default_rng([seed, 5])
    a, b = rng.standard_normal((2, d))
    a *= math.sqrt(d) / np.linalg.norm(a)
    b -= (a @ b / d) * a
    b *= math.sqrt(d) / np.linalg.norm(b)
    return np.stack([a, overlap * a + math.sqrt(1 - overlap**2) * b])


def _one_network(spec: NetworkSpec, weights: dict, X, y, eta, groups) -> dict:
    """First pass (unit-χ backward at ξ and ξ'), one SGD step on (ξ, y), second pass."""
    net = Network(spec, weights=weights)
    ones = np.ones((2, 1))
    p0 = net.backward(net.forward(X), ones)
    net.step(X[:1], [[y]], eta, "mse", train=groups)
    p1 = net.backward(net.forward(X), ones)
    get = lambda p, k: p.numpy(k).astype(np.float64)  # noqa: E731
    return {"f0": p0.f[:, 0], "f1": p1.f[:, 0], "hs": get(p0, "hs"), "xs": get(p0, "xs"),
            "gs": get(p0, "gs"), "hs1": get(p1, "hs"), "xs1": get(p1, "xs"), "gs1": get(p1, "gs")}


def _first_order(r: dict, d_: dict, chi: float, rho: float, use_u: bool, j: int) -> tuple:
    """-χ [ρ_U (G_0 - G̃_0) + (1/L) Σ C_ℓ (G_ℓ - G̃_ℓ)] at the input of row j (0: ξ, 1: ξ'),
    per layer (entry 0 is the U term), and its mean-field version (G̃ → |v|²/n)."""
    n = r["hs"].shape[-1]
    L = r["xs"].shape[0]
    G = (r["gs"][:, j] * r["gs"][:, 0]).sum(-1) / n            # true g(ξ')·g(ξ)/n, ℓ = 0..L
    Gt = (r["gs"][:, j] * d_["gs"][:, 0]).sum(-1) / n          # true g(ξ')·decoupled g(ξ)/n
    C = (r["xs"][:, j] * r["xs"][:, 0]).sum(-1) / n            # C_ℓ, ℓ = 1..L
    v2 = float(r["gs"][L, 0] @ r["gs"][L, 0]) / n
    u_term = rho * np.array([G[0] - Gt[0], G[0] - v2]) if use_u else np.zeros(2)
    per_layer = np.concatenate([[u_term[0]], C * (G[1:] - Gt[1:]) / L])
    mf = u_term[1] + float(np.sum(C * (G[1:] - v2))) / L
    return -chi * per_layer, -chi * mf


def _b(net: dict, w: np.ndarray, ww: np.ndarray) -> np.ndarray:
    """b_ℓ = (h'_{ℓ-1} - h_{ℓ-1})·w_ℓ/|w_ℓ|² at ξ, ℓ = 1..L."""
    return ((net["hs1"][:-1, 0] - net["hs"][:-1, 0]) * w).sum(-1) / ww


@contextmanager
def limited_threads(k: int, backend: str):
    """Run with at most ``k`` threads in BLAS, numba and torch (``k = 0``: unchanged)."""
    if k == 0:
        yield
        return
    from threadpoolctl import threadpool_limits
    undo = []
    if backend == "numba":
        import numba
        undo.append((numba.set_num_threads, numba.get_num_threads()))
        numba.set_num_threads(min(k, numba.config.NUMBA_NUM_THREADS))
    if backend == "torch":
        import torch
        undo.append((torch.set_num_threads, torch.get_num_threads()))
        torch.set_num_threads(k)
    try:
        with threadpool_limits(limits=k):
            yield
    finally:
        for setter, value in undo:
            setter(value)


def compute_point(width, depth, rep, p: dict) -> dict:
    """One weight draw at one (width, depth): the records listed in the module docstring."""
    P = GapParams.build(**p)
    with limited_threads(P.threads, P.backend):
        return _compute(P, width, depth, rep)


def _compute(P: GapParams, width: int, depth: int, rep: int) -> dict:
    spec_d = P.spec(width, depth, "decoupled")
    spec_b = spec_d if P.comparison == "decoupled" else P.spec(width, depth, "reused")
    spec_r = P.spec(width, depth, "reused")
    weights = init_weights(spec_d, np.random.default_rng([P.seed, width, depth, rep]))
    X = inputs(P.seed, P.d, P.overlap)
    groups = TRAIN_GROUPS[P.train]
    runs = {}
    for tag, eta in (("big", P.eta_c), ("small", P.eta_small)):
        runs[tag] = (_one_network(spec_r, weights, X, P.y, eta, groups),
                     _one_network(spec_b, weights, X, P.y, eta, groups))
        if not np.all(np.isfinite(runs[tag][0]["f1"] - runs[tag][1]["f1"])):
            return {"diverged": True, "reason": f"non-finite f after the step at eta_c={eta}"}
    del weights
    (r, dc), (rs, ds) = runs["big"], runs["small"]
    n, L = width, depth
    gap, gap_small = r["f1"] - dc["f1"], (rs["f1"] - ds["f1"]) / P.eta_small
    chi = float(r["f0"][0] - P.y)
    per_layer, mf = _first_order(r, dc, chi, 1.0, "U" in groups, 0)
    per_layer_fresh, _ = _first_order(r, dc, chi, P.overlap, "U" in groups, 1)
    w = r["gs"][:-1, 0] - r["gs"][1:, 0]                 # w_ℓ = m φ'(h_{ℓ-1}) ⊙ W_ℓᵀ g_ℓ
    ww = np.maximum((w * w).sum(-1), 1e-300)
    C = (r["xs"][:, 0] ** 2).sum(-1) / n                 # C_ℓ(ξ, ξ), ℓ = 1..L
    dphi2 = (1 - np.tanh(r["hs"][:-1, 0]) ** 2) ** 2 if P.activation == "tanh" else np.ones((L, n))
    kappa = dphi2.mean(-1)                               # κ_ℓ = |φ'(h_{ℓ-1})|²/n
    beta = np.empty(L + 1)
    beta[0] = 1.0 if "U" in groups else 0.0
    for k in range(L):
        beta[k + 1] = beta[k] * (1 + kappa[k] / L) + C[k] / L
    phi = np.tanh if P.activation == "tanh" else (lambda z: z)
    h1r, h1d = r["hs1"][-1], dc["hs1"][-1]
    return {
        "diverged": False, "chi": chi,
        "gap_f": gap[0], "gap_f_fresh": gap[1], "gap_small": gap_small[0],
        "gap_small_fresh": gap_small[1],
        "change_f": r["f1"][0] - r["f0"][0], "change_f_dec": dc["f1"][0] - dc["f0"][0],
        "pred1": P.eta_c * float(per_layer.sum()), "pred1_fresh": P.eta_c * float(per_layer_fresh.sum()),
        "pred_mf": P.eta_c * mf,
        "dq_L": float((h1r[0] ** 2).sum() - (h1d[0] ** 2).sum()) / n,
        "dC_L": float((phi(h1r[0]) * phi(h1r[1])).sum() - (phi(h1d[0]) * phi(h1d[1])).sum()) / n,
        "dG_0": float((r["gs1"][0, 0] ** 2).sum() - (dc["gs1"][0, 0] ** 2).sum()) / n,
        "w1_h_L": wasserstein1(h1r[0], h1d[0]),
        "w1_g_0": wasserstein1(r["gs1"][0, 0], dc["gs1"][0, 0]),
        "w1_h": [wasserstein1(r["hs1"][k, 0], dc["hs1"][k, 0]) for k in range(L + 1)],
        "pred1_layers": (P.eta_c * per_layer).tolist(),
        "b_r": (_b(rs, w, ww) / (-chi * P.eta_small)).tolist(),
        "b_d": (_b(ds, w, ww) / (-chi * P.eta_small)).tolist(),
        "beta": beta[:-1].tolist(), "adjacent": (np.concatenate([[0.0], C[:-1]]) / L).tolist(),
    }


def _aggregate(width: int, depth: int, recs: list[dict], p: GapParams) -> dict:
    ok = [r for r in recs if not r.get("diverged")]
    row = {"width": width, "depth": depth, "activation": p.activation, "train": p.train,
           "seeds": len(ok), "diverged": len(recs) - len(ok)}
    for key in SCALARS:
        vals = [r[key] for r in ok if r.get(key) is not None]
        m, s = mean_se(vals) if len(vals) else (float("nan"), float("nan"))
        row[f"{key}_mean"], row[f"{key}_se"] = float(m), float(s)
    for key in ("w1_h", "pred1_layers", "b_r", "b_d", "beta", "adjacent"):
        row[key] = np.mean([r[key] for r in ok], axis=0).tolist() if ok else []
    return row


def run(p: GapParams, store) -> dict:
    points = [(f"v2_{p.activation}_{p.train}_n{n}_L{L}_s{s}", {"width": n, "depth": L, "rep": s,
                                                             "p": p.to_dict()})
              for n in p.widths for L in p.depths for s in range(p.seeds)]
    recs = run_grid(store, points, compute_point, executor=p.executor, desc="one-step gap")
    rows = []
    for n in p.widths:
        for L in p.depths:
            group = [recs[f"v2_{p.activation}_{p.train}_n{n}_L{L}_s{s}"] for s in range(p.seeds)]
            rows.append(_aggregate(n, L, group, p))
    return {"rows": rows, "linear_exact": [linear_first_order(L, p.train, p.y) for L in p.depths]
            if p.activation == "linear" else None}


def linear_first_order(depth: int, train: str, y: float = 1.0) -> dict:
    """Exact n → ∞ first-order gap/η_c of the linear network at ξ (ρ = 1): with
    p_ℓ = (1 + 1/L)^{L-ℓ} (= E g_ℓ², input-independent), C_ℓ = (1 + 1/L)^{ℓ-1} and χ → -y,

        gap/η_c → y [ [U] (p_0 - 1) + (1/L) Σ_ℓ (p_ℓ - 1) C_ℓ ]
               = y [ [U] ((1 + 1/L)^L - 1) + 1 - (1/L)(1 + 1/L)^{L-1} ]

    which tends to y (e - 1 + 1) = y e (all) or y (hidden) as L → ∞."""
    L = depth
    hidden = 1.0 - (1 + 1 / L) ** (L - 1) / L
    u = (1 + 1 / L) ** L - 1 if train == "all" else 0.0
    return {"depth": L, "gap_over_eta": y * (u + hidden)}


def _finite(rows, key):
    return [r for r in rows if np.isfinite(r.get(f"{key}_mean", np.nan))]


def width_fits(rows: list[dict], key: str = "gap_f") -> dict:
    """Per depth with >= 3 widths: gap(n) = a + b/√n (weighted by the standard errors)."""
    out = {}
    for L in sorted({r["depth"] for r in rows}):
        sub = [r for r in _finite(rows, key) if r["depth"] == L]
        if len({r["width"] for r in sub}) >= 3:
            fit = linear_fit([r["width"] ** -0.5 for r in sub], [r[f"{key}_mean"] for r in sub],
                             sigma=[max(r[f"{key}_se"], 1e-12) for r in sub])
            out[L] = fit.as_dict()
    return out


def depth_fit(rows: list[dict], key: str, min_depth: int):
    """At the largest width with >= 3 depths >= min_depth: |gap|(L) ∝ L^slope."""
    for n in sorted({r["width"] for r in rows}, reverse=True):
        sub = [r for r in _finite(rows, key) if r["width"] == n and r["depth"] >= min_depth]
        if len(sub) >= 3:
            se = [r.get(f"{key}_se", 0.0) for r in sub]
            fit = power_law_fit([r["depth"] for r in sub], [abs(r[f"{key}_mean"]) for r in sub],
                                y_se=None if min(se) <= 0 else se)
            return n, fit
    return None, None


def p52_verdict(fits: dict) -> str:
    """Non-zero limit: every intercept CI excludes 0 -> reproduced; every CI contains 0 ->
    not reproduced; mixed -> partly reproduced."""
    excl = [not (f["intercept_ci"][0] <= 0 <= f["intercept_ci"][1]) for f in fits.values()]
    if all(excl):
        return "reproduced"
    if not any(excl):
        return "not reproduced"
    return "partly reproduced"


def c57_verdict(lo: float, hi: float, claimed: float = CLAIMED_EXPONENT) -> str:
    """Exponent CI [lo, hi] of the gap against L versus the claimed one: at least as fast
    (CI reaches the claim or lies below it, and excludes 0) -> reproduced; decays, but
    slower (CI inside (claim, 0)) -> partly; CI contains 0 and excludes the claim -> not
    reproduced; contains both -> inconclusive."""
    if hi < 0 and lo <= claimed:
        return "reproduced"
    if hi < 0:
        return "partly reproduced"
    if lo > claimed:
        return "not reproduced"
    return "inconclusive"


def appendix_e_diagnostic(rows: list[dict], n: int, min_depth: int) -> dict:
    """Two numbers that decide between our account and Appendix E's count at width n: the
    exponent of the mean per-layer first-order gap |(1/L) C_ℓ (G_ℓ - G̃_ℓ)| in L (-1: per
    layer as large as the drift; Appendix E: -2), and the slope of the measured b_ℓ (weight
    of W_ℓᵀg_ℓ in h'_{ℓ-1}, small step) regressed on the predicted β_{ℓ-1} (1 if the
    compounding account is right; Appendix E's adjacent count predicts b_ℓ ≈ C_{ℓ-1}/L → 0),
    with the same regression for the decoupled network (0: no reused direction there)."""
    sub = [r for r in rows if r["width"] == n and r["depth"] >= min_depth]
    per_layer = [float(np.mean(np.abs(r["pred1_layers"][1:]))) for r in sub]
    fit = power_law_fit([r["depth"] for r in sub], per_layer)
    beta = np.concatenate([r["beta"] for r in sub])
    b = np.concatenate([r["b_r"] for r in sub])
    bd = np.concatenate([r["b_d"] for r in sub])
    slope = float(beta @ b / (beta @ beta))
    resid = b - slope * beta
    se = float(np.sqrt(resid @ resid / (len(b) - 1) / (beta @ beta)))
    return {"per_layer_slope": fit.slope, "per_layer_slope_ci": list(fit.slope_ci),
            "b_on_beta": slope, "b_on_beta_se": se,
            "b_decoupled_on_beta": float(beta @ bd / (beta @ beta))}


def check(data: dict, p: GapParams) -> list[dict]:
    rows = [r for r in data["rows"] if r["seeds"] >= 2]
    records = []
    fits = width_fits(rows)
    if fits:
        verdict = p52_verdict(fits)
        records.append(claims.record(
            "P5.2", verdict,
            {f"L={L}": {"a": f["intercept"], "a_ci": f["intercept_ci"]} for L, f in fits.items()},
            "gap(n) = a + b/√n with a ≠ 0 (the coupling survives n → ∞)",
            setting=f"{p.activation}, train={p.train}, eta_c={p.eta_c}",
            first_order_fits={L: {"a": f["intercept"], "a_ci": f["intercept_ci"]}
                              for L, f in width_fits(rows, "gap_small").items()}))
    n, fit = depth_fit(rows, "gap_f", p.fit_min_depth)
    if fit is not None:
        others = {}
        for key in ("gap_small", "gap_f_fresh", "pred1", "w1_h_L", "dq_L", "dG_0"):
            _, f2 = depth_fit(rows, key, p.fit_min_depth)
            if f2 is not None:
                others[key] = {"slope": f2.slope, "slope_ci": list(f2.slope_ci)}
        last = max((r for r in rows if r["width"] == n), key=lambda r: r["depth"])
        if all(r.get("beta") for r in rows):
            others["diagnostic"] = appendix_e_diagnostic(rows, n, p.fit_min_depth)
        records.append(claims.record(
            "C5.7", c57_verdict(*fit.slope_ci),
            {"slope": fit.slope, "slope_ci": list(fit.slope_ci)},
            f"|gap_f| ∝ L^{CLAIMED_EXPONENT:g} (second moment O(L^-2))",
            setting=f"{p.activation}, train={p.train}, eta_c={p.eta_c}, width={n}, "
                    f"L>={p.fit_min_depth}",
            other_slopes=others,
            gap_at_largest_depth={"depth": last["depth"], "gap_f": last["gap_f_mean"],
                                  "se": last["gap_f_se"], "change_f": last["change_f_mean"]}))
    return records


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


EXPERIMENT = Experiment("p52_one_step_gap",
                        "P5.2/C5.7: one-step gap, reused vs decoupled backward weights",
                        GapParams, run, check, plot)
