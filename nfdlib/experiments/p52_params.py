"""Parameters of P5.2 and C5.7 (:mod:`.p52_one_step_gap`): the grid (widths, depths, weight
draws per point), the two step sizes, the trained groups, and the network of each grid point."""
from __future__ import annotations

from dataclasses import dataclass

from ..executor import check_executor
from ..model import DEVICES, NetworkSpec
from ..params import ParamError, Params, require_memory, spec

TRAIN_GROUPS = {"all": ("U", "W", "v"), "hidden": ("W",)}


@dataclass(frozen=True)
class GapParams(Params):
    profile: str = spec("book")
    backend: str = spec("numba", choices=("numba", "torch", "numpy"))
    device: str = spec("auto", choices=DEVICES)
    seed: int = spec(0, min=0)
    widths: list[int] = spec([1024], min=2, nonempty=True)
    depths: list[int] = spec([1, 2, 8, 32], min=1, nonempty=True)
    activation: str = spec("tanh", choices=("tanh", "linear"))
    train: str = spec("all", choices=tuple(TRAIN_GROUPS), doc="all: U, W, v; hidden: W only")
    seeds: int = spec(4, min=2, doc="number of weight draws per grid point")
    eta_c: float = spec(1.0, gt=0)
    eta_small: float = spec(0.01, gt=0, doc="the first-order regime")
    y: float = spec(1.0)
    d: int = spec(64, min=2)
    overlap: float = spec(0.5, min=-1.0, max=1.0, doc="ξ·ξ'/d of the fresh input")
    comparison: str = spec("decoupled", choices=("decoupled", "reused"),
                           doc="backward of the second network; 'reused' is the null experiment")
    dtype: str = spec("float32", choices=("float32", "float64"))
    fit_min_depth: int = spec(4, min=1, doc="smallest depth in the depth-exponent fit")
    executor: str = spec("serial")
    threads: int = spec(1, min=0, doc="threads per process for BLAS/numba/torch (0: their default); "
                                      "one is fastest for these two-row passes on a shared CPU")

    PROFILE_DEFAULTS = {
        "smoke": {"widths": [64, 128], "depths": [1, 4], "seeds": 2},
        "book": {},
        "paper": {"widths": [256, 512, 1024, 2048, 4096], "depths": [4, 16], "seeds": 16},
    }

    def check(self) -> None:
        check_executor(self.executor)
        if self.eta_small >= self.eta_c:
            raise ParamError(f"parameter 'eta_small' = {self.eta_small} must be smaller than "
                             f"eta_c = {self.eta_c}; allowed: 0 < eta_small < eta_c")
        # the largest point holds the draws (W, W̃) and, when stored, one network's copy of
        # them (regenerated: a few layers, see NetworkSpec.weight_bytes); and the passes it
        # keeps: 4 networks × 6 arrays of (L+1)×2×n in float64, and their native arrays
        n, L = max(self.widths), max(self.depths)
        sp = self.spec(n, L, "decoupled")
        held = sp.weight_bytes() * (2 if sp.weight_mode == "stored" else 1)
        passes = 4 * 6 * (L + 1) * 2 * n * 8 * 2
        require_memory(held + passes, f"the one-step gap at width {n} and depth {L} "
                                      f"({sp.weight_mode} weights)")

    def spec(self, width: int, depth: int, backward: str) -> NetworkSpec:
        return NetworkSpec.build(width=width, depth=depth, activation=self.activation, d=self.d,
                                 backward=backward, backend=self.backend, dtype=self.dtype,
                                 device=self.device if self.backend == "torch" else "auto")
