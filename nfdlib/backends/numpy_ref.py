"""The numpy reference backend: the equations of book/notes/model.md (the paper's Eqs. 1–3)
written out plainly, layer by layer. It is the oracle of the tests, not a product path."""
from __future__ import annotations

import numpy as np

NAME = "numpy"


def asarray(x, dtype: str, device: str = "cpu", copy: bool = True):
    """``x`` as an array of ``dtype``: a copy, or with ``copy=False`` ``x`` itself where it
    already is one."""
    return np.array(x, dtype=dtype, copy=True if copy else None)


def to_numpy(x):
    return np.asarray(x)


def describe_device(device: str = "auto") -> str:
    return "cpu"


def phi(x, act):
    if act == "tanh":
        return np.tanh(x)
    if act == "relu":
        return np.maximum(x, 0)
    return x


def dphi(x, act):
    """φ'(x)."""
    return dphi_of_phi(phi(x, act), act)


def dphi_of_phi(a, act):
    """φ'(z) written through a = φ(z): 1 - a² (tanh), 1{a > 0} (ReLU), 1 (linear)."""
    if act == "tanh":
        return 1 - a**2
    if act == "relu":
        return (a > 0).astype(a.dtype)
    return np.ones_like(a)


def forward(U, W, V, X, sc, act):
    """Eq. 1 (pre-activation: h_ℓ = r h_{ℓ-1} + m W_ℓ φ(h_{ℓ-1})) or Eq. 29
    (post-activation: h_ℓ = h_{ℓ-1} + c φ(m W_ℓ h_{ℓ-1})), rows of X are inputs."""
    L, n = W.shape[0], W.shape[1]
    d = U.shape[1]
    hs = [X @ U.T / np.sqrt(d)]
    xs, us = [], []
    for layer in range(L):
        h = hs[-1]
        if sc.post:
            a = phi(sc.mult * (h @ W[layer].T), act)
            xs.append(h)
            us.append(a)
            hs.append(h + sc.outer * a)
        else:
            x = phi(h, act)
            xs.append(x)
            hs.append(sc.resid * h + sc.mult * (x @ W[layer].T))
    f = hs[-1] @ V / n
    us = np.stack(us) if us else np.zeros((0,) + hs[0].shape, dtype=hs[0].dtype)
    return np.stack(hs), np.stack(xs), us, f


def backward(Bw, V, hs, xs, us, chi, sc, act):
    """Eq. 3: g_L = V χ; g_{ℓ-1} = r g_ℓ + m φ'(h_{ℓ-1}) ⊙ (B_ℓᵀ g_ℓ) (pre-activation) or
    g_{ℓ-1} = g_ℓ + m B_ℓᵀ (c φ'(u_ℓ) ⊙ g_ℓ) (post-activation)."""
    L = Bw.shape[0]
    gs = [None] * (L + 1)
    deltas = [None] * L
    gs[L] = chi @ V.T
    for layer in reversed(range(L)):
        g = gs[layer + 1]
        if sc.post:
            delta = sc.outer * dphi_of_phi(us[layer], act) * g
            gs[layer] = g + sc.mult * (delta @ Bw[layer])
        else:
            delta = g
            gs[layer] = sc.resid * g + sc.mult * dphi_of_phi(xs[layer], act) * (g @ Bw[layer])
        deltas[layer] = delta
    return np.stack(gs), np.stack(deltas)


def add_outer(T, a, b, scale):
    T += scale * (a.T @ b)


def add_outer_layer(T, a, b, scale):
    T += scale * (a.T @ b)


def add_outer_layers(T, A, B, scale):
    for layer in range(T.shape[0]):
        add_outer_layer(T[layer], A[layer], B[layer], scale)
