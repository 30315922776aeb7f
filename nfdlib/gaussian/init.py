"""Gaussian representation of the backward pass at initialisation (Prop. 4.1; book/notes/gaussian.md)
and the coupling that puts the true and the decoupled backward passes on one probability
space (Prop. 4.2).

Notation (for each input, pre-activation depth-µP, Eq. 1): ``x_ℓ = φ(h_{ℓ-1})``,
``x̂_ℓ = x_ℓ/|x_ℓ|``, ``P_ℓ = x̂_ℓ x̂_ℓᵀ`` (``P_ℓ = 0`` if ``x_ℓ = 0``), ``u_ℓ = W_ℓ x_ℓ/√n``.

**Prop. 4.1 (Eqs. 7–8).** Since ``W_ℓ = √n u_ℓ x_ℓᵀ/|x_ℓ|² + W_ℓ(I - P_ℓ)``,

    W_ℓᵀ g_ℓ/√n = x_ℓ (u_ℓ·g_ℓ)/|x_ℓ|²  +  (I - P_ℓ) W_ℓᵀ g_ℓ/√n            (Eq. 7)
                 = coupling               +  residual,

and conditionally on the forward pass ``W_ℓ(I - P_ℓ) = W'_ℓ(I - P_ℓ)`` with ``W'_ℓ`` an
independent copy, so that given ``g_ℓ`` the residual is ``N(0, (|g_ℓ|²/n)(I - P_ℓ))``; the
decoupled increment ``W̃_ℓᵀ g̃_ℓ/√n`` is ``N(0, (|g̃_ℓ|²/n) I)`` (Eq. 8).
:func:`representation` computes the two terms, :func:`redraw_given_forward` draws weights
from the conditional law given a forward pass.

**Coupling of Prop. 4.2.** ``W̃_ℓ = W_ℓ(I - P_ℓ) + ζ_ℓ x̂_ℓᵀ`` with ``ζ_ℓ ~ N(0, I_n)`` fresh:
``W̃_ℓ`` is i.i.d. N(0,1) and independent of the forward pass, so the backward pass with
``W̃`` has the law of the decoupled one, while sharing ``W_ℓ``'s orthogonal part. Since
``W̃_ℓᵀ g = W_ℓᵀ g + x̂_ℓ (ζ_ℓ - W_ℓ x̂_ℓ)·g``, the coupled backward pass needs no copy of
the weights: :func:`coupled_passes` runs the forward pass and both recursions (Eq. 3)

    g_{ℓ-1} = g_ℓ + m φ'(h_{ℓ-1}) ⊙ W_ℓᵀ g_ℓ,
    g̃_{ℓ-1} = g̃_ℓ + m φ'(h_{ℓ-1}) ⊙ [W_ℓᵀ g̃_ℓ + x̂_ℓ (ζ_ℓ - W_ℓ x̂_ℓ)·g̃_ℓ],   g_L = g̃_L = v,

with one signature on the ``numpy`` reference (which builds ``W̃`` explicitly and calls the
reference backward pass), ``numba`` and ``torch``.
"""
from __future__ import annotations

import math

import numpy as np
from numba import njit

from ..backends.numba_backend import SAFE_FASTMATH, dphi_of_phi as dphi_of_phi_nb, phi_scalar
from ..model import LayerWeights
from ..params import ParamError

_ACT = {"tanh": 0, "relu": 1, "linear": 2}


def _unit(x: np.ndarray) -> np.ndarray:
    """x/|x| along the last axis (0 where x = 0, so that P = 0)."""
    norm = np.linalg.norm(x, axis=-1, keepdims=True)
    return np.divide(x, norm, out=np.zeros_like(x), where=norm > 0)


# ---------------------------------------------------------------------------- Prop. 4.1

