"""T4.3 and Fig. 1 (initialisation): the forward–backward SDE limit of a depth-µP ResNet at
initialisation (Thm. 4.3; book/notes/fbsde.md).

Three measurements, all on the particle solver of :mod:`nfdlib.limits.fbsde`:

(a) second moments of the L-step chain, E h_L² and E g_0², against the chain's exact
    values q_L, p_0 and the SDE's q(1), p(0);
(b) strong errors max_ℓ E|h^{(L)}_ℓ - h_{t_ℓ}|² and max_ℓ E|g^{(L)}_ℓ - g_{t_ℓ}|² against a
    fine reference on the same Brownian paths, L = 2²…2⁹; Thm. 4.3 bounds both by C/L;
(c) Fig. 1 (initialisation), in law and without a Monte-Carlo floor: the debiased squared
    Wasserstein-2 distance D (:func:`nfdlib.metrics.w2_squared_debiased`, E D = squared
    distance of the expected quantile functions, 0 for equal laws) between pooled coordinates
    of h_L and g_0 of finite depth-µP networks (width n, depth L) and the n = ∞ chain of the
    same depth (the *width error*), and between the L-step chain and the SDE law (the *depth
    error*, with many more particles). Two independent samples of each law per replicate;
    ``fig1_reps`` replicates give the standard errors. Fits: D ≈ A·n^b at each depth and
    D ≈ A·L^b at n = ∞ (:func:`nfdlib.metrics.power_law_fit_nls`, weighted least squares in
    linear space, so estimates at the noise level keep their weight).
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from .. import claims
from ..executor import check_executor, run_grid
from ..limits import fbsde
from ..metrics import mean_se, power_law_fit, power_law_fit_nls, w2_squared_debiased, w2_squared_naive
from ..model import DEVICES, DTYPES, NetworkSpec
from ..network import Network
from ..params import ParamError, Params, require_memory, spec
from . import Experiment, save_figure

NAME = "t43_fbsde_init"
_ACT_CODE = {"tanh": 0, "relu": 1, "linear": 2}
Z_MAX = 3.0  # moments: |particle estimate - exact chain value| ≤ 3 standard errors
CHAIN_CHUNK = 2**16  # particles per independent system of a chain sample
CHAIN_ARRAYS = 4  # float64 (L+1)×P arrays one system holds: h, g and the two increment streams


@dataclass(frozen=True)
class FBSDEParams(Params):
    profile: str = spec("book")
    backend: str = spec("numba", choices=fbsde.BACKENDS)
    device: str = spec("auto", choices=DEVICES)
    seed: int = spec(0, min=0)
    executor: str = spec("serial")
    activations: list[str] = spec(["tanh", "relu"], choices=fbsde.ACTIVATIONS, nonempty=True,
                                  doc="activations of (a) moments and (b) strong errors")
    moment_depths: list[int] = spec([4, 16, 64, 256], min=1, nonempty=True)
    moment_particles: int = spec(2**14, min=2, doc="particles per replicate")
    moment_reps: int = spec(8, min=2, doc="independent particle systems (standard errors)")
    strong_depths: list[int] = spec([4, 8, 16, 32, 64, 128, 256, 512], min=1, nonempty=True)
    fine_depth: int = spec(4096, min=2, doc="steps of the reference solution")
    strong_particles: int = spec(2048, min=2)
    fig1_activation: str = spec("tanh", choices=fbsde.ACTIVATIONS)
    widths: list[int] = spec([4, 8, 16, 32, 64, 128, 256], min=1, nonempty=True)
    depths: list[int] = spec([4, 16, 64, 256], min=1, nonempty=True)
    pool: int = spec(2**15, min=2, doc="pooled coordinates per sample (two samples per law and replicate)")
    fig1_reps: int = spec(8, min=2, doc="independent replicates per (width, depth)")
    ref_depth: int = spec(512, min=1, doc="steps of the chain sampling the SDE law of g_0 (depth error)")
    depth_depths: list[int] = spec([2, 4, 8, 16, 32], min=1, nonempty=True,
                                   doc="depths of the depth error (n = ∞ chain against the SDE law)")
    depth_particles: int = spec(2**19, min=2, doc="particles per sample of the depth error")
    inputs: int = spec(32, min=1, doc="orthogonal inputs per network (= d = outputs); 1 unless φ is odd")
    dtype: str = spec("float32", choices=DTYPES, doc="finite networks' float type")
    network_backend: str = spec("numba", choices=fbsde.BACKENDS,
                                doc="backend of Fig. 1's finite networks")

    PROFILE_DEFAULTS = {
        "smoke": {"moment_depths": [4, 16], "moment_particles": 1024, "moment_reps": 4,
                  "strong_depths": [4, 8, 16, 32], "fine_depth": 256, "strong_particles": 512,
                  "widths": [4, 16, 64], "depths": [2, 4, 8], "pool": 1024, "inputs": 8, "fig1_reps": 2,
                  "ref_depth": 64, "depth_depths": [2, 4, 8], "depth_particles": 4096},
        "book": {},
        "paper": {"moment_particles": 2**16, "moment_reps": 16, "strong_particles": 8192,
                  "fine_depth": 8192, "widths": [4, 8, 16, 32, 64, 128, 256, 512, 1024],
                  "depths": [4, 16, 64, 256], "pool": 2**16, "fig1_reps": 8,
                  "depth_depths": [2, 4, 8, 16, 32, 64], "depth_particles": 2**20, "ref_depth": 1024},
    }

    def check(self) -> None:
        check_executor(self.executor)
        if self.device == "cuda" and (self.backend, self.network_backend) != ("torch", "torch"):
            raise ParamError("parameter 'device' = 'cuda' needs backend = network_backend = 'torch'; "
                             "allowed otherwise: 'auto', 'cpu'")
        bad = [L for L in self.strong_depths if self.fine_depth % L or L >= self.fine_depth]
        if bad:
            raise ParamError(f"parameter 'strong_depths' = {bad} is not allowed; allowed: proper "
                             f"divisors of fine_depth = {self.fine_depth}")
        bad = [n for n in self.widths if self.pool % (n * min(self.inputs, self.pool // n or 1))]
        if bad:
            raise ParamError(f"parameter 'widths' = {bad} is not allowed; allowed: n with n·min(inputs, "
                             f"pool/n) dividing pool = {self.pool} (each point pools whole networks)")
        if self.inputs > 1 and self.fig1_activation == "relu":
            raise ParamError("parameter 'inputs' must be 1 when fig1_activation = 'relu' (allowed: 1): "
                             "ReLU couples the forward processes of orthogonal inputs, so their "
                             "coordinates are not draws of one law")
        require_memory(4 * 8.0 * (self.fine_depth + 1) * self.strong_particles,
                       "the strong-error reference")
        require_memory(4 * 8.0 * (max(self.moment_depths) + 1) * self.moment_particles,
                       "the moment particle systems")
        bad = [L for L in self.depth_depths if L >= self.ref_depth]
        if bad:
            raise ParamError(f"parameter 'depth_depths' = {bad} is not allowed; allowed: depths below "
                             f"ref_depth = {self.ref_depth}")
        require_memory(CHAIN_ARRAYS * 8.0 * (self.ref_depth + 1) * min(CHAIN_CHUNK, self.depth_particles)
                       + 8 * 8.0 * self.depth_particles, "the depth-error particle systems")
        itemsize = 4 if self.dtype == "float32" else 8
        require_memory(itemsize * max(self.depths) * max(self.widths) ** 2, "the largest network")


# ----------------------------------------------------------------------------- grid points

def _moment_point(activation, depth, rep, particles, seed, backend, device):
    rng = np.random.default_rng([seed, 0, _ACT_CODE[activation], depth, rep])
    hs, gs = fbsde.simulate(particles, depth, activation, rng, backend=backend, device=device)
    return {"E_h2": float(np.mean(hs[-1] ** 2)), "E_g2": float(np.mean(gs[0] ** 2))}


def _strong_point(activation, depths, fine_depth, particles, seed, backend, device):
    rng = np.random.default_rng([seed, 1, _ACT_CODE[activation]])
    return {"rows": fbsde.strong_errors(depths, fine_depth, particles, activation, rng,
                                        backend=backend, device=device)}


def _network_samples(width, depth, count, inputs, activation, dtype, backend, device, rng):
    """h_L and g_0 of ``count`` independent depth-µP networks at ``inputs`` orthogonal inputs
    ξ_b = √B e_b (|ξ_b|² = d = B), with B outputs and χ = I_B, so that input b starts its
    backward pass from its own readout column, g_L(ξ_b) = V e_b. At n = ∞ the B coordinate
    processes are independent for odd φ (their covariances start at 0 and stay 0), so the
    n·B coordinates of a network are pooled as draws of one law. One network is held at a
    time (its two end layers copied out before the next is drawn)."""
    spec_ = NetworkSpec.build(arch="depth_mup", width=width, depth=depth, activation=activation,
                              d=inputs, n_out=inputs, backend=backend, dtype=dtype,
                              device=device if backend == "torch" else "auto")
    xi = math.sqrt(inputs) * np.eye(inputs)
    hL, g0 = [], []
    for _ in range(count):
        net = Network(spec_, rng)
        pas = net.backward(net.forward(xi), np.eye(inputs))
        hL.append(pas.numpy("hs")[-1].astype(float).ravel())
        g0.append(pas.numpy("gs")[0].astype(float).ravel())
        del net, pas
    return np.concatenate(hL), np.concatenate(g0)


def _chain_samples(size, depth, activation, rng, backend, device, chunk=CHAIN_CHUNK):
    """h_L and g_0 of the n = ∞ chain of ``depth`` steps: ``size`` particles, simulated in
    chunks (independent particle systems of ``chunk`` particles each; the law is the same).
    Only the two end values of a chunk are kept (copied out of its histories, which are then
    freed): the peak is one chunk's system, CHAIN_ARRAYS·8·(depth + 1)·chunk bytes."""
    hs, gs, done = np.empty(size), np.empty(size), 0
    while done < size:
        m = min(chunk, size - done)
        h, g = fbsde.simulate(max(m, 2), depth, activation, rng, backend=backend, device=device)
        hs[done:done + m] = h[-1][:m]
        gs[done:done + m] = g[0][:m]
        del h, g
        done += m
    return hs, gs


