"""The depth limit of the true-backprop limit for one SGD step, integrated directly
(book/notes/true_depth_limit.md).

The true-limit recursion (:mod:`nfdlib.limits.true_limit`) estimates its reuse corrections
from the particles with Stein's lemma. For one SGD step followed by an evaluation (T = 2
inputs ξ_0, ξ_1) the forward correction of step 1 has a closed form: the backward increment
of layer ℓ at step 0 moves every lower g_k^{(0)} (k < ℓ) by φ'(h_{ℓ-1}^{(0)})/√L, and h^{(1)}
depends on g^{(0)} only additively (input-layer update, hidden drifts, corrections), so

    E[∂φ(h_{ℓ-1}^{(1)})/∂ẑ_ℓ^{(0)}] = K_ℓ B_ℓ/√L,      K_ℓ = E[φ'(h_{ℓ-1}^{(1)}) φ'(h_{ℓ-1}^{(0)})],
    B_1 = -η_c χ_0 ξ_0·ξ_1/d,   B_{ℓ+1} = B_ℓ + (K_ℓ B_ℓ - η_c χ_0 C_ℓ^{(0,1)})/L,

and the step-0 backward corrections have expectation zero (h^{(0)} is independent of the
backward Gaussians of step 0). The forward pass of step 1 is then

    h_ℓ^{(1)} = h_{ℓ-1}^{(1)} + z_ℓ^{(1)}/√L + (1/L) g_ℓ^{(0)} (K_ℓ B_ℓ - η_c χ_0 C_ℓ^{(0,1)}),

which is the Euler scheme, on the grid t_ℓ = ℓ/L, of the continuous-depth equation with the
reuse drift (the note's equations):

    dh_t^{(1)} = dB_t^{(1)} + g_t^{(0)} (Γ_t - η_c χ_0 C_t^{(0,1)}) dt,    Γ_t = K_t A_t,
    dA_t/dt    = K_t A_t - η_c χ_0 C_t^{(0,1)},     A_0 = -η_c χ_0 ξ_0·ξ_1/d,
    f_1 = E[(v - η_c χ_0 h_1^{(0)}) h_1^{(1)}]

(step 0 is NFD's: dh^{(0)} = dB^{(0)}, g^{(0)}_t = v + ∫_t^1 φ'(h^{(0)}_u) dB̃^{(0)}_u).
:func:`solve` integrates it on N = ``noise``'s depth steps with the exact coefficient Γ
(no Stein estimate): on a fine path it is the depth-limit reference, and on the path
coarsened to L steps it is the true-limit recursion at depth L with exact expected
derivatives. ``reuse=False`` drops Γ (and then equals NFD).

Kernels with one signature ``kernel(uxi, gram, v, y, eta_c, eps, epsb, act, reuse)``:
:func:`solve_numpy` (reference, vectorised over particles), :func:`solve_numba`,
:func:`solve_torch`; each returns (f (2), chi (2), A (N+1), K (N), C01 (N), h1 (P), g0 (P)):
f_0, f_1, the coefficient path A at the grid points, K_ℓ, C_ℓ^{(0,1)}, the particles h_1^{(1)}
(output features of step 1) and g_0^{(0)}.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from numba import njit

from ..backends.numba_backend import SAFE_FASTMATH, dphi_of_phi, phi_scalar
from ..params import ParamError, require_memory
from .particles import (_ACT, _dphi_from_phi_np, _f64, _phi_np, check_activation_and_rate, check_backend,
                        divergence_step, stream_inputs)

@dataclass(frozen=True)
class OneStepResult:
    """Output of :func:`solve`: f (2), chi (2), the coefficient path A (N+1), K (N),
    C01 (N), Gamma = K·A at the layer starts (N), particles h1 = h_1^{(1)} and g0 = g_0^{(0)}
    (P each), and ``diverged_at`` (first non-finite f, or None)."""
    f: np.ndarray
    chi: np.ndarray
    A: np.ndarray
    K: np.ndarray
    C01: np.ndarray
    h1: np.ndarray
    g0: np.ndarray
    reuse: bool
    diverged_at: int | None

    @property
    def Gamma(self) -> np.ndarray:
        return self.K * self.A[:-1]


def _chol2(c00, c01, c11):
    """Rows of the Cholesky factor of [[c00, c01], [c01, c11]] (a dropped direction gets 0)."""
    r00 = math.sqrt(c00) if c00 > 0.0 else 0.0
    r10 = c01 / r00 if r00 > 0.0 else 0.0
    rest = c11 - r10 * r10
    r11 = math.sqrt(rest) if rest > 1e-12 * c11 and rest > 0.0 else 0.0
    return r00, r10, r11


def solve_numpy(uxi, gram, v, y, eta_c, eps, epsb, act, reuse):
    """Reference kernel (numpy). ``uxi`` (2×P) = u·ξ_s/√d, ``gram`` (2×2), ``v`` (P), ``y``
    (2), ``eps``/``epsb`` (N×2×P) forward/backward standard normals, ``act`` 0/1/2, ``reuse``
    (bool). Step 0: NFD; step 1: the forward equation of the module docstring. The histories
    φ(h^{(0)}) and g^{(0)} are stored in the noise's dtype, products taken in float64 (the lean
    layout of :mod:`nfdlib.limits.particles`)."""
    N, _, P = eps.shape
    sq, dt = 1.0 / math.sqrt(N), 1.0 / N
    ph0 = np.empty((N, P), dtype=eps.dtype)
    h = uxi[0].copy()
    for k in range(N):
        ph0[k] = _phi_np(h, act)
        h = h + sq * math.sqrt(_f64(ph0[k]) @ _f64(ph0[k]) / P) * _f64(eps[k, 0])
    hL0 = h
    f0 = v @ hL0 / P
    chi0 = f0 - y[0]
    g = np.empty((N + 1, P), dtype=eps.dtype)
    gr = v.copy()  # g^{(0)}, carried down in float64
    g[N] = gr
    for k in range(N, 0, -1):
        G00 = _f64(g[k]) @ _f64(g[k]) / P
        gr = gr + _dphi_from_phi_np(_f64(ph0[k - 1]), act) * (sq * math.sqrt(G00) * _f64(epsb[k - 1, 0]))
        g[k - 1] = gr
    A = np.zeros(N + 1)
    K = np.zeros(N)
    C01 = np.zeros(N)
    A[0] = -eta_c * chi0 * gram[0, 1]
    h = uxi[1] - eta_c * chi0 * gram[0, 1] * _f64(g[0])
    for k in range(N):
        p1, p0 = _phi_np(h, act), _f64(ph0[k])
        c00, c01, c11 = p0 @ p0 / P, p0 @ p1 / P, p1 @ p1 / P
        C01[k] = c01
        r00, r10, r11 = _chol2(c00, c01, c11)
        K[k] = _dphi_from_phi_np(p1, act) @ _dphi_from_phi_np(p0, act) / P if reuse else 0.0
        rate = K[k] * A[k] - eta_c * chi0 * c01
        A[k + 1] = A[k] + dt * rate
        drift = rate if reuse else -eta_c * chi0 * c01
        h = h + sq * (r10 * _f64(eps[k, 0]) + r11 * _f64(eps[k, 1])) + dt * drift * _f64(g[k + 1])
    f1 = (v - eta_c * chi0 * hL0) @ h / P
    return np.array([f0, f1]), np.array([chi0, f1 - y[1]]), A, K, C01, h, _f64(g[0]).copy()


def _solve_nb_py(uxi, gram, v, y, eta_c, eps, epsb, act, reuse, ph0, g, out_h):
    """Numba kernel (serial loops over particles, the recursion of :func:`solve_numpy`).
    ``ph0`` (N×P), ``g`` ((N+1)×P) (the noise's dtype) and ``out_h`` (P) are allocated by
    the caller."""
    N, _, P = eps.shape
    sq, dt = 1.0 / math.sqrt(N), 1.0 / N
    h = np.empty(P)
    gr = np.empty(P)
    for q in range(P):
        h[q] = uxi[0, q]
    for k in range(N):
        acc = 0.0
        for q in range(P):
            ph0[k, q] = phi_scalar(h[q], act)
            p = np.float64(ph0[k, q])
            acc += p * p
        s = sq * math.sqrt(acc / P)
        for q in range(P):
            h[q] += s * eps[k, 0, q]
    hL0 = h.copy()
    f0 = 0.0
    for q in range(P):
        f0 += v[q] * hL0[q]
    f0 /= P
    chi0 = f0 - y[0]
    for q in range(P):
        gr[q] = v[q]
        g[N, q] = gr[q]
    for k in range(N, 0, -1):
        acc = 0.0
        for q in range(P):
            gq = np.float64(g[k, q])
            acc += gq * gq
        s = sq * math.sqrt(acc / P)
        for q in range(P):
            gr[q] += dphi_of_phi(np.float64(ph0[k - 1, q]), act) * (s * epsb[k - 1, 0, q])
            g[k - 1, q] = gr[q]
    A = np.zeros(N + 1)
    K = np.zeros(N)
    C01 = np.zeros(N)
    A[0] = -eta_c * chi0 * gram[0, 1]
    for q in range(P):
        h[q] = uxi[1, q] - eta_c * chi0 * gram[0, 1] * g[0, q]
    for k in range(N):
        c00 = c01 = c11 = kk = 0.0
        for q in range(P):
            p1 = phi_scalar(h[q], act)
            p0 = np.float64(ph0[k, q])
            c00 += p0 * p0
            c01 += p0 * p1
            c11 += p1 * p1
            kk += dphi_of_phi(p1, act) * dphi_of_phi(p0, act)
        c00, c01, c11 = c00 / P, c01 / P, c11 / P
        C01[k] = c01
        r00 = math.sqrt(c00) if c00 > 0.0 else 0.0
        r10 = c01 / r00 if r00 > 0.0 else 0.0
        rest = c11 - r10 * r10
        r11 = math.sqrt(rest) if rest > 1e-12 * c11 and rest > 0.0 else 0.0
        K[k] = kk / P if reuse else 0.0
        rate = K[k] * A[k] - eta_c * chi0 * c01
        A[k + 1] = A[k] + dt * rate
        drift = rate if reuse else -eta_c * chi0 * c01
        a0, a1, b = sq * r10, sq * r11, dt * drift
        for q in range(P):
            h[q] += a0 * eps[k, 0, q] + a1 * eps[k, 1, q] + b * g[k + 1, q]
    f1 = 0.0
    for q in range(P):
        f1 += (v[q] - eta_c * chi0 * hL0[q]) * h[q]
        out_h[q] = h[q]
    f1 /= P
    f = np.empty(2)
    chi = np.empty(2)
    f[0], f[1] = f0, f1
    chi[0], chi[1] = chi0, f1 - y[1]
    return f, chi, A, K, C01


_solve_nb = njit(cache=True, fastmath=SAFE_FASTMATH, error_model="numpy")(_solve_nb_py)


def solve_numba(uxi, gram, v, y, eta_c, eps, epsb, act, reuse):
    """Numba kernel, same signature and result as :func:`solve_numpy`."""
    N, _, P = eps.shape
    c64 = lambda x: np.ascontiguousarray(x, dtype=np.float64)  # noqa: E731
    eps, epsb = np.ascontiguousarray(eps), np.ascontiguousarray(epsb, dtype=eps.dtype)
    ph0, g, h = np.empty((N, P), dtype=eps.dtype), np.empty((N + 1, P), dtype=eps.dtype), np.empty(P)
    f, chi, A, K, C01 = _solve_nb(c64(uxi), c64(gram), c64(v), c64(y), float(eta_c), eps, epsb,
                                  int(act), bool(reuse), ph0, g, h)
    return f, chi, A, K, C01, h, _f64(g[0]).copy()


def solve_torch(uxi, gram, v, y, eta_c, eps, epsb, act, reuse, device="auto"):
    """Torch kernel (CUDA when present), same signature and result as :func:`solve_numpy`
    (histories in the noise's dtype, products in float64); the scalar recursion for A on
    the host."""
    import torch

    from ..backends.torch_backend import resolve_device
    dev = resolve_device(device)
    tt = lambda a: torch.as_tensor(np.asarray(a, dtype=np.float64), device=dev)  # noqa: E731
    N, _, P = eps.shape
    sq, dt = 1.0 / math.sqrt(N), 1.0 / N
    phi = torch.tanh if act == 0 else (torch.relu if act == 1 else (lambda x: x))

    def dphi(p):
        return 1.0 - p * p if act == 0 else ((p > 0).to(p.dtype) if act == 1 else torch.ones_like(p))

    store = torch.float32 if eps.dtype == np.float32 else torch.float64
    uxi_t, v_t = tt(uxi), tt(v)
    eps_t = torch.as_tensor(np.asarray(eps), device=dev)
    epsb_t = torch.as_tensor(np.asarray(epsb, dtype=eps.dtype), device=dev)
    ph0 = torch.empty((N, P), dtype=store, device=dev)
    h = uxi_t[0].clone()
    for k in range(N):
        ph0[k] = phi(h)
        p0 = ph0[k].double()
        h = h + sq * torch.sqrt(p0 @ p0 / P) * eps_t[k, 0].double()
    hL0 = h
    f0 = float(v_t @ hL0) / P
    chi0 = f0 - float(y[0])
    g = torch.empty((N + 1, P), dtype=store, device=dev)
    gr = v_t.clone()  # g^{(0)}, carried down in float64
    g[N] = gr
    for k in range(N, 0, -1):
        gk = g[k].double()
        gr = gr + dphi(ph0[k - 1].double()) * (sq * torch.sqrt(gk @ gk / P) * epsb_t[k - 1, 0].double())
        g[k - 1] = gr
    A, K, C01 = np.zeros(N + 1), np.zeros(N), np.zeros(N)
    A[0] = -eta_c * chi0 * gram[0, 1]
    h = uxi_t[1] - eta_c * chi0 * float(gram[0, 1]) * g[0].double()
    for k in range(N):
        p1, p0 = phi(h), ph0[k].double()
        mom = torch.stack([p0 @ p0, p0 @ p1, p1 @ p1, dphi(p1) @ dphi(p0)]).cpu().numpy() / P
        c00, c01, c11 = float(mom[0]), float(mom[1]), float(mom[2])
        C01[k] = c01
        r00, r10, r11 = _chol2(c00, c01, c11)
        K[k] = float(mom[3]) if reuse else 0.0
        rate = K[k] * A[k] - eta_c * chi0 * c01
        A[k + 1] = A[k] + dt * rate
        drift = rate if reuse else -eta_c * chi0 * c01
        h = h + sq * (r10 * eps_t[k, 0].double() + r11 * eps_t[k, 1].double()) + dt * drift * g[k + 1].double()
    f1 = float((v_t - eta_c * chi0 * hL0) @ h) / P
    return (np.array([f0, f1]), np.array([chi0, f1 - float(y[1])]), A, K, C01, h.cpu().numpy(),
            g[0].double().cpu().numpy())


KERNELS = {"numpy": solve_numpy, "numba": solve_numba, "torch": solve_torch}


def solve(Xi, y, eta_c: float, noise, activation: str = "tanh", reuse: bool = True,
          backend: str = "numba", device: str = "auto") -> OneStepResult:
    """Integrate the one-step depth-limit equation (module docstring) for the two inputs
    ``Xi`` (2×d) with targets ``y`` (2) on the ``noise`` of :func:`nfdlib.limits.particles.draw_noise`
    with T = 2 (its depth N is the grid; its step-0 and step-1 normals drive B^{(0)}, B̃^{(0)}
    and B^{(1)}; ``coarsen`` gives the same path on a coarser grid)."""
    check_activation_and_rate(activation, eta_c)
    check_backend(backend, device)
    P, N, T = noise.shape
    Xi = np.atleast_2d(np.asarray(Xi, dtype=np.float64))
    y = np.asarray(y, dtype=np.float64).ravel()
    if T != 2 or Xi.shape != (2, noise.u.shape[1]) or y.shape != (2,):
        raise ParamError(f"the one-step depth limit needs T = 2 steps: 'Xi' of shape (2, {noise.u.shape[1]}), "
                         f"'y' of shape (2,) and noise with T = 2; got {Xi.shape}, {y.shape}, T = {T}")
    require_memory(noise.eps.dtype.itemsize * P * (2 * N + 1) + 8 * P * 5,
                   f"the one-step depth limit with P={P}, N={N}")
    args = (*stream_inputs(Xi, noise), noise.v, y, float(eta_c), noise.eps, noise.epsb, _ACT[activation], bool(reuse))
    with np.errstate(all="ignore"):
        out = solve_torch(*args, device=device) if backend == "torch" else KERNELS[backend](*args)
    f, chi, A, K, C01, h1, g0 = out
    return OneStepResult(f=f, chi=chi, A=A, K=K, C01=C01, h1=h1, g0=g0, reuse=bool(reuse),
                         diverged_at=divergence_step(f))


def linear_gap(eta_c: float, chi0: float, gram01: float) -> float:
    """φ = id, P = ∞: K = 1, C_t^{(0,1)} = a e^t (a = ξ_0·ξ_1/d), so A_t = -κ(1+t)e^t with
    κ = η_c χ_0 a, and f_1^{true} - f_1^{NFD} = E[v ∫ g^{(0)}_t Γ_t dt] = ∫_0^1 A_t dt = -e κ."""
    return -math.e * eta_c * chi0 * gram01
