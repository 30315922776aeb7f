"""Neural Feature Dynamics (Def. 5.3): the particle solver of the finite-L recursion.

For stream SGD (one sample per step, loss ½(f - y)², learning rate η_c) on inputs
ξ_0..ξ_{T-1}, each particle is one coordinate of the infinite-width decoupled network
(MATH.md §5, D5.3):

    h_0^{(s)}     = u·ξ_s/√d - η_c Σ_{r<s} χ_r g_0^{(r)} (ξ_r·ξ_s)/d                 (U boundary)
    h_ℓ^{(s)}     = h_{ℓ-1}^{(s)} + z_ℓ^{(s)}/√L - (η_c/L) Σ_{r<s} χ_r g_ℓ^{(r)} C_ℓ^{(r,s)}
    g_L^{(s)}     = v - η_c Σ_{r<s} χ_r h_L^{(r)}                                    (v boundary)
    g_{ℓ-1}^{(s)} = g_ℓ^{(s)} + φ'(h_{ℓ-1}^{(s)}) [ẑ_ℓ^{(s)}/√L
                    - (η_c/L) Σ_{r<s} χ_r φ(h_{ℓ-1}^{(r)}) G_ℓ^{(r,s)}]
    f_s = E[g_L^{(s)} h_L^{(s)}],   χ_s = f_s - y_s,
    C_ℓ^{(r,s)} = E[φ(h_{ℓ-1}^{(r)}) φ(h_{ℓ-1}^{(s)})],   G_ℓ^{(r,s)} = E[g_ℓ^{(r)} g_ℓ^{(s)}]

with expectations replaced by particle means (an interacting particle system). The Gaussian
families are built step by step from the rows of the Cholesky factors of the kernels,
``z_ℓ^{(s)} = Σ_{r≤s} R_ℓ[s,r] ε_ℓ^{(r)}`` (and ẑ from Ĝ's factor with ε̂), with the standard
normals ε, ε̂ drawn once (:func:`draw_noise`) and stored, so a coarser depth grid driven by
:func:`coarsen` (block sums of the fine normals divided by √m) follows the same Brownian path:
as L → ∞ the recursion is the Euler–Maruyama scheme of the SDEs of Eqs. 20–25 (Remark 5.5).
The cost is O(P·L·T²) and the memory O(P·L·T).

Three kernels with one signature ``kernel(uxi, gram, v, y, eta_c, eps, epsb, act, keep)``:
:func:`solve_numpy` (the readable reference), :func:`solve_numba` (fused parallel loops on
contiguous views) and :func:`solve_torch` (CUDA when present); the last two are the kernels
of :mod:`nfdlib.limits.true_limit` with its reuse corrections switched off. :func:`solve`
validates, checks memory and dispatches.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from numba import njit

from ..params import ParamError, require_memory

ACTIVATIONS = ("tanh", "relu", "linear")
BACKENDS = ("numba", "torch", "numpy")
_ACT = {"tanh": 0, "relu": 1, "linear": 2}
_DEGENERATE = 1e-12  # relative pivot below which a Cholesky direction counts as absent


@dataclass(frozen=True)
class Noise:
    """The randomness of one NFD solve: U-rows ``u`` (P×d), readout ``v`` (P), forward
    normals ``eps`` and backward normals ``epsb`` (L×T×P; index ℓ-1 drives layer ℓ)."""
    u: np.ndarray
    v: np.ndarray
    eps: np.ndarray
    epsb: np.ndarray

    @property
    def shape(self) -> tuple[int, int, int]:
        """(P, L, T)."""
        L, T, P = self.eps.shape
        return P, L, T


@dataclass(frozen=True)
class NFDResult:
    """Output of :func:`solve`: f (T), loss (T), chi (T), C and G (L×T×T, index ℓ-1 holds
    C_ℓ, G_ℓ), the particles h, g at the layers ``keep`` (K×T×P) and a divergence flag."""
    f: np.ndarray
    loss: np.ndarray
    chi: np.ndarray
    C: np.ndarray
    G: np.ndarray
    keep: tuple
    h: np.ndarray
    g: np.ndarray
    diverged: bool


def noise_bytes(P: int, L: int, T: int, d: int) -> int:
    return 8 * (2 * L * T * P + P * (d + 1))


def solver_bytes(P: int, L: int, T: int, n_keep: int) -> int:
    """Working memory of one solve (float64): φ(h) and g for all layers and steps, h_L and
    the kept particles."""
    return 8 * P * T * (L + (L + 1) + 1 + 2 * n_keep)


def draw_noise(rng: np.random.Generator, P: int, L: int, T: int, d: int) -> Noise:
    """Draw u, v, ε, ε̂ (in this order) from ``rng`` after checking they fit in memory."""
    for name, val in (("P", P), ("L", L), ("T", T), ("d", d)):
        if not isinstance(val, (int, np.integer)) or val < 1:
            raise ParamError(f"parameter '{name}' = {val!r} is not allowed; allowed: integer >= 1")
    require_memory(noise_bytes(P, L, T, d), f"NFD noise for P={P}, L={L}, T={T}")
    u = rng.standard_normal((P, d))
    v = rng.standard_normal(P)
    eps = rng.standard_normal((L, T, P))
    epsb = rng.standard_normal((L, T, P))
    return Noise(u, v, eps, epsb)


def coarsen(noise: Noise, factor: int) -> Noise:
    """The same Brownian path on a grid ``factor`` times coarser: each coarse layer's normal
    is the sum of its ``factor`` fine normals divided by √factor (App. F)."""
    P, L, T = noise.shape
    if factor < 1 or L % factor:
        raise ParamError(f"parameter 'factor' = {factor!r} is not allowed; allowed: a divisor of L = {L}")
    shape = (L // factor, factor, T, P)
    scale = 1.0 / math.sqrt(factor)
    return Noise(noise.u, noise.v, noise.eps.reshape(shape).sum(1) * scale,
                 noise.epsb.reshape(shape).sum(1) * scale)


def chol_row(R, K, s):
    """Row s of the lower Cholesky factor of K[:s+1, :s+1], rows 0..s-1 of R given:
    R[s,r] = (K[s,r] - Σ_{k<r} R[s,k] R[r,k]) / R[r,r], R[s,s] = √(K[s,s] - Σ_k R[s,k]²).
    Directions with a pivot below 1e-12·K[s,s] are dropped (semidefinite kernels)."""
    for r in range(s):
        if R[r, r] > 0.0:
            acc = K[s, r]
            for k in range(r):
                acc -= R[s, k] * R[r, k]
            R[s, r] = acc / R[r, r]
        else:
            R[s, r] = 0.0
    acc = K[s, s]
    for k in range(s):
        acc -= R[s, k] * R[s, k]
    R[s, s] = math.sqrt(acc) if acc > _DEGENERATE * K[s, s] and acc > 0.0 else 0.0


_chol_row_nb = njit(cache=True)(chol_row)


def _phi_np(x, act):
    return np.tanh(x) if act == 0 else (np.maximum(x, 0.0) if act == 1 else x)


def _dphi_from_phi_np(p, act):
    """φ'(h) written through φ(h): tanh 1 - φ², ReLU 1{φ > 0}, linear 1."""
    return 1.0 - p * p if act == 0 else ((p > 0).astype(p.dtype) if act == 1 else np.ones_like(p))


