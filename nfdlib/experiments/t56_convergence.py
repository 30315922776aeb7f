"""T5.6 / C5.7 and Fig. 1 (training): finite networks against Neural Feature Dynamics.

Finite depth-µP networks (:class:`nfdlib.network.Network`, float64, numba) are trained by
stream SGD (batch 1, MSE, η = η_c·n) on the T inputs of
:func:`nfdlib.limits.nfd.synthetic_task`, from the same seed with the true (``reused``)
and the ``decoupled`` backward pass. At every step s we record f_s (the output on ξ_s before
the update, as in D5.3) and the kernels C_ℓ^{(r,s)} = φ(h_{ℓ-1}^{(r)})·φ(h_{ℓ-1}^{(s)})/n and
G_ℓ^{(r,s)} = g_ℓ^{(r)}·g_ℓ^{(s)}/n, and compare them with the NFD solver:

(a) width: at depth ``width_depth`` for n in ``widths``: the mean square error
    E_seed mean_s (f_s^{(n)} - f_s^{NFD})², and the relative squared kernel errors, against NFD
    at the same L. NFD describes the decoupled network by construction: expected ∝ 1/n.
(b) depth: at width ``depth_width`` for L in ``depths``: the squared bias of the seed-mean
    trajectory, mean_s [(f̄_s - f_s^{NFD})² - se_s²], against NFD at the same L and against
    NFD at ``ref_depth`` (the depth limit). Thm. 5.6 says the true network converges to NFD
    with a C/L error in second moment: a slope ≤ -1 in L.
Each point also stores the 1-D W2 distance between the coordinates of h_L at the last step
and the NFD particles (feature laws).

``data``: ``widths``, ``depths``, ``width_depth``, ``depth_width``, ``f_nfd`` {L: trajectory},
``width`` {backward: {f_mse, f_mse_se, kernel_err, w2}}, ``depth`` {backward: {bias2_same,
bias2_ref, their jackknife SEs bias2_same_se, bias2_ref_se, f_mse, w2}}, ``seeds``, fits ``fit_width`` {backward}, ``fit_depth_ref`` {backward},
``diverged``.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .. import claims
from ..executor import check_executor, run_grid
from ..limits import nfd
from ..limits.particles import _ACT, _phi_np
from ..metrics import mean_se, power_law_fit_dict
from ..model import DEVICES, NetworkSpec
from ..network import Network
from ..params import ParamError, Params, require_fit_lengths, require_memory, spec
from . import Experiment, save_figure

NAME = "t56_convergence"
BACKWARDS = ("decoupled", "reused")
QUANTILES = np.linspace(0.005, 0.995, 100)


@dataclass(frozen=True)
class T56Params(Params):
    profile: str = spec("book")
    backend: str = spec("numba", choices=nfd.BACKENDS, doc="backend of networks and solver")
    device: str = spec("auto", choices=DEVICES)
    seed: int = spec(0, min=0)
    executor: str = spec("serial")
    activation: str = spec("tanh", choices=nfd.ACTIVATIONS)
    eta_c: float = spec(0.5, min=0.0)
    steps: int = spec(6, min=1)
    d: int = spec(8, min=1)
    widths: list[int] = spec([64, 128, 256, 512, 1024], min=1, nonempty=True)
    width_depth: int = spec(4, min=1)
    depths: list[int] = spec([2, 4, 8, 16], min=1, nonempty=True)
    depth_width: int = spec(512, min=1)
    seeds: int = spec(32, min=2, doc="network seeds per (width, depth) and backward pass")
    particles: int = spec(2**16, min=2)
    ref_depth: int = spec(64, min=1)

    PROFILE_DEFAULTS = {
        "smoke": {"steps": 3, "widths": [16, 32, 64], "width_depth": 2, "depths": [1, 2, 4],
                  "depth_width": 32, "seeds": 2, "particles": 1024, "ref_depth": 8},
        "book": {},
        "paper": {"steps": 10, "widths": [64, 128, 256, 512, 1024, 2048], "width_depth": 8,
                  "depths": [2, 4, 8, 16, 32, 64], "depth_width": 2048, "seeds": 32,
                  "particles": 2**18, "ref_depth": 256},
    }

    def check(self) -> None:
        check_executor(self.executor)
        require_fit_lengths(self, "widths", "depths")
        if self.backend != "torch" and self.device == "cuda":
            raise ParamError(f"parameter 'device' = 'cuda' is not allowed with backend {self.backend!r}; "
                             "allowed: 'auto', 'cpu'")
        if self.ref_depth < max(self.depths):
            raise ParamError(f"parameter 'ref_depth' = {self.ref_depth} is too small; allowed: >= max(depths)")
        for L in set(self.depths) | {self.width_depth, self.ref_depth}:
            require_memory(nfd.noise_bytes(self.particles, L, self.steps, self.d)
                           + nfd.solver_bytes(self.particles, L, self.steps, 1),
                           f"an NFD solve with P={self.particles}, L={L}, T={self.steps}")
        for n, L in [(max(self.widths), self.width_depth), (self.depth_width, max(self.depths))]:
            require_memory(8 * (2 * L * n * n + 2 * L * self.steps * n), f"a network of width {n}, depth {L}")


def nfd_point(params: dict, depth: int) -> dict:
    """NFD at depth L: f trajectory, kernels, quantiles of h_L at the last step."""
    p = T56Params.build(**params)
    X, y = nfd.synthetic_task(p.steps, p.d, p.seed)
    noise = nfd.draw_noise(np.random.default_rng([p.seed, 56, depth]), p.particles, depth, p.steps, p.d)
    res = nfd.solve(X, y, p.eta_c, noise, p.activation, p.backend, p.device, keep=(depth,))
    return {"f": res.f, "C": res.C, "G": res.G, "diverged": res.diverged,
            "q_hL": np.quantile(res.h[0, -1], QUANTILES) if not res.diverged else None}


def train_network(p: T56Params, width: int, depth: int, backward: str, seed: int):
    """Stream SGD of one finite network; returns f (T), C, G (L×T×T) and h_L at the last step."""
    X, y = nfd.synthetic_task(p.steps, p.d, p.seed)
    spec_ = NetworkSpec.build(arch="depth_mup", width=width, depth=depth, activation=p.activation,
                              d=p.d, backward=backward, backend=p.backend if p.backend != "numpy" else "numpy",
                              dtype="float64", device=p.device)
    net = Network(spec_, np.random.default_rng([p.seed, 560, seed]))
    T, n = p.steps, width
    f = np.empty(T)
    feats = np.empty((depth, T, n))
    grads = np.empty((depth, T, n))
    hL = None
    for s in range(T):
        x, ys = X[s:s + 1], y[s:s + 1].reshape(1, 1)
        pas = net.forward(x)
        f[s] = pas.f[0, 0]
        hs = pas.numpy("hs")[:, 0, :]
        net.backward(pas, np.ones((1, 1)))
        gs = pas.numpy("gs")[:, 0, :]
        feats[:, s] = _phi_np(hs[:-1], _ACT[p.activation])
        grads[:, s] = gs[1:]
        hL = hs[-1]
        if not np.isfinite(f[s]):
            break
        net.step(x, ys, p.eta_c, loss="mse")
    C = np.einsum("lrn,lsn->lrs", feats, feats) / n
    G = np.einsum("lrn,lsn->lrs", grads, grads) / n
    return f, C, G, hL


def net_point(params: dict, width: int, depth: int, backward: str, seed: int, nfd_rec: dict) -> dict:
    """One trained network against NFD at the same depth."""
    p = T56Params.build(**params)
    f, C, G, hL = train_network(p, width, depth, backward, seed)
    Cn, Gn = np.array(nfd_rec["C"], float), np.array(nfd_rec["G"], float)
    kern = float((np.sum((C - Cn) ** 2) + np.sum((G - Gn) ** 2)) / (np.sum(Cn ** 2) + np.sum(Gn ** 2)))
    q = np.array(nfd_rec["q_hL"], float) if nfd_rec["q_hL"] is not None else None
    w2 = float(np.sqrt(np.mean((np.quantile(hL, QUANTILES) - q) ** 2))) if q is not None else None
    return {"f": f, "kernel_err": kern, "w2": w2, "diverged": not bool(np.all(np.isfinite(f)))}


def _sq_bias(fs: np.ndarray, f_ref: np.ndarray) -> float:
    """mean_s [(f̄_s - f_ref,s)² - se_s²]: the squared bias of the seed-mean trajectory with
    the finite-width variance of the mean removed."""
    m, se = mean_se(fs, axis=0)
    return float(np.mean((m - f_ref) ** 2 - se ** 2))


def _sq_bias_se(fs: np.ndarray, f_ref: np.ndarray) -> float:
    """Jackknife standard error of :func:`_sq_bias` over the seeds (rows of ``fs``):
    √((k-1)/k · Σ_i (θ_(i) - θ̄)²) with θ_(i) the estimate without seed i."""
    k = fs.shape[0]
    if k < 3:
        return float("nan")
    th = np.array([_sq_bias(np.delete(fs, i, axis=0), f_ref) for i in range(k)])
    return float(np.sqrt((k - 1) / k * np.sum((th - th.mean()) ** 2)))


def run(params: T56Params, store) -> dict:
    pd = params.to_dict()
    Ls = sorted(set(params.depths) | {params.width_depth, params.ref_depth})
    nfd_recs = run_grid(store, [(f"nfd_L{L}", {"params": pd, "depth": L}) for L in Ls], nfd_point,
                        executor=params.executor, desc="NFD")
    pts = []
    for b in BACKWARDS:
        for k in range(params.seeds):
            pts += [(f"w{n}_L{params.width_depth}_{b}_{k}",
                     {"params": pd, "width": n, "depth": params.width_depth, "backward": b, "seed": k,
                      "nfd_rec": nfd_recs[f"nfd_L{params.width_depth}"]}) for n in params.widths]
            pts += [(f"w{params.depth_width}_L{L}_{b}_{k}",
                     {"params": pd, "width": params.depth_width, "depth": L, "backward": b, "seed": k,
                      "nfd_rec": nfd_recs[f"nfd_L{L}"]}) for L in params.depths]
    recs = run_grid(store, list(dict(pts).items()), net_point, executor=params.executor, desc="networks")
    f_nfd = {L: np.array(nfd_recs[f"nfd_L{L}"]["f"], float) for L in Ls}
    f_lim = f_nfd[params.ref_depth]
    data = {"widths": params.widths, "depths": params.depths, "width_depth": params.width_depth,
            "depth_width": params.depth_width, "ref_depth": params.ref_depth, "seeds": params.seeds,
            "f_nfd": {str(L): f for L, f in f_nfd.items()}, "width": {}, "depth": {},
            "diverged": [k for k, r in recs.items() if r["diverged"]]
            + [k for k, r in nfd_recs.items() if r["diverged"]]}
    for b in BACKWARDS:
        rows = {"f_mse": [], "f_mse_se": [], "kernel_err": [], "w2": [], "bias2_same": []}
        for n in params.widths:
            rs = [recs[f"w{n}_L{params.width_depth}_{b}_{k}"] for k in range(params.seeds)]
            fs = np.array([r["f"] for r in rs], float)
            m, se = mean_se(np.mean((fs - f_nfd[params.width_depth]) ** 2, axis=1))
            rows["f_mse"].append(m)
            rows["f_mse_se"].append(se)
            rows["kernel_err"].append(float(np.mean([r["kernel_err"] for r in rs])))
            rows["w2"].append(float(np.mean([r["w2"] for r in rs if r["w2"] is not None] or [np.nan])))
            rows["bias2_same"].append(_sq_bias(fs, f_nfd[params.width_depth]))
        data["width"][b] = rows
        rows = {"f_mse": [], "bias2_same": [], "bias2_ref": [], "bias2_same_se": [], "bias2_ref_se": [],
                "w2": [], "kernel_err": []}
        for L in params.depths:
            rs = [recs[f"w{params.depth_width}_L{L}_{b}_{k}"] for k in range(params.seeds)]
            fs = np.array([r["f"] for r in rs], float)
            rows["f_mse"].append(float(np.mean((fs - f_nfd[L]) ** 2)))
            rows["bias2_same"].append(_sq_bias(fs, f_nfd[L]))
            rows["bias2_ref"].append(_sq_bias(fs, f_lim))
            rows["bias2_same_se"].append(_sq_bias_se(fs, f_nfd[L]))
            rows["bias2_ref_se"].append(_sq_bias_se(fs, f_lim))
            rows["w2"].append(float(np.mean([r["w2"] for r in rs if r["w2"] is not None] or [np.nan])))
            rows["kernel_err"].append(float(np.mean([r["kernel_err"] for r in rs])))
        data["depth"][b] = rows
    _add_fits(data)
    return data


def _add_fits(data: dict) -> None:
    data["fit_width"] = {b: power_law_fit_dict(data["widths"], data["width"][b]["f_mse"], data["width"][b]["f_mse_se"])
                         for b in data["width"]}
    data["fit_width_kernel"] = {b: power_law_fit_dict(data["widths"], data["width"][b]["kernel_err"]) for b in data["width"]}
    def _se(rows):  # weights from the jackknife SEs when every one is available (>= 3 seeds)
        se = rows.get("bias2_ref_se")
        return se if se is not None and np.all(np.isfinite(np.asarray(se, float))) else None
    data["fit_depth_ref"] = {b: power_law_fit_dict(data["depths"], data["depth"][b]["bias2_ref"], _se(data["depth"][b]))
                             for b in data["depth"]}


def _slope(fit):
    return None if fit is None else {"slope": round(fit["slope"], 3), "ci": [round(c, 3) for c in fit["slope_ci"]]}


def check(data: dict, params: T56Params) -> list[dict]:
    """T5.6, one record per statement. T5.6-decoupled: the decoupled network's f error
    against NFD at the same L decays as 1/n (-1 in the 95% CI of the slope in n). T5.6-true:
    the true (reused) network's squared bias against NFD at ``ref_depth`` decays at least like
    1/L (slope CI reaches -1 or below and lies below 0). A statement that fails in a run
    where some network diverged is inconclusive."""
    _add_fits(data)
    fw, fd = data["fit_width"]["decoupled"], data["fit_depth_ref"]["reused"]
    ok_w = fw is not None and fw["slope_ci"][0] <= -1.0 <= fw["slope_ci"][1]
    ok_d = fd is not None and fd["slope_ci"][0] <= -1.0 and fd["slope_ci"][1] < 0

    def verdict(ok: bool) -> str:
        return "reproduced" if ok else ("inconclusive" if data.get("diverged") else "not reproduced")

    decoupled = {
        "decoupled_f_mse_vs_n": _slope(fw),
        "decoupled_kernel_vs_n": _slope(data["fit_width_kernel"]["decoupled"]),
        "decoupled_bias2_vs_L": _slope(data["fit_depth_ref"]["decoupled"]),
        "decoupled_bias2_same_L_at_largest_n": float(f"{data['width']['decoupled']['bias2_same'][-1]:.3g}"),
    }
    true = {
        "reused_bias2_vs_L": _slope(fd),
        "reused_f_mse_vs_n": _slope(data["fit_width"]["reused"]),
        "reused_bias2_same_L_at_largest_n": float(f"{data['width']['reused']['bias2_same'][-1]:.3g}"),
    }
    return [claims.record("T5.6-decoupled", verdict(ok_w), decoupled, "f error ∝ n^-1 at fixed L"),
            claims.record("T5.6-true", verdict(ok_d), true, "squared bias vs NFD(L→∞) <= C/L"),
            check_f1_train(data)]


def check_f1_train(data: dict) -> dict:
    """F1 (after training) as one statement about the true (reused) network, which is what the
    paper trains: its f error against NFD at the same L falls with the width (slope CI of the
    f_mse fit below 0) *and* its squared bias against NFD at ``ref_depth`` falls with the depth
    (slope CI below 0). Reproduced when both fall; not reproduced when either slope's CI lies
    at or above 0; inconclusive otherwise (or when a network diverged)."""
    fw, fd = data["fit_width"]["reused"], data["fit_depth_ref"]["reused"]

    def sign(fit):
        if fit is None:
            return "unresolved"
        lo, hi = fit["slope_ci"]
        return "decreasing" if hi < 0 else ("not decreasing" if lo >= 0 else "unresolved")

    sw, sd = sign(fw), sign(fd)
    if "not decreasing" in (sw, sd):
        verdict = "not reproduced"
    elif sw == sd == "decreasing" and not data.get("diverged"):
        verdict = "reproduced"
    else:
        verdict = "inconclusive"
    dd = data["depth"]["reused"]
    measured = {"width": {"f_mse_vs_n": _slope(fw), "sign": sw},
                "depth": {"bias2_vs_L": _slope(fd), "sign": sd,
                          "bias2_at_depths": [float(f"{x:.3g}") for x in dd["bias2_ref"]],
                          "bias2_se": [float(f"{x:.2g}") for x in dd.get("bias2_ref_se", [])]}}
    return claims.record("F1-train", verdict, measured,
                         "true network: f error vs NFD decreases in n; squared bias vs NFD(L→∞) decreases in L",
                         seeds=int(data.get("seeds", 0)) or None)


def plot(data: dict, params: T56Params, path=None):
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots(1, 3, figsize=(13.5, 3.8))
    n = np.array(data["widths"], float)
    Ls = np.array(data["depths"], float)
    for b, mk, col in zip(BACKWARDS, ("o", "s"), ("C0", "C3")):
        w = data["width"][b]
        ax[0].errorbar(n, w["f_mse"], w["f_mse_se"], marker=mk, color=col, label=f"{b}: $E(f_s-f_s^{{NFD}})^2$")
        ax[0].plot(n, w["kernel_err"], marker=mk, color=col, ls=":", mfc="none", label=f"{b}: kernels (rel.)")
        dd = data["depth"][b]
        for key, ls, mfc, lab in (("bias2_ref", "-", None, f"vs NFD($L$={data['ref_depth']})"),
                                  ("bias2_same", ":", "none", "vs NFD(same $L$)")):
            m = np.array(dd[key], float)
            se = np.array(dd.get(f"{key}_se", [0.0] * len(m)), float)
            ok = m > 2 * se
            ax[1].errorbar(Ls[ok], m[ok], [np.minimum(2 * se[ok], 0.999 * m[ok]), 2 * se[ok]], marker=mk,
                           color=col, ls=ls, mfc=mfc, capsize=2, label=f"{b} {lab}")
            ax[1].plot(Ls[~ok], np.maximum(m[~ok] + 2 * se[~ok], np.maximum(2 * se[~ok], 1e-12)), "v", color=col,
                       mfc="none", ls="none")
    ax[0].plot(n, data["width"]["decoupled"]["f_mse"][0] * n[0] / n, "k--", lw=1, label="$n^{-1}$")
    ax[0].set(xscale="log", yscale="log", xlabel="width $n$", title=f"(a) after training, $L$={data['width_depth']}")
    ax[1].plot(Ls, max(data["depth"]["reused"]["bias2_ref"][0], 1e-12) * Ls[0] / Ls, "k--", lw=1, label="$L^{-1}$")
    ax[1].set(xscale="log", yscale="log", xlabel="depth $L$",
              title=f"(b) squared bias of $\\bar f_s$, $n$={data['depth_width']}, {data.get('seeds', '?')} seeds "
                    "(±2 jackknife SE; ▽: upper limit)")
    s = np.arange(len(data["f_nfd"][str(data["ref_depth"])]))
    for L in data["depths"]:
        ax[2].plot(s, data["f_nfd"][str(L)], marker=".", label=f"NFD $L$={L}")
    ax[2].plot(s, data["f_nfd"][str(data["ref_depth"])], "k-", lw=2, label=f"NFD $L$={data['ref_depth']}")
    ax[2].set(xlabel="step $s$", ylabel="$f_s$", title="(c) NFD trajectories")
    for a, ticks in ((ax[0], n), (ax[1], Ls)):
        a.set_xticks(ticks, [f"{t:g}" for t in ticks])
        a.minorticks_off()
    for a in ax:
        a.legend(fontsize=7)
    fig.tight_layout()
    save_figure(fig, path, "fig1_train")
    return fig


EXPERIMENT = Experiment(NAME, "T5.6 / Fig. 1 (training): finite networks vs NFD in width and depth",
                        T56Params, run, check, plot)