def _fig1_point(width, depth, rep, pool, inputs, activation, dtype, seed, backend, network_backend, device):
    """Width error at (n, L), replicate ``rep``: the debiased W₂² between two independent
    pools of ``pool`` network coordinates and two independent samples of the n = ∞ chain of
    the same depth (h_L: exact draws of N(0, q_L); g_0: chain particles), and the plug-in W₂²
    of one pair (which carries the floor)."""
    rng = np.random.default_rng([seed, 2, width, depth, rep])
    b = min(inputs, pool // width)
    X = [_network_samples(width, depth, pool // (width * b), b, activation, dtype, network_backend, device, rng)
         for _ in range(2)]
    qL = float(fbsde.chain_moments(activation, depth)[0][-1])
    Yh = [math.sqrt(qL) * rng.standard_normal(pool) for _ in range(2)]
    Yg = [_chain_samples(pool, depth, activation, rng, backend, device)[1] for _ in range(2)]
    return {"h_d2": w2_squared_debiased(X[0][0], X[1][0], *Yh), "g_d2": w2_squared_debiased(X[0][1], X[1][1], *Yg),
            "h_naive": w2_squared_naive(X[0][0], Yh[0]), "g_naive": w2_squared_naive(X[0][1], Yg[0])}


def _depth_point(depths, rep, particles, ref_depth, activation, seed, backend, device):
    """Depth errors of replicate ``rep`` at every L in ``depths``: the debiased W₂² between two
    samples of the L-step chain and two samples of the SDE law (h_1: exact draws of
    N(0, q(1)); g_0: the ``ref_depth``-step chain, whose own depth error is far below the
    resolution). The two SDE samples are shared by the depths of one replicate (they are
    independent of every chain sample, so each estimate keeps its exact bias; the depths'
    errors are correlated within a replicate, not across replicates)."""
    rng = np.random.default_rng([seed, 4, rep])
    q1 = float(fbsde.sde_moments(activation, 1.0)[0][0])
    Yh = [math.sqrt(q1) * rng.standard_normal(particles) for _ in range(2)]
    Yg = [_chain_samples(particles, ref_depth, activation, rng, backend, device)[1] for _ in range(2)]
    out = {}
    for L in depths:
        X = [_chain_samples(particles, L, activation, rng, backend, device) for _ in range(2)]
        out[str(L)] = {"h_d2": w2_squared_debiased(X[0][0], X[1][0], *Yh),
                       "g_d2": w2_squared_debiased(X[0][1], X[1][1], *Yg)}
    return out


def _summ(reps: list[dict], keys) -> dict:
    out = {}
    for k in keys:
        m, se = mean_se([r[k] for r in reps])
        out[k], out[f"{k}_se"] = float(m), float(se)
    return out


# ----------------------------------------------------------------------------- run

def run(p: FBSDEParams, store) -> dict:
    common = {"seed": p.seed, "backend": p.backend, "device": p.device}
    pts = [(f"moments_{a}_L{L}_r{r}", dict(activation=a, depth=L, rep=r, particles=p.moment_particles, **common))
           for a in p.activations for L in p.moment_depths for r in range(p.moment_reps)]
    rec = run_grid(store, pts, _moment_point, executor=p.executor, desc="moments")
    moments = []
    for a in p.activations:
        q_sde, p_sde = fbsde.sde_moments(a, [0.0, 1.0])
        for L in p.moment_depths:
            reps = [rec[f"moments_{a}_L{L}_r{r}"] for r in range(p.moment_reps)]
            (h2, h2_se), (g2, g2_se) = mean_se([x["E_h2"] for x in reps]), mean_se([x["E_g2"] for x in reps])
            q, pp = fbsde.chain_moments(a, L)
            moments.append({"depth": L, "activation": a, "E_h2_at_1": h2, "E_h2_se": h2_se,
                            "E_g2_at_0": g2, "E_g2_se": g2_se, "chain_q_L": q[-1], "chain_p_0": pp[0],
                            "sde_q_1": q_sde[1], "sde_p_0": p_sde[0],
                            "particles": p.moment_particles * p.moment_reps})

    pts = [(f"strong_{a}", dict(activation=a, depths=p.strong_depths, fine_depth=p.fine_depth,
                                particles=p.strong_particles, **common)) for a in p.activations]
    strong = [row for r in run_grid(store, pts, _strong_point, executor=p.executor, desc="strong").values()
              for row in r["rows"]]

    act = p.fig1_activation
    fig_common = dict(pool=p.pool, inputs=p.inputs, activation=act, dtype=p.dtype,
                      network_backend=p.network_backend, **common)
    grid = [(n, L) for n in p.widths for L in p.depths]
    pts = [(f"fig1_n{n}_L{L}_r{r}", dict(width=n, depth=L, rep=r, **fig_common))
           for n, L in grid for r in range(p.fig1_reps)]
    rec = run_grid(store, pts, _fig1_point, executor=p.executor, desc="fig1 widths")
    points = [dict(width=n, depth=L, **_summ([rec[f"fig1_n{n}_L{L}_r{r}"] for r in range(p.fig1_reps)],
                                             ("h_d2", "g_d2", "h_naive", "g_naive"))) for n, L in grid]
    pts = [(f"fig1_depth_r{r}", dict(depths=p.depth_depths, rep=r, particles=p.depth_particles,
                                      ref_depth=p.ref_depth, activation=act, **common))
           for r in range(p.fig1_reps)]
    rec = run_grid(store, pts, _depth_point, executor=p.executor, desc="fig1 depths")
    q1 = float(fbsde.sde_moments(act, 1.0)[0][0])
    depth_rows = []
    for L in p.depth_depths:
        row = dict(depth=L, **_summ([rec[f"fig1_depth_r{r}"][str(L)] for r in range(p.fig1_reps)], ("h_d2", "g_d2")))
        # the exact depth error of h: W₂²(N(0, q_L), N(0, q(1))) = (√q_L - √q(1))²
        row["h_d2_exact"] = (math.sqrt(fbsde.chain_moments(act, L)[0][-1]) - math.sqrt(q1)) ** 2
        depth_rows.append(row)
    fig1 = {"activation": act, "widths": p.widths, "depths": p.depths, "pool": p.pool, "reps": p.fig1_reps,
            "depth_depths": p.depth_depths, "depth_particles": p.depth_particles, "ref_depth": p.ref_depth,
            "q_1": q1, "points": points, "depth_error": depth_rows}
    return {"moments": moments, "strong_error": strong, "fig1": fig1}


# ----------------------------------------------------------------------------- checks

def check_moments(moments: list[dict]) -> dict:
    """z-scores of the particle moments against the exact chain values (book/notes/gaussian.md)."""
    z = []
    for m in moments:
        z.append((m["E_h2_at_1"] - m["chain_q_L"]) / max(m["E_h2_se"], 1e-300))
        z.append((m["E_g2_at_0"] - m["chain_p_0"]) / max(m["E_g2_se"], 1e-300))
    worst = float(np.max(np.abs(z)))
    return {"max_abs_z": worst, "ok": worst <= Z_MAX}


def fit_orders(strong: list[dict], activation: str) -> dict | None:
    """Power-law fits of h_mse and g_mse against L (orders = -slopes, with 95% CIs)."""
    rows = sorted((r for r in strong if r.get("activation", activation) == activation), key=lambda r: r["depth"])
    if len(rows) < 3:
        return None
    L = [r["depth"] for r in rows]
    out = {}
    for name in ("h", "g"):
        fit = power_law_fit(L, [r[f"{name}_mse"] for r in rows], [r.get(f"{name}_se", 0.0) or 1e-300 for r in rows])
        # O(1/L) bound: the slope is not significantly above -1, and the error does decrease
        out[name] = {"order": -fit.slope, "order_ci": [-fit.slope_ci[1], -fit.slope_ci[0]],
                     "bound_ok": bool(fit.slope_ci[0] <= -1.0 and fit.slope_ci[1] < 0.0)}
    return out


def check_t43(data: dict, rate_activation: str = "tanh") -> dict:
    mom = check_moments(data["moments"])
    fits = {a: fit_orders(data["strong_error"], a) for a in {r.get("activation", rate_activation)
                                                            for r in data["strong_error"]}}
    rate = fits.get(rate_activation)
    if rate is None:
        return claims.record("T4.3", "inconclusive", {"moments_max_z": mom["max_abs_z"]},
                             "strong error O(1/L)", note=f"no {rate_activation} strong-error fit (< 3 depths)")
    n_ok = int(rate["h"]["bound_ok"]) + int(rate["g"]["bound_ok"]) + int(mom["ok"])
    verdict = {3: "reproduced", 2: "partly reproduced"}.get(n_ok, "not reproduced")
    measured = {"moments_max_z": round(mom["max_abs_z"], 2),
                f"h_order_{rate_activation}": round(rate["h"]["order"], 2),
                "h_order_ci": [round(x, 2) for x in rate["h"]["order_ci"]],
                f"g_order_{rate_activation}": round(rate["g"]["order"], 2),
                "g_order_ci": [round(x, 2) for x in rate["g"]["order_ci"]]}
    others = {a: {k: [round(f[k]["order"], 2)] + [round(x, 2) for x in f[k]["order_ci"]] for k in ("h", "g")}
              for a, f in fits.items() if f is not None and a != rate_activation}
    return claims.record("T4.3", verdict, measured,
                         {"strong error": "O(1/L) for h and g (order >= 1)",
                          "book's derivation": "order ~2 for h, ~1 for g (tanh)",
                          "moments": f"within {Z_MAX:g} SE of the exact chain values"},
                         moments_ok=mom["ok"], h_bound_ok=rate["h"]["bound_ok"], g_bound_ok=rate["g"]["bound_ok"],
                         other_activations=others)


def fig1_fits(fig1: dict) -> dict:
    """Power-law fits (:func:`nfdlib.metrics.power_law_fit_nls`) of the width error against n at
    each depth, and of the depth error against L at n = ∞, for h and g."""
    at = {(q["width"], q["depth"]): q for q in fig1["points"]}
    widths = sorted(fig1["widths"])
    out = {}
    for k in ("h", "g"):
        out[k] = {"width": {str(L): power_law_fit_nls(widths, [at[n, L][f"{k}_d2"] for n in widths],
                                                      [at[n, L][f"{k}_d2_se"] for n in widths])
                            for L in sorted(fig1["depths"])}}
        rows = sorted(fig1["depth_error"], key=lambda r: r["depth"])
        out[k]["depth"] = power_law_fit_nls([r["depth"] for r in rows], [r[f"{k}_d2"] for r in rows],
                                            [r[f"{k}_d2_se"] for r in rows])
    return out


def _sign(fit) -> str:
    """``decreasing`` (slope CI below 0); ``not decreasing`` (CI reaches 0 and excludes the
    paper's bound -1, so the data reject the predicted decay); ``unresolved`` otherwise (CI
    holds both 0 and -1, or no fit)."""
    if fit is None:
        return "unresolved"
    lo, hi = fit["slope_ci"]
    return "decreasing" if hi < 0 else ("not decreasing" if lo > -1.0 else "unresolved")


def _ci(fit):
    return None if fit is None else [round(fit["slope"], 2), [round(c, 2) for c in fit["slope_ci"]]]


def check_fig1(fig1: dict, level: float = 0.95) -> dict:
    """F1 (initialisation) as one statement: finite networks approach the SDE law in width and
    in depth, with a width error bounded uniformly in depth (the limits commute; the paper:
    the finite-width effect "vanishes ... uniformly over depth"). With D the debiased W₂² (no
    floor):

    width   at every depth, the width error D(n, L) (network vs the n = ∞ chain of depth L)
            falls with n: the slope of the fit D ≈ A·n^b has its CI below 0 (h and g);
    uniform the width error's supremum over the depths tried, sup_L D(n, L), falls with n
            (slope CI below 0), and at no width does D grow significantly between the two
            largest depths (Student's t on the replicates, 2(reps-1) degrees of freedom,
            one-sided, Bonferroni over the widths): a width error that built up with depth
            would show in both;
    depth   the depth error (L-step chain vs the SDE law) falls with L: slope CI below 0 (h and g).

    Reproduced when all hold; not reproduced when a slope is not negative while its CI
    excludes the paper's bound -1, or the width error grows between the largest depths;
    inconclusive otherwise. Reported besides: ``grows_first_to_last``, the widths at which D
    is significantly larger at the largest than at the smallest depth (a growth that
    saturates is compatible with a uniform bound); the slopes against the paper's bounds
    (W₂² ≤ C/n from Prop. 4.2, ≤ C/L from Thm. 4.3: slope ≤ -1) and the book's expectation (-2
    for both: a variance and shape mismatch of order 1/n, 1/L in law); ``decades``: log10 of
    the width error at the smallest width over the median 2 SE of D."""
    from scipy import stats

    widths, depths = sorted(fig1["widths"]), sorted(fig1["depths"])
    at = {(q["width"], q["depth"]): q for q in fig1["points"]}
    df = 2 * (fig1.get("reps", 2) - 1)
    crit = float(stats.t.ppf(1 - (1 - level) / max(len(widths), 1), df))
    fits = fig1_fits(fig1)
    res, signs, grows_any = {}, [], False
    for k in ("h", "g"):
        def t_up(n, La, Lb):  # growth of D at width n from depth La to depth Lb, in SE
            a, b = at[n, La], at[n, Lb]
            return (b[f"{k}_d2"] - a[f"{k}_d2"]) / max(math.hypot(a[f"{k}_d2_se"], b[f"{k}_d2_se"]), 1e-300)
        wsign = {L: _sign(fits[k]["width"][str(L)]) for L in depths}
        grows = [n for n in widths if len(depths) > 1 and t_up(n, depths[-2], depths[-1]) > crit]
        first_last = [n for n in widths if len(depths) > 1 and t_up(n, depths[0], depths[-1]) > crit]
        sup = [max((at[n, L] for L in depths), key=lambda q: q[f"{k}_d2"]) for n in widths]
        sup_fit = power_law_fit_nls(widths, [q[f"{k}_d2"] for q in sup], [q[f"{k}_d2_se"] for q in sup])
        ssign = _sign(sup_fit)
        dsign = _sign(fits[k]["depth"])
        noise = float(np.median([2 * q[f"{k}_d2_se"] for q in fig1["points"]]))
        top = max(at[widths[0], L][f"{k}_d2"] for L in depths)
        res[k] = {"width_slope_by_depth": {str(L): _ci(fits[k]["width"][str(L)]) for L in depths},
                  "width": "decreasing" if all(v == "decreasing" for v in wsign.values()) else
                           ("not decreasing" if "not decreasing" in wsign.values() else "unresolved"),
                  "sup_over_depths_slope": _ci(sup_fit), "sup_over_depths": ssign,
                  "grows_with_depth": grows, "grows_first_to_last": first_last,
                  "depth_slope": _ci(fits[k]["depth"]), "depth": dsign,
                  "decades": round(math.log10(top / noise), 1) if top > 0 and noise > 0 else None}
        signs += [res[k]["width"], ssign, dsign]
        grows_any |= bool(grows)
    if grows_any or "not decreasing" in signs:
        verdict = "not reproduced"
    elif all(x == "decreasing" for x in signs):
        verdict = "reproduced"
    else:
        verdict = "inconclusive"
    return claims.record("F1", verdict, res,
                         {"paper": "D decreases in n and in L; width error uniform in depth (limits commute)",
                          "bounds": "slope <= -1 in n (Prop. 4.2) and in L (Thm. 4.3)",
                          "book's derivation": "slope -2 in n and in L"},
                         activation=fig1["activation"], pool=fig1["pool"], reps=fig1.get("reps"))


def check(data: dict, p: FBSDEParams) -> list[dict]:
    return [check_t43(data, p.fig1_activation if p.fig1_activation in p.activations else p.activations[0]),
            check_fig1(data["fig1"])]


# ----------------------------------------------------------------------------- figures

def _errorbars_log(ax, x, m, se, **kw):
    """Means with ±2 SE on a log axis: a mean above 2 SE as a point with its bar; otherwise an
    upper limit, max(m + 2 SE, 2 SE), as an open downward triangle (not resolved from 0)."""
    x, m, se = (np.asarray(v, float) for v in (x, m, se))
    ok = m > 2 * se
    line = ax.errorbar(x[ok], m[ok], [np.minimum(2 * se[ok], 0.999 * m[ok]), 2 * se[ok]], capsize=2, **kw)
    col = line[0].get_color()
    # a mean below -2 SE has a negative upper limit: show the resolution 2 SE instead (a larger bound)
    ax.plot(x[~ok], np.maximum(m[~ok] + 2 * se[~ok], 2 * se[~ok]), "v", mfc="none", color=col, ls="none")
    return col


def plot(data: dict, p: FBSDEParams | None = None, path=None):
    """Fig. 1, initialisation panels, with the debiased W₂² (no floor): (left) the width error
    against n, one line per depth, with the fits; (right) the depth error of the n = ∞ chain
    against L (h: also exact), and the plug-in W₂² of the widest networks (with its floor) for
    comparison. Points: mean ± 2 SE over the replicates; open triangles: upper limits of
    points not resolved from 0."""
    import matplotlib.pyplot as plt

    fig1 = data["fig1"]
    widths, depths = sorted(fig1["widths"]), sorted(fig1["depths"])
    at = {(q["width"], q["depth"]): q for q in fig1["points"]}
    fits = fig1_fits(fig1)
    fig, axes = plt.subplots(2, 2, figsize=(10.5, 7.5))
    nf = np.geomspace(widths[0], widths[-1], 100)
    for row, (k, label) in enumerate((("h", "$h_L$"), ("g", "$g_0$"))):
        ax = axes[row, 0]
        for L in depths:
            col = _errorbars_log(ax, widths, [at[n, L][f"{k}_d2"] for n in widths],
                                 [at[n, L][f"{k}_d2_se"] for n in widths], marker="o", ls="none", label=f"L = {L}")
            f = fits[k]["width"][str(L)]
            if f:
                ax.plot(nf, f["prefactor"] * nf ** f["slope"], color=col, lw=0.8)
        ax.plot(widths, [at[n, depths[-1]][f"{k}_naive"] for n in widths], ":", color="0.5",
                label=f"plug-in $W_2^2$, L = {depths[-1]} (with floor)")
        ax.set(xscale="log", yscale="log", xlabel="width n", ylabel=f"debiased $W_2^2$ ({label}: net vs chain)")
        ax.set_xscale("log", base=2)
        ax.legend(fontsize=7)
        ax = axes[row, 1]
        rows = sorted(fig1["depth_error"], key=lambda r: r["depth"])
        Ls = [r["depth"] for r in rows]
        col = _errorbars_log(ax, Ls, [r[f"{k}_d2"] for r in rows], [r[f"{k}_d2_se"] for r in rows],
                             marker="s", ls="none", color="k", label="n = ∞ chain vs SDE")
        f = fits[k]["depth"]
        if f:
            Lf = np.geomspace(Ls[0], Ls[-1], 100)
            ax.plot(Lf, f["prefactor"] * Lf ** f["slope"], color=col, lw=0.8,
                    label=f"fit: slope {f['slope']:.2f} [{f['slope_ci'][0]:.2f}, {f['slope_ci'][1]:.2f}]")
        if k == "h":
            ax.plot(Ls, [r["h_d2_exact"] for r in rows], "k:", label="exact $(\\sqrt{q_L}-\\sqrt{q(1)})^2$")
        ax.set(xscale="log", yscale="log", xlabel="depth L", ylabel=f"debiased $W_2^2$ ({label}: chain vs SDE)")
        ax.set_xscale("log", base=2)
        ax.legend(fontsize=7)
    fig.suptitle(f"Fig. 1 (initialisation, {fig1['activation']}): width error {fig1['reps']} replicates × 2 × "
                 f"{fig1['pool']} coordinates; depth error {fig1['reps']} × 2 × {fig1['depth_particles']} particles")
    fig.tight_layout()
    if path is not None:
        _save(fig, path, "fig1_init")
    return fig


def plot_rates(data: dict, path=None):
    """Strong errors of h and g against L (log–log), one line per activation, with fitted
    orders, and C/L and C/L² guides."""
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(10, 3.8))
    acts = sorted({r["activation"] for r in data["strong_error"]})
    for ax, k in zip(axes, ("h", "g")):
        for a in acts:
            rows = sorted((r for r in data["strong_error"] if r["activation"] == a), key=lambda r: r["depth"])
            L = np.array([r["depth"] for r in rows], float)
            y = np.array([r[f"{k}_mse"] for r in rows])
            fits = fit_orders(data["strong_error"], a)
            lab = a if fits is None else f"{a}: order {fits[k]['order']:.2f} [{fits[k]['order_ci'][0]:.2f}, {fits[k]['order_ci'][1]:.2f}]"
            ax.errorbar(L, y, [2 * r[f"{k}_se"] for r in rows], marker="o", capsize=2, label=lab)
        L = np.array(sorted({r["depth"] for r in data["strong_error"]}), float)
        y0 = max(r[f"{k}_mse"] for r in data["strong_error"])
        ax.plot(L, y0 * L[0] / L, "k--", lw=1, label="∝ 1/L")
        ax.plot(L, y0 * (L[0] / L) ** 2, "k:", lw=1, label="∝ 1/L²")
        ax.set(xscale="log", yscale="log", xlabel="depth L",
               ylabel=rf"$\max_\ell E|{k}^{{(L)}}_\ell - {k}_{{t_\ell}}|^2$")
        ax.set_xscale("log", base=2)
        ax.legend(fontsize=8)
    fig.tight_layout()
    if path is not None:
        _save(fig, path, "fbsde_rates")
    return fig


def _save(fig, path, name):
    save_figure(fig, path, name, dpi=130)


EXPERIMENT = Experiment(NAME, "T4.3 forward-backward SDE at initialisation; Fig. 1 initialisation panels",
                        FBSDEParams, run, check, plot)
