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
from numba import njit, types
from numba.extending import intrinsic

from ..params import ParamError

NAME = "numba"
_ACT = {"tanh": 0, "relu": 1, "linear": 2}


def asarray(x, dtype: str, device: str = "cpu", copy: bool = True):
    """``x`` as a C-ordered array of ``dtype``: a copy, or with ``copy=False`` ``x`` itself
    where it already is one."""
    if device not in ("auto", "cpu"):
        raise ParamError(f"parameter 'device' = {device!r} is not allowed with backend 'numba'; "
                         "allowed: 'auto', 'cpu'")
    return np.array(x, dtype=dtype, copy=True if copy else None, order="C")


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


# Compiler settings of the hand-written loops: the numpy error model drops the zero-division
# branch and "reassoc" lets LLVM vectorise sums; no NaN/inf assumptions are made, so a
# diverging run still shows NaN.
SAFE_FASTMATH = {"nsz", "arcp", "contract", "reassoc"}
_LN2_HI, _LN2_LO, _INV_LN2 = 6.93147180369123816490e-01, 1.90821492927058770002e-10, 1.4426950408889634


@intrinsic
def _int_bits_as_float(typingctx, bits):
    """Reinterpret an int64 as the float64 with the same bits."""
    def codegen(context, builder, signature, args):
        return builder.bitcast(args[0], context.get_value_type(types.float64))
    return types.float64(types.int64), codegen


@njit(inline="always", fastmath=SAFE_FASTMATH, error_model="numpy")
def tanh_vec(x):
    """tanh(x) = sign(x) (1 - e)/(1 + e), e = exp(-2|x|), with exp written out so that a loop
    over it vectorises (libm's scalar tanh costs about 15 ns per call here): 2|x| = k ln2 + r,
    |r| ≤ ln2/2, exp(-r) - 1 by its Taylor polynomial of degree 13 (error < 1e-16), 2^-k
    from the exponent bits. Accurate to a few ulp; NaN stays NaN."""
    a = 2.0 * abs(x)
    a = a if not a > 40.0 else 40.0
    k = math.floor(a * _INV_LN2 + 0.5)
    m = -((a - k * _LN2_HI) - k * _LN2_LO)
    p = 1.0 / 6227020800.0
    p = (p + 1.0 / 479001600.0) * m
    p = (p + 1.0 / 39916800.0) * m
    p = (p + 1.0 / 3628800.0) * m
    p = (p + 1.0 / 362880.0) * m
    p = (p + 1.0 / 40320.0) * m
    p = (p + 1.0 / 5040.0) * m
    p = (p + 1.0 / 720.0) * m
    p = (p + 1.0 / 120.0) * m
    p = (p + 1.0 / 24.0) * m
    p = (p + 1.0 / 6.0) * m
    p = (p + 0.5) * m
    p = (p + 1.0) * m
    scale = _int_bits_as_float((np.int64(1023) - np.int64(k)) * np.int64(1 << 52))
    t = ((1.0 - scale) - scale * p) / (1.0 + scale * (1.0 + p))
    return math.copysign(t, x)


@njit(inline="always")
def phi_scalar(x, act):
    """φ(x) for one coordinate (act 0 tanh, 1 ReLU, 2 linear), for numba kernels that loop
    over particles or coordinates themselves."""
    if act == 0:
        return tanh_vec(x)
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


def add_outer_layer(T, a, b, scale, tmp=None):
    """T += scale·aᵀb for one layer (T n×n, a and b batch×n)."""
    tmp = np.empty(T.shape, dtype=T.dtype) if tmp is None else tmp
    np.dot(a.T, b, out=tmp)
    _axpby(1.0, T, scale, tmp, T)


def add_outer_layers(T, A, B, scale):
    tmp = np.empty(T.shape[1:], dtype=T.dtype)
    for layer in range(T.shape[0]):
        add_outer_layer(T[layer], A[layer], B[layer], scale, tmp)
