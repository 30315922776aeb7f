"""The numba backend: CPU kernels compiled by numba. Matrix products go to BLAS through
``np.dot`` (the fastest way on a CPU); activations, residual updates and the backward
gating are fused parallel loops, so each layer reads and writes its features once."""
from __future__ import annotations

import math

import numpy as np
from numba import njit, prange

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


@njit(inline="always")
def _phi(x, act):
    if act == 0:
        return math.tanh(x)
    if act == 1:
        return x if x > 0 else 0.0 * x
    return x


@njit(inline="always")
def _dphi(x, act):
    if act == 0:
        t = math.tanh(x)
        return 1.0 - t * t
    if act == 1:
        return 1.0 if x > 0 else 0.0
    return 1.0


@njit(parallel=True, cache=True)
def _apply_phi(h, act, out):
    """out = φ(h)."""
    B, n = h.shape
    for b in prange(B):
        for i in range(n):
            out[b, i] = _phi(h[b, i], act)


@njit(parallel=True, cache=True)
def _residual_phi(h, u, outer, act, out):
    """out = h + outer·φ(u)   (post-activation block, Eq. 29)."""
    B, n = h.shape
    for b in prange(B):
        for i in range(n):
            out[b, i] = h[b, i] + outer * _phi(u[b, i], act)


@njit(parallel=True, cache=True)
def _axpby(a, x, b, y, out):
    """out = a·x + b·y."""
    B, n = x.shape
    for r in prange(B):
        for i in range(n):
            out[r, i] = a * x[r, i] + b * y[r, i]


@njit(parallel=True, cache=True)
def _gate_pre(g, h, q, resid, mult, act, out):
    """out = resid·g + mult·φ'(h)⊙q   (pre-activation backward, Eq. 3)."""
    B, n = g.shape
    for r in prange(B):
        for i in range(n):
            out[r, i] = resid * g[r, i] + mult * _dphi(h[r, i], act) * q[r, i]


@njit(parallel=True, cache=True)
def _gate_post(g, u, outer, act, out):
    """out = outer·φ'(u)⊙g   (post-activation branch gradient)."""
    B, n = g.shape
    for r in prange(B):
        for i in range(n):
            out[r, i] = outer * _dphi(u[r, i], act) * g[r, i]


@njit(cache=True)
def _forward(U, W, V, X, post, mult, resid, outer, act):
    L, n = W.shape[0], W.shape[1]
    B = X.shape[0]
    dt = U.dtype
    hs = np.empty((L + 1, B, n), dtype=dt)
    xs = np.empty((L, B, n), dtype=dt)
    us = np.empty((L if post else 0, B, n), dtype=dt)
    tmp = np.empty((B, n), dtype=dt)
    np.dot(X, U.T, hs[0])
    hs[0] *= 1.0 / math.sqrt(U.shape[1])
    for layer in range(L):
        if post:
            xs[layer] = hs[layer]
            np.dot(hs[layer], W[layer].T, us[layer])
            us[layer] *= mult
            _residual_phi(hs[layer], us[layer], outer, act, hs[layer + 1])
        else:
            _apply_phi(hs[layer], act, xs[layer])
            np.dot(xs[layer], W[layer].T, tmp)
            _axpby(resid, hs[layer], mult, tmp, hs[layer + 1])
    f = np.dot(hs[L], V)
    f *= 1.0 / n
    return hs, xs, us, f


@njit(cache=True)
def _backward(Bw, V, hs, us, chi, post, mult, resid, outer, act):
    L = Bw.shape[0]
    gs = np.empty_like(hs)
    deltas = np.empty((L, hs.shape[1], hs.shape[2]), dtype=hs.dtype)
    q = np.empty((hs.shape[1], hs.shape[2]), dtype=hs.dtype)
    np.dot(chi, V.T, gs[L])
    for layer in range(L - 1, -1, -1):
        if post:
            _gate_post(gs[layer + 1], us[layer], outer, act, deltas[layer])
            np.dot(deltas[layer], Bw[layer], q)
            _axpby(1.0, gs[layer + 1], mult, q, gs[layer])
        else:
            deltas[layer] = gs[layer + 1]
            np.dot(gs[layer + 1], Bw[layer], q)
            _gate_pre(gs[layer + 1], hs[layer], q, resid, mult, act, gs[layer])
    return gs, deltas


@njit(cache=True)
def _add_outer_layers(T, A, B, scale):
    tmp = np.empty((T.shape[1], T.shape[2]), dtype=T.dtype)
    for layer in range(T.shape[0]):
        np.dot(A[layer].T, B[layer], tmp)
        _axpby(1.0, T[layer], scale, tmp, T[layer])


def forward(U, W, V, X, sc, act):
    """Eq. 1 / Eq. 29 forward pass (see the numpy reference)."""
    return _forward(U, W, V, np.ascontiguousarray(X, dtype=U.dtype), sc.post, sc.mult,
                    sc.resid, sc.outer, _ACT[act])


def backward(Bw, V, hs, xs, us, chi, sc, act):
    """Eq. 3 backward pass (see the numpy reference)."""
    return _backward(Bw, V, hs, us, np.ascontiguousarray(chi, dtype=hs.dtype), sc.post,
                     sc.mult, sc.resid, sc.outer, _ACT[act])


def add_outer(T, a, b, scale):
    T += T.dtype.type(scale) * (a.T @ b)


def add_outer_layers(T, A, B, scale):
    _add_outer_layers(T, A, B, scale)
