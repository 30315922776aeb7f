"""The computation of NB-TW, NB-TD, NB-TG (:mod:`.nb_true_limit_scaling`): the grid points
(networks, limits, depth paths, gap paths) and :func:`run`, which assembles them.

Every point is a pure function of the parameters and its indices (seeds derived from
``seed`` and the point), stored on its own by :func:`nfdlib.executor.run_grid`."""
from __future__ import annotations

import numpy as np

from ..executor import run_grid
from ..limits import true_depth_limit as tdl
from ..limits import true_limit as tl
from ..limits.particles import coarsen, draw_noise
from ..metrics import mean_se
from ..model import NetworkSpec
from ..network import Network
from .nbtl_check import add_fits
from .nbtl_params import NBTLParams, task

QUANTILES = np.linspace(0.005, 0.995, 100)
BACKWARDS = ("reused", "decoupled")


def _backend(p: NBTLParams) -> tuple[str, str]:
    return (p.backend, p.device) if p.backend == "torch" else (p.backend, "cpu")


def net_point(params: dict, width: int, depth: int, backward: str, rep: int) -> dict:
    """One network trained by stream SGD (batch 1, ½(f-y)², η = η_c n): f_s before each step
    and the quantiles of the coordinates of h_L before the last step. The reused and the
    decoupled network of one ``rep`` share U, W, v."""
    p = NBTLParams.build(**params)
    X, y = task(p)
    be, dev = _backend(p)
    spec = NetworkSpec.build(arch="depth_mup", width=width, depth=depth, activation=p.activation, d=p.d,
                             backward=backward, backend=be, device=dev, dtype="float64")
    net = Network(spec, np.random.default_rng([p.seed, 1701, width, depth, rep]))
    f = np.full(p.steps, np.nan)
    q = None
    for s in range(p.steps):
        pas = net.forward(X[s:s + 1])
        f[s] = pas.f[0, 0]
        if not np.isfinite(f[s]):
            break
        if s == p.steps - 1:
            q = np.quantile(pas.numpy("hs")[-1, 0], QUANTILES)
        net.step(X[s:s + 1], y[s:s + 1].reshape(1, 1), p.eta_c, loss="mse")
    del net
    return {"f": f, "q_hL": q, "diverged": not bool(np.all(np.isfinite(f)))}


def limit_point(params: dict, depth: int, rep: int, corrections: bool) -> dict:
    """The true limit (``corrections``) or NFD at depth L: f and the quantiles of h_L^{(T-1)}."""
    p = NBTLParams.build(**params)
    X, y = task(p)
    noise = draw_noise(np.random.default_rng([p.seed, 1702, depth, rep]), p.limit_particles, depth, p.steps, p.d)
    res = tl.solve(X, y, p.eta_c, noise, p.activation, corrections, p.backend, p.device, keep=(depth,))
    return {"f": res.f, "q_hL": None if res.diverged else np.quantile(res.h[0, -1], QUANTILES),
            "diverged": res.diverged}


