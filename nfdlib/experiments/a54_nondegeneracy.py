"""A5.4 / Fig. 3: nondegeneracy of the NFD kernels.

For each learning rate η_c in ``eta_cs`` the NFD solver (:mod:`nfdlib.limits.nfd`) runs T
steps of stream SGD; for every layer-time t = ℓ/L and step s we compute the smallest
eigenvalues of the leading blocks C_t^{[0..s]} = (C_ℓ^{(r,r')})_{r,r'≤s} and G_t^{[0..s]}.
Assumption 5.4 asks both to stay above some λ > 0 for all t and s ≤ T.

A particle estimate of a Gram matrix of s+1 ≤ T variables is positive definite for almost
every draw once P > T, so "λ_min > 0" at one P proves nothing. The check therefore asks that
the minimum be *resolved*: an independent system with P/``coarse_factor`` particles gives
the same minimum within a relative ``rel_tol`` and the minimum must exceed 1e-8·max|K|
(numerical rank); see :func:`status` (positive / degenerate / unresolved).

``data``: ``eta_cs``; ``lam_C``, ``lam_G`` (one L×T array per η_c), ``min_C``, ``min_G`` (their
minima over t and s), ``min_C_coarse``, ``min_G_coarse`` (the same with P/coarse_factor
particles), ``max_C``, ``max_G`` (max |K|), ``f``, ``loss``, ``diverged_at`` (per η_c, the
step where the trajectory diverged, or None) and ``diverged`` (the η_c that did).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .. import claims
from ..executor import check_executor, run_grid
from ..limits import nfd
from ..model import DEVICES
from ..params import ParamError, Params, require_memory, spec
from . import Experiment, save_figure

NAME = "a54_nondegeneracy"


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
    particles: int = spec(2**14, min=2)
    coarse_factor: int = spec(8, min=2, doc="the resolution check uses P/coarse_factor particles")
    rel_tol: float = spec(0.5, gt=0.0, doc="allowed relative change of min λ between P and P/coarse_factor")

    PROFILE_DEFAULTS = {
        "smoke": {"steps": 3, "depth": 4, "particles": 1024, "eta_cs": [0.5, 0.1]},
        "book": {},
        "paper": {"steps": 16, "depth": 128, "particles": 2**17, "eta_cs": [0.5, 0.05, 0.1, 0.25, 1.0]},
    }

    def check(self) -> None:
        check_executor(self.executor)
        if self.backend != "torch" and self.device == "cuda":
            raise ParamError(f"parameter 'device' = 'cuda' is not allowed with backend {self.backend!r}; "
                             "allowed: 'auto', 'cpu'")
        P, L, T = self.particles, self.depth, self.steps
        require_memory(nfd.noise_bytes(P, L, T, self.d) + nfd.solver_bytes(P, L, T, 1),
                       f"an NFD solve with P={P}, L={L}, T={T}")


def _lams(p: A54Params, eta_c: float, P: int, key: int):
    X, y = nfd.synthetic_task(p.steps, p.d, p.seed)
    noise = nfd.draw_noise(np.random.default_rng([p.seed, 54, key]), P, p.depth, p.steps, p.d)
    res = nfd.solve(X, y, eta_c, noise, p.activation, p.backend, p.device)
    return res, nfd.min_eigenvalues(res.C), nfd.min_eigenvalues(res.G)


def point(params: dict, eta_c: float) -> dict:
    """NFD solves at η_c with P and P/coarse_factor particles (the same noise for every
    η_c) and their eigenvalue tables."""
    p = A54Params.build(**params)
    res, lam_C, lam_G = _lams(p, eta_c, p.particles, 0)
    _, lc, lg = _lams(p, eta_c, max(2, p.particles // p.coarse_factor), 1)
    return {"eta_c": eta_c, "lam_C": lam_C, "lam_G": lam_G, "f": res.f, "loss": res.loss,
            "diverged_at": res.diverged_at, "min_C_coarse": _nanmin(lc), "min_G_coarse": _nanmin(lg),
            "max_C": _nanmax(res.C), "max_G": _nanmax(res.G)}


def run(params: A54Params, store) -> dict:
    pd = params.to_dict()
    pts = [(f"eta{e:g}", {"params": pd, "eta_c": e}) for e in params.eta_cs]
    recs = list(run_grid(store, pts, point, executor=params.executor, desc="learning rates").values())
    keys = ("lam_C", "lam_G", "f", "loss", "min_C_coarse", "min_G_coarse", "max_C", "max_G")
    data = {k: [r[k] for r in recs] for k in keys}
    data["eta_cs"] = params.eta_cs
    data["diverged_at"] = [r["diverged_at"] for r in recs]
    data["diverged"] = [r["eta_c"] for r in recs if r["diverged_at"] is not None]
    data["min_C"] = [_nanmin(r["lam_C"]) for r in recs]
    data["min_G"] = [_nanmin(r["lam_G"]) for r in recs]
    return data


def _nanmin(a) -> float | None:
    a = np.array(a, dtype=float)
    return float(np.nanmin(a)) if np.isfinite(a).any() else None


def _nanmax(a) -> float | None:
    a = np.abs(np.array(a, dtype=float))
    return float(np.nanmax(a)) if np.isfinite(a).any() else None


def status(lam, lam_coarse, kmax, rel_tol: float) -> str:
    """``positive``: λ_min above the numerical rank 1e-8·max|K| and stable under a change of
    the particle number (relative change ≤ rel_tol); ``degenerate``: below the numerical
    rank; ``unresolved``: positive but moving with P (below the solver's resolution)."""
    if None in (lam, lam_coarse, kmax):
        return "unresolved"
    if lam <= 1e-8 * kmax:
        return "degenerate"
    return "positive" if abs(lam - lam_coarse) <= rel_tol * lam else "unresolved"


def _worst(a: str, b: str) -> str:
    order = ("degenerate", "unresolved", "positive")
    return min(a, b, key=order.index)


def check(data: dict, params: A54Params) -> list[dict]:
    """A5.4 and F3: for every η_c, the :func:`status` of min_{t,s} λ_min(C) and of λ_min(G)
    (the worse of the two), or ``diverged at step k`` when the trajectory blew up (its kernels
    then say nothing about nondegeneracy, and it is left out of the verdict). Over the other
    η_c: reproduced when every one is positive; partly when the default (first) η_c is and
    another is not; not reproduced when the default is degenerate; inconclusive when the
    default is unresolved or diverged."""
    steps = data["diverged_at"]
    st = [f"diverged at step {k}" if k is not None else
          _worst(status(mc, mcc, xc, params.rel_tol), status(mg, mgc, xg, params.rel_tol))
          for k, mc, mcc, xc, mg, mgc, xg in zip(steps, data["min_C"], data["min_C_coarse"], data["max_C"],
                                                  data["min_G"], data["min_G_coarse"], data["max_G"])]
    judged = [x for x, k in zip(st, steps) if k is None]
    if steps[0] is None and all(x == "positive" for x in judged):
        verdict = "reproduced"
    elif st[0] == "positive":
        verdict = "partly reproduced"
    elif st[0] == "degenerate":
        verdict = "not reproduced"
    else:
        verdict = "inconclusive"
    measured = {f"eta_c={e:g}": ({"status": x} if k is not None else
                                 {"min_lam_C": _r(mc), "min_lam_C_P/8": _r(mcc), "min_lam_G": _r(mg),
                                  "min_lam_G_P/8": _r(mgc), "status": x})
                for e, k, mc, mcc, mg, mgc, x in zip(data["eta_cs"], steps, data["min_C"], data["min_C_coarse"],
                                                     data["min_G"], data["min_G_coarse"], st)}
    expected = "min over t, s of lambda_min(C), lambda_min(G) > 0, resolved (stable in P)"
    return [claims.record(cid, verdict, measured, expected, status=st) for cid in ("A5.4", "F3")]


def _r(x):
    return None if x is None else float(f"{x:.3g}")


def plot(data: dict, params: A54Params, path=None):
    import matplotlib.pyplot as plt
    n = len(data["eta_cs"])
    fig, ax = plt.subplots(2, n, figsize=(4.2 * n, 6.4), squeeze=False, sharex=True)
    for j, eta in enumerate(data["eta_cs"]):
        for i, (key, name) in enumerate((("lam_C", "C"), ("lam_G", "G"))):
            lam = np.array(data[key][j], dtype=float)
            L, T = lam.shape
            t = (np.arange(L) if key == "lam_C" else np.arange(1, L + 1)) / L  # C_ℓ uses h_{ℓ-1}
            for s in range(T):
                ax[i, j].plot(t, lam[:, s], color=plt.cm.viridis(s / max(T - 1, 1)), label=f"s={s}")
            ax[i, j].set(yscale="log", title=f"$\\lambda_{{min}}({name}_t^{{[0..s]}})$, $\\eta_c$={eta:g}")
            if i == 1:
                ax[i, j].set_xlabel("layer-time $t=\\ell/L$")
    ax[0, -1].legend(fontsize=7, ncol=2)
    fig.tight_layout()
    save_figure(fig, path, "fig3")
    return fig


EXPERIMENT = Experiment(NAME, "A5.4 / Fig. 3: smallest eigenvalues of the NFD kernels",
                        A54Params, run, check, plot)
