"""Finite-width networks on any backend: forward pass, backward pass with reused (true
backprop) or decoupled backward weights (book/notes/model.md), and SGD with η = η_c·n (Eq. 2).

One SGD step on a batch (X, Y) of size B, with χ_b = ∂loss/∂f(ξ_b) and gradients averaged
over the batch (Eq. 2 with η = η_c n):

    ΔW_ℓ = -η_c m Σ_b δ_{ℓ,b} x_{ℓ,b}ᵀ / B      (δ = g_ℓ pre-activation; m the W multiplier)
    ΔU   = -η_c (1/√d) Σ_b g_{0,b} ξ_bᵀ / B
    ΔV   = -η_c Σ_b h_{L,b} χ_bᵀ / B

The decoupled network's backward weights are B_ℓ = W̃_ℓ + ΔW_ℓ (an independent initial copy
receiving the same updates); the reused network's are W_ℓ itself.

W and W̃ are held as L×n×n arrays (``stored``) or as :class:`nfdlib.model.LayerWeights`
(``regenerated``: each layer re-drawn when a pass reads it, ΔW_ℓ kept as its factors δ_ℓ, x_ℓ),
with bitwise the same results.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from .backends import get_backend
from .model import LayerWeights, NetworkSpec, init_weights
from .params import ParamError, require_memory

LOSSES = ("mse", "cross_entropy")
GROUPS = ("U", "W", "v")


def loss_and_chi(f: np.ndarray, Y: np.ndarray, loss: str) -> tuple[np.ndarray, np.ndarray]:
    """Per-sample loss and χ = ∂loss/∂f. MSE: ½|f - y|² (Y of shape B×K); cross-entropy:
    softmax cross-entropy against integer labels Y (shape B)."""
    f = np.asarray(f, dtype=np.float64)
    if loss == "mse":
        diff = f - np.asarray(Y, dtype=np.float64).reshape(f.shape)
        return 0.5 * np.sum(diff**2, axis=1), diff
    if loss == "cross_entropy":
        y = np.asarray(Y, dtype=np.int64).ravel()
        z = f - f.max(axis=1, keepdims=True)
        logp = z - np.log(np.exp(z).sum(axis=1, keepdims=True))
        chi = np.exp(logp)
        chi[np.arange(len(y)), y] -= 1.0
        return -logp[np.arange(len(y)), y], chi
    raise ParamError(f"parameter 'loss' = {loss!r} is not allowed; allowed: {', '.join(LOSSES)}")


@dataclass
class Pass:
    """Forward (and, after :meth:`Network.backward`, backward) quantities of one batch, as
    numpy arrays on request: hs (L+1×B×n), gs (L+1×B×n), f (B×K)."""
    net: "Network"
    X: object
    hs: object
    xs: object
    us: object
    f_native: object
    gs: object = None
    deltas: object = None
    chi: np.ndarray | None = None

    @property
    def f(self) -> np.ndarray:
        return np.asarray(self.net.be.to_numpy(self.f_native), dtype=np.float64)

    def numpy(self, name: str) -> np.ndarray:
        return self.net.be.to_numpy(getattr(self, name))


class Network:
    """A finite network of :class:`NetworkSpec` on its backend.

    Weights are drawn by :func:`nfdlib.model.init_weights` from ``rng`` (a seeded numpy
    ``Generator`` or an int seed) in ``mode`` (``stored``, ``regenerated`` or ``auto``) unless
    ``weights`` (numpy arrays U, V and W[, B] as arrays or :class:`LayerWeights`) are given.
    Training a regenerated network holds the factors of every step: it is meant for a few steps.
    """

    def __init__(self, spec: NetworkSpec, rng: np.random.Generator | int = 0,
                 weights: dict[str, np.ndarray] | None = None, mode: str = "stored"):
        self.spec = spec
        self.be = get_backend(spec.backend)
        self.sc = spec.scales
        drawn = weights is None  # drawn here: held as they are, not copied
        if drawn:
            rng = np.random.default_rng(rng) if not isinstance(rng, np.random.Generator) else rng
            mode = spec.weight_mode if mode == "auto" else mode
            require_memory(spec.weight_bytes(mode), f"a network of width {spec.width} and depth "
                           f"{spec.depth} with {mode} weights (mode 'auto' re-draws them when "
                           "they do not fit)")
            weights = init_weights(spec, rng, mode)
        self.device = spec.device
        self.params = {k: self._native(weights[k], copy=not drawn) for k in ("U", "W", "V")}
        if spec.backward == "decoupled":
            if "B" not in weights:
                raise ParamError("a decoupled network needs backward weights 'B' in 'weights'")
            self.params["B"] = self._native(weights["B"], copy=not drawn)

    def _native(self, w, copy: bool = True):
        """A weight array (copied, unless ``copy`` is False: weights this network drew itself,
        which nobody else holds, so that a stored stack is not held twice) or
        :class:`LayerWeights` (bound) on this network's backend."""
        if isinstance(w, LayerWeights):
            return w.on(lambda a: self.be.asarray(a, self.spec.dtype, self.device),
                        self.be.add_outer_layer)
        return self.be.asarray(w, self.spec.dtype, self.device, copy=copy)

    @property
    def backward_weights(self):
        return self.params["B"] if self.spec.backward == "decoupled" else self.params["W"]

    def weights(self) -> dict[str, np.ndarray]:
        """Copies of the current weights as numpy arrays (regenerated layers materialised)."""
        return {k: v.materialise(self.be.to_numpy) if isinstance(v, LayerWeights)
                else np.array(self.be.to_numpy(v)) for k, v in self.params.items()}

    def _input(self, X):
        X = np.atleast_2d(np.asarray(X, dtype=np.float64))
        if X.shape[1] != self.spec.d:
            raise ParamError(f"inputs have dimension {X.shape[1]} but the network expects d = {self.spec.d}")
        return self.be.asarray(X, self.spec.dtype, self.device)

    def forward(self, X) -> Pass:
        """Forward pass on the rows of ``X`` (B×d)."""
        p = self.params
        X = self._input(X)
        hs, xs, us, f = self.be.forward(p["U"], p["W"], p["V"], X, self.sc, self.spec.activation)
        return Pass(self, X, hs, xs, us, f)

    def predict(self, X) -> np.ndarray:
        return self.forward(X).f

    def backward(self, pas: Pass, chi: np.ndarray) -> Pass:
        """Backward pass (Eq. 3) from χ = ∂loss/∂f (B×K), with the network's backward weights."""
        chi = np.asarray(chi, dtype=np.float64).reshape(pas.f.shape)
        pas.chi = chi
        pas.gs, pas.deltas = self.be.backward(
            self.backward_weights, self.params["V"], pas.hs, pas.xs, pas.us,
            self.be.asarray(chi, self.spec.dtype, self.device), self.sc, self.spec.activation)
        return pas

    def gradients(self, X, Y, loss: str = "mse") -> dict[str, np.ndarray]:
        """∂(batch-mean loss)/∂(U, W, V) as numpy arrays, the backward pass using the
        network's backward weights (true gradients when ``backward='reused'``)."""
        pas = self.forward(X)
        _, chi = loss_and_chi(pas.f, Y, loss)
        self.backward(pas, chi)
        zeros = {k: self.be.asarray(np.zeros(tuple(v.shape)), self.spec.dtype, self.device)
                 for k, v in self.params.items() if k != "B"}
        self._accumulate(zeros, pas, scale=1.0, groups=GROUPS)
        return {k: np.asarray(self.be.to_numpy(v)) for k, v in zeros.items()}

    def _accumulate(self, target, pas: Pass, scale: float, groups) -> None:
        """target += scale · ∂(batch-mean loss)/∂θ for θ in ``groups``; ``scale = -η_c n`` is
        the SGD step of Eq. 2."""
        n, d = self.spec.width, self.spec.d
        B = pas.chi.shape[0]
        be = self.be
        if "U" in groups:
            be.add_outer(target["U"], pas.gs[0], pas.X, scale / (n * math.sqrt(d) * B))
        if "v" in groups:
            chi = be.asarray(pas.chi, self.spec.dtype, self.device)
            be.add_outer(target["V"], pas.hs[-1], chi, scale / (n * B))
        if "W" in groups:
            self._add_layers(target, "W", pas, scale * self.sc.mult / (n * B))

    def _add_layers(self, target, key: str, pas: Pass, scale: float) -> None:
        """target[key]_ℓ += scale·δ_ℓᵀ x_ℓ: in place on a stored stack, as held factors on
        :class:`LayerWeights`."""
        if isinstance(target[key], LayerWeights):
            target[key] = target[key].updated(pas.deltas, pas.xs, scale)
        else:
            self.be.add_outer_layers(target[key], pas.deltas, pas.xs, scale)

    def step(self, X, Y, eta_c: float, loss: str = "mse", train=GROUPS) -> np.ndarray:
        """One SGD step (Eq. 2, η = η_c·n, batch mean) on the groups in ``train`` (any of
        ``U``, ``W``, ``v``); the decoupled backward weights receive the same ΔW. Returns
        the per-sample losses before the step."""
        pas = self.forward(X)
        losses, chi = loss_and_chi(pas.f, Y, loss)
        if not np.all(np.isfinite(losses)):
            return losses
        self.update(self.backward(pas, chi), eta_c, train)
        return losses

    def update(self, pas: Pass, eta_c: float, train=GROUPS) -> None:
        """The SGD update of :meth:`step` from a pass whose backward has run (``pas.chi``),
        which may come from another network with the same weights."""
        scale = -eta_c * self.spec.width
        self._accumulate(self.params, pas, scale, train)
        if self.spec.backward == "decoupled" and "W" in train:
            B = pas.chi.shape[0]
            self._add_layers(self.params, "B", pas, scale * self.sc.mult / (self.spec.width * B))
