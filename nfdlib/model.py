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


WEIGHT_MODES = ("stored", "regenerated")
STORED_MAX_BYTES = 2 << 30   # weight stacks above this are re-drawn per layer, not held


def weight_mode(nbytes: int) -> str:
    """``stored`` for weight stacks of at most :data:`STORED_MAX_BYTES` bytes, else
    ``regenerated``: the two give the same numbers, the second holds two layers, not L."""
    return "stored" if nbytes <= STORED_MAX_BYTES else "regenerated"


class LayerWeights:
    """The weight matrices W_1, …, W_L (n×n each) of a network in ``regenerated`` mode, read
    like the L×n×n stack of ``stored`` mode (a plain array): ``len(w)``, ``w.shape``, ``w[ℓ]``
    (0-based), which is all that every backend's passes read.

    Only the state of the bit generator at the start of each layer's draw is held, and
    layer ℓ is drawn again from that state when it is read. ``standard_normal`` consumes a
    variable length of the stream per draw, so the states are recorded in one sequential
    pass (:meth:`draw`), never computed.
    SGD updates are held as factors: after K steps

        W_ℓ = W_ℓ(0) + Σ_k s_k A_k[ℓ]ᵀ B_k[ℓ],   ΔW_ℓ = -η_c m Σ_b δ_{ℓ,b} x_{ℓ,b}ᵀ / B (Eq. 2)

    (rank ≤ batch size per step), applied to the re-drawn layer in order by the backend's
    ``add_outer_layer``: the arithmetic of the stored update, so every layer is bitwise the
    stored one. The last layer read is kept, so reading it again draws nothing.
    """

    def __init__(self, shape, dtype, draw_dtype, states, bit_generator,
                 native=None, add=None, updates=()):
        self.shape, self.dtype, self._draw_dtype = tuple(shape), np.dtype(dtype), np.dtype(draw_dtype)
        self._states, self._bit_generator = states, bit_generator
        self._rng = np.random.Generator(bit_generator(0))
        self._native, self._add, self._updates = native, add, tuple(updates)
        self._memo = (None, None)

    @classmethod
    def draw(cls, rng: np.random.Generator, depth: int, width: int, dtype, draw_dtype,
             mode: str):
        """Draw L = ``depth`` matrices n×n i.i.d. N(0,1) from ``rng`` in order, each by
        ``standard_normal`` in ``draw_dtype`` cast to ``dtype``. ``stored``: the L×n×n array;
        ``regenerated``: a :class:`LayerWeights` (``rng`` advanced by the same draws)."""
        shape, dtype, draw_dtype = (depth, width, width), np.dtype(dtype), np.dtype(draw_dtype)
        if mode == "stored":
            stack = np.empty(shape, dtype=dtype)
            for layer in range(depth):
                if draw_dtype == dtype:
                    rng.standard_normal(shape[1:], dtype=dtype, out=stack[layer])
                else:
                    stack[layer] = rng.standard_normal(shape[1:], dtype=draw_dtype)
            return stack
        states = []
        for _ in range(depth):
            states.append(rng.bit_generator.state)
            rng.standard_normal(shape[1:], dtype=draw_dtype)
        return cls(shape, dtype, draw_dtype, states, type(rng.bit_generator))

    def __len__(self) -> int:
        return self.shape[0]

    def _base(self, layer: int) -> np.ndarray:
        self._rng.bit_generator.state = self._states[layer]
        draw = self._rng.standard_normal(self.shape[1:], dtype=self._draw_dtype)
        return draw.astype(self.dtype, copy=False)

    def __getitem__(self, layer: int):
        if not 0 <= layer < len(self):
            raise IndexError(f"layer {layer} of {len(self)}")
        if self._memo[0] == layer:
            return self._memo[1]
        w = self._base(layer)
        if self._native is not None:
            w = self._native(w)
        for A, B, scale in self._updates:
            self._add(w, A[layer], B[layer], scale)
        self._memo = (layer, w)
        return w

    def on(self, native, add=None) -> "LayerWeights":
        """The same layers as the backend's arrays: ``native`` converts a numpy layer,
        ``add(T, a, b, s)`` (T += s·aᵀb in place) applies updates (:meth:`updated`)."""
        return LayerWeights(self.shape, self.dtype, self._draw_dtype, self._states,
                            self._bit_generator, native, add, self._updates)

    def updated(self, A, B, scale: float) -> "LayerWeights":
        """These layers after W_ℓ += scale·A[ℓ]ᵀB[ℓ] (A, B: L×batch×n backend arrays, held)."""
        if self._add is None:
            raise ValueError("updated() needs layers bound to a backend by on(native, add)")
        return LayerWeights(self.shape, self.dtype, self._draw_dtype, self._states,
                            self._bit_generator, self._native, self._add,
                            self._updates + ((A, B, scale),))

    def materialise(self, to_numpy=np.asarray) -> np.ndarray:
        """Every layer as one numpy L×n×n array (for tests and small networks)."""
        return np.stack([np.array(to_numpy(self[layer])) for layer in range(len(self))])


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
        require_memory(self.weight_bytes(), f"a network of width {self.width} and depth "
                       f"{self.depth} ({self.weight_mode} weights)")

    @property
    def copies(self) -> int:
        """Weight stacks of L×n×n: W, and W̃ when decoupled."""
        return 2 if self.backward == "decoupled" else 1

    @property
    def weight_mode(self) -> str:
        """``stored`` when all weight stacks fit in :data:`STORED_MAX_BYTES`, else ``regenerated``."""
        return weight_mode(self.copies * self.depth * self.width**2 * np.dtype(self.dtype).itemsize)

    def weight_bytes(self, mode: str = "auto") -> int:
        """Bytes of weights held in ``mode`` (``auto``: :attr:`weight_mode`), U and V included:
        every stack when stored; when regenerated, two n×n layers per stack (the one kept and
        the one being drawn) and the float64 draw of one layer."""
        itemsize = np.dtype(self.dtype).itemsize
        n2, uv = self.width**2, self.width * (self.d + self.n_out)
        if (self.weight_mode if mode == "auto" else mode) == "stored":
            return itemsize * (self.copies * self.depth * n2 + uv)
        return itemsize * (self.copies * 2 * n2 + uv) + 8 * n2

    @property
    def scales(self) -> Scales:
        return scales(self.arch, self.width, self.depth)