def depth_point(params: dict, rep: int) -> dict:
    """One repetition of the depth study. A fine path at ``ref_depth`` (T steps) is coarsened to
    every depth; the recursion with corrections on and off runs on each. Per depth: the weak
    error max_s |f_s^{(L)} - f_s^{(ref)}| and the strong error (E|h_L^{(L)} - h_1^{(ref)}|²)^{1/2}
    at the last step, particle by particle. Then the one-step depth limit (T = 2 on the
    inputs ξ_0, ξ_0: one step, evaluated again at ξ_0) on a second fine path: the exact-
    coefficient equation (:mod:`nfdlib.limits.true_depth_limit`) at ``ref_depth`` (the
    reference) and at each L, and the Stein recursion at each L."""
    p = NBTLParams.build(**params)
    X, y = task(p)
    Lr = p.ref_depth
    out = {"diverged": False}
    fine = draw_noise(np.random.default_rng([p.seed, 1703, rep]), p.depth_particles, Lr, p.steps, p.d)
    for corr, tag in ((True, "true"), (False, "nfd")):
        ref = tl.solve(X, y, p.eta_c, fine, p.activation, corr, p.backend, p.device, keep=(Lr,))
        weak, strong = [], []
        for L in p.depths:
            r = tl.solve(X, y, p.eta_c, coarsen(fine, Lr // L), p.activation, corr, p.backend, p.device, keep=(L,))
            weak.append(float(np.max(np.abs(r.f - ref.f))))
            strong.append(float(np.sqrt(np.mean((r.h[0, -1] - ref.h[0, -1]) ** 2))))
            out["diverged"] |= r.diverged
        out[f"{tag}_weak"], out[f"{tag}_strong"], out[f"{tag}_f_ref"] = weak, strong, ref.f
        out["diverged"] |= ref.diverged
    del fine
    j = p.inputs if p.inputs < p.steps else 1  # ξ_0 again, or ξ_1 if the stream never revisits ξ_0
    x2, y2 = X[[0, j]], y[[0, j]]
    one = draw_noise(np.random.default_rng([p.seed, 1704, rep]), p.depth_particles, Lr, 2, p.d)
    cref = tdl.solve(x2, y2, p.eta_c, one, p.activation, True, p.backend, p.device)
    cref_off = tdl.solve(x2, y2, p.eta_c, one, p.activation, False, p.backend, p.device)
    cw, cs, sw, mc = [], [], [], []
    for L in p.depths:
        nz = coarsen(one, Lr // L)
        c = tdl.solve(x2, y2, p.eta_c, nz, p.activation, True, p.backend, p.device)
        s = tl.solve(x2, y2, p.eta_c, nz, p.activation, True, p.backend, p.device, keep=(L,))
        cw.append(float(abs(c.f[1] - cref.f[1])))
        cs.append(float(np.sqrt(np.mean((c.h1 - cref.h1) ** 2))))
        sw.append(float(abs(s.f[1] - cref.f[1])))
        mc.append(float(abs(s.f[1] - c.f[1])))
    out.update({"cont_weak": cw, "cont_strong": cs, "stein_weak": sw, "stein_mc": mc, "cont_f1": float(cref.f[1]),
                "cont_gap1": float(cref.f[1] - cref_off.f[1]), "cont_A": cref.A[::max(1, Lr // 64)],
                "cont_Gamma": cref.Gamma[::max(1, Lr // 64)]})
    return out


def first_order_gap(res, gram01: float, eta_c: float) -> float:
    """The first-order one-step formula (book/notes/one_step_gap.md) from the NFD solve's own
    kernels: -η_c χ_0 [ρ (G_0^{(0,1)} - 1) + (1/L) Σ_ℓ C_ℓ^{(0,1)} (G_ℓ^{(0,1)} - 1)], ρ = ξ_0·ξ_1/d,
    G_0^{(0,1)} = E[g_0^{(0)} g_0^{(1)}] (the U term; the decoupled G̃ → E v² = 1)."""
    L = res.C.shape[0]
    G0 = float(np.mean(res.g[0, 0] * res.g[0, 1]))
    hidden = float(np.sum(res.C[:, 0, 1] * (res.G[:, 0, 1] - 1.0))) / L
    return -eta_c * float(res.chi[0]) * (gram01 * (G0 - 1.0) + hidden)


def gap_point(params: dict, eta_c: float, rep: int) -> dict:
    """True limit minus NFD on one path at depths gap_depth/4, /2 and gap_depth (coarsenings of
    one path), for the stream of ``inputs`` inputs visited in turn over ``gap_steps`` steps: the
    gap f_s^{true} - f_s^{NFD} per step and its RMS over the steps. And the one-step gap (one
    step on ξ_0, evaluated again at ξ_0) on a second path: from the Stein recursion and from the
    one-step equation with its exact coefficient (:mod:`nfdlib.limits.true_depth_limit`, free of
    the Stein estimates' Monte Carlo error), with the first-order one-step prediction from the
    NFD solve's kernels."""
    p = NBTLParams.build(**params)
    X, y = task(p, p.gap_steps)
    Lg = p.gap_depth
    depths = (Lg // 4, Lg // 2, Lg)
    out = {"gap": [], "rms": [], "gap1": [], "gap1_direct": [], "pred1": [], "diverged": False}
    fine = draw_noise(np.random.default_rng([p.seed, 1705, rep]), p.gap_particles, Lg, p.gap_steps, p.d)
    for L in depths:
        nz = coarsen(fine, Lg // L)
        on = tl.solve(X, y, eta_c, nz, p.activation, True, p.backend, p.device, keep=(L,))
        off = tl.solve(X, y, eta_c, nz, p.activation, False, p.backend, p.device, keep=(L,))
        out["gap"].append(on.f - off.f)
        out["rms"].append(float(np.sqrt(np.mean((on.f - off.f) ** 2))))
        out["diverged"] |= on.diverged or off.diverged
    del fine
    x2, y2 = X[[0, 0]], y[[0, 0]]
    one = draw_noise(np.random.default_rng([p.seed, 1706, rep]), p.gap_particles, Lg, 2, p.d)
    for L in depths:
        nz = coarsen(one, Lg // L)
        on = tl.solve(x2, y2, eta_c, nz, p.activation, True, p.backend, p.device, keep=(0,))
        off = tl.solve(x2, y2, eta_c, nz, p.activation, False, p.backend, p.device, keep=(0,))
        out["gap1"].append(float(on.f[1] - off.f[1]))
        out["pred1"].append(first_order_gap(off, 1.0, eta_c))
        direct = tdl.solve(x2, y2, eta_c, nz, p.activation, True, p.backend, p.device)
        out["gap1_direct"].append(float(direct.f[1] - off.f[1]))
        out["diverged"] |= on.diverged or off.diverged
    return out


def _rms(a, b) -> float:
    return float(np.sqrt(np.mean((np.asarray(a, float) - np.asarray(b, float)) ** 2)))


def run(params: NBTLParams, store) -> dict:
    pd, ex = params.to_dict(), params.executor
    pairs = params.pairs()
    lims = run_grid(store, [(f"lim_L{L}_r{r}_{int(c)}", {"params": pd, "depth": L, "rep": r, "corrections": c})
                            for L in params.net_depths for r in range(params.limit_reps) for c in (True, False)],
                    limit_point, executor=ex, desc="(1) limits")
    nets = run_grid(store, [(f"net_n{n}_L{L}_{b}_r{r}", {"params": pd, "width": n, "depth": L, "backward": b, "rep": r})
                            for n, L in pairs for b in BACKWARDS for r in range(params.net_seeds)],
                    net_point, executor=ex, desc="(1) networks")
    diverged = [k for k, r in {**lims, **nets}.items() if r["diverged"]]
    width = {"widths": params.widths, "net_depths": params.net_depths,
             "skipped": [[n, L] for L in params.net_depths for n in params.widths if (n, L) not in pairs]}
    for L in params.net_depths:
        ns = [n for n, L2 in pairs if L2 == L]
        for b, c, tag in (("reused", True, "true"), ("decoupled", False, "nfd"), ("reused", False, "true_vs_nfd")):
            runs = [lims[f"lim_L{L}_r{r}_{int(c)}"] for r in range(params.limit_reps)]
            f_lim, f_lim_se = mean_se(np.array([r["f"] for r in runs], float), axis=0)
            q_lim = np.array(runs[0]["q_hL"], float) if runs[0]["q_hL"] is not None else None
            e_m, e_se, w_m, w_se = [], [], [], []
            for n in ns:
                rs = [nets[f"net_n{n}_L{L}_{b}_r{r}"] for r in range(params.net_seeds)]
                m, s = mean_se([_rms(r["f"], f_lim) for r in rs])
                e_m.append(float(m))
                e_se.append(float(s))
                w = [_rms(r["q_hL"], q_lim) for r in rs if r["q_hL"] is not None and q_lim is not None]
                m, s = mean_se(w) if len(w) > 1 else (float("nan"), float("nan"))
                w_m.append(float(m))
                w_se.append(float(s))
            width[f"{tag}_L{L}"] = {"widths": ns, "f_err": e_m, "f_se": e_se, "w2": w_m, "w2_se": w_se,
                                    "f_lim": f_lim, "limit_floor": float(np.sqrt(np.mean(f_lim_se ** 2)))}
    dps = run_grid(store, [(f"depth_r{r}", {"params": pd, "rep": r}) for r in range(params.depth_reps)],
                   depth_point, executor=ex, desc="(2) depth paths")
    depth = {"depths": params.depths, "ref_depth": params.ref_depth}
    for k in ("true_weak", "true_strong", "nfd_weak", "nfd_strong", "cont_weak", "cont_strong", "stein_weak",
              "stein_mc"):
        m, s = mean_se(np.array([dps[f"depth_r{r}"][k] for r in range(params.depth_reps)], float), axis=0)
        depth[k], depth[f"{k}_se"] = m, s
    for k in ("cont_f1", "cont_gap1"):
        m, s = mean_se([dps[f"depth_r{r}"][k] for r in range(params.depth_reps)])
        depth[k], depth[f"{k}_se"] = float(m), float(s)
    depth["cont_A"] = dps["depth_r0"]["cont_A"]
    depth["cont_Gamma"] = dps["depth_r0"]["cont_Gamma"]
    depth["f_ref"] = dps["depth_r0"]["true_f_ref"]
    diverged += [k for k, r in dps.items() if r["diverged"]]
    gps = run_grid(store, [(f"gap_eta{e:g}_r{r}", {"params": pd, "eta_c": e, "rep": r})
                           for e in params.gap_etas for r in range(params.gap_reps)], gap_point,
                   executor=ex, desc="(3) gap paths")
    Lg = params.gap_depth
    gap = {"etas": params.gap_etas, "depths": [Lg // 4, Lg // 2, Lg], "steps": params.gap_steps, "by_eta": []}
    for e in params.gap_etas:
        rs = [gps[f"gap_eta{e:g}_r{r}"] for r in range(params.gap_reps)]
        G = np.array([r["gap"] for r in rs], float)          # reps × 3 depths × steps
        R = np.array([r["rms"] for r in rs], float)          # reps × 3 depths
        G1 = np.array([r["gap1"] for r in rs], float)
        D1 = np.array([r["gap1_direct"] for r in rs], float)
        pred = np.array([r["pred1"] for r in rs], float)
        row = {"eta_c": e}
        # order-1 Richardson to L = ∞, path by path: 2 X(L) - X(L/2)
        for key, arr in (("gap", G), ("rms", R), ("rms_extrap", 2 * R[:, 2] - R[:, 1]), ("gap1", G1),
                         ("gap1_extrap", 2 * G1[:, 2] - G1[:, 1]), ("pred1", pred),
                         ("gap1_direct", D1), ("gap1_direct_extrap", 2 * D1[:, 2] - D1[:, 1]),
                         ("ratio1", D1[:, 2] / pred[:, 2]), ("ratio1_stein", G1[:, 2] / pred[:, 2])):
            m, s = mean_se(arr, axis=0)
            row[key], row[f"{key}_se"] = m, s
        gap["by_eta"].append(row)
        diverged += [f"gap_eta{e:g}_r{r}" for r, rec in enumerate(rs) if rec["diverged"]]
    gap["reps"] = params.gap_reps
    data = {"width": width, "depth": depth, "gap": gap, "y": task(params)[1],
            "limit_reps": params.limit_reps, "net_seeds": params.net_seeds, "depth_reps": params.depth_reps,
            "diverged": diverged}
    add_fits(data, params)
    return data
