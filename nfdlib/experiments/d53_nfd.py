"""D5.3 / Remark 5.5: the NFD particle solver converges in particles and in depth.

Two measurements on the solver of :mod:`nfdlib.limits.nfd` (stream SGD, T steps, MSE, η_c,
synthetic inputs of :func:`nfdlib.limits.nfd.synthetic_task`):

(a) Monte Carlo: for P in ``particles`` and ``mc_reps`` independent particle systems, the
    RMS error of the trajectory f_0..f_{T-1} and the relative error of the kernels C, G
    against one reference system with ``ref_particles``; the expected signature is
    error ∝ P^{-1/2}.
(b) Depth: on one fine Brownian path (``fine_depth`` layers, ``strong_particles``), coarser
    grids L driven by block sums of the same normals; strong errors
    max_{t,s} E|h^{(L)}_t - h^{ref}_t|², the same for g, and max_s |f^{(L)}_s - f^{ref}_s|²,
    at the layer-times t = k/m shared by all grids (:func:`layer_times`). Remark 5.5 (the solver is an Euler–Maruyama scheme) gives O(1/L)
    in second moment: a log-log slope ≤ -1.

``data``: ``mc`` {particles, f_rmse (mean over reps), f_rmse_se, kernel_rel, kernel_rel_se,
fit_f, fit_kernel}; ``strong`` {depths, h_err, g_err, f_err, fit_h, fit_g, fit_f};
``f_ref`` (the reference trajectory), ``y``; ``diverged`` (runs whose f became non-finite).
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from .. import claims
from ..executor import check_executor, run_grid
from ..limits import nfd
from ..metrics import mean_se, power_law_fit_dict
from ..model import DEVICES
from ..params import ParamError, Params, require_memory, spec
from . import Experiment, save_figure

NAME = "d53_nfd"


def layer_times(depths) -> list[float]:
    """Layer-times t = k/m, k = 0..m, common to every grid (m = gcd of the depths and 4)."""
    m = math.gcd(math.gcd(*depths), 4)
    return [k / m for k in range(m + 1)]


@dataclass(frozen=True)
class D53Params(Params):
    profile: str = spec("book")
    backend: str = spec("numba", choices=nfd.BACKENDS)
    device: str = spec("auto", choices=DEVICES)
    seed: int = spec(0, min=0)
    executor: str = spec("serial")
    activation: str = spec("tanh", choices=nfd.ACTIVATIONS)
    eta_c: float = spec(0.5, min=0.0)
    steps: int = spec(8, min=1, doc="T, SGD steps")
    d: int = spec(8, min=1, doc="input dimension")
    depth: int = spec(8, min=1, doc="L of the Monte-Carlo study")
    particles: list[int] = spec([2**8, 2**10, 2**12, 2**14], min=2, nonempty=True)
    mc_reps: int = spec(6, min=2)
    ref_particles: int = spec(2**17, min=2)
    depths: list[int] = spec([2, 4, 8, 16, 32], min=1, nonempty=True)
    fine_depth: int = spec(256, min=1)
    strong_particles: int = spec(4096, min=2)

    PROFILE_DEFAULTS = {
        "smoke": {"steps": 3, "depth": 4, "particles": [64, 128, 256], "mc_reps": 3,
                  "ref_particles": 2048, "depths": [2, 4, 8], "fine_depth": 32,
                  "strong_particles": 256},
        "book": {},
        "paper": {"steps": 16, "depth": 32, "particles": [2**8, 2**10, 2**12, 2**14, 2**16],
                  "mc_reps": 16, "ref_particles": 2**20, "depths": [4, 8, 16, 32, 64, 128],
                  "fine_depth": 2048, "strong_particles": 2**14},
    }

    def check(self) -> None:
        check_executor(self.executor)
        if len(self.particles) < 3 or len(self.depths) < 3:
            raise ParamError("parameters 'particles' and 'depths' need >= 3 values each (a fit with a CI)")
        if max(self.particles) > self.ref_particles:
            raise ParamError(f"parameter 'ref_particles' = {self.ref_particles} is too small; "
                             f"allowed: >= max(particles) = {max(self.particles)}")
        bad = [L for L in self.depths if self.fine_depth % L or L >= self.fine_depth]
        if bad:
            raise ParamError(f"parameter 'depths' has {bad}; allowed: proper divisors of fine_depth = {self.fine_depth}")
        if self.backend != "torch" and self.device == "cuda":
            raise ParamError("parameter 'device' = 'cuda' is not allowed with backend "
                             f"{self.backend!r}; allowed: 'auto', 'cpu'")
        for P, L in ((self.ref_particles, self.depth), (self.strong_particles, self.fine_depth)):
            require_memory(nfd.noise_bytes(P, L, self.steps, self.d) + nfd.solver_bytes(P, L, self.steps, 5),
                           f"an NFD solve with P={P}, L={L}, T={self.steps}")


def _solve(p: D53Params, P: int, L: int, rng_key, keep=(0,)):
    X, y = nfd.synthetic_task(p.steps, p.d, p.seed)
    noise = nfd.draw_noise(np.random.default_rng(rng_key), P, L, p.steps, p.d)
    return nfd.solve(X, y, p.eta_c, noise, p.activation, p.backend, p.device, keep), y


def _kernel_rel(res, ref) -> float:
    num = np.sum((res.C - ref.C) ** 2) + np.sum((res.G - ref.G) ** 2)
    return float(np.sqrt(num / (np.sum(ref.C ** 2) + np.sum(ref.G ** 2))))


def mc_point(params: dict, P: int, rep: int) -> dict:
    """One particle system with P particles: f trajectory and kernels, stored as lists."""
    p = D53Params.build(**params)
    res, _ = _solve(p, P, p.depth, [p.seed, 53, P, rep])
    return {"f": res.f, "C": res.C, "G": res.G, "diverged": res.diverged}


def strong_point(params: dict) -> dict:
    """Strong errors of every coarse grid against the fine grid on one Brownian path."""
    p = D53Params.build(**params)
    X, y = nfd.synthetic_task(p.steps, p.d, p.seed)
    Lf = p.fine_depth
    fine = nfd.draw_noise(np.random.default_rng([p.seed, 531]), p.strong_particles, Lf, p.steps, p.d)
    times = layer_times(p.depths)
    keep_f = tuple(int(round(t * Lf)) for t in times)
    ref = nfd.solve(X, y, p.eta_c, fine, p.activation, p.backend, p.device, keep_f)
    out = {"h_err": [], "g_err": [], "f_err": [], "f_ref": ref.f, "diverged": ref.diverged}
    for L in p.depths:
        keep = tuple(int(round(t * L)) for t in times)
        res = nfd.solve(X, y, p.eta_c, nfd.coarsen(fine, Lf // L), p.activation, p.backend, p.device, keep)
        out["h_err"].append(float(np.max(np.mean((res.h - ref.h) ** 2, axis=2))))
        out["g_err"].append(float(np.max(np.mean((res.g - ref.g) ** 2, axis=2))))
        out["f_err"].append(float(np.max((res.f - ref.f) ** 2)))
        out["diverged"] = out["diverged"] or res.diverged
    return out


def run(params: D53Params, store) -> dict:
    pd = params.to_dict()
    ref = run_grid(store, [("mc_ref", {"params": pd, "P": params.ref_particles, "rep": 10**6})],
                   mc_point, executor=params.executor, desc="reference")["mc_ref"]
    points = [(f"mc_P{P}_r{r}", {"params": pd, "P": P, "rep": r})
              for P in params.particles for r in range(params.mc_reps)]
    recs = run_grid(store, points, mc_point, executor=params.executor, desc="particles")
    ref_res = nfd.NFDResult(np.array(ref["f"], float), None, None, np.array(ref["C"], float),
                            np.array(ref["G"], float), (), None, None, False)
    f_rmse, k_rel = [], []
    for P in params.particles:
        rows = [recs[f"mc_P{P}_r{r}"] for r in range(params.mc_reps)]
        f_rmse.append([float(np.sqrt(np.mean((np.array(r["f"], float) - ref_res.f) ** 2))) for r in rows])
        k_rel.append([_kernel_rel(nfd.NFDResult(None, None, None, np.array(r["C"], float),
                                                np.array(r["G"], float), (), None, None, False), ref_res)
                      for r in rows])
    fm, fse = mean_se(np.array(f_rmse), axis=1)
    km, kse = mean_se(np.array(k_rel), axis=1)
    strong = run_grid(store, [("strong", {"params": pd})], strong_point,
                      executor=params.executor, desc="depth grids")["strong"]
    diverged = [k for k, r in recs.items() if r["diverged"]] + (["strong"] if strong["diverged"] else [])
    data = {
        "mc": {"particles": params.particles, "f_rmse": fm, "f_rmse_se": fse, "kernel_rel": km,
               "kernel_rel_se": kse},
        "strong": {"depths": params.depths, "h_err": strong["h_err"], "g_err": strong["g_err"],
                   "f_err": strong["f_err"]},
        "f_ref": ref["f"], "y": nfd.synthetic_task(params.steps, params.d, params.seed)[1],
        "diverged": diverged,
    }
    _add_fits(data)
    return data


def _add_fits(data: dict) -> None:
    mc, st = data["mc"], data["strong"]
    mc["fit_f"] = power_law_fit_dict(mc["particles"], mc["f_rmse"], mc["f_rmse_se"])
    mc["fit_kernel"] = power_law_fit_dict(mc["particles"], mc["kernel_rel"], mc["kernel_rel_se"])
    for k in ("h", "g", "f"):
        st[f"fit_{k}"] = power_law_fit_dict(st["depths"], st[f"{k}_err"])


def check(data: dict, params: D53Params) -> list[dict]:
    """D5.3 is a definition; what is checked is the book's solver of it: (a) Monte-Carlo
    slope of the f and kernel errors has -1/2 in its 95% CI; (b) strong-error slopes in L of
    h and g reach -1 or below (CI lower end ≤ -1: consistent with O(1/L)). Verified when all
    four pass, not verified otherwise (inconclusive when a run diverged)."""
    _add_fits(data)
    mc, st = data["mc"], data["strong"]
    fits = {"mc_f": mc["fit_f"], "mc_kernel": mc["fit_kernel"], "strong_h": st["fit_h"],
            "strong_g": st["fit_g"]}
    ok = {}
    for key, fit in fits.items():
        if fit is None:
            ok[key] = False
        elif key.startswith("mc"):
            ok[key] = fit["slope_ci"][0] <= -0.5 <= fit["slope_ci"][1]
        else:
            ok[key] = fit["slope_ci"][0] <= -1.0 and fit["slope_ci"][1] < 0
    verdict = ("verified" if all(ok.values()) else
               "inconclusive" if data.get("diverged") else "not verified")
    measured = {k: (None if f is None else {"slope": round(f["slope"], 3),
                                           "ci": [round(c, 3) for c in f["slope_ci"]]})
                for k, f in fits.items()}
    return [claims.record("D5.3", verdict, measured,
                          {"mc": "slope -1/2 in P", "strong": "slope <= -1 in L (second moment)"},
                          passed=ok, f_err_fit=st.get("fit_f"))]


def plot(data: dict, params: D53Params, path=None):
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots(1, 3, figsize=(13, 3.6))
    mc, st = data["mc"], data["strong"]
    P = np.array(mc["particles"], float)
    ax[0].errorbar(P, mc["f_rmse"], mc["f_rmse_se"], marker="o", label="RMS error of $f_s$")
    ax[0].errorbar(P, mc["kernel_rel"], mc["kernel_rel_se"], marker="s", label="rel. error of $C, G$")
    ax[0].plot(P, mc["f_rmse"][0] * (P / P[0]) ** -0.5, "k--", lw=1, label="$P^{-1/2}$")
    ax[0].set(xscale="log", yscale="log", xlabel="particles $P$", title="(a) Monte Carlo")
    Ls = np.array(st["depths"], float)
    for k, lab in (("h", "$\\max E|h^{(L)}-h^{ref}|^2$"), ("g", "$\\max E|g^{(L)}-g^{ref}|^2$"),
                   ("f", "$\\max_s |f^{(L)}_s-f^{ref}_s|^2$")):
        ax[1].plot(Ls, st[f"{k}_err"], marker="o", label=lab)
    ax[1].plot(Ls, st["g_err"][0] * (Ls / Ls[0]) ** -1.0, "k--", lw=1, label="$L^{-1}$")
    ax[1].set(xscale="log", yscale="log", xlabel="depth $L$", title="(b) shared Brownian path")
    s = np.arange(len(data["f_ref"]))
    ax[2].plot(s, data["f_ref"], marker="o", label="NFD $f_s$")
    ax[2].plot(s, data["y"], "x", label="target $y_s$")
    ax[2].set(xlabel="step $s$", title="(c) NFD trajectory")
    ax[1].set_xticks(Ls, [f"{t:g}" for t in Ls])
    ax[1].minorticks_off()
    for a in ax:
        a.legend(fontsize=8)
    fig.tight_layout()
    save_figure(fig, path, "nfd_solver")
    return fig


EXPERIMENT = Experiment(NAME, "D5.3: NFD particle solver, Monte-Carlo and depth convergence",
                        D53Params, run, check, plot)
