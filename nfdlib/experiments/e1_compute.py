"""The computation of NB-E1 (:mod:`.e1_true_limit`): the grid points of measurements (a)–(d)
(networks, limits, linear Monte Carlo, depth differences) and :func:`run`, which assembles
them into the experiment's data."""
from __future__ import annotations

import math

import numpy as np

from ..executor import run_grid
from ..limits import nfd
from ..limits import true_limit as tl
from ..metrics import mean_se, wasserstein2
from ..model import NetworkSpec
from ..network import Network
from .e1_check import add_fits
from .e1_params import WIDTH_ACTS, E1Params


def _task(p: E1Params):
    return nfd.synthetic_task(p.steps, p.d, p.seed)


def _net_backend(p: E1Params) -> tuple[str, str]:
    """The finite networks run on the solver's backend (and device, for torch)."""
    return (p.backend, p.device) if p.backend == "torch" else (p.backend, "cpu")


def net_point(params: dict, act: str, width: int, rep: int, depth: int | None = None) -> dict:
    """One reused network trained by stream SGD (batch 1): f_s before each step and the
    kernels C_ℓ^{(r,s)} = x_ℓ^{(r)}·x_ℓ^{(s)}/n, G_ℓ^{(r,s)} = g_ℓ^{(r)}·g_ℓ^{(s)}/n (g from χ = 1)."""
    p = E1Params.build(**params)
    X, y = _task(p)
    be, dev = _net_backend(p)
    L = depth or p.net_depth
    sp = NetworkSpec(width=width, depth=L, activation=act, d=p.d, backward="reused",
                     backend=be, device=dev, dtype="float64")
    net = Network(sp, np.random.default_rng([p.seed, 71, width, rep, WIDTH_ACTS.index(act), L]))
    T = p.steps
    xs, gs, f = [], [], np.zeros(T)
    for s in range(T):
        pas = net.forward(X[s:s + 1])
        f[s] = pas.f[0, 0]
        net.backward(pas, np.ones((1, 1)))
        xs.append(pas.numpy("xs")[:, 0])
        gs.append(pas.numpy("gs")[1:, 0])
        net.step(X[s:s + 1], y[s:s + 1], p.eta_c, loss="mse")
    xs, gs = np.stack(xs, 1), np.stack(gs, 1)  # L×T×n
    C = np.einsum("lrn,lsn->lrs", xs, xs) / width
    G = np.einsum("lrn,lsn->lrs", gs, gs) / width
    return {"f": f, "C": C, "G": G, "diverged": not bool(np.all(np.isfinite(f)))}


def limit_point(params: dict, act: str, corrections: bool, depth: int | None = None) -> dict:
    """The limit of the width study: particles for tanh/relu, the exact recursion for linear."""
    p = E1Params.build(**params)
    X, y = _task(p)
    L = depth or p.net_depth
    if act == "linear":
        res = tl.linear_exact(X, y, p.eta_c, L, corrections)
        return {"f": res["f"], "C": res["C"], "G": res["G"], "diverged": not bool(np.all(np.isfinite(res["f"])))}
    noise = nfd.draw_noise(np.random.default_rng([p.seed, 72, L]), p.limit_particles, L, p.steps, p.d)
    res = tl.solve(X, y, p.eta_c, noise, act, corrections, p.backend, p.device)
    return {"f": res.f, "C": res.C, "G": res.G, "diverged": res.diverged}


def mc_point(params: dict, P: int, rep: int) -> dict:
    """(c) linear particle solver (corrections on) against the exact recursion."""
    p = E1Params.build(**params)
    X, y = _task(p)
    noise = nfd.draw_noise(np.random.default_rng([p.seed, 73, P, rep]), P, p.net_depth, p.steps, p.d)
    res = tl.solve(X, y, p.eta_c, noise, "linear", True, p.backend, p.device)
    ex = tl.linear_exact(X, y, p.eta_c, p.net_depth, True)
    return {"f_rmse": float(np.sqrt(np.mean((res.f - ex["f"]) ** 2)))}


def nfd_match_point(params: dict) -> dict:
    """(a) corrections off against the NFD solver on one shared path (tanh, L = net_depth)."""
    p = E1Params.build(**params)
    X, y = _task(p)
    P, L = min(p.depth_particles, 4096), p.net_depth
    noise = nfd.draw_noise(np.random.default_rng([p.seed, 74]), P, L, p.steps, p.d)
    keep = tuple(range(L + 1))
    a = tl.solve(X, y, p.eta_c, noise, "tanh", False, p.backend, p.device, keep)
    b = nfd.solve(X, y, p.eta_c, noise, "tanh", p.backend, p.device, keep)
    return {"max_abs_diff": float(max(np.max(np.abs(getattr(a, k) - getattr(b, k))) for k in ("f", "C", "G", "h", "g")))}


