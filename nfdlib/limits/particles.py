"""The particle machinery shared by the NFD solver (Def. 5.3, :mod:`nfdlib.limits.nfd`) and the
limit of true backprop (Prop. E.1, :mod:`nfdlib.limits.true_limit`).

One recursion serves both: NFD is the true-limit recursion with its reuse corrections
switched off (the equations are in the docstrings of those two modules). This module holds

- the randomness and inputs of a solve: :class:`Noise` (U-rows, readout, forward and
  backward standard normals), :func:`draw_noise`, :func:`coarsen` (the same Brownian path on
  a coarser depth grid), :func:`synthetic_task`;
- the step-by-step factorisations: :func:`chol_row` (one row of a kernel's Cholesky factor)
  and :func:`stein_solve` (expected derivatives from Gaussian integration by parts);
- the kernels of the recursion, one signature
  ``kernel(uxi, gram, v, y, eta_c, eps, epsb, act, keep, corr)``: :func:`solve_numpy`
  (reference), :func:`solve_numba`, :func:`solve_torch`, and :func:`solve`, which validates
  and dispatches and returns a :class:`TrueResult` (an :class:`NFDResult` with the size of
  the corrections, zero when ``corrections=False``).

Storage (the lean layout). The normals ε, ε̂ and the particle histories φ(h_ℓ^{(s)}),
g_ℓ^{(s)} that later steps read are stored in float32 (:func:`draw_noise`'s default); every sum, kernel row and
Stein moment is accumulated in float64 from the stored values, and the quantities carried from
one layer to the next (h, g) are kept in float64 and rounded only when stored. The stored
values are then exactly what every later step reads, so the kernels C_ℓ, G_ℓ are Gram
matrices of stored vectors (positive semidefinite) and the three backends agree to float64
rounding on the same draws. A solve moves half the bytes of a float64 layout, and memory
bandwidth is what bounds it (``benchmarks/bench_nfd.py``). Noise drawn with
``dtype="float64"`` runs the same kernels in the float64 layout (the tests compare the two).
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numba
import numpy as np
from numba import njit, prange

from ..backends.numba_backend import SAFE_FASTMATH, dphi_of_phi, phi_scalar
from ..params import ParamError, require_memory

ACTIVATIONS = ("tanh", "relu", "linear")
BACKENDS = ("numba", "torch", "numpy")
_ACT = {"tanh": 0, "relu": 1, "linear": 2}
_DEGENERATE = 1e-12  # relative pivot below which a Cholesky direction counts as absent
STORAGE_DTYPES = ("float32", "float64")


@dataclass(frozen=True)
class Noise:
    """The randomness of one NFD solve: U-rows ``u`` (P×d), readout ``v`` (P), forward
    normals ``eps`` and backward normals ``epsb`` (L×T×P; index ℓ-1 drives layer ℓ; float32
    in the lean layout, the solve's histories take their dtype)."""
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
    C_ℓ, G_ℓ), the particles h, g at the layers ``keep`` (K×T×P) and ``diverged_at``, the
    first step whose f is not finite (None: the run did not diverge)."""
    f: np.ndarray
    loss: np.ndarray
    chi: np.ndarray
    C: np.ndarray
    G: np.ndarray
    keep: tuple
    h: np.ndarray
    g: np.ndarray
    diverged_at: int | None

    @property
    def diverged(self) -> bool:
        return self.diverged_at is not None


def divergence_step(f) -> int | None:
    """The first step s whose f_s is not finite (the run diverged there), or None."""
    bad = np.flatnonzero(~np.isfinite(np.array(f, dtype=float)))
    return int(bad[0]) if bad.size else None


def noise_bytes(P: int, L: int, T: int, d: int, dtype="float32") -> int:
    return np.dtype(dtype).itemsize * 2 * L * T * P + 8 * P * (d + 1)


def solver_bytes(P: int, L: int, T: int, n_keep: int, dtype="float32") -> int:
    """Working memory of one solve: the stored φ(h) and g of all layers and steps (``dtype``),
    h_L (float64, T×P), four float64 work vectors and the kept particles (float64)."""
    return np.dtype(dtype).itemsize * P * T * (2 * L + 1) + 8 * P * (T + 4 + 2 * n_keep * T)


def draw_noise(rng: np.random.Generator, P: int, L: int, T: int, d: int, dtype: str = "float32") -> Noise:
    """Draw u, v, ε, ε̂ (in this order, float64 standard normals, one layer at a time) from
    ``rng`` after checking they fit in memory; ε, ε̂ are stored as ``dtype`` (float32: the
    lean layout, each normal rounded once)."""
    for name, val in (("P", P), ("L", L), ("T", T), ("d", d)):
        if not isinstance(val, (int, np.integer)) or val < 1:
            raise ParamError(f"parameter '{name}' = {val!r} is not allowed; allowed: integer >= 1")
    if dtype not in STORAGE_DTYPES:
        raise ParamError(f"parameter 'dtype' = {dtype!r} is not allowed; allowed: {', '.join(STORAGE_DTYPES)}")
    require_memory(noise_bytes(P, L, T, d, dtype), f"NFD noise for P={P}, L={L}, T={T}")
    u = rng.standard_normal((P, d))
    v = rng.standard_normal(P)
    eps, epsb = np.empty((L, T, P), dtype=dtype), np.empty((L, T, P), dtype=dtype)
    for out in (eps, epsb):
        for layer in range(L):  # the same stream as one (L, T, P) draw
            out[layer] = rng.standard_normal((T, P))
    return Noise(u, v, eps, epsb)


def coarsen(noise: Noise, factor: int) -> Noise:
    """The same Brownian path on a grid ``factor`` times coarser: each coarse layer's normal
    is the sum of its ``factor`` fine normals divided by √factor (App. F), summed in float64
    and stored in the noise's dtype."""
    P, L, T = noise.shape
    if factor < 1 or L % factor:
        raise ParamError(f"parameter 'factor' = {factor!r} is not allowed; allowed: a divisor of L = {L}")
    shape = (L // factor, factor, T, P)
    scale = 1.0 / math.sqrt(factor)

    def coarse(x):
        return (x.reshape(shape).sum(1, dtype=np.float64) * scale).astype(x.dtype)
    return Noise(noise.u, noise.v, coarse(noise.eps), coarse(noise.epsb))


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


@dataclass(frozen=True)
class TrueResult(NFDResult):
    """Output of :func:`solve`: :class:`NFDResult` plus ``corr_fwd`` and
    ``corr_bwd`` (L×T): E[ż_ℓ^{(s)}²] and E[ẑ̇_ℓ^{(s)}²] (index ℓ-1), and ``corrections``."""
    corr_fwd: np.ndarray
    corr_bwd: np.ndarray
    corrections: bool


def stein_solve(R, e, m):
    """D = R[:m,:m]^{-T} e[:m] (back substitution), with D_k = 0 where the pivot R[k,k] is 0:
    the expected derivatives w.r.t. the Gaussians z^{(0..m-1)} from E[F ε^{(k)}]."""
    D = np.zeros(m)
    for k in range(m - 1, -1, -1):
        if R[k, k] > 0.0:
            acc = e[k]
            for j in range(k + 1, m):
                acc -= R[j, k] * D[j]
            D[k] = acc / R[k, k]
    return D


_stein_solve_nb = njit(cache=True)(stein_solve)


def _outputs(L, T, P, n_keep):
    return (np.zeros(T), np.zeros(T), np.zeros((L, T, T)), np.zeros((L, T, T)),
            np.zeros((n_keep, T, P)), np.zeros((n_keep, T, P)), np.zeros((L, T)), np.zeros((L, T)))


def _f64(x):
    return np.asarray(x, dtype=np.float64)


def solve_numpy(uxi, gram, v, y, eta_c, eps, epsb, act, keep, corr):
    """Reference kernel (numpy, vectorised over particles). ``uxi`` (T×P) = u·ξ_s/√d,
    ``gram`` (T×T) = ξ_r·ξ_s/d, ``v`` (P), ``y`` (T), ``eps``, ``epsb`` (L×T×P), ``act``
    0 tanh / 1 relu / 2 linear, ``keep`` (L+1) slot of each layer among the kept ones or -1,
    ``corr`` (bool; False: NFD). The histories φ(h), g are stored in ``eps``'s dtype and every
    product is taken in float64 (module docstring). Returns (f, chi, C, G, h_keep, g_keep,
    corr_fwd, corr_bwd)."""
    L, T, P = eps.shape
    n_keep = int((keep >= 0).sum())
    f, chi, C, G, hk, gk, cf, cb = _outputs(L, T, P, n_keep)
    RC, RG = np.zeros((L, T, T)), np.zeros((L, T, T))
    ph = np.empty((L, T, P), dtype=eps.dtype)
    g = np.empty((L + 1, T, P), dtype=eps.dtype)
    hL = np.empty((T, P))
    sq, el = 1.0 / math.sqrt(L), eta_c / L
    for s in range(T):
        h = uxi[s] - (eta_c * chi[:s] * gram[:s, s]) @ _f64(g[0, :s])
        if keep[0] >= 0:
            hk[keep[0], s] = h
        for layer in range(1, L + 1):
            c = layer - 1
            ph[c, s] = _phi_np(h, act)
            C[c, :s + 1, s] = _f64(ph[c, :s + 1]) @ _f64(ph[c, s]) / P
            C[c, s, :s] = C[c, :s, s]
            chol_row(RC[c], C[c], s)
            h = h + sq * (RC[c, s, :s + 1] @ _f64(eps[c, :s + 1])) - (el * chi[:s] * C[c, :s, s]) @ _f64(g[layer, :s])
            if corr and s > 0:
                D = stein_solve(RG[c], _f64(epsb[c, :s]) @ _f64(ph[c, s]) / P, s)
                zdot = D @ _f64(g[layer, :s])
                cf[c, s] = zdot @ zdot / P
                h = h + sq * zdot
            if keep[layer] >= 0:
                hk[keep[layer], s] = h
        hL[s] = h
        gr = v - (eta_c * chi[:s]) @ hL[:s]  # g_L^{(s)}, carried down in float64
        g[L, s] = gr
        f[s] = gr @ h / P
        chi[s] = f[s] - y[s]
        for layer in range(L, 0, -1):
            c = layer - 1
            G[c, :s + 1, s] = _f64(g[layer, :s + 1]) @ _f64(g[layer, s]) / P
            G[c, s, :s] = G[c, :s, s]
            chol_row(RG[c], G[c], s)
            inc = sq * (RG[c, s, :s + 1] @ _f64(epsb[c, :s + 1])) - (el * chi[:s] * G[c, :s, s]) @ _f64(ph[c, :s])
            if corr:
                D = stein_solve(RC[c], _f64(eps[c, :s + 1]) @ _f64(g[layer, s]) / P, s + 1)
                zdot = D @ _f64(ph[c, :s + 1])
                cb[c, s] = zdot @ zdot / P
                inc = inc + sq * zdot
            gr = gr + _dphi_from_phi_np(_f64(ph[c, s]), act) * inc
            g[c, s] = gr
        for layer in range(L + 1):
            if keep[layer] >= 0:
                gk[keep[layer], s] = g[layer, s]
    return f, chi, C, G, hk, gk, cf, cb


@njit(cache=True, fastmath=SAFE_FASTMATH, error_model="numpy")
def _combine(X, coef, m, lo, hi, y):
    """y += Σ_{r<m} coef[r]·X[r, lo:hi], four rows per pass over y (a transposed gemv on
    one chunk: the rows stream from memory once, y stays in cache). X may be stored in
    float32; coef and y are float64, so every product and sum is float64."""
    n = hi - lo
    r = 0
    while r + 4 <= m:
        x0, x1, x2, x3 = X[r, lo:hi], X[r + 1, lo:hi], X[r + 2, lo:hi], X[r + 3, lo:hi]
        a0, a1, a2, a3 = coef[r], coef[r + 1], coef[r + 2], coef[r + 3]
        for q in range(n):
            y[q] += a0 * x0[q] + a1 * x1[q] + a2 * x2[q] + a3 * x3[q]
        r += 4
    while r < m:
        x0, a0 = X[r, lo:hi], coef[r]
        for q in range(n):
            y[q] += a0 * x0[q]
        r += 1


@njit(cache=True, fastmath=SAFE_FASTMATH, error_model="numpy")
def _project(X, m, lo, hi, w, out):
    """out[r] = X[r, lo:hi]·w for r < m, four rows per pass over w (a gemv on one chunk),
    products and sums in float64 whatever the stored dtype of X and w."""
    n = hi - lo
    r = 0
    while r + 4 <= m:
        x0, x1, x2, x3 = X[r, lo:hi], X[r + 1, lo:hi], X[r + 2, lo:hi], X[r + 3, lo:hi]
        s0 = s1 = s2 = s3 = 0.0
        for q in range(n):
            wq = np.float64(w[q])
            s0 += np.float64(x0[q]) * wq
            s1 += np.float64(x1[q]) * wq
            s2 += np.float64(x2[q]) * wq
            s3 += np.float64(x3[q]) * wq
        out[r], out[r + 1], out[r + 2], out[r + 3] = s0, s1, s2, s3
        r += 4
    while r < m:
        x0 = X[r, lo:hi]
        s0 = 0.0
        for q in range(n):
            s0 += np.float64(x0[q]) * np.float64(w[q])
        out[r] = s0
        r += 1


@njit(cache=True, fastmath=SAFE_FASTMATH, error_model="numpy")
def _dot(x, w):
    acc = 0.0
    for q in range(x.size):
        acc += x[q] * w[q]
    return acc


@njit(cache=True, fastmath=SAFE_FASTMATH, error_model="numpy")
def _kernel_row(part, K, R, s, n, sq, el, chi, z, a):
    """Step s's row of one layer's kernel K (C_ℓ or G_ℓ) from the chunks' partial sums over n
    particles, its Cholesky row in R, the innovation weights z = R[s, :s+1]/√L and the drift
    weights a_r = -(η_c/L) χ_r K[r, s] (r < s)."""
    for r in range(s + 1):
        K[r, s] = part[:, r].sum() / n
        K[s, r] = K[r, s]
    _chol_row_nb(R, K, s)
    for r in range(s + 1):
        z[r] = sq * R[s, r]
    for r in range(s):
        a[r] = -el * chi[r] * K[r, s]


def _solve_nb_py(uxi, gram, v, y, eta_c, eps, epsb, act, keep, corr, f, chi, C, G, hk, gk, cf, cb,
                 ph, g, hL, work, nchunk):
    """Numba kernel: per layer one parallel pass over particle chunks updates the particles and
    accumulates the next layer's kernel row and Stein moments (the recursion of
    :func:`solve_numpy`). ``part[ch]`` holds a chunk's partial sums: [0, T) kernel row,
    [T, 2T) Stein moments E[F ε], 2T the correction's square, 2T+1 f. The stored history
    ``ph`` (L×T×P), ``g`` ((L+1)×T×P) (in the noise's dtype), ``hL`` (T×P) and the float64
    work vectors ``work`` (3×P: h or the backward increment, the correction, the carried g)
    come from the caller: numpy's allocator asks for huge pages, and touching 1 GB of small
    pages costs 0.4 s. Inside a chunk the
    sums over earlier steps run four rows at a time over contiguous 1-D views (
    :func:`_combine`, :func:`_project`), so that they vectorise and stream each row once."""
    L, T, P = eps.shape
    RC = np.zeros((L, T, T))
    RG = np.zeros((L, T, T))
    hc, tmp, gr = work[0], work[1], work[2]
    part = np.zeros((nchunk, 2 * T + 2))
    a = np.zeros(T)
    z = np.zeros(T)
    e = np.zeros(T)
    D = np.zeros(T)
    sq, el = 1.0 / math.sqrt(L), eta_c / L
    size = (P + nchunk - 1) // nchunk
    for s in range(T):
        for r in range(s):
            a[r] = -eta_c * chi[r] * gram[r, s]
        part[:, :] = 0.0
        for ch in prange(nchunk):
            lo, hi = ch * size, min(P, (ch + 1) * size)
            h = hc[lo:hi]
            h[:] = uxi[s, lo:hi]
            _combine(g[0], a, s, lo, hi, h)
            phs = ph[0, s, lo:hi]
            for q in range(hi - lo):
                phs[q] = phi_scalar(h[q], act)
            if keep[0] >= 0:
                hk[keep[0], s, lo:hi] = h
            _project(ph[0], s + 1, lo, hi, phs, part[ch])
            if corr:
                _project(epsb[0], s, lo, hi, phs, part[ch, T:])
        for layer in range(1, L + 1):
            c = layer - 1
            _kernel_row(part, C[c], RC[c], s, P, sq, el, chi, z, a)
            use = corr and s > 0
            if use:
                for k in range(s):
                    e[k] = part[:, T + k].sum() / P
                D[:s] = sq * _stein_solve_nb(RG[c], e, s)
            part[:, :] = 0.0
            for ch in prange(nchunk):
                lo, hi = ch * size, min(P, (ch + 1) * size)
                h = hc[lo:hi]
                _combine(eps[c], z, s + 1, lo, hi, h)
                _combine(g[layer], a, s, lo, hi, h)
                if use:
                    zd = tmp[lo:hi]
                    zd[:] = 0.0
                    _combine(g[layer], D, s, lo, hi, zd)
                    h += zd
                    part[ch, 2 * T] = _dot(zd, zd)
                if keep[layer] >= 0:
                    hk[keep[layer], s, lo:hi] = h
                if layer < L:
                    phs = ph[layer, s, lo:hi]
                    for q in range(hi - lo):
                        phs[q] = phi_scalar(h[q], act)
                    _project(ph[layer], s + 1, lo, hi, phs, part[ch])
                    if corr:
                        _project(epsb[layer], s, lo, hi, phs, part[ch, T:])
                else:
                    hL[s, lo:hi] = h
            if use:
                cf[c, s] = part[:, 2 * T].sum() / (P * sq * sq)
        for r in range(s):
            a[r] = -eta_c * chi[r]
        part[:, :] = 0.0
        for ch in prange(nchunk):
            lo, hi = ch * size, min(P, (ch + 1) * size)
            gs, grs = g[L, s, lo:hi], gr[lo:hi]
            grs[:] = v[lo:hi]
            _combine(hL, a, s, lo, hi, grs)
            gs[:] = grs
            part[ch, 2 * T + 1] = _dot(grs, hL[s, lo:hi])
            _project(g[L], s + 1, lo, hi, gs, part[ch])
            if corr:
                _project(eps[L - 1], s + 1, lo, hi, gs, part[ch, T:])
        f[s] = part[:, 2 * T + 1].sum() / P
        chi[s] = f[s] - y[s]
        for layer in range(L, 0, -1):
            c = layer - 1
            _kernel_row(part, G[c], RG[c], s, P, sq, el, chi, z, a)
            if corr:
                for k in range(s + 1):
                    e[k] = part[:, T + k].sum() / P
                D[:s + 1] = sq * _stein_solve_nb(RC[c], e, s + 1)
            part[:, :] = 0.0
            for ch in prange(nchunk):
                lo, hi = ch * size, min(P, (ch + 1) * size)
                inc = hc[lo:hi]
                inc[:] = 0.0
                _combine(epsb[c], z, s + 1, lo, hi, inc)
                _combine(ph[c], a, s, lo, hi, inc)
                if corr:
                    zd = tmp[lo:hi]
                    zd[:] = 0.0
                    _combine(ph[c], D, s + 1, lo, hi, zd)
                    inc += zd
                    part[ch, 2 * T] = _dot(zd, zd)
                gc, grs, phs = g[c, s, lo:hi], gr[lo:hi], ph[c, s, lo:hi]
                for q in range(hi - lo):
                    grs[q] += dphi_of_phi(np.float64(phs[q]), act) * inc[q]
                    gc[q] = grs[q]
                if c > 0:
                    _project(g[c], s + 1, lo, hi, gc, part[ch])
                    if corr:
                        _project(eps[c - 1], s + 1, lo, hi, gc, part[ch, T:])
            if corr:
                cb[c, s] = part[:, 2 * T].sum() / (P * sq * sq)
        for layer in range(L + 1):
            if keep[layer] >= 0:
                gk[keep[layer], s, :] = g[layer, s, :]


# The helpers it calls (_combine, _project, _dot, _kernel_row) are compiled once on their
# own, not inlined: inlined into a dozen call sites they made a first run compile for 74 s;
# called, 25 s, at the same speed (benchmarks/bench_compile.py). One compilation serves every
# particle count: below PARALLEL_MIN_P it runs on one thread (a separate serial compilation
# would save 3 ms per solve at P = 512, L = 64, T = 16 and cost 8 s of compilation).
_solve_nb = njit(parallel=True, cache=True, fastmath=SAFE_FASTMATH, error_model="numpy")(_solve_nb_py)
# Below this many particles one thread is faster: a parallel region costs about 6 µs to
# start, twice per layer and step (measured: equal at P = 2^12, L = 64, T = 16; 1.3x faster
# on 2 threads at P = 2^14).
PARALLEL_MIN_P = 1 << 13
CHUNK_MIN = 4096  # particles per chunk, at least


def solve_numba(uxi, gram, v, y, eta_c, eps, epsb, act, keep, corr):
    """Numba kernel, same signature and result as :func:`solve_numpy` (histories in the
    noise's dtype). From PARALLEL_MIN_P
    particles on it splits them into up to 4 chunks per thread (of at least CHUNK_MIN); below,
    it runs on one thread."""
    L, T, P = eps.shape
    n_keep = int((keep >= 0).sum())
    f, chi, C, G, hk, gk, cf, cb = _outputs(L, T, P, n_keep)
    threads = numba.get_num_threads()
    parallel = P >= PARALLEL_MIN_P and threads > 1
    nchunk = max(1, min(4 * threads, P // CHUNK_MIN)) if parallel else 1
    c64 = lambda x: np.ascontiguousarray(x, dtype=np.float64)  # noqa: E731
    eps, epsb = np.ascontiguousarray(eps), np.ascontiguousarray(epsb, dtype=eps.dtype)
    history = (np.empty((L, T, P), dtype=eps.dtype), np.empty((L + 1, T, P), dtype=eps.dtype),
               np.empty((T, P)), np.empty((3, P)))
    if not parallel:
        numba.set_num_threads(1)
    try:
        _solve_nb(c64(uxi), c64(gram), c64(v), c64(y), float(eta_c), eps, epsb, int(act),
                  np.asarray(keep, dtype=np.int64), bool(corr), f, chi, C, G, hk, gk, cf, cb, *history, nchunk)
    finally:
        numba.set_num_threads(threads)
    return f, chi, C, G, hk, gk, cf, cb


def solve_torch(uxi, gram, v, y, eta_c, eps, epsb, act, keep, corr, device="auto"):
    """Torch kernel (CUDA when present), same signature and result as :func:`solve_numpy`:
    histories stored in the noise's dtype, rows read back in float64 for every product;
    kernel rows, Cholesky rows and Stein solves (T×T) on the host."""
    import torch

    from ..backends.torch_backend import resolve_device
    dev = resolve_device(device)
    tt = lambda a: torch.as_tensor(np.asarray(a, dtype=np.float64), device=dev)  # noqa: E731
    host = lambda t: t.cpu().numpy()  # noqa: E731
    L, T, P = eps.shape
    n_keep = int((keep >= 0).sum())
    f, chi, C, G, _, _, _, _ = _outputs(L, T, 0, 0)
    store = torch.float32 if eps.dtype == np.float32 else torch.float64
    uxi_t, v_t = tt(uxi), tt(v)
    eps_t = torch.as_tensor(np.asarray(eps), device=dev)
    epsb_t = torch.as_tensor(np.asarray(epsb, dtype=eps.dtype), device=dev)
    cf = torch.zeros((L, T), dtype=torch.float64, device=dev)  # filled on the device: no sync
    cb = torch.zeros_like(cf)
    RC, RG = np.zeros((L, T, T)), np.zeros((L, T, T))
    hk = torch.zeros((n_keep, T, P), dtype=torch.float64, device=dev)
    gk = torch.zeros_like(hk)
    ph = torch.empty((L, T, P), dtype=store, device=dev)
    g = torch.empty((L + 1, T, P), dtype=store, device=dev)
    hL = torch.empty((T, P), dtype=torch.float64, device=dev)
    sq, el = 1.0 / math.sqrt(L), eta_c / L
    phi = (torch.tanh if act == 0 else (torch.relu if act == 1 else (lambda x: x)))

    def dphi(p):
        return 1.0 - p * p if act == 0 else ((p > 0).to(p.dtype) if act == 1 else torch.ones_like(p))

    for s in range(T):
        h = uxi_t[s] - tt(eta_c * chi[:s] * gram[:s, s]) @ g[0, :s].double()
        if keep[0] >= 0:
            hk[keep[0], s] = h
        for layer in range(1, L + 1):
            c = layer - 1
            ph[c, s] = phi(h)
            use = corr and s > 0
            # kernel row and Stein moments E[φ ε̂] in one transfer to the host
            rows = host(torch.cat((ph[c, :s + 1], epsb_t[c, :s])).double() @ ph[c, s].double() / P) if use \
                else host(ph[c, :s + 1].double() @ ph[c, s].double() / P)
            C[c, :s + 1, s] = rows[:s + 1]
            C[c, s, :s] = C[c, :s, s]
            chol_row(RC[c], C[c], s)
            h = h + tt(sq * RC[c, s, :s + 1]) @ eps_t[c, :s + 1].double() \
                - tt(el * chi[:s] * C[c, :s, s]) @ g[layer, :s].double()
            if use:
                zdot = tt(stein_solve(RG[c], rows[s + 1:], s)) @ g[layer, :s].double()
                cf[c, s] = zdot @ zdot / P
                h = h + sq * zdot
            if keep[layer] >= 0:
                hk[keep[layer], s] = h
        hL[s] = h
        gr = v_t - tt(eta_c * chi[:s]) @ hL[:s]  # g_L^{(s)}, carried down in float64
        g[L, s] = gr
        f[s] = float(gr @ h) / P
        chi[s] = f[s] - y[s]
        for layer in range(L, 0, -1):
            c = layer - 1
            gs = g[layer, s].double()
            rows = host(torch.cat((g[layer, :s + 1], eps_t[c, :s + 1])).double() @ gs / P) if corr else \
                host(g[layer, :s + 1].double() @ gs / P)
            G[c, :s + 1, s] = rows[:s + 1]
            G[c, s, :s] = G[c, :s, s]
            chol_row(RG[c], G[c], s)
            inc = tt(sq * RG[c, s, :s + 1]) @ epsb_t[c, :s + 1].double() \
                - tt(el * chi[:s] * G[c, :s, s]) @ ph[c, :s].double()
            if corr:
                zdot = tt(stein_solve(RC[c], rows[s + 1:], s + 1)) @ ph[c, :s + 1].double()
                cb[c, s] = zdot @ zdot / P
                inc = inc + sq * zdot
            gr = gr + dphi(ph[c, s].double()) * inc
            g[c, s] = gr
        for layer in range(L + 1):
            if keep[layer] >= 0:
                gk[keep[layer], s] = g[layer, s]
    return f, chi, C, G, host(hk), host(gk), host(cf), host(cb)


KERNELS = {"numpy": solve_numpy, "numba": solve_numba, "torch": solve_torch}


def check_activation_and_rate(activation, eta_c) -> None:
    """Raise ParamError unless ``activation`` is one of ACTIVATIONS and ``eta_c`` a number >= 0."""
    if activation not in ACTIVATIONS:
        raise ParamError(f"parameter 'activation' = {activation!r} is not allowed; allowed: {', '.join(ACTIVATIONS)}")
    if not (isinstance(eta_c, (int, float)) and not isinstance(eta_c, bool) and eta_c >= 0):
        raise ParamError(f"parameter 'eta_c' = {eta_c!r} is not allowed; allowed: a number >= 0")


def check_backend(backend: str, device: str) -> None:
    """Raise ParamError unless ``backend`` is one of BACKENDS and ``device`` fits it."""
    if backend not in BACKENDS:
        raise ParamError(f"parameter 'backend' = {backend!r} is not allowed; allowed: {', '.join(BACKENDS)}")
    if device not in ("auto", "cpu", "cuda") or (backend != "torch" and device == "cuda"):
        raise ParamError(f"parameter 'device' = {device!r} is not allowed with backend {backend!r}; "
                         "allowed: 'auto', 'cpu' ('cuda' with torch)")


def stream_inputs(Xi, noise: Noise) -> tuple[np.ndarray, np.ndarray]:
    """The kernels' view of the input stream: u·ξ_s/√d (T×P, contiguous) and ξ_r·ξ_s/d (T×T)."""
    d = Xi.shape[1]
    return np.ascontiguousarray((noise.u @ Xi.T).T / math.sqrt(d)), Xi @ Xi.T / d


def solve(Xi, y, eta_c: float, noise: Noise, activation: str = "tanh", corrections: bool = True,
          backend: str = "numba", device: str = "auto", keep=(0,)) -> TrueResult:
    """Run the true-limit recursion (Prop. E.1, :mod:`nfdlib.limits.true_limit`;
    ``corrections=False``: NFD, Def. 5.3) for
    T = len(Xi) steps of stream SGD (loss ½(f-y)², rate η_c) on the rows of ``Xi`` with
    targets ``y`` and the randomness ``noise`` (:func:`draw_noise`); keep the particles of the
    layers ``keep``. A non-finite f is recorded as ``diverged_at`` (its step), never raised."""
    check_activation_and_rate(activation, eta_c)
    if not isinstance(corrections, (bool, np.bool_)):
        raise ParamError(f"parameter 'corrections' = {corrections!r} is not allowed; allowed: True, False")
    check_backend(backend, device)
    P, L, T = noise.shape
    Xi = np.atleast_2d(np.asarray(Xi, dtype=np.float64))
    y = np.asarray(y, dtype=np.float64).ravel()
    if Xi.shape != (T, noise.u.shape[1]) or y.shape != (T,):
        raise ParamError(f"parameter 'Xi' must have shape (T, d) = ({T}, {noise.u.shape[1]}) and 'y' "
                         f"shape ({T},) to match the noise; got {Xi.shape} and {y.shape}")
    keep = tuple(int(k) for k in keep)
    if any(k < 0 or k > L for k in keep) or len(set(keep)) != len(keep):
        raise ParamError(f"parameter 'keep' = {keep!r} is not allowed; allowed: distinct layers in 0..{L}")
    require_memory(solver_bytes(P, L, T, len(keep), noise.eps.dtype),
                   f"the {'true-limit' if corrections else 'NFD'} solver with P={P}, L={L}, T={T}")
    slots = -np.ones(L + 1, dtype=np.int64)
    for i, k in enumerate(keep):
        slots[k] = i
    args = (*stream_inputs(Xi, noise), noise.v, y, float(eta_c), noise.eps, noise.epsb, _ACT[activation], slots,
            bool(corrections))
    with np.errstate(all="ignore"):
        if backend == "torch":
            out = solve_torch(*args, device=device)
        else:
            out = KERNELS[backend](*args)
    f, chi, C, G, hk, gk, cf, cb = out
    return TrueResult(f=f, loss=0.5 * chi**2, chi=chi, C=C, G=G, keep=keep, h=hk, g=gk, corr_fwd=cf,
                      corr_bwd=cb, corrections=bool(corrections), diverged_at=divergence_step(f))


def synthetic_task(T: int, d: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """A stream of T inputs with |ξ|² = d (Gaussian directions) and targets
    y = tanh(w·ξ/√d) of a random teacher w: the inputs every NFD experiment uses."""
    rng = np.random.default_rng([seed, 5003])
    X = rng.standard_normal((T, d))
    X *= math.sqrt(d) / np.linalg.norm(X, axis=1, keepdims=True)
    w = rng.standard_normal(d)
    return X, np.tanh(X @ w / math.sqrt(d))
