"""The forward–backward SDE at initialisation (Thm. 4.3; book/notes/fbsde.md) and its Euler scheme.

As n → ∞ then L → ∞, with t = ℓ/L, one coordinate of the forward and backward features
follows the McKean–Vlasov pair

    dh_t = √(E φ(h_t)²) dB_t,                          h_0 ~ N(0, q_0),  q_0 = |ξ|²/d
    g_t  = g_1 + ∫_t^1 φ'(h_u) √(E g_u²) dB̃_u,         g_1 = v ~ N(0, 1)

with B ⟂ B̃. Its Euler scheme on L steps is exactly the infinite-width chain of an L-layer
depth-µP ResNet (the decoupled backward chain, which P4.2 shows the true one approaches):

    h_ℓ     = h_{ℓ-1} + s_ℓ ΔB_ℓ,        s_ℓ² = E φ(h_{ℓ-1})²            (ℓ = 1..L)
    g_{ℓ-1} = g_ℓ + φ'(h_{ℓ-1}) r_ℓ ΔB̃_ℓ,  r_ℓ² = E g_ℓ²,   g_L = v       (ℓ = L..1)

where the expectations are taken over the P particles (an interacting particle system).
:func:`solve` runs it on the ``numba`` or ``torch`` kernel (one signature) or the plain
numpy reference; :func:`sde_moments` and :func:`chain_moments` give the exact second
moments q(t) = E h_t², p(t) = E g_t² of the SDE and of the L-step chain:

    q' = E_{z~N(0,q)} φ(z)²,   -p' = E_{z~N(0,q(t))} φ'(z)² · p,   p(1) = 1
    q_ℓ = q_{ℓ-1} + E φ(h_{ℓ-1})²/L,   p_{ℓ-1} = p_ℓ (1 + E φ'(h_{ℓ-1})²/L),  p_L = 1

(ReLU: q(t) = q_0 e^{t/2}, p(t) = e^{(1-t)/2}; q_L = q_0 (1 + 1/(2L))^L = p_0).
"""
from __future__ import annotations

import math

import numpy as np
from numba import njit
from scipy.integrate import solve_ivp

from ..backends.numba_backend import SAFE_FASTMATH, tanh_vec
from ..params import ParamError, require_memory

ACTIVATIONS = ("tanh", "relu", "linear")
BACKENDS = ("numba", "torch", "numpy")
_ACT = {"tanh": 0, "relu": 1, "linear": 2}
_GH_X, _GH_W = np.polynomial.hermite_e.hermegauss(101)
_GH_W = _GH_W / _GH_W.sum()


def phi(x, act: str):
    if act == "tanh":
        return np.tanh(x)
    if act == "relu":
        return np.maximum(x, 0.0)
    return x


def dphi(x, act: str):
    if act == "tanh":
        return 1.0 - np.tanh(x) ** 2
    if act == "relu":
        return (x > 0).astype(np.float64)
    return np.ones_like(x)


def _check_activation(act: str) -> None:
    if act not in ACTIVATIONS:
        raise ParamError(f"parameter 'activation' = {act!r} is not allowed; allowed: "
                         + ", ".join(map(repr, ACTIVATIONS)))


def gauss_mean(f, q: float) -> float:
    """E f(z) for z ~ N(0, q), by 101-point Gauss–Hermite quadrature (smooth f)."""
    return float(_GH_W @ f(math.sqrt(max(q, 0.0)) * _GH_X))


def moments_of_gaussian(act: str, q: float) -> tuple[float, float]:
    """(E φ(z)², E φ'(z)²) for z ~ N(0, q): closed forms for ReLU (q/2, 1/2) and linear
    (q, 1); quadrature for tanh."""
    if act == "relu":
        return q / 2, 0.5
    if act == "linear":
        return q, 1.0
    return gauss_mean(lambda z: np.tanh(z) ** 2, q), gauss_mean(lambda z: (1 - np.tanh(z) ** 2) ** 2, q)


