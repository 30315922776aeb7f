"""Parameters of the book's own claims NB-TW, NB-TD, NB-TG (:mod:`.nb_true_limit_scaling`):
the width study (finite networks against the limits at several depths), the depth study (the
true-limit recursion on one Brownian path per repetition, coarsened from a fine one, and the
one-step depth limit integrated directly) and the gap study (true limit minus NFD over η_c and
the steps), per profile, with their memory checks."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..executor import check_executor
from ..limits import true_limit as tl
from ..model import DEVICES
from ..params import ParamError, Params, require_fit_lengths, require_memory, spec


def network_bytes(width: int, depth: int, steps: int) -> int:
    """Memory of one decoupled network (two weight sets) and its recorded passes (float64)."""
    return 8 * (2 * depth * width * width + 4 * depth * steps * width)


@dataclass(frozen=True)
class NBTLParams(Params):
    profile: str = spec("book")
    backend: str = spec("numba", choices=tl.BACKENDS, doc="backend of networks and solvers")
    device: str = spec("auto", choices=DEVICES)
    seed: int = spec(0, min=0)
    executor: str = spec("serial")
    activation: str = spec("tanh", choices=tl.ACTIVATIONS)
    eta_c: float = spec(0.5, gt=0.0, doc="learning rate of the width and depth studies")
    steps: int = spec(4, min=2, doc="T, SGD steps of the width and depth studies")
    d: int = spec(8, min=1, doc="input dimension")
    inputs: int = spec(2, min=1, doc="distinct inputs, visited in turn (ξ_s = ξ_{s mod inputs})")
    # (1) width
    widths: list[int] = spec([128, 256, 512, 1024], min=2, nonempty=True)
    net_depths: list[int] = spec([4, 16, 64], min=1, nonempty=True)
    net_seeds: int = spec(8, min=2)
    net_max_gb: float = spec(6.0, gt=0.0, doc="(width, depth) pairs whose decoupled network needs more are skipped")
    limit_particles: int = spec(2**16, min=2)
    limit_reps: int = spec(2, min=1, doc="independent limit solves averaged per depth")
    # (2) depth
    depths: list[int] = spec([4, 8, 16, 32, 64], min=1, nonempty=True)
    ref_depth: int = spec(256, min=2, doc="the fine path; every depth is a coarsening of it")
    depth_particles: int = spec(2**14, min=2)
    depth_reps: int = spec(3, min=2)
    # (3) gap
    gap_etas: list[float] = spec([0.125, 0.25, 0.5, 1.0], gt=0.0, nonempty=True)
    gap_steps: int = spec(6, min=2)
    gap_depth: int = spec(128, min=2, doc="largest depth of the gap study (also half of it: extrapolation)")
    gap_particles: int = spec(2**14, min=2)
    gap_reps: int = spec(3, min=2)

    PROFILE_DEFAULTS = {
        "smoke": {"steps": 3, "d": 4, "widths": [16, 32, 64], "net_depths": [2, 4], "net_seeds": 2,
                  "limit_particles": 2**10, "depths": [2, 4, 8], "ref_depth": 32, "depth_particles": 2**9,
                  "depth_reps": 2, "gap_etas": [0.25, 0.5], "gap_steps": 3, "gap_depth": 8,
                  "gap_particles": 2**9, "gap_reps": 2},
        "book": {},
        "paper": {"widths": [256, 512, 1024, 2048, 4096], "net_depths": [4, 16, 64, 256], "net_seeds": 8,
                  "limit_particles": 2**17, "limit_reps": 3,
                  "depths": [4, 8, 16, 32, 64, 128, 256], "ref_depth": 1024, "depth_particles": 2**15,
                  "depth_reps": 4, "gap_steps": 10, "gap_depth": 256, "gap_reps": 4},
    }

    def pairs(self) -> list[tuple[int, int]]:
        """The (width, depth) pairs of the width study whose networks fit in ``net_max_gb``."""
        return [(n, L) for L in self.net_depths for n in self.widths
                if network_bytes(n, L, self.steps) <= self.net_max_gb * 2**30]

    def check(self) -> None:
        check_executor(self.executor)
        for name in ("widths", "net_depths", "depths", "gap_etas"):
            vals = getattr(self, name)
            if list(vals) != sorted(set(vals)):
                raise ParamError(f"parameter '{name}' = {vals} is not allowed; allowed: strictly increasing")
        require_fit_lengths(self, "widths", "depths")
        for L in self.net_depths:
            if sum(1 for n, L2 in self.pairs() if L2 == L) < 3:
                raise ParamError(f"parameter 'net_max_gb' = {self.net_max_gb} leaves fewer than 3 widths at depth "
                                 f"{L}; allowed: enough memory for 3 widths at every depth of 'net_depths'")
        if self.ref_depth < 4 * max(self.depths) or any(self.ref_depth % L for L in self.depths):
            raise ParamError(f"parameter 'ref_depth' = {self.ref_depth} is not allowed; allowed: a multiple of "
                             f"every depth and >= 4 x max(depths) = {4 * max(self.depths)}")
        if self.gap_depth % 2:
            raise ParamError(f"parameter 'gap_depth' = {self.gap_depth} is not allowed; allowed: an even depth")
        if self.backend != "torch" and self.device == "cuda":
            raise ParamError(f"parameter 'device' = 'cuda' is not allowed with backend {self.backend!r}; "
                             "allowed: 'auto', 'cpu'")
        T = self.steps
        require_memory(2 * tl.noise_bytes(self.depth_particles, self.ref_depth, T, self.d)
                       + tl.solver_bytes(self.depth_particles, self.ref_depth, T, 1),
                       f"a depth point with P={self.depth_particles}, L={self.ref_depth}, T={T}")
        Ln = max(self.net_depths)
        require_memory(tl.noise_bytes(self.limit_particles, Ln, T, self.d)
                       + tl.solver_bytes(self.limit_particles, Ln, T, 1),
                       f"a limit with P={self.limit_particles}, L={Ln}, T={T}")
        require_memory(tl.noise_bytes(self.gap_particles, self.gap_depth, self.gap_steps, self.d)
                       + tl.solver_bytes(self.gap_particles, self.gap_depth, self.gap_steps, 2),
                       f"a gap point with P={self.gap_particles}, L={self.gap_depth}, T={self.gap_steps}")
        require_memory(max(network_bytes(n, L, T) for n, L in self.pairs()), "the largest network of the width study")


def task(p: NBTLParams, steps: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """The stream: ``inputs`` distinct inputs of :func:`nfdlib.limits.particles.synthetic_task`
    (|ξ|² = d, teacher targets), visited in turn for ``steps`` (default ``p.steps``) steps."""
    T = steps or p.steps
    Xm, ym = tl.synthetic_task(p.inputs, p.d, p.seed)
    idx = np.arange(T) % p.inputs
    return Xm[idx], ym[idx]