def representation(W: np.ndarray, x: np.ndarray, g: np.ndarray, u: np.ndarray):
    """The two terms of Eq. 7 for one layer: ``coupling = x (u·g)/|x|²`` (with ``u`` read
    off the forward pass) and ``residual = (I - P) Wᵀ g/√n`` (float64 numpy)."""
    n = W.shape[0]
    xhat = _unit(x)
    a = W.T @ g / math.sqrt(n)
    residual = a - xhat * (xhat @ a)
    nx2 = float(x @ x)
    coupling = x * (u @ g) / nx2 if nx2 > 0 else np.zeros_like(x)
    return coupling, residual


def redraw_given_forward(W: np.ndarray, xs: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A draw of the weights from their conditional law given the forward pass:
    ``W_ℓ P_ℓ + W'_ℓ (I - P_ℓ)``, ``W'`` i.i.d. N(0,1) (``W``: L×n×n, ``xs``: L×n)."""
    out = np.empty_like(W)
    xhat = _unit(xs)
    for layer in range(W.shape[0]):
        Wp = rng.standard_normal(W.shape[1:])
        e = xhat[layer]
        out[layer] = Wp + np.outer(W[layer] @ e - Wp @ e, e)
    return out


# ---------------------------------------------------------------------------- Prop. 4.2

def coupled_weights(W: np.ndarray, xs: np.ndarray, zeta: np.ndarray) -> np.ndarray:
    """``W̃_ℓ = W_ℓ(I - P_ℓ) + ζ_ℓ x̂_ℓᵀ`` for every layer (numpy; L×n×n)."""
    xhat = _unit(xs)
    out = np.empty_like(W)
    for layer in range(W.shape[0]):
        e = xhat[layer]
        out[layer] = W[layer] + np.outer(zeta[layer] - W[layer] @ e, e)
    return out


def dphi_of_phi(a, act: str):
    """φ'(h) through a = φ(h) (numpy or torch arrays): 1 - a² (tanh), 1{a > 0} (ReLU), 1."""
    if act == "tanh":
        return 1 - a * a
    if act == "relu":
        return a * 0 + (a > 0)
    return a * 0 + 1


def _coupled_passes_numpy(U, W, v, X, zeta, mult, act):
    """Reference: forward pass and both backward passes by the numpy reference backend,
    with each input's coupled weights built explicitly (Eq. 1, Eq. 3)."""
    from ..backends import numpy_ref
    from ..model import Scales
    W = W.materialise() if isinstance(W, LayerWeights) else W
    sc = Scales(False, mult, 1.0, 1.0)
    V, one = v[:, None], np.ones((1, 1), dtype=v.dtype)
    hs, xs, us, _ = numpy_ref.forward(U, W, V, X, sc, act)
    gs, _ = numpy_ref.backward(W, V, hs, xs, us, np.ones((X.shape[0], 1), dtype=v.dtype), sc, act)
    gts = np.empty_like(gs)
    for b in range(X.shape[0]):
        Wt = coupled_weights(W, xs[:, b, :], zeta[:, b, :])
        gts[:, b:b + 1], _ = numpy_ref.backward(Wt, V, hs[:, b:b + 1], xs[:, b:b + 1], us, one, sc, act)
    return hs, gs, gts


@njit(cache=True, fastmath=SAFE_FASTMATH, error_model="numpy")
def _input_nb(U, X, h0):
    """h_0 = U ξ/√d for the rows of X."""
    np.dot(X, U.T, h0)
    h0 *= 1.0 / math.sqrt(U.shape[1])


@njit(cache=True, fastmath=SAFE_FASTMATH, error_model="numpy")
def _forward_layer_nb(Wl, h, mult, act, x, h_next, tmp):
    """Eq. 1 for one layer: x_ℓ = φ(h_{ℓ-1}), h_ℓ = h_{ℓ-1} + m W_ℓ x_ℓ."""
    B, n = h.shape
    for b in range(B):
        for i in range(n):
            x[b, i] = phi_scalar(h[b, i], act)
    np.dot(x, Wl.T, tmp)
    for b in range(B):
        for i in range(n):
            h_next[b, i] = h[b, i] + mult * tmp[b, i]


@njit(cache=True, fastmath=SAFE_FASTMATH, error_model="numpy")
def _backward_layer_nb(Wl, x, zeta_l, g, gt, mult, act, g_prev, gt_prev, G, out, xhat, c, s):
    """Eq. 3 for one layer, reused and coupled weights (module docstring):
    g_{ℓ-1} = g_ℓ + m φ' ⊙ W_ℓᵀ g_ℓ,  g̃_{ℓ-1} = g̃_ℓ + m φ' ⊙ [W_ℓᵀ g̃_ℓ + x̂_ℓ (ζ_ℓ - W_ℓ x̂_ℓ)·g̃_ℓ]."""
    B, n = g.shape
    G[:B] = g
    G[B:] = gt
    np.dot(G, Wl, out)                                # rows: W_ℓᵀ g_ℓ, then W_ℓᵀ g̃_ℓ
    for b in range(B):
        nx = 0.0
        for i in range(n):
            nx += float(x[b, i]) ** 2
        nx = math.sqrt(nx)
        for i in range(n):
            xhat[b, i] = x[b, i] / nx if nx > 0 else 0.0
    np.dot(xhat, Wl.T, c)                             # W_ℓ x̂_ℓ for every input
    for b in range(B):
        s[b] = 0.0
        for i in range(n):
            s[b] += (zeta_l[b, i] - c[b, i]) * gt[b, i]
        for i in range(n):
            dp = mult * dphi_of_phi_nb(x[b, i], act)
            g_prev[b, i] = g[b, i] + dp * out[b, i]
            gt_prev[b, i] = gt[b, i] + dp * (out[B + b, i] + xhat[b, i] * s[b])


def _coupled_passes_nb(U, W, v, X, zeta, mult, act):
    """The loop over layers in Python (one n×n matrix per kernel call, so that ``W`` may be
    :class:`LayerWeights`); each layer's weights are read once per pass."""
    L, n, B = W.shape[0], W.shape[1], X.shape[0]
    dt = U.dtype
    hs = np.empty((L + 1, B, n), dtype=dt)
    xs = np.empty((L, B, n), dtype=dt)
    _input_nb(U, X, hs[0])
    tmp = np.empty((B, n), dtype=dt)
    for layer in range(L):
        _forward_layer_nb(W[layer], hs[layer], mult, act, xs[layer], hs[layer + 1], tmp)
    gs = np.empty((L + 1, B, n), dtype=dt)
    gts = np.empty((L + 1, B, n), dtype=dt)
    gs[L] = v
    gts[L] = v
    G = np.empty((2 * B, n), dtype=dt)
    out = np.empty((2 * B, n), dtype=dt)
    xhat = np.empty((B, n), dtype=dt)
    c = np.empty((B, n), dtype=dt)
    s = np.empty(B)
    for layer in range(L - 1, -1, -1):
        _backward_layer_nb(W[layer], xs[layer], zeta[layer], gs[layer + 1], gts[layer + 1], mult,
                           act, gs[layer], gts[layer], G, out, xhat, c, s)
    return hs, gs, gts


def _coupled_passes_torch(U, W, v, X, zeta, mult, act):
    import torch
    with torch.no_grad():
        L, n, B = W.shape[0], W.shape[1], X.shape[0]
        hs = torch.empty((L + 1, B, n), dtype=U.dtype, device=U.device)
        xs = torch.empty((L, B, n), dtype=U.dtype, device=U.device)
        hs[0] = X @ U.T / math.sqrt(U.shape[1])
        for layer in range(L):                        # Eq. 1
            xs[layer] = _PHI_TORCH[act](hs[layer])
            hs[layer + 1] = hs[layer] + mult * (xs[layer] @ W[layer].T)
        gs = torch.empty_like(hs)
        gts = torch.empty_like(hs)
        gs[L] = v
        gts[L] = v
        norms = torch.linalg.vector_norm(xs, dim=2, keepdim=True)
        xhat = torch.where(norms > 0, xs / torch.where(norms > 0, norms, 1), 0)
        for layer in reversed(range(L)):              # Eq. 3, reused and coupled weights
            Wl = W[layer]
            out = torch.cat([gs[layer + 1], gts[layer + 1]]) @ Wl
            s = ((zeta[layer] - xhat[layer] @ Wl.T) * gts[layer + 1]).sum(1, keepdim=True)
            dp = mult * dphi_of_phi(xs[layer], act)
            gs[layer] = gs[layer + 1] + dp * out[:B]
            gts[layer] = gts[layer + 1] + dp * (out[B:] + xhat[layer] * s)
    return hs, gs, gts


def _torch_relu(h):
    return h.clamp(min=0)


_PHI_TORCH = {"tanh": lambda h: h.tanh(), "relu": _torch_relu, "linear": lambda h: h.clone()}


def coupled_passes(backend: str, U, W, v, X, zeta, act: str):
    """The kernel of Prop. 4.2: forward pass (Eq. 1, depth-µP) of the inputs ``X`` (B×d)
    and, for each input, the true and coupled-decoupled backward passes (see the module
    docstring; input b has its own coupling, from its own ``x̂_ℓ`` and ``ζ_ℓ = zeta[ℓ-1, b]``),
    one signature on every backend. ``U`` n×d, ``W`` L×n×n (or :class:`LayerWeights` of
    native layers), ``v`` n, ``zeta`` L×B×n, in the backend's native arrays of one dtype. Returns native ``(hs, gs, gts)``, each (L+1)×B×n,
    with ``hs[ℓ] = h_ℓ``, ``gs[ℓ] = g_ℓ``, ``gts[ℓ] = g̃_ℓ``.
    """
    if act not in _ACT:
        raise ParamError(f"parameter 'activation' = {act!r} is not allowed; allowed: {', '.join(_ACT)}")
    if backend not in ("numpy", "numba", "torch"):
        raise ParamError(f"parameter 'backend' = {backend!r} is not allowed; allowed: numpy, numba, torch")
    mult = 1 / math.sqrt(W.shape[1] * W.shape[0])
    if backend == "numpy":
        return _coupled_passes_numpy(U, W, v, X, zeta, mult, act)
    if backend == "numba":
        return _coupled_passes_nb(U, W, v, X, zeta, U.dtype.type(mult), _ACT[act])
    return _coupled_passes_torch(U, W, v, X, zeta, mult, act)


def to_backend(x: np.ndarray, backend: str, dtype: str, device: str = "auto"):
    """``x`` as the backend's native array, without a copy where the dtype already matches
    (the weights can be large)."""
    x = np.ascontiguousarray(x, dtype=dtype)
    if backend == "torch":
        import torch
        from ..backends.torch_backend import resolve_device
        return torch.from_numpy(x).to(resolve_device(device))
    return x


def gia_pair(backend: str, U, W, v, X, zeta, act: str, device: str = "auto",
             dtype: str = "float32"):
    """:func:`coupled_passes` on numpy draws (moved to the backend and ``dtype``; ``W`` an
    array or :class:`LayerWeights`, whose layers move when read); returns numpy float64
    ``(hs, gs, gts)``."""
    move = lambda a: to_backend(a, backend, dtype, device)  # noqa: E731
    args = [a.on(move) if isinstance(a, LayerWeights) else move(a) for a in (U, W, v, X, zeta)]
    out = coupled_passes(backend, *args, act)
    if backend == "torch":
        out = [a.cpu().numpy() for a in out]
    return tuple(np.asarray(a, dtype=np.float64) for a in out)