# ----------------------------------------------------------------------------- exact moments

def sde_moments(activation: str, t, q0: float = 1.0) -> tuple[np.ndarray, np.ndarray]:
    """q(t) = E h_t² and p(t) = E g_t² of the SDE at times ``t`` ⊂ [0, 1]: closed forms for
    ReLU and linear, scipy's ``solve_ivp`` (DOP853, rtol 1e-11) for tanh."""
    _check_activation(activation)
    t = np.atleast_1d(np.asarray(t, dtype=float))
    if activation == "relu":
        return q0 * np.exp(t / 2), np.exp((1 - t) / 2)
    if activation == "linear":
        return q0 * np.exp(t), np.exp(1 - t)
    # y = (q, I) with I(t) = ∫_0^t E φ'(h_u)² du; then p(t) = exp(I(1) - I(t)).
    def rhs(_, y):
        return list(moments_of_gaussian(activation, y[0]))
    grid = np.union1d(t, [0.0, 1.0])
    sol = solve_ivp(rhs, (0.0, 1.0), [q0, 0.0], t_eval=grid, method="DOP853", rtol=1e-11, atol=1e-13)
    q = np.interp(t, sol.t, sol.y[0])
    integral = np.interp(t, sol.t, sol.y[1])
    return q, np.exp(sol.y[1][-1] - integral)


def chain_moments(activation: str, depth: int, q0: float = 1.0) -> tuple[np.ndarray, np.ndarray]:
    """Exact q_ℓ = E h_ℓ² and p_ℓ = E g_ℓ² (ℓ = 0..L) of the L-step infinite-width chain
    (h_ℓ is Gaussian; g_ℓ's increment is independent of φ'(h_{ℓ-1}) and of g_ℓ)."""
    _check_activation(activation)
    q = np.empty(depth + 1)
    e2 = np.empty(depth)
    q[0] = q0
    for layer in range(depth):
        e_phi2, e2[layer] = moments_of_gaussian(activation, q[layer])
        q[layer + 1] = q[layer] + e_phi2 / depth
    p = np.empty(depth + 1)
    p[depth] = 1.0
    for layer in range(depth, 0, -1):
        p[layer - 1] = p[layer] * (1 + e2[layer - 1] / depth)
    return q, p


# ----------------------------------------------------------------------------- kernels

def solve_numpy(h0, v, dB, dBt, activation: str, device: str = "cpu"):
    """Numpy reference of the Euler scheme (module docstring), vectorised over particles."""
    L, P = dB.shape
    hs = np.empty((L + 1, P))
    gs = np.empty((L + 1, P))
    hs[0] = h0
    for layer in range(L):
        s = np.sqrt(np.mean(phi(hs[layer], activation) ** 2))
        hs[layer + 1] = hs[layer] + s * dB[layer]
    gs[L] = v
    for layer in range(L, 0, -1):
        r = np.sqrt(np.mean(gs[layer] ** 2))
        gs[layer - 1] = gs[layer] + dphi(hs[layer - 1], activation) * r * dBt[layer - 1]
    return hs, gs


@njit(inline="always", fastmath=SAFE_FASTMATH, error_model="numpy")
def _forward_layer(h, db, s, h_next, d_next, act):
    """h_next = h + s·db, d_next = φ'(h_next); returns Σ φ(h_next)². One loop per activation
    (no branch inside a loop, so LLVM vectorises it)."""
    s2 = 0.0
    if act == 0:
        for i in range(h.size):
            x = h[i] + s * db[i]
            y = tanh_vec(x)
            h_next[i] = x
            d_next[i] = 1.0 - y * y
            s2 += y * y
    elif act == 1:
        for i in range(h.size):
            x = h[i] + s * db[i]
            d = 1.0 if x > 0.0 else 0.0
            h_next[i] = x
            d_next[i] = d
            s2 += d * x * x
    else:
        for i in range(h.size):
            x = h[i] + s * db[i]
            h_next[i] = x
            d_next[i] = 1.0
            s2 += x * x
    return s2


