"""The computation of P5.2 and C5.7 (:mod:`.p52_one_step_gap`): one weight draw per grid point
(the reused and the decoupled network, one SGD step each, at η_c and at the small step), the
per-point records of the module docstring, their mean over draws, and the exact first-order
gap of the linear network."""
from __future__ import annotations

import math
from contextlib import contextmanager

import numpy as np

from ..executor import run_grid
from ..metrics import mean_se, wasserstein1
from ..model import NetworkSpec, init_weights
from ..network import Network, Pass, loss_and_chi
from .p52_params import TRAIN_GROUPS, GapParams

SCALARS = ("gap_f", "gap_f_fresh", "change_f", "change_f_dec", "gap_small", "gap_small_fresh",
           "pred1", "pred1_fresh", "pred_mf", "chi", "dq_L", "dC_L", "dG_0", "w1_h_L",
           "w1_g_0")


def inputs(seed: int, d: int, overlap: float) -> np.ndarray:
    """ξ and ξ' (rows) with |ξ|² = |ξ'|² = d and ξ·ξ'/d = overlap, fixed by ``seed``."""
    rng = np.random.default_rng([seed, 5])
    a, b = rng.standard_normal((2, d))
    a *= math.sqrt(d) / np.linalg.norm(a)
    b -= (a @ b / d) * a
    b *= math.sqrt(d) / np.linalg.norm(b)
    return np.stack([a, overlap * a + math.sqrt(1 - overlap**2) * b])


def _get(p, key: str) -> np.ndarray:
    return p.numpy(key).astype(np.float64)


def _fields(p: Pass) -> dict:
    """The arrays of a pass, without its network (so that a pass outlives it)."""
    return {k: v for k, v in vars(p).items() if k != "net"}


def _before_step(spec_r: NetworkSpec, spec_b: NetworkSpec, weights: dict, X, y) -> tuple:
    """The passes before the step, once for every step size and one network at a time: the
    forward passes at (ξ, ξ') and at ξ (the reused and the other network share U, W, V,
    hence these), then with each network's backward weights the first pass's unit-χ backward
    and the step's backward on (ξ, y), the latter as :class:`nfdlib.network.Pass` fields
    (None when the loss is not finite: :meth:`Network.step` then leaves the weights)."""
    net = Network(spec_r, weights=weights)
    fwd, sfwd = _fields(net.forward(X)), _fields(net.forward(X[:1]))
    losses, chi = loss_and_chi(Pass(net, **sfwd).f, [[y]], "mse")
    del net
    first, steps = [], []
    for spec in (spec_r, spec_b):
        net = Network(spec, weights=weights)
        p0 = net.backward(Pass(net, **fwd), np.ones((2, 1)))
        first.append({"f0": p0.f[:, 0], "hs": _get(p0, "hs"), "xs": _get(p0, "xs"), "gs": _get(p0, "gs")})
        steps.append(_fields(net.backward(Pass(net, **sfwd), chi)) if np.all(np.isfinite(losses))
                     else None)
        del net, p0
    return first, steps


def _after_step(spec: NetworkSpec, weights: dict, X, step: dict | None, eta: float, groups) -> dict:
    """A fresh network of ``spec``: the SGD step (Eq. 2) of the pass ``step`` at η_c = ``eta``,
    then the second pass (unit-χ backward at ξ and ξ')."""
    net = Network(spec, weights=weights)
    if step is not None:
        net.update(Pass(net, **step), eta, groups)
    p1 = net.backward(net.forward(X), np.ones((2, 1)))
    return {"f1": p1.f[:, 0], "hs1": _get(p1, "hs"), "xs1": _get(p1, "xs"), "gs1": _get(p1, "gs")}


def _pair(spec_r: NetworkSpec, spec_b: NetworkSpec, weights: dict, X, y, etas, groups) -> dict:
    """For each step size η_c of ``etas``, the records of the reused and the other network:
    first pass, one SGD step on (ξ, y), second pass. One network is held at a time after
    :func:`_before_step`, whose passes do not depend on η_c."""
    first, steps = _before_step(spec_r, spec_b, weights, X, y)
    return {eta: tuple(dict(rec, **_after_step(sp, weights, X, st, eta, groups))
                       for sp, rec, st in zip((spec_r, spec_b), first, steps)) for eta in etas}


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
    weights = init_weights(spec_d, np.random.default_rng([P.seed, width, depth, rep]), "auto")
    X = inputs(P.seed, P.d, P.overlap)
    groups = TRAIN_GROUPS[P.train]
    runs = _pair(spec_r, spec_b, weights, X, P.y, (P.eta_c, P.eta_small), groups)
    del weights
    for eta, (a, b) in runs.items():
        if not np.all(np.isfinite(a["f1"] - b["f1"])):
            return {"diverged": True, "reason": f"non-finite f after the step at eta_c={eta}"}
    (r, dc), (rs, ds) = runs[P.eta_c], runs[P.eta_small]
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
