"""Parameters of NB-E1 (:mod:`.e1_true_limit`): the width study (networks and their limits), the
linear Monte Carlo check and the depth study, per profile, with their memory checks."""
from __future__ import annotations

from dataclasses import dataclass

from ..executor import check_executor
from ..limits import true_limit as tl
from ..model import DEVICES, NetworkSpec
from ..params import ParamError, Params, require_memory, spec

WIDTH_ACTS = ("tanh", "linear")  # activations of the width study


@dataclass(frozen=True)
class E1Params(Params):
    profile: str = spec("book")
    backend: str = spec("numba", choices=tl.BACKENDS)
    device: str = spec("auto", choices=DEVICES)
    seed: int = spec(0, min=0)
    executor: str = spec("serial")
    eta_c: float = spec(0.5, gt=0.0)
    steps: int = spec(4, min=2, doc="T, SGD steps (>= 2: the corrections start at step 1)")
    d: int = spec(8, min=1, doc="input dimension")
    net_depth: int = spec(4, min=1, doc="L of the width study")
    widths: list[int] = spec([128, 256, 512, 1024, 2048], min=2, nonempty=True)
    net_seeds: int = spec(6, min=2)
    deep_depth: int = spec(64, min=1, doc="L of the deep check of (b)")
    deep_width: int = spec(1024, min=2, doc="n of the deep check of (b)")
    limit_particles: int = spec(2**16, min=2)
    mc_particles: list[int] = spec([2**10, 2**12, 2**14], min=2, nonempty=True)
    mc_reps: int = spec(3, min=2)
    depth_activation: str = spec("tanh", choices=tl.ACTIVATIONS)
    depths: list[int] = spec([1, 2, 4, 8, 16, 32, 64, 128], min=1, nonempty=True)
    depth_particles: int = spec(2**13, min=2)
    depth_reps: int = spec(6, min=2, doc="independent paths per depth of the depth study (panel d)")
    fit_min_depth: int = spec(4, min=1)

    PROFILE_DEFAULTS = {
        "smoke": {"steps": 3, "d": 4, "net_depth": 2, "widths": [16, 32, 64], "net_seeds": 2,
                  "deep_depth": 4, "deep_width": 32,
                  "limit_particles": 2**10, "mc_particles": [2**6, 2**7, 2**8], "mc_reps": 2,
                  "depths": [1, 2, 4, 8], "depth_particles": 2**8, "depth_reps": 2, "fit_min_depth": 1},
        "book": {},
        "paper": {"widths": [256, 512, 1024, 2048, 4096, 8192], "net_seeds": 16, "deep_depth": 256,
                  "deep_width": 2048, "limit_particles": 2**18,
                  "mc_particles": [2**10, 2**12, 2**14, 2**16], "mc_reps": 6,
                  "depths": [2**k for k in range(10)], "depth_particles": 2**15, "depth_reps": 8},
    }

    def check(self) -> None:
        check_executor(self.executor)
        if len(self.widths) < 3 or len(self.mc_particles) < 3:
            raise ParamError("parameters 'widths' and 'mc_particles' need >= 3 values each (a fit with a CI)")
        if list(self.widths) != sorted(set(self.widths)):
            raise ParamError(f"parameter 'widths' = {self.widths} is not allowed; allowed: strictly increasing")
        Lmax = max(self.depths)
        bad = [L for L in self.depths if Lmax % L]
        if bad:
            raise ParamError(f"parameter 'depths' has {bad}; allowed: divisors of max(depths) = {Lmax}")
        if sum(L >= self.fit_min_depth for L in self.depths) < 3:
            raise ParamError(f"parameter 'fit_min_depth' = {self.fit_min_depth} leaves < 3 depths to fit; "
                             "allowed: at most the third largest depth")
        if self.backend != "torch" and self.device == "cuda":
            raise ParamError("parameter 'device' = 'cuda' is not allowed with backend "
                             f"{self.backend!r}; allowed: 'auto', 'cpu'")
        T = self.steps
        require_memory(2 * tl.noise_bytes(self.depth_particles, Lmax, T, self.d)
                       + tl.solver_bytes(self.depth_particles, Lmax, T, 1),
                       f"a depth point with P={self.depth_particles}, L={Lmax}, T={T}")
        require_memory(tl.noise_bytes(self.limit_particles, self.net_depth, T, self.d)
                       + tl.solver_bytes(self.limit_particles, self.net_depth, T, 1),
                       f"the limit with P={self.limit_particles}, L={self.net_depth}")
        # e1_compute.net_point holds its weights (stored): regenerating them per layer would
        # cost over 10x the time over its SGD steps
        for n, L in ((max(self.widths), self.net_depth), (self.deep_width, self.deep_depth)):
            net = NetworkSpec(width=n, depth=L, d=self.d, dtype="float64")
            require_memory(net.weight_bytes("stored"), f"a network of width {n} and depth {L}")