@njit(cache=True, fastmath=SAFE_FASTMATH, error_model="numpy")
def _euler_numba(h0, v, dB, dBt, act, hs, gs):
    """Fused sweeps, one vectorised pass per layer: the forward pass stores φ'(h_ℓ) in gs[ℓ]
    (one activation call per particle and layer) and accumulates the next layer's moment;
    the backward pass overwrites gs[ℓ-1] = φ'(h_{ℓ-1}) with g_{ℓ-1}. Serial on purpose: one
    barrier per layer makes threads lose on a shared CPU."""
    L, P = dB.shape
    zero = np.zeros(P)
    s2 = _forward_layer(h0, zero, 0.0, hs[0], gs[0], act)
    for layer in range(L):
        s2 = _forward_layer(hs[layer], dB[layer], math.sqrt(s2 / P), hs[layer + 1], gs[layer + 1], act)
    r2 = 0.0
    g = gs[L]
    for i in range(P):
        g[i] = v[i]
        r2 += v[i] * v[i]
    for layer in range(L, 0, -1):
        r = math.sqrt(r2 / P)
        r2 = 0.0
        g, g_prev, dbt = gs[layer], gs[layer - 1], dBt[layer - 1]
        for i in range(P):
            y = g[i] + g_prev[i] * r * dbt[i]
            g_prev[i] = y
            r2 += y * y


def solve_numba(h0, v, dB, dBt, activation: str, device: str = "cpu"):
    """The Euler scheme as a numba kernel (CPU)."""
    L, P = dB.shape
    hs = np.empty((L + 1, P))
    gs = np.empty((L + 1, P))
    _euler_numba(np.ascontiguousarray(h0, dtype=np.float64), np.ascontiguousarray(v, dtype=np.float64),
                 np.ascontiguousarray(dB, dtype=np.float64), np.ascontiguousarray(dBt, dtype=np.float64),
                 _ACT[activation], hs, gs)
    return hs, gs


def solve_torch(h0, v, dB, dBt, activation: str, device: str = "auto"):
    """The Euler scheme on torch tensors (CUDA when ``device`` is auto and present), float64."""
    import torch

    from ..backends.torch_backend import resolve_device

    def tphi(x):
        return torch.tanh(x) if activation == "tanh" else torch.relu(x) if activation == "relu" else x

    def tdphi(x):
        if activation == "tanh":
            return 1 - torch.tanh(x) ** 2
        return (x > 0).to(x.dtype) if activation == "relu" else torch.ones_like(x)

    dev = resolve_device(device)
    with torch.no_grad():
        dB_t = torch.as_tensor(np.asarray(dB, dtype=np.float64), device=dev)
        dBt_t = torch.as_tensor(np.asarray(dBt, dtype=np.float64), device=dev)
        L, P = dB_t.shape
        hs = torch.empty((L + 1, P), dtype=torch.float64, device=dev)
        gs = torch.empty((L + 1, P), dtype=torch.float64, device=dev)
        hs[0] = torch.as_tensor(np.asarray(h0, dtype=np.float64), device=dev)
        for layer in range(L):
            s = torch.sqrt(torch.mean(tphi(hs[layer]) ** 2))
            torch.addcmul(hs[layer], dB_t[layer], s, out=hs[layer + 1])
        gs[L] = torch.as_tensor(np.asarray(v, dtype=np.float64), device=dev)
        for layer in range(L, 0, -1):
            r = torch.sqrt(torch.mean(gs[layer] ** 2))
            torch.addcmul(gs[layer], tdphi(hs[layer - 1]), dBt_t[layer - 1] * r, out=gs[layer - 1])
        return hs.cpu().numpy(), gs.cpu().numpy()


KERNELS = {"numba": solve_numba, "torch": solve_torch, "numpy": solve_numpy}