def depth_point(params: dict, L: int, rep: int) -> dict:
    """(d) true limit minus NFD at depth L on the path of rep ``rep`` (coarsened from max(depths))."""
    p = E1Params.build(**params)
    X, y = _task(p)
    Lmax = max(p.depths)
    fine = nfd.draw_noise(np.random.default_rng([p.seed, 75, rep]), p.depth_particles, Lmax, p.steps, p.d)
    noise = nfd.coarsen(fine, Lmax // L)
    del fine
    on = tl.solve(X, y, p.eta_c, noise, p.depth_activation, True, p.backend, p.device, keep=(L,))
    off = tl.solve(X, y, p.eta_c, noise, p.depth_activation, False, p.backend, p.device, keep=(L,))
    dK = math.sqrt((np.sum((on.C - off.C) ** 2) + np.sum((on.G - off.G) ** 2))
                   / (np.sum(off.C ** 2) + np.sum(off.G ** 2)))
    return {"df": float(np.max(np.abs(on.f - off.f))), "dK": dK,
            "dW": wasserstein2(on.h[0, -1], off.h[0, -1]),
            "corr_fwd": np.sqrt(on.corr_fwd), "corr_bwd": np.sqrt(on.corr_bwd),
            "f_on": on.f, "f_off": off.f, "diverged": on.diverged or off.diverged}


def one_step_closed_form(eta_c: float, chi0: float, gram01: float, L) -> np.ndarray:
    """Linear activation: f_1^{true} - f_1^{NFD} = -η_c χ_0 (ξ_0·ξ_1/d)(1 + 1/L)^{L-1}."""
    L = np.asarray(L, dtype=float)
    return -eta_c * chi0 * gram01 * (1.0 + 1.0 / L) ** (L - 1.0)


def _errors(nets, lim):
    """Per network: RMS error of f_0..f_{T-1}, relative error of (C, G), and MSE of f."""
    f = [float(np.sqrt(np.mean((np.array(r["f"]) - np.array(lim["f"])) ** 2))) for r in nets]
    num = [np.sum((np.array(r["C"]) - np.array(lim["C"])) ** 2) + np.sum((np.array(r["G"]) - np.array(lim["G"])) ** 2)
           for r in nets]
    den = np.sum(np.array(lim["C"]) ** 2) + np.sum(np.array(lim["G"]) ** 2)
    return f, [float(math.sqrt(x / den)) for x in num], [x * x for x in f]


def run(params: E1Params, store) -> dict:
    pd, ex = params.to_dict(), params.executor
    X, y = _task(params)
    a = run_grid(store, [("nfd_match", {"params": pd})], nfd_match_point, executor=ex, desc="(a) NFD match")
    lims = run_grid(store, [(f"lim_{act}_{int(c)}", {"params": pd, "act": act, "corrections": c})
                            for act in WIDTH_ACTS for c in (True, False)], limit_point, executor=ex, desc="limits")
    nets = run_grid(store, [(f"net_{act}_n{n}_r{r}", {"params": pd, "act": act, "width": n, "rep": r})
                            for act in WIDTH_ACTS for n in params.widths for r in range(params.net_seeds)],
                    net_point, executor=ex, desc="(b) networks")
    width = {"widths": params.widths}
    diverged = [k for k, r in {**lims, **nets}.items() if r["diverged"]]
    for act in WIDTH_ACTS:
        mse = {}
        for c, tag in ((True, "true"), (False, "nfd")):
            fe, ke = [], []
            for n in params.widths:
                f, k, mse[tag] = _errors([nets[f"net_{act}_n{n}_r{r}"] for r in range(params.net_seeds)],
                                         lims[f"lim_{act}_{int(c)}"])
                fe.append(f)
                ke.append(k)
            fm, fse = mean_se(np.array(fe), axis=1)
            km, kse = mean_se(np.array(ke), axis=1)
            width[f"{act}_{tag}"] = {"f_err": fm, "f_se": fse, "k_err": km, "k_se": kse}
        # paired over seeds at the largest width: MSE to NFD minus MSE to the true limit
        gm, gse = mean_se(np.array(mse["nfd"]) - np.array(mse["true"]))
        width[f"{act}_mse_gap"], width[f"{act}_mse_gap_se"] = float(gm), float(gse)
        width[f"{act}_f_true"] = lims[f"lim_{act}_1"]["f"]
        width[f"{act}_f_nfd"] = lims[f"lim_{act}_0"]["f"]
    Ld, nd = params.deep_depth, params.deep_width
    deep_lims = run_grid(store, [(f"deep_lim_{int(c)}", {"params": pd, "act": "tanh", "corrections": c, "depth": Ld})
                                 for c in (True, False)], limit_point, executor=ex, desc="(b) deep limits")
    deep_nets = run_grid(store, [(f"deep_net_r{r}", {"params": pd, "act": "tanh", "width": nd, "rep": r, "depth": Ld})
                                 for r in range(params.net_seeds)], net_point, executor=ex, desc="(b) deep networks")
    nets_d = list(deep_nets.values())
    mse_d = {tag: _errors(nets_d, deep_lims[f"deep_lim_{int(c)}"])[2] for c, tag in ((True, "true"), (False, "nfd"))}
    gm, gse = mean_se(np.array(mse_d["nfd"]) - np.array(mse_d["true"]))
    width["deep"] = {"depth": Ld, "width": nd, "rmse_true": float(np.sqrt(np.mean(mse_d["true"]))),
                     "rmse_nfd": float(np.sqrt(np.mean(mse_d["nfd"]))), "mse_gap": float(gm), "mse_gap_se": float(gse)}
    diverged += [k for k, r in {**deep_lims, **deep_nets}.items() if r["diverged"]]
    mc = run_grid(store, [(f"mc_P{P}_r{r}", {"params": pd, "P": P, "rep": r})
                          for P in params.mc_particles for r in range(params.mc_reps)], mc_point,
                  executor=ex, desc="(c) linear MC")
    mcm, mcse = mean_se(np.array([[mc[f"mc_P{P}_r{r}"]["f_rmse"] for r in range(params.mc_reps)]
                                  for P in params.mc_particles]), axis=1)
    lin_on = [tl.linear_exact(X[:2], y[:2], params.eta_c, L, True)["f"][1] for L in params.depths]
    lin_off = [tl.linear_exact(X[:2], y[:2], params.eta_c, L, False)["f"][1] for L in params.depths]
    closed = one_step_closed_form(params.eta_c, -y[0], float(X[0] @ X[1]) / params.d, params.depths)
    ex_on = {L: tl.linear_exact(X, y, params.eta_c, L, True) for L in params.depths}
    exact_T = [ex_on[L]["f"] - tl.linear_exact(X, y, params.eta_c, L, False)["f"] for L in params.depths]
    linear = {"mc_particles": params.mc_particles, "mc_f_rmse": mcm, "mc_f_se": mcse,
              "one_step_exact": np.array(lin_on) - np.array(lin_off), "one_step_closed": closed,
              "exact_df": [float(np.max(np.abs(d))) for d in exact_T],
              "corr_fwd_profile": {str(L): np.sqrt(ex_on[L]["corr_fwd"]) for L in params.depths},
              "corr_bwd_profile": {str(L): np.sqrt(ex_on[L]["corr_bwd"]) for L in params.depths}}
    dp = run_grid(store, [(f"depth_L{L}_r{r}", {"params": pd, "L": L, "rep": r})
                          for L in params.depths for r in range(params.depth_reps)], depth_point,
                  executor=ex, desc="(d) depth")
    depth = {"depths": params.depths}
    for k in ("df", "dK", "dW"):
        m, se = mean_se(np.array([[dp[f"depth_L{L}_r{r}"][k] for r in range(params.depth_reps)]
                                  for L in params.depths]), axis=1)
        depth[k], depth[f"{k}_se"] = m, se
    depth["corr_fwd_profile"] = {str(L): dp[f"depth_L{L}_r0"]["corr_fwd"] for L in params.depths}
    depth["corr_bwd_profile"] = {str(L): dp[f"depth_L{L}_r0"]["corr_bwd"] for L in params.depths}
    diverged += [k for k, r in dp.items() if r["diverged"]]
    data = {"nfd_match": a["nfd_match"]["max_abs_diff"], "width": width, "linear": linear, "depth": depth,
            "y": y, "diverged": diverged}
    add_fits(data, params)
    return data
