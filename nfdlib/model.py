"""Architectures of book/notes/model.md (the paper's Eq. 1 and its variants) and their initialisation.

All weights are i.i.d. N(0, 1); width and depth factors are explicit multipliers:

==============  ======================================================  =================
name            residual block (ℓ = 1..L)                               multipliers
==============  ======================================================  =================
``depth_mup``   h_ℓ = h_{ℓ-1} + (1/√(nL)) W_ℓ φ(h_{ℓ-1})   (Eq. 1)      m = 1/√(nL), r = 1
``mup_resnet``  h_ℓ = h_{ℓ-1} + (1/√n) W_ℓ φ(h_{ℓ-1})                   m = 1/√n,    r = 1
``vanilla``     h_ℓ = (1/√n) W_ℓ φ(h_{ℓ-1})                             m = 1/√n,    r = 0
``post_act``    h_ℓ = h_{ℓ-1} + (1/√L) φ(W_ℓ h_{ℓ-1}/√n)   (Eq. 29)     m = 1/√n,    c = 1/√L
==============  ======================================================  =================

with h_0 = U ξ/√d and readout f = Vᵀ h_L / n (V ∈ R^{n×K}; K = 1 is the scalar v).
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from .params import ParamError, Params, require_memory, spec

ARCHITECTURES = ("depth_mup", "mup_resnet", "vanilla", "post_act")
ACTIVATIONS = ("tanh", "relu", "linear")
BACKENDS = ("numba", "torch", "numpy")
BACKWARDS = ("reused", "decoupled")
DTYPES = ("float32", "float64")
DEVICES = ("auto", "cpu", "cuda")


@dataclass(frozen=True)
class Scales:
    """Multipliers of one architecture: ``mult`` on W_ℓ (inside φ for post-activation),
    ``resid`` on the skip connection, ``outer`` on the post-activation branch."""
    post: bool
    mult: float
    resid: float
    outer: float


def scales(arch: str, width: int, depth: int) -> Scales:
    n, L = width, depth
    if arch == "depth_mup":
        return Scales(False, 1 / math.sqrt(n * L), 1.0, 1.0)
    if arch == "mup_resnet":
        return Scales(False, 1 / math.sqrt(n), 1.0, 1.0)
    if arch == "vanilla":
        return Scales(False, 1 / math.sqrt(n), 0.0, 1.0)
    if arch == "post_act":
        return Scales(True, 1 / math.sqrt(n), 1.0, 1 / math.sqrt(L))
    raise ParamError(f"parameter 'arch' = {arch!r} is not allowed; allowed: {', '.join(ARCHITECTURES)}")


@dataclass(frozen=True)
class NetworkSpec(Params):
    """A finite network: architecture, sizes, activation, backward mode and backend."""
    arch: str = spec("depth_mup", choices=ARCHITECTURES)
    width: int = spec(128, min=1)
    depth: int = spec(8, min=1)
    activation: str = spec("tanh", choices=ACTIVATIONS)
    d: int = spec(64, min=1, doc="input dimension")
    n_out: int = spec(1, min=1, doc="readout dimension K")
    backward: str = spec("reused", choices=BACKWARDS)
    backend: str = spec("numba", choices=BACKENDS)
    dtype: str = spec("float32", choices=DTYPES)
    device: str = spec("auto", choices=DEVICES)

    def check(self) -> None:
        if self.backend in ("numba", "numpy") and self.device == "cuda":
            raise ParamError(f"parameter 'device' = 'cuda' is not allowed with backend "
                             f"{self.backend!r}; allowed: 'auto', 'cpu' (use backend 'torch' for CUDA)")
        copies = 2 if self.backward == "decoupled" else 1
        itemsize = 4 if self.dtype == "float32" else 8
        nbytes = itemsize * (copies * self.depth * self.width**2 + self.width * (self.d + self.n_out))
        require_memory(nbytes, f"a network of width {self.width} and depth {self.depth}")

    @property
    def scales(self) -> Scales:
        return scales(self.arch, self.width, self.depth)


def init_weights(spec: NetworkSpec, rng: np.random.Generator) -> dict[str, np.ndarray]:
    """Draw U (n×d), W (L×n×n), V (n×K) i.i.d. N(0,1) from ``rng``, in that order, then the
    independent backward copy W̃ (decoupled only), so that a reused and a decoupled network
    built from the same seed share U, W and V. Float64 draws cast to ``spec.dtype``."""
    dt = np.dtype(spec.dtype)
    n, L = spec.width, spec.depth
    U = rng.standard_normal((n, spec.d)).astype(dt)
    W = np.empty((L, n, n), dtype=dt)
    for layer in range(L):
        W[layer] = rng.standard_normal((n, n))
    V = rng.standard_normal((n, spec.n_out)).astype(dt)
    weights = {"U": U, "W": W, "V": V}
    if spec.backward == "decoupled":
        Wt = np.empty_like(W)
        for layer in range(L):
            Wt[layer] = rng.standard_normal((n, n))
        weights["B"] = Wt
    return weights
