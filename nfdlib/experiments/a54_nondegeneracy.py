"""A5.4 / Fig. 3: nondegeneracy of the NFD kernels.

Assumption 5.4 asks that the smallest eigenvalues of the step-blocks
C_t^{[0..s]} = (C_ℓ^{(r,r')})_{r,r'≤s} and G_t^{[0..s]} stay above some λ > 0 for all layer-times
t = ℓ/L and steps s ≤ T. Three measurements:

(a) **linear, exact.** For φ = id every particle is a linear functional of independent
    Gaussians, so :func:`nfdlib.limits.true_limit.linear_exact` (``corrections=False``: NFD)
    gives C and G at P = ∞, without Monte-Carlo error. For each step count T in
    ``linear_steps`` and η_c in ``linear_eta_cs``: λ_min(C) = min_{t,s} λ_min(C_t^{[0..s]}) and
    λ_min(G) likewise, and their scaling in η_c (log–log slope) at every T.
(b) **tanh, P → ∞.** The particle solver (:mod:`nfdlib.limits.nfd`) with P in ``particles``
    (``reps`` independent systems each): the minima over t and s of λ_min(C) and λ_min(G),
    extrapolated by a fit λ(P) = λ∞ + c·P^(-α) with a bootstrap CI for λ∞
    (:func:`nfdlib.metrics.offset_power_law_fit`).
(c) **why G is nearly degenerate.** At t = 1 the v boundary of Def. 5.3 gives
    g_1^{(r+1)} - g_1^{(r)} = -η_c χ_r h_1^{(r)}, so with the unit vector e = (e_{r+1} - e_r)/√2,
    Δ_r := G_1^{(r+1,r+1)} - 2 G_1^{(r,r+1)} + G_1^{(r,r)} = η_c² χ_r² E[(h_1^{(r)})²] and the
    Rayleigh quotient bounds

        λ_min(G_1^{[0..s]}) ≤ λ_pred := min_{r<s} Δ_r / 2 = min_{r<s} η_c² χ_r² E[(h_1^{(r)})²] / 2,

    an equality to leading order when one step is involved (T = 2: the block
    [[a, a], [a, a + Δ]] has λ_min = Δ/2 + O(Δ²/a)). A small residual χ_r makes two consecutive
    gradient features nearly equal, hence G nearly degenerate, with λ_min ∝ η_c². The ratio
    λ_min / λ_pred (≤ 1) is measured in (a) and (b).

``data``: ``linear`` {steps, eta_cs, lam_C, lam_G, max_C, max_G, pred, diverged} (lists
over T of lists over η_c); ``eta_cs``, ``particles``; per η_c: ``sweep`` {min_C, min_G
(P × reps), max_C, max_G, pred (P × reps), diverged_at}, ``lam_C``, ``lam_G`` (the L×T
tables of the first replicate at the largest P), ``f``, ``loss``; ``fits`` per η_c
{C, G} from :func:`nfdlib.metrics.offset_power_law_fit`; ``diverged`` (η_c that did).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .. import claims
from ..executor import check_executor, run_grid
from ..limits import nfd
from ..limits import true_limit as tl
from ..metrics import offset_power_law_fit, power_law_fit_dict
from ..model import DEVICES
from ..params import ParamError, Params, require_memory, spec
from . import Experiment, save_figure

NAME = "a54_nondegeneracy"
RANK_TOL = 1e-8    # λ below RANK_TOL·max|K|: numerically degenerate (particle kernels)
EXACT_TOL = 1e-13  # λ below EXACT_TOL·max|K|: under float64 resolution (exact kernels)


@dataclass(frozen=True)
class A54Params(Params):
    profile: str = spec("book")
    backend: str = spec("numba", choices=nfd.BACKENDS)
    device: str = spec("auto", choices=DEVICES)
    seed: int = spec(0, min=0)
    executor: str = spec("serial")
    activation: str = spec("tanh", choices=nfd.ACTIVATIONS)
    eta_cs: list[float] = spec([0.5, 0.1, 1.0], min=0.0, nonempty=True,
                               doc="learning rates; the first is the default setting")
    steps: int = spec(8, min=1)
    d: int = spec(8, min=1)
    depth: int = spec(16, min=1)
    particles: list[int] = spec([2**12, 2**13, 2**14, 2**15, 2**16, 2**17, 2**18], min=2, nonempty=True,
                                doc="particle numbers of the P → ∞ extrapolation (increasing, >= 4 values)")
    reps: int = spec(4, min=2, doc="independent particle systems per P")
    n_boot: int = spec(400, min=50, doc="bootstrap refits of the λ∞ interval")
    linear_steps: list[int] = spec([2, 4, 8, 16], min=1, nonempty=True, doc="T of the exact linear case")
    linear_eta_cs: list[float] = spec([0.05, 0.1, 0.2, 0.4], gt=0.0, nonempty=True,
                                      doc="η_c of the exact linear case (>= 3 for the η_c scaling)")

    PROFILE_DEFAULTS = {
        "smoke": {"steps": 3, "depth": 4, "particles": [256, 512, 1024, 2048], "reps": 2, "n_boot": 50,
                  "eta_cs": [0.5, 0.1], "linear_steps": [2, 4], "linear_eta_cs": [0.1, 0.2, 0.4]},
        "book": {},
        "paper": {"particles": [2**k for k in range(12, 21)], "reps": 4},
    }

    def check(self) -> None:
        check_executor(self.executor)
        if self.backend != "torch" and self.device == "cuda":
            raise ParamError(f"parameter 'device' = 'cuda' is not allowed with backend {self.backend!r}; "
                             "allowed: 'auto', 'cpu'")
        if len(self.particles) < 4 or list(self.particles) != sorted(set(self.particles)):
            raise ParamError(f"parameter 'particles' = {self.particles} is not allowed; allowed: >= 4 "
                             "strictly increasing values (a 3-parameter fit with a CI)")
        if len(self.linear_eta_cs) < 3:
            raise ParamError(f"parameter 'linear_eta_cs' = {self.linear_eta_cs} is not allowed; allowed: "
                             ">= 3 values (a slope with a CI)")
        P, L, T = max(self.particles), self.depth, self.steps
        require_memory(nfd.noise_bytes(P, L, T, self.d) + nfd.solver_bytes(P, L, T, 1),
                       f"an NFD solve with P={P}, L={L}, T={T}")


# ----------------------------------------------------------------------------- (c) the χ prediction

def chi_prediction(G: np.ndarray) -> float | None:
    """λ_pred = min_{r<T-1} Δ_r / 2 with Δ_r = G_L^{(r+1,r+1)} - 2G_L^{(r,r+1)} + G_L^{(r,r)}
    (= η_c² χ_r² E[(h_L^{(r)})²] by the v boundary), the Rayleigh bound on λ_min(G_L^{[0..T-1]})
    (module docstring). ``G`` is L×T×T with index L-1 holding G_L. None when T = 1."""
    GL = np.asarray(G, dtype=float)[-1]
    T = GL.shape[0]
    if T < 2 or not np.all(np.isfinite(GL)):
        return None
    d = [GL[r + 1, r + 1] - 2 * GL[r, r + 1] + GL[r, r] for r in range(T - 1)]
    return float(min(d) / 2)


# ----------------------------------------------------------------------------- (a) linear, exact

def linear_point(params: dict, steps: int, eta_c: float) -> dict:
    """Exact NFD kernels (P = ∞) for φ = id: the minima of λ_min(C), λ_min(G) over t and s,
    max|K| and λ_pred; a non-finite trajectory is recorded as diverged."""
    p = A54Params.build(**params)
    X, y = nfd.synthetic_task(steps, p.d, p.seed)
    with np.errstate(all="ignore"):
        e = tl.linear_exact(X, y, eta_c, p.depth, corrections=False)
    if not (np.all(np.isfinite(e["f"])) and np.all(np.isfinite(e["C"])) and np.all(np.isfinite(e["G"]))):
        return {"diverged": True, "lam_C": None, "lam_G": None, "max_C": None, "max_G": None, "pred": None}
    return {"diverged": False, "lam_C": _nanmin(nfd.min_eigenvalues(e["C"])),
            "lam_G": _nanmin(nfd.min_eigenvalues(e["G"])), "max_C": _nanmax(e["C"]),
            "max_G": _nanmax(e["G"]), "pred": chi_prediction(e["G"])}


# ----------------------------------------------------------------------------- (b) tanh sweep

def point(params: dict, eta_c: float, particles: int, rep: int) -> dict:
    """One NFD solve at η_c with ``particles`` particles (replicate ``rep``; the same noise
    for every η_c): its eigenvalue tables, minima, max|K| and λ_pred."""
    p = A54Params.build(**params)
    X, y = nfd.synthetic_task(p.steps, p.d, p.seed)
    noise = nfd.draw_noise(np.random.default_rng([p.seed, 54, particles, rep]), particles, p.depth,
                           p.steps, p.d)
    res = nfd.solve(X, y, eta_c, noise, p.activation, p.backend, p.device)
    lam_C, lam_G = nfd.min_eigenvalues(res.C), nfd.min_eigenvalues(res.G)
    return {"lam_C": lam_C, "lam_G": lam_G, "min_C": _nanmin(lam_C), "min_G": _nanmin(lam_G),
            "max_C": _nanmax(res.C), "max_G": _nanmax(res.G), "pred": chi_prediction(res.G),
            "f": res.f, "loss": res.loss, "diverged_at": res.diverged_at}


def run(params: A54Params, store) -> dict:
    pd = params.to_dict()
    lin_pts = [(f"linear_T{T}_eta{e:g}", {"params": pd, "steps": T, "eta_c": e})
               for T in params.linear_steps for e in params.linear_eta_cs]
    lin = run_grid(store, lin_pts, linear_point, executor=params.executor, desc="linear exact")
    linear = {"steps": params.linear_steps, "eta_cs": params.linear_eta_cs}
    for k in ("lam_C", "lam_G", "max_C", "max_G", "pred", "diverged"):
        linear[k] = [[lin[f"linear_T{T}_eta{e:g}"][k] for e in params.linear_eta_cs] for T in params.linear_steps]

    pts = [(f"eta{e:g}_P{P}_r{r}", {"params": pd, "eta_c": e, "particles": P, "rep": r})
           for e in params.eta_cs for P in params.particles for r in range(params.reps)]
    rec = run_grid(store, pts, point, executor=params.executor, desc="NFD solves")
    data = {"linear": linear, "eta_cs": params.eta_cs, "particles": params.particles, "reps": params.reps,
            "sweep": [], "lam_C": [], "lam_G": [], "f": [], "loss": [], "diverged_at": []}
    for e in params.eta_cs:
        rs = [[rec[f"eta{e:g}_P{P}_r{r}"] for r in range(params.reps)] for P in params.particles]
        sw = {k: [[x[k] for x in row] for row in rs] for k in ("min_C", "min_G", "max_C", "max_G", "pred")}
        steps = [x["diverged_at"] for row in rs for x in row if x["diverged_at"] is not None]
        sw["diverged_at"] = min(steps) if steps else None
        data["sweep"].append(sw)
        top = rs[-1][0]
        for k in ("lam_C", "lam_G", "f", "loss"):
            data[k].append(top[k])
        data["diverged_at"].append(sw["diverged_at"])
    data["diverged"] = [e for e, k in zip(params.eta_cs, data["diverged_at"]) if k is not None]
    data["fits"] = fits(data, params.n_boot, params.seed)
    return data


def fits(data: dict, n_boot: int = 400, seed: int = 0) -> list[dict | None]:
    """Per η_c: the P → ∞ fits of min λ_min(C) and of min λ_min(G) (None when diverged)."""
    out = []
    for sw, k in zip(data["sweep"], data["diverged_at"]):
        if k is not None:
            out.append(None)
            continue
        out.append({K: offset_power_law_fit(data["particles"], [np.array(r, float) for r in sw[f"min_{K}"]],
                                            n_boot=n_boot, seed=seed) for K in ("C", "G")})
    return out


def _nanmin(a) -> float | None:
    a = np.array(a, dtype=float)
    return float(np.nanmin(a)) if np.isfinite(a).any() else None


def _nanmax(a) -> float | None:
    a = np.abs(np.array(a, dtype=float))
    return float(np.nanmax(a)) if np.isfinite(a).any() else None


# ----------------------------------------------------------------------------- checks

def status(fit: dict | None, kmax: float | None) -> str:
    """From a P → ∞ fit: ``positive`` when the CI of λ∞ lies above RANK_TOL·max|K|;
    ``degenerate`` when it lies below it; ``unresolved`` otherwise (or without a fit)."""
    if fit is None or kmax is None:
        return "unresolved"
    lo, hi = fit["y_inf_ci"]
    tol = RANK_TOL * kmax
    if lo > tol:
        return "positive"
    if hi <= tol:
        return "degenerate"
    return "unresolved"


def _worst(a: str, b: str) -> str:
    order = ("degenerate", "unresolved", "positive")
    return min(a, b, key=order.index)


def check_linear(lin: dict) -> dict:
    """A5.4 for φ = id from the exact kernels: every (T, η_c) that did not diverge has
    λ_min(C) and λ_min(G) above EXACT_TOL·max|K| (resolved positive in float64) → reproduced;
    one at or below 0 → not reproduced; one positive but under the float64 resolution →
    inconclusive. Measured: the minima per T and the η_c-slope of log λ_min(G) per T (the
    χ prediction says ≈ 2 where one residual dominates) and the ratio λ_min(G)/λ_pred."""
    st, per_T = [], {}
    for i, T in enumerate(lin["steps"]):
        rows = []
        for j, e in enumerate(lin["eta_cs"]):
            if lin["diverged"][i][j]:
                rows.append({"eta_c": e, "status": "diverged"})
                continue
            s = []
            for K in ("C", "G"):
                lam, kmax = lin[f"lam_{K}"][i][j], lin[f"max_{K}"][i][j]
                s.append("negative" if lam <= 0 else ("positive" if lam > EXACT_TOL * kmax else "unresolved"))
            x = "negative" if "negative" in s else ("unresolved" if "unresolved" in s else "positive")
            st.append(x)
            pred = lin["pred"][i][j]
            rows.append({"eta_c": e, "lam_C": _r(lin["lam_C"][i][j]), "lam_G": _r(lin["lam_G"][i][j]),
                         "ratio_G_to_pred": _r(lin["lam_G"][i][j] / pred) if pred else None, "status": x})
        ok = [(e, lin["lam_G"][i][j]) for j, e in enumerate(lin["eta_cs"]) if not lin["diverged"][i][j]]
        fit = power_law_fit_dict([e for e, _ in ok], [v for _, v in ok]) if len(ok) >= 3 else None
        per_T[f"T={T}"] = {"points": rows, "eta_slope_G": None if fit is None else
                           {"slope": _r(fit["slope"]), "ci": [_r(c) for c in fit["slope_ci"]]}}
    if not st:
        verdict = "inconclusive"
    elif "negative" in st:
        verdict = "not reproduced"
    elif "unresolved" in st:
        verdict = "inconclusive"
    else:
        verdict = "reproduced"
    return claims.record("A5.4", verdict, per_T,
                         "lambda_min(C), lambda_min(G) > 0 (exact kernels, P = infinity); "
                         "lambda_min(G) <= lambda_pred = min_r eta_c^2 chi_r^2 E h_1^2 / 2",
                         activation="linear", statuses=st)


def check_tanh(data: dict, params: A54Params) -> list[dict]:
    """A5.4 and F3 for the particle solver: per η_c the :func:`status` of the P → ∞ fits of
    min λ_min(C) and min λ_min(G) (the worse of the two), or ``diverged at step k``. Verdict:
    reproduced when the default (first) η_c is positive and every other non-diverged one too;
    partly when the default is positive and another is not; not reproduced when the default is
    degenerate; inconclusive when it is unresolved or diverged."""
    fs = data.get("fits") or fits(data, params.n_boot, params.seed)
    st, measured = [], {}
    for e, k, sw, fit in zip(data["eta_cs"], data["diverged_at"], data["sweep"], fs):
        if k is not None:
            st.append(f"diverged at step {k}")
            measured[f"eta_c={e:g}"] = {"status": st[-1]}
            continue
        kC, kG = _nanmax(sw["max_C"]), _nanmax(sw["max_G"])
        x = _worst(status(fit["C"], kC), status(fit["G"], kG))
        st.append(x)
        pred = np.array(sw["pred"][-1], float)
        lamG = np.array(sw["min_G"][-1], float)
        measured[f"eta_c={e:g}"] = {
            "lam_inf_C": _r(fit["C"]["y_inf"]) if fit["C"] else None,
            "lam_inf_C_ci": [_r(c) for c in fit["C"]["y_inf_ci"]] if fit["C"] else None,
            "lam_inf_G": _r(fit["G"]["y_inf"]) if fit["G"] else None,
            "lam_inf_G_ci": [_r(c) for c in fit["G"]["y_inf_ci"]] if fit["G"] else None,
            "alpha_G": _r(fit["G"]["alpha"]) if fit["G"] else None,
            "ratio_G_to_pred_at_Pmax": _r(float(np.mean(lamG / pred))) if np.all(pred > 0) else None,
            "status": x}
    default = st[0]
    judged = [x for x, k in zip(st, data["diverged_at"]) if k is None]
    if default == "positive" and all(x == "positive" for x in judged):
        verdict = "reproduced"
    elif default == "positive":
        verdict = "partly reproduced"
    elif default == "degenerate":
        verdict = "not reproduced"
    else:
        verdict = "inconclusive"
    expected = ("lambda_inf = lim_P min over t, s of lambda_min(C), lambda_min(G) > 0 "
                "(95% bootstrap CI of the fit lambda(P) = lambda_inf + c P^-alpha above 1e-8 max|K|)")
    return [claims.record(cid, verdict, measured, expected, status=st, activation=params.activation,
                          particles=[int(data["particles"][0]), int(data["particles"][-1])], reps=data["reps"])
            for cid in ("A5.4", "F3")]


def check(data: dict, params: A54Params) -> list[dict]:
    return check_tanh(data, params) + [check_linear(data["linear"])]


def _r(x):
    return None if x is None else float(f"{x:.3g}")


# ----------------------------------------------------------------------------- figure

def plot(data: dict, params: A54Params, path=None):
    """Fig. 3. Top row, per η_c: λ_min(C_t^{[0..s]}) and λ_min(G_t^{[0..s]}) against t at the
    largest P (one line per s; C dashed). Bottom row: (left) min λ_min(G) and min λ_min(C)
    against P, replicate means ± 2 SE, with the fit λ∞ + c·P^(-α) and the CI of λ∞ (band) per
    η_c and λ_pred (dotted); (right) the exact linear minima against η_c per T, with λ_pred."""
    import matplotlib.pyplot as plt
    n = len(data["eta_cs"])
    fig, ax = plt.subplots(2, max(n, 2), figsize=(4.4 * max(n, 2), 7.4), squeeze=False)
    for j, eta in enumerate(data["eta_cs"]):
        a = ax[0, j]
        for key, ls in (("lam_G", "-"), ("lam_C", "--")):
            lam = np.array(data[key][j], dtype=float)
            L, T = lam.shape
            t = (np.arange(L) if key == "lam_C" else np.arange(1, L + 1)) / L  # C_ℓ uses h_{ℓ-1}
            for s in range(T):
                a.plot(t, lam[:, s], ls, color=plt.cm.viridis(s / max(T - 1, 1)), lw=1,
                       label=f"s={s}" if key == "lam_G" else None)
        a.set(yscale="log", xlabel="layer-time $t=\\ell/L$",
              title=f"$\\eta_c$={eta:g}: $\\lambda_{{min}}(G_t^{{[0..s]}})$ (—), $C$ (- -), $P=2^{{{int(np.log2(data['particles'][-1]))}}}$")
    ax[0, 0].legend(fontsize=6, ncol=2)
    for j in range(n, ax.shape[1]):
        ax[0, j].axis("off")
    a = ax[1, 0]
    P = np.array(data["particles"], float)
    Pf = np.geomspace(P[0], P[-1] * 4, 200)
    fs = data.get("fits") or fits(data)
    for j, (eta, sw, fit) in enumerate(zip(data["eta_cs"], data["sweep"], fs)):
        col = f"C{j}"
        for K, mk in (("G", "o"), ("C", "s")):
            v = np.array(sw[f"min_{K}"], float)
            m, se = v.mean(1), v.std(1, ddof=1) / np.sqrt(v.shape[1])
            a.errorbar(P, m, 2 * se, marker=mk, color=col, ls="none", capsize=2, ms=4,
                       label=f"$\\eta_c$={eta:g}, {K}")
            f = fit and fit.get(K)
            if f:
                a.plot(Pf, f["y_inf"] + f["c"] * Pf ** -f["alpha"], color=col, lw=0.8)
                lo, hi = f["y_inf_ci"]
                a.fill_between([P[0], Pf[-1]], max(lo, 1e-12), max(hi, 1e-12), color=col, alpha=0.12)
        pr = np.array(sw["pred"], float).mean(1)
        a.plot(P, pr, ":", color=col, lw=1)
    a.set(xscale="log", yscale="log", xlabel="particles $P$", ylabel="min over $t,s$ of $\\lambda_{min}$",
          title=f"min $\\lambda_{{min}}$ vs $P$ ({data['reps']} systems each; band: 95% CI of $\\lambda_\\infty$; "
                "dotted: $\\lambda_{pred}$)")
    a.set_xscale("log", base=2)
    a.legend(fontsize=6, ncol=2)
    a = ax[1, 1]
    lin = data["linear"]
    for i, T in enumerate(lin["steps"]):
        e = np.array(lin["eta_cs"], float)
        lg = np.array([np.nan if v is None else v for v in lin["lam_G"][i]], float)
        lc = np.array([np.nan if v is None else v for v in lin["lam_C"][i]], float)
        pr = np.array([np.nan if v is None else v for v in lin["pred"][i]], float)
        a.plot(e, lg, "o-", color=f"C{i}", label=f"T={T}: G")
        a.plot(e, lc, "s--", color=f"C{i}", mfc="none", label=f"T={T}: C")
        a.plot(e, pr, ":", color=f"C{i}")
    e = np.array(lin["eta_cs"], float)
    a.plot(e, 1e-3 * (e / e[0]) ** 2, "k-", lw=0.6, label="$\\propto\\eta_c^2$")
    a.set(xscale="log", yscale="log", xlabel="$\\eta_c$", title="linear, exact ($P=\\infty$); dotted: $\\lambda_{pred}$")
    a.legend(fontsize=6, ncol=2)
    for j in range(2, ax.shape[1]):
        ax[1, j].axis("off")
    fig.tight_layout()
    save_figure(fig, path, "fig3")
    return fig


EXPERIMENT = Experiment(NAME, "A5.4 / Fig. 3: smallest eigenvalues of the NFD kernels",
                        A54Params, run, check, plot)
