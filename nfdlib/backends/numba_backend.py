"""The numba backend: CPU kernels compiled by numba, BLAS for the matrix products.

Per layer, the matrix product goes to BLAS (``np.dot`` with an output buffer, the fastest
route on a CPU), tanh to numpy's SIMD ufunc (numba's scalar ``math.tanh`` is about 80×
slower per element on this machine: it calls libm once per coordinate), and everything
else (skip connections, the backward gating with φ' computed from the stored φ, the weight
updates) to fused numba loops that read and write each array once. These loops are
memory-bound and small next to the O(B·n²) products, so they run on one thread: threaded
loops gained nothing measurable and, beside BLAS's own threads, oversubscribed a busy
machine by an order of magnitude. The loop over layers is plain Python: one iteration costs
microseconds against milliseconds of BLAS work.
"""
from __future__ import annotations

import math

import numpy as np
from numba import njit

from ..params import ParamError

NAME = "numba"
_ACT = {"tanh": 0, "relu": 1, "linear": 2}


def asarray(x, dtype: str, device: str = "cpu"):
    if device not in ("auto", "cpu"):
        raise ParamError(f"parameter 'device' = {device!r} is not allowed with backend 'numba'; "
                         "allowed: 'auto', 'cpu'")
    return np.array(x, dtype=dtype, copy=True, order="C")


def to_numpy(x):
    return np.asarray(x)


def describe_device(device: str = "auto") -> str:
    return "cpu"


@njit(cache=True)
def _relu(h, out):
    """out = max(h, 0)."""
    for r in range(h.shape[0]):
        for i in range(h.shape[1]):
            out[r, i] = h[r, i] if h[r, i] > 0 else 0.0


def _phi(h, act: str, out) -> None:
    if act == "tanh":
        np.tanh(h, out=out)
    elif act == "relu":
        _relu(h, out)
    else:
        out[...] = h


@njit(inline="always")
def phi_scalar(x, act):
    """φ(x) for one coordinate (act 0 tanh, 1 ReLU, 2 linear), for numba kernels that loop
    over particles or coordinates themselves."""
    if act == 0:
        return math.tanh(x)
    if act == 1:
        return x if x > 0 else 0.0 * x
    return x


@njit(inline="always")
def dphi_of_phi(a, act):
    """φ'(z) through a = φ(z): 1 - a² (tanh), 1{a > 0} (ReLU), 1 (linear)."""
    if act == 0:
        return 1.0 - a * a
    if act == 1:
        return 1.0 if a > 0 else 0.0
    return 1.0


@njit(cache=True)
def _axpby(a, x, b, y, out):
    """out = a·x + b·y   (skip connection plus branch, Eq. 1 and Eq. 29)."""
    for r in range(x.shape[0]):
        for i in range(x.shape[1]):
            out[r, i] = a * x[r, i] + b * y[r, i]


@njit(cache=True)
def _gate_pre(g, x, q, resid, mult, act, out):
    """out = resid·g + mult·φ'(h)⊙q with φ'(h) from x = φ(h)   (Eq. 3, pre-activation)."""
    for r in range(g.shape[0]):
        for i in range(g.shape[1]):
            out[r, i] = resid * g[r, i] + mult * dphi_of_phi(x[r, i], act) * q[r, i]


@njit(cache=True)
def _gate_post(g, a, outer, act, out):
    """out = outer·φ'(u)⊙g with φ'(u) from a = φ(u)   (post-activation branch gradient)."""
    for r in range(g.shape[0]):
        for i in range(g.shape[1]):
            out[r, i] = outer * dphi_of_phi(a[r, i], act) * g[r, i]


def forward(U, W, V, X, sc, act):
    """Eq. 1 / Eq. 29 forward pass (see the numpy reference)."""
    L, n = W.shape[0], W.shape[1]
    X = np.ascontiguousarray(X, dtype=U.dtype)
    B, dt = X.shape[0], U.dtype
    hs = np.empty((L + 1, B, n), dtype=dt)
    xs = np.empty((L, B, n), dtype=dt)
    us = np.empty((L if sc.post else 0, B, n), dtype=dt)
    tmp = np.empty((B, n), dtype=dt)
    np.dot(X, U.T, out=hs[0])
    hs[0] *= dt.type(1 / np.sqrt(U.shape[1]))
    for layer in range(L):
        if sc.post:
            xs[layer] = hs[layer]
            np.dot(hs[layer], W[layer].T, out=tmp)
            tmp *= dt.type(sc.mult)
            _phi(tmp, act, us[layer])
            _axpby(1.0, hs[layer], sc.outer, us[layer], hs[layer + 1])
        else:
            _phi(hs[layer], act, xs[layer])
            np.dot(xs[layer], W[layer].T, out=tmp)
            _axpby(sc.resid, hs[layer], sc.mult, tmp, hs[layer + 1])
    f = hs[L] @ V
    f /= n
    return hs, xs, us, f


def backward(Bw, V, hs, xs, us, chi, sc, act):
    """Eq. 3 backward pass (see the numpy reference)."""
    L = Bw.shape[0]
    code = _ACT[act]
    gs = np.empty_like(hs)
    deltas = np.empty_like(xs)
    q = np.empty(hs.shape[1:], dtype=hs.dtype)
    np.dot(np.ascontiguousarray(chi, dtype=hs.dtype), V.T, out=gs[L])
    for layer in range(L - 1, -1, -1):
        if sc.post:
            _gate_post(gs[layer + 1], us[layer], sc.outer, code, deltas[layer])
            np.dot(deltas[layer], Bw[layer], out=q)
            _axpby(1.0, gs[layer + 1], sc.mult, q, gs[layer])
        else:
            deltas[layer] = gs[layer + 1]
            np.dot(gs[layer + 1], Bw[layer], out=q)
            _gate_pre(gs[layer + 1], xs[layer], q, sc.resid, sc.mult, code, gs[layer])
    return gs, deltas


def add_outer(T, a, b, scale):
    T += T.dtype.type(scale) * (a.T @ b)


def add_outer_layers(T, A, B, scale):
    tmp = np.empty(T.shape[1:], dtype=T.dtype)
    for layer in range(T.shape[0]):
        np.dot(A[layer].T, B[layer], out=tmp)
        _axpby(1.0, T[layer], scale, tmp, T[layer])
