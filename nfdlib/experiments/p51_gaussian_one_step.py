"""P5.1: the Gaussian representation after one SGD update (Eq. 15), in a real network.

A depth-µP network in float64 takes one SGD step on (ξ, y); at every layer the second
forward increment is rebuilt from the SGD drift and the three parts of
:func:`nfdlib.gaussian.one_step.split_innovation` (forward–forward, training-induced
coupling, residual), and at the middle layer the residual's conditional law is tested by
redrawing W_ℓ given the first passes (:func:`~nfdlib.gaussian.one_step.conditional_law`)
and by Monte Carlo over W_ℓ with the vectors held fixed
(:func:`~nfdlib.gaussian.one_step.residual_law`)."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .. import claims
from ..gaussian.one_step import conditional_law, network_identity, residual_law
from ..model import DEVICES, NetworkSpec
from ..network import Network
from ..params import Params, spec
from . import Experiment

IDENTITY_TOL = 1e-10


@dataclass(frozen=True)
class P51Params(Params):
    profile: str = spec("book")
    backend: str = spec("numpy", choices=("numpy", "torch", "numba"))
    device: str = spec("auto", choices=DEVICES)
    seed: int = spec(0, min=0)
    width: int = spec(256, min=4)
    depth: int = spec(8, min=1)
    activation: str = spec("tanh", choices=("tanh", "linear"))
    eta_c: float = spec(1.0, gt=0)
    draws: int = spec(400, min=50, doc="redraws / Monte Carlo draws of W_ℓ")
    law_width: int = spec(48, min=4, doc="width of the Monte Carlo test of the residual law")

    PROFILE_DEFAULTS = {"smoke": {"width": 32, "depth": 3, "draws": 100},
                        "book": {}, "paper": {"width": 1024, "depth": 32, "draws": 2000}}

    def check(self) -> None:
        self.network_spec()

    def network_spec(self) -> NetworkSpec:
        return NetworkSpec.build(width=self.width, depth=self.depth, d=16, activation=self.activation,
                                 backend=self.backend, dtype="float64",
                                 device=self.device if self.backend == "torch" else "auto")


def run(p: P51Params, store) -> dict:
    spec_ = p.network_spec()
    net = Network(spec_, rng=p.seed)
    W0 = net.weights()["W"]
    rng = np.random.default_rng([p.seed, 51])
    xi = rng.standard_normal((1, spec_.d))
    xi *= np.sqrt(spec_.d) / np.linalg.norm(xi)
    first = net.forward(xi)
    net.backward(first, first.f - 1.0)
    net.step(xi, [[1.0]], p.eta_c)
    second = net.forward(xi)
    get = lambda q, k: np.asarray(q.numpy(k))[:, 0].astype(np.float64)  # noqa: E731
    xs, deltas, xs2, hs2 = get(first, "xs"), get(first, "deltas"), get(second, "xs"), get(second, "hs")
    rel_err, sizes = network_identity(W0, net.weights()["W"] - W0, xs, deltas, xs2, hs2,
                                      spec_.scales.mult)
    mid = p.depth // 2
    law = conditional_law(W0[mid], xs[mid], deltas[mid], xs2[mid], spec_.scales.mult, rng,
                          draws=p.draws)
    k = p.law_width
    mc = residual_law(xs[mid][:k], deltas[mid][:k], xs2[mid][:k], 1 / np.sqrt(k * p.depth), rng,
                      draws=5 * p.draws)
    return {"identity_rel_error": rel_err, "sizes": sizes, "conditional_law": law,
            "monte_carlo": mc}


def check(data: dict, p: P51Params) -> list[dict]:
    law, mc = data["conditional_law"], data["monte_carlo"]
    n_mc = 5 * p.draws
    ok = {
        "identity": max(data["identity_rel_error"]) < IDENTITY_TOL,
        "constraints": law["constraint_error"] < IDENTITY_TOL and law["along_g"] < IDENTITY_TOL,
        "gaussian": min(law["ks_pvalue"], mc["ks_pvalue"]) > 1e-3,
        "independent": max(abs(mc["corr_a"]), abs(mc["corr_b"])) < 4 / np.sqrt(n_mc)
                       and abs(law["corr"]) < 4 / np.sqrt(p.draws),
        "variance": abs(mc["var_ratio"] - 1) < 4 * np.sqrt(2 / n_mc),
    }
    verdict = "reproduced" if all(ok.values()) else (
        "partly reproduced" if ok["identity"] else "not reproduced")
    return [claims.record(
        "P5.1", verdict,
        {"identity_max_rel_error": max(data["identity_rel_error"]), **ok},
        f"identity to {IDENTITY_TOL:g}; residual ~ N(0, m²|x'_⊥|²(I - P_g)), independent of Wx, Wᵀg",
        ks_pvalues=[law["ks_pvalue"], mc["ks_pvalue"]], corr=[law["corr"], mc["corr_a"], mc["corr_b"]],
        var_ratio=mc["var_ratio"])]


EXPERIMENT = Experiment("p51_gaussian_one_step", "P5.1: Gaussian representation after one SGD step",
                        P51Params, run, check)