def _outputs(L, T, P, n_keep):
    return (np.zeros(T), np.zeros(T), np.zeros((L, T, T)), np.zeros((L, T, T)),
            np.zeros((n_keep, T, P)), np.zeros((n_keep, T, P)))


def solve_numpy(uxi, gram, v, y, eta_c, eps, epsb, act, keep):
    """Reference kernel (numpy, vectorised over particles). ``uxi`` (T×P) = u·ξ_s/√d,
    ``gram`` (T×T) = ξ_r·ξ_s/d, ``act`` 0 tanh / 1 relu / 2 linear, ``keep`` (L+1) slot of
    each layer among the kept ones or -1. Returns (f, chi, C, G, h_keep, g_keep)."""
    L, T, P = eps.shape
    n_keep = int((keep >= 0).sum())
    f, chi, C, G, hk, gk = _outputs(L, T, P, n_keep)
    RC, RG = np.zeros((L, T, T)), np.zeros((L, T, T))
    ph = np.empty((L, T, P))
    g = np.empty((L + 1, T, P))
    hL = np.empty((T, P))
    sq, el = 1.0 / math.sqrt(L), eta_c / L
    for s in range(T):
        h = uxi[s] - (eta_c * chi[:s] * gram[:s, s]) @ g[0, :s]
        if keep[0] >= 0:
            hk[keep[0], s] = h
        for layer in range(1, L + 1):
            c = layer - 1
            ph[c, s] = _phi_np(h, act)
            C[c, :s + 1, s] = ph[c, :s + 1] @ ph[c, s] / P
            C[c, s, :s] = C[c, :s, s]
            chol_row(RC[c], C[c], s)
            h = h + sq * (RC[c, s, :s + 1] @ eps[c, :s + 1]) - (el * chi[:s] * C[c, :s, s]) @ g[layer, :s]
            if keep[layer] >= 0:
                hk[keep[layer], s] = h
        hL[s] = h
        g[L, s] = v - (eta_c * chi[:s]) @ hL[:s]
        f[s] = g[L, s] @ h / P
        chi[s] = f[s] - y[s]
        for layer in range(L, 0, -1):
            c = layer - 1
            G[c, :s + 1, s] = g[layer, :s + 1] @ g[layer, s] / P
            G[c, s, :s] = G[c, :s, s]
            chol_row(RG[c], G[c], s)
            inc = sq * (RG[c, s, :s + 1] @ epsb[c, :s + 1]) - (el * chi[:s] * G[c, :s, s]) @ ph[c, :s]
            g[c, s] = g[layer, s] + _dphi_from_phi_np(ph[c, s], act) * inc
        for layer in range(L + 1):
            if keep[layer] >= 0:
                gk[keep[layer], s] = g[layer, s]
    return f, chi, C, G, hk, gk