def init_weights(spec: NetworkSpec, rng: np.random.Generator,
                 mode: str = "stored") -> dict[str, np.ndarray | LayerWeights]:
    """Draw U (n×d), W (L×n×n), V (n×K) i.i.d. N(0,1) from ``rng``, in that order, then the
    independent backward copy W̃ (decoupled only), so that a reused and a decoupled network
    built from the same seed share U, W and V. Float64 draws cast to ``spec.dtype``.
    ``mode`` (``stored``, ``regenerated`` or ``auto`` = ``spec.weight_mode``): W and W̃ as
    arrays, or as :class:`LayerWeights` that re-draw each layer when it is used (the same
    numbers bit for bit, and the same state of ``rng`` afterwards)."""
    mode = spec.weight_mode if mode == "auto" else mode
    if mode not in WEIGHT_MODES:
        raise ParamError(f"parameter 'mode' = {mode!r} is not allowed; allowed: auto, "
                         f"{', '.join(WEIGHT_MODES)}")
    dt = np.dtype(spec.dtype)
    n, L = spec.width, spec.depth
    U = rng.standard_normal((n, spec.d)).astype(dt)
    W = LayerWeights.draw(rng, L, n, dt, np.float64, mode)
    V = rng.standard_normal((n, spec.n_out)).astype(dt)
    weights = {"U": U, "W": W, "V": V}
    if spec.backward == "decoupled":
        weights["B"] = LayerWeights.draw(rng, L, n, dt, np.float64, mode)
    return weights