def solve(h0, v, dB, dBt, activation: str = "tanh", backend: str = "numba", device: str = "auto"):
    """Euler scheme of the forward–backward SDE (module docstring) for P particles:
    ``h0``, ``v`` (P,), increments ``dB``, ``dBt`` (L × P) of the independent paths B, B̃
    over the steps [(ℓ-1)/L, ℓ/L]. Returns ``hs``, ``gs`` ((L+1) × P numpy arrays, row ℓ at
    t = ℓ/L)."""
    _check_activation(activation)
    if backend not in KERNELS:
        raise ParamError(f"parameter 'backend' = {backend!r} is not allowed; allowed: "
                         + ", ".join(map(repr, KERNELS)))
    if backend != "torch" and device == "cuda":
        raise ParamError(f"parameter 'device' = 'cuda' is not allowed with backend {backend!r}; "
                         "allowed: 'auto', 'cpu'")
    dB, dBt = np.asarray(dB), np.asarray(dBt)
    if dB.ndim != 2 or dB.shape != dBt.shape or np.shape(h0) != dB.shape[1:] or np.shape(v) != dB.shape[1:]:
        raise ParamError("parameters 'dB', 'dBt' must be two L × P arrays and 'h0', 'v' P-vectors; got "
                         f"{dB.shape}, {dBt.shape}, {np.shape(h0)}, {np.shape(v)}")
    require_memory(4 * 8.0 * (dB.shape[0] + 1) * dB.shape[1], "the FBSDE particle solver")
    return KERNELS[backend](h0, v, dB, dBt, activation, device)


def simulate(particles: int, depth: int, activation: str, rng, q0: float = 1.0,
             backend: str = "numba", device: str = "auto"):
    """One particle system of the L-step chain with fresh draws: h_0 ~ N(0, q0), v ~ N(0, 1)
    and Brownian increments, all from ``rng``. Returns ``hs``, ``gs``."""
    rng = rng if isinstance(rng, np.random.Generator) else np.random.default_rng(rng)
    h0 = math.sqrt(q0) * rng.standard_normal(particles)
    v = rng.standard_normal(particles)
    scale = math.sqrt(1.0 / depth)
    dB = scale * rng.standard_normal((depth, particles))
    dBt = scale * rng.standard_normal((depth, particles))
    return solve(h0, v, dB, dBt, activation, backend, device)


def strong_errors(depths, fine_depth: int, particles: int, activation: str, rng, q0: float = 1.0,
                  backend: str = "numba", device: str = "auto") -> list[dict]:
    """Pathwise errors of the L-step chain against a ``fine_depth``-step reference driven by
    the same Brownian paths and initial values:

        h_mse(L) = max_ℓ E|h^{(L)}_ℓ - h^{ref}_{t_ℓ}|²,   g_mse(L) = max_ℓ E|g^{(L)}_ℓ - g^{ref}_{t_ℓ}|²

    (means over particles, with standard errors at the maximising ℓ)."""
    from .brownian import BrownianPath
    from ..metrics import mean_se

    rng = rng if isinstance(rng, np.random.Generator) else np.random.default_rng(rng)
    h0 = math.sqrt(q0) * rng.standard_normal(particles)
    v = rng.standard_normal(particles)
    path, path_t = BrownianPath(particles, fine_depth, rng), BrownianPath(particles, fine_depth, rng)
    ref_h, ref_g = solve(h0, v, path.increments(fine_depth), path_t.increments(fine_depth),
                         activation, backend, device)
    rows = []
    for depth in depths:
        hs, gs = solve(h0, v, path.increments(depth), path_t.increments(depth), activation, backend, device)
        step = fine_depth // depth
        row = {"depth": int(depth), "activation": activation}
        for name, ours, ref in (("h", hs, ref_h), ("g", gs, ref_g)):
            sq = (ours - ref[::step]) ** 2
            worst = int(np.argmax(sq.mean(axis=1)))
            mean, se = mean_se(sq[worst])
            row[f"{name}_mse"], row[f"{name}_se"], row[f"{name}_worst_t"] = float(mean), float(se), worst / depth
        rows.append(row)
    return rows