def solve_numba(uxi, gram, v, y, eta_c, eps, epsb, act, keep):
    """Numba kernel, same signature and result as :func:`solve_numpy`: the kernel of
    :mod:`nfdlib.limits.true_limit` with the reuse corrections switched off (one code path
    for NFD and the true limit)."""
    from . import true_limit
    return true_limit.solve_numba(uxi, gram, v, y, eta_c, eps, epsb, act, keep, False)[:6]


def solve_torch(uxi, gram, v, y, eta_c, eps, epsb, act, keep, device="auto"):
    """Torch kernel (float64, on CUDA when present), same signature and result as
    :func:`solve_numpy`: :mod:`nfdlib.limits.true_limit`'s with the corrections off."""
    from . import true_limit
    return true_limit.solve_torch(uxi, gram, v, y, eta_c, eps, epsb, act, keep, False, device)[:6]


KERNELS = {"numpy": solve_numpy, "numba": solve_numba, "torch": solve_torch}


def solve(Xi, y, eta_c: float, noise: Noise, activation: str = "tanh", backend: str = "numba",
          device: str = "auto", keep=(0,)) -> NFDResult:
    """Run the NFD recursion (module docstring) for T = len(Xi) steps of stream SGD on the
    rows of ``Xi`` (T×d) with targets ``y`` (T) and the randomness ``noise``; keep the
    particles of the layers ``keep`` (indices 0..L). A non-finite f is recorded as
    ``diverged`` (never raised)."""
    if activation not in ACTIVATIONS:
        raise ParamError(f"parameter 'activation' = {activation!r} is not allowed; allowed: {', '.join(ACTIVATIONS)}")
    if backend not in KERNELS:
        raise ParamError(f"parameter 'backend' = {backend!r} is not allowed; allowed: {', '.join(KERNELS)}")
    if device not in ("auto", "cpu", "cuda") or (backend != "torch" and device == "cuda"):
        raise ParamError(f"parameter 'device' = {device!r} is not allowed with backend {backend!r}; "
                         "allowed: 'auto', 'cpu' ('cuda' with torch)")
    if not (isinstance(eta_c, (int, float)) and eta_c >= 0):
        raise ParamError(f"parameter 'eta_c' = {eta_c!r} is not allowed; allowed: a number >= 0")
    P, L, T = noise.shape
    Xi = np.atleast_2d(np.asarray(Xi, dtype=np.float64))
    y = np.asarray(y, dtype=np.float64).ravel()
    if Xi.shape != (T, noise.u.shape[1]) or y.shape != (T,):
        raise ParamError(f"parameter 'Xi' must have shape (T, d) = ({T}, {noise.u.shape[1]}) and 'y' "
                         f"shape ({T},) to match the noise; got {Xi.shape} and {y.shape}")
    keep = tuple(int(k) for k in keep)
    if any(k < 0 or k > L for k in keep) or len(set(keep)) != len(keep):
        raise ParamError(f"parameter 'keep' = {keep!r} is not allowed; allowed: distinct layers in 0..{L}")
    require_memory(solver_bytes(P, L, T, len(keep)), f"the NFD solver with P={P}, L={L}, T={T}")
    slots = -np.ones(L + 1, dtype=np.int64)
    for i, k in enumerate(keep):
        slots[k] = i
    d = Xi.shape[1]
    uxi = np.ascontiguousarray((noise.u @ Xi.T).T / math.sqrt(d))
    gram = Xi @ Xi.T / d
    args = (uxi, gram, noise.v, y, float(eta_c), noise.eps, noise.epsb, _ACT[activation], slots)
    with np.errstate(all="ignore"):
        if backend == "torch":
            f, chi, C, G, hk, gk = solve_torch(*args, device=device)
        else:
            f, chi, C, G, hk, gk = KERNELS[backend](*args)
    return NFDResult(f=f, loss=0.5 * chi**2, chi=chi, C=C, G=G, keep=keep, h=hk, g=gk,
                     diverged=not bool(np.all(np.isfinite(f))))


def min_eigenvalues(K: np.ndarray) -> np.ndarray:
    """λ_min of the leading blocks K_ℓ^{[0..s]} for every layer and step (L×T), A5.4."""
    L, T, _ = K.shape
    out = np.full((L, T), np.nan)
    for s in range(T):
        block = K[:, :s + 1, :s + 1]
        ok = np.all(np.isfinite(block), axis=(1, 2))
        if ok.any():
            out[ok, s] = np.linalg.eigvalsh(block[ok])[:, 0]
    return out


def synthetic_task(T: int, d: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """A stream of T inputs with |ξ|² = d (Gaussian directions) and targets
    y = tanh(w·ξ/√d) of a random teacher w: the inputs every NFD experiment uses."""
    rng = np.random.default_rng([seed, 5003])
    X = rng.standard_normal((T, d))
    X *= math.sqrt(d) / np.linalg.norm(X, axis=1, keepdims=True)
    w = rng.standard_normal(d)
    return X, np.tanh(X @ w / math.sqrt(d))
